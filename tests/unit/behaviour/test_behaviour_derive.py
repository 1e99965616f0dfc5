"""A scenario's behaviour from its trace: logical names, exact counts, polls folded, consumers as sets."""

from __future__ import annotations

from harness.behaviour.derive import derive, linked_consumers
from tests.unit.behaviour.behaviour_support import (
    CONSUMER_TRACE,
    STACK,
    TEST_TRACE,
    api_call,
    client_call,
    consumer_trace,
    ddb,
    function,
    make_trace,
    names,
)


def test_calls_are_counted_by_logical_id_and_route_template() -> None:
    trace = make_trace(
        api_call(
            "GET",
            "/orders/t1a2b3c-gw0-0badf00d",
            function("GetOrderFunction", [ddb("GetItem", "OrdersTable-1AB2")], cold=True),
        ),
        api_call("GET", "/orders/other-id", function("GetOrderFunction", [ddb("GetItem", "OrdersTable-1AB2")])),
    )
    behaviour, apart = derive(trace, names())
    assert behaviour == {
        "calls": {"DynamoDB GetItem OrdersTable": 2},
        "invocations": {"GetOrderFunction": 2},
        "test": {"API Gateway GET /orders/{order_id}": 2},
    }
    assert apart.cold_starts == 1  # reported apart: a cold start is not behaviour


def test_errors_are_kinds_per_call_and_the_tests_own_calls_are_marked() -> None:
    failed_put = ddb("PutItem", "OrdersTable-1AB2", error=True)
    trace = make_trace(api_call("POST", "/orders", function("GetOrderFunction", [failed_put]), status=409))
    behaviour, _ = derive(trace, names())
    assert behaviour["errors"] == {
        "DynamoDB PutItem OrdersTable": ["error"],
        "test: API Gateway POST /orders": ["error"],
    }


def test_a_wait_counts_once_whatever_its_attempts_and_their_downstream_calls() -> None:
    def read(attempt: int, status: int) -> list[dict]:
        fn = function("GetOrderFunction", [ddb("GetItem", "OrdersTable-1AB2")])
        return api_call("GET", "/orders/o-1", fn, status=status, poll=("p7", attempt))

    polled_thrice = make_trace(read(1, 404), read(2, 404), read(3, 200))
    polled_once = make_trace(read(1, 200))
    b3, apart3 = derive(polled_thrice, names())
    b1, apart1 = derive(polled_once, names())
    assert (
        b3
        == b1
        == {
            "calls": {"DynamoDB GetItem OrdersTable": 1},
            "invocations": {"GetOrderFunction": 1},
            "test": {"API Gateway GET /orders/{order_id}": 1},
        }
    )
    assert (apart3.polls_folded, apart1.polls_folded) == (2, 0)


def test_two_waits_and_plain_repeats_are_not_folded_together() -> None:
    get = ddb("GetItem", "AuditTable-9ZZ")
    trace = make_trace(
        client_call({**get, "id": "a1"}, ("p1", 1)),
        client_call({**get, "id": "a2"}, ("p1", 2)),
        client_call({**get, "id": "b1"}, ("p2", 1)),
        client_call({**get, "id": "c1"}),
        client_call({**get, "id": "c2"}),
    )
    behaviour, apart = derive(trace, names())
    assert behaviour["test"] == {"DynamoDB GetItem AuditTable": 4}
    assert apart.polls_folded == 1


def test_sdk_retries_are_counted_apart() -> None:
    trace = make_trace(client_call(ddb("PutItem", "OrdersTable-1AB2", aws={"retries": 2})))
    behaviour, apart = derive(trace, names())
    assert behaviour["test"] == {"DynamoDB PutItem OrdersTable": 1} and apart.retries == 2


def test_names_the_stack_does_not_list_are_generalized() -> None:
    n = names()
    assert n.resource([f"{STACK}-cold-7fe9753eab"]) == "{stack}-cold-{id}"
    assert n.resource(["t33ad76-gw0-8301eeb7-o1"]) == "{unique}-o1"
    assert n.resource([f"arn:aws:dynamodb:us-east-1:000000000000:table/{STACK}-AuditTable-9ZZ"]) == "AuditTable"
    assert n.resource(["x-123e4567-e89b-12d3-a456-426614174000"]) == "x-{id}"


def test_consumers_linked_to_the_test_are_sets_of_calls() -> None:
    trace = make_trace(api_call("POST", "/orders", function("GetOrderFunction", [])))
    batch = consumer_trace(
        CONSUMER_TRACE,
        [ddb("PutItem", "AuditTable-9ZZ"), ddb("PutItem", "AuditTable-9ZZ")],
        [TEST_TRACE, "1-6b043316-0000000000000000000000bb"],
    )
    second_hop = consumer_trace(
        "1-6b043317-0000000000000000000000cc",
        [ddb("Query", "OrdersTable-1AB2", error=True)],
        [CONSUMER_TRACE],
        name="GetOrderFunction",
    )
    unrelated = consumer_trace(
        "1-6b043318-0000000000000000000000dd",
        [ddb("Scan", "OrdersTable-1AB2")],
        ["1-6b043316-0000000000000000000000ee"],
    )
    others = {t.trace_id: t for t in (batch, second_hop, unrelated)}
    linked = linked_consumers([TEST_TRACE], others)
    assert [t.trace_id for t in linked[TEST_TRACE]] == sorted([batch.trace_id, second_hop.trace_id])
    behaviour, _ = derive(trace, names(), linked[TEST_TRACE])
    assert behaviour["consumers"] == {
        "AuditFunction": ["DynamoDB PutItem AuditTable"],  # two records in one batch: still one entry
        "GetOrderFunction": ["DynamoDB Query OrdersTable [error]"],
    }
