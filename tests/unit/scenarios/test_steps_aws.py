"""DynamoDB, SQS and Lambda steps, run through the scenario runner against moto."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from harness.errors import ExpectationFailed
from harness.scenarios.loader import load_text
from harness.scenarios.report import StepResult
from harness.scenarios.runner import run_scenario
from harness.scenarios.runtime import StepRuntime
from harness.scenarios.steps import StepError

REGION = "us-east-1"
ORDERS = "orders-test-OrdersTable-1A2B"
AUDIT = "orders-test-AuditTable-3C4D"
RESOURCES = {"OrdersTable": ORDERS, "AuditTable": AUDIT}


@pytest.fixture
def aws(aws_env: None) -> Iterator[dict[str, str]]:
    """moto with the stack's tables and queues; yields its outputs."""
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(
            TableName=ORDERS,
            KeySchema=[{"AttributeName": "order_id", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "order_id", "AttributeType": "S"},
                {"AttributeName": "customer_id", "AttributeType": "S"},
                {"AttributeName": "created_at", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "ByCustomer",
                    "KeySchema": [
                        {"AttributeName": "customer_id", "KeyType": "HASH"},
                        {"AttributeName": "created_at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.create_table(
            TableName=AUDIT,
            KeySchema=[
                {"AttributeName": "order_id", "KeyType": "HASH"},
                {"AttributeName": "event", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "order_id", "AttributeType": "S"},
                {"AttributeName": "event", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        sqs = boto3.client("sqs", region_name=REGION)
        queue = sqs.create_queue(QueueName="orders-test-Events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        yield {
            "EventsQueueUrl": queue,
            "EventsQueueArn": arn,
            "AuditTableArn": f"arn:aws:dynamodb:{REGION}:123456789012:table/{AUDIT}",
        }


@pytest.fixture
def runtime(aws: dict[str, str], make_runtime: Any) -> StepRuntime:
    return make_runtime(outputs=aws, resources=RESOURCES)


def run(text: str, runtime: StepRuntime) -> list[StepResult]:
    [scenario] = load_text(text, "s.yaml").scenarios
    return run_scenario(scenario, runtime)


def scenario(*steps: str) -> str:
    body = "".join("      " + line + "\n" for step in steps for line in step.strip().splitlines())
    return "scenarios:\n  - name: s\n    steps:\n" + body


def test_put_get_query_delete_round_trip(runtime: StepRuntime) -> None:
    results = run(
        scenario(
            """- put: {table: OrdersTable, item: {order_id: o-1, customer_id: c-1, created_at: 2024-05-01, total: 9.5,
                qty: 2, tags: [a, b], meta: {gift: true, note: null}}}""",
            """- put: {table: OrdersTable, item: {order_id: o-2, customer_id: c-1, created_at: 2024-06-01, qty: 1}}""",
            """- get: {table: OrdersTable, key: {order_id: o-1}, consistent: true}
  expect: {item: !exact {order_id: o-1, customer_id: c-1, created_at: 2024-05-01, total: 9.5, qty: 2,
           tags: [a, b], meta: {gift: true, note: null}}}
  save: {qty: item.qty}""",
            """- query: {table: OrdersTable, index: ByCustomer, key_condition: {customer_id: c-1}}
  expect: {count: 2, items: [{order_id: o-1}, {order_id: o-2}]}""",
            """- query: {table: OrdersTable, index: ByCustomer, descending: true,
           key_condition: {customer_id: c-1, created_at: {begins_with: 2024-06}}}
  expect: {count: 1, items: [{order_id: o-2, qty: 1}]}""",
            """- query: {table: OrdersTable, index: ByCustomer,
           key_condition: {customer_id: c-1, created_at: {between: [2024-01-01, 2024-05-31]}}}
  expect: {items: !len 1}""",
            """- query: {table: OrdersTable, index: ByCustomer, limit: 1, key_condition: {customer_id: c-1}}
  expect: {count: 1}""",
            """- delete: {table: OrdersTable, key: {order_id: o-1}}""",
            """- get: {table: OrdersTable, key: {order_id: o-1}}
  expect: {item: !absent }""",
            """- put: {table: OrdersTable, item: {order_id: o-3, qty: "{{ saved.qty }}"}}""",
            """- get: {table: OrdersTable, key: {order_id: o-3}}
  expect: {item: {qty: 2}}""",
        ),
        runtime,
    )
    assert [r.status for r in results] == ["passed"] * 11
    assert [r.name for r in results][:3] == ["put OrdersTable", "put OrdersTable", "get OrdersTable"]


def test_get_mismatch_reports_every_difference(runtime: StepRuntime) -> None:
    text = scenario(
        "- put: {table: OrdersTable, item: {order_id: o-1, status: NEW, qty: 0}}",
        "- name: check it\n  get: {table: OrdersTable, key: {order_id: o-1}}\n"
        "  expect: {item: {status: SHIPPED, qty: !ge 1, carrier: !any }}",
    )
    with pytest.raises(ExpectationFailed) as info:
        run(text, runtime)
    message = str(info.value)
    assert "step 2/2 'check it'" in message
    assert f"get OrdersTable (table {ORDERS})" in message
    assert 'item.status: expected "SHIPPED", observed "NEW"' in message
    assert "item.qty: expected a number >= 1, observed 0" in message
    assert "item.carrier: expected any value (!any), observed nothing" in message
    assert "3 mismatches" in message
    assert "faker seed: 1234" in message


def test_table_by_output_arn_and_by_physical_name(runtime: StepRuntime) -> None:
    run(
        scenario(
            "- put: {table: AuditTableArn, item: {order_id: o-1, event: INSERT}}",
            f"- get: {{table: {AUDIT}, key: {{order_id: o-1, event: INSERT}}}}\n  expect: {{item: {{event: INSERT}}}}",
        ),
        runtime,
    )


def test_unknown_table_is_a_step_error_with_a_hint(runtime: StepRuntime) -> None:
    with pytest.raises(StepError) as info:
        run(scenario("- get: {table: OrdersTabel, key: {order_id: x}}"), runtime)
    err = info.value
    assert "ResourceNotFoundException" in err.message
    assert "did you mean 'OrdersTable'" in (err.hint or "")


def test_expect_item_polls_until_it_appears_and_matches(runtime: StepRuntime, clock: Any) -> None:
    ddb = runtime.stack.client("dynamodb")
    writes = iter(
        [
            {"order_id": {"S": "o-1"}, "event": {"S": "INSERT"}, "status": {"S": "PENDING"}},
            {"order_id": {"S": "o-1"}, "event": {"S": "INSERT"}, "status": {"S": "DONE"}},
        ]
    )

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        item = next(writes, None)
        if item:
            ddb.put_item(TableName=AUDIT, Item=item)

    runtime.sleep = sleep
    results = run(
        scenario(
            "- expect_item: {table: AuditTable, key: {order_id: o-1, event: INSERT}, within: 10}\n"
            "  expect: {item: {status: DONE}}\n  save: {status: item.status}"
        ),
        runtime,
    )
    assert results[0].status == "passed"
    assert len(clock.sleeps) == 2  # absent, then PENDING, then DONE


def test_expect_item_times_out_with_last_observation(runtime: StepRuntime, clock: Any) -> None:
    runtime.stack.client("dynamodb").put_item(
        TableName=AUDIT, Item={"order_id": {"S": "o-1"}, "event": {"S": "INSERT"}, "status": {"S": "PENDING"}}
    )
    with pytest.raises(ExpectationFailed) as info:
        run(
            scenario(
                "- expect_item: {table: AuditTable, key: {order_id: o-1, event: INSERT}, within: 3}\n"
                "  expect: {item: {status: DONE}}"
            ),
            runtime,
        )
    message = str(info.value)
    assert "not met within 3s" in message
    assert 'item.status: expected "DONE", observed "PENDING"' in message
    assert '"status": "PENDING"' in message  # the last observation is printed
    assert sum(clock.sleeps) == pytest.approx(3)


def test_expect_item_never_found(runtime: StepRuntime) -> None:
    with pytest.raises(ExpectationFailed, match="not found yet"):
        run(scenario("- expect_item: {table: AuditTable, key: {order_id: nope, event: X}, within: 1}"), runtime)


def test_send_and_receive(runtime: StepRuntime) -> None:
    results = run(
        scenario(
            "- send: {queue: EventsQueueUrl, body: {order_id: o-1, qty: 2}, attributes: {kind: created, version: 2}}\n"
            "  expect: {message_id: !re '.'}",
            "- send: {queue: EventsQueueArn, body: plain text}",
            "- receive: {queue: EventsQueueUrl, max: 2, within: 5}\n"
            "  expect:\n"
            "    messages: !contains {body: {order_id: o-1}, attributes: {kind: created, version: 2}}\n"
            "  save: {first: 'messages[0].body'}",
            "- receive: {queue: orders-test-Events, within: 0.5}\n  expect: {messages: !len 0}",
        ),
        runtime,
    )
    assert [r.status for r in results] == ["passed"] * 4


def test_receive_keeps_messages_when_asked(runtime: StepRuntime) -> None:
    sqs = runtime.stack.client("sqs")
    url = runtime.stack.outputs["EventsQueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": 1}))
    run(scenario("- receive: {queue: EventsQueueUrl, delete: false}\n  expect: {messages: [{body: {n: 1}}]}"), runtime)
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "0"})
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    total = int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
    assert total == 1


def test_receive_nothing_fails_only_through_expect(runtime: StepRuntime) -> None:
    with pytest.raises(ExpectationFailed) as info:
        run(scenario("- receive: {queue: EventsQueueUrl, within: 2}\n  expect: {messages: !len 1}"), runtime)
    assert "messages: expected length 1" in str(info.value)


def test_wait_until_get(runtime: StepRuntime, clock: Any) -> None:
    ddb = runtime.stack.client("dynamodb")
    ddb.put_item(TableName=ORDERS, Item={"order_id": {"S": "o-1"}, "status": {"S": "NEW"}})

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        ddb.put_item(TableName=ORDERS, Item={"order_id": {"S": "o-1"}, "status": {"S": "SHIPPED"}})

    runtime.sleep = sleep
    results = run(
        scenario(
            "- wait: {until: {get: {table: OrdersTable, key: {order_id: o-1}}}, within: 30}\n"
            "  expect: {item: {status: SHIPPED}}\n  save: {status: item.status}",
            "- wait: {seconds: 1.5}",
        ),
        runtime,
    )
    assert [r.status for r in results] == ["passed", "passed"]
    assert clock.sleeps[-1] == 1.5


def test_wait_until_times_out(runtime: StepRuntime) -> None:
    with pytest.raises(ExpectationFailed) as info:
        run(
            scenario(
                "- wait: {until: {get: {table: OrdersTable, key: {order_id: o-9}}}, within: 2}\n"
                "  expect: {item: {status: SHIPPED}}"
            ),
            runtime,
        )
    assert "not met within 2s" in str(info.value)
    assert 'item: expected {status: "SHIPPED"}, observed nothing' in str(info.value)


class FakeLambda:
    def __init__(self, response: dict[str, Any]) -> None:
        self.response = response
        self.calls: list[dict[str, Any]] = []

    def invoke(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        return self.response


class FakeStack:
    name, stage, region = "orders-test", "test", REGION
    outputs = {"WorkerArn": "arn:aws:lambda:us-east-1:123456789012:function:orders-test-Worker"}
    resources = {"Worker": "orders-test-Worker-XYZ"}

    def __init__(self, client: FakeLambda) -> None:
        self._client = client

    def client(self, service: str) -> FakeLambda:
        assert service == "lambda"
        return self._client


def test_invoke_with_a_fake_client(make_runtime: Any) -> None:
    fake = FakeLambda({"StatusCode": 200, "Payload": io.BytesIO(b'{"ok": true, "n": 3}')})
    runtime = make_runtime(stack=FakeStack(fake))
    run(
        scenario(
            "- invoke: {function: Worker, payload: {id: '{{ unique }}'}, qualifier: live}\n"
            "  expect: {status: 200, payload: {ok: true}, function_error: null}"
        ),
        runtime,
    )
    [call] = fake.calls
    assert call == {
        "FunctionName": "orders-test-Worker-XYZ",
        "InvocationType": "RequestResponse",
        "Payload": b'{"id": "t3f9a2-gw0-1a2b3c"}',
        "Qualifier": "live",
    }


def test_invoke_function_error_is_observed(make_runtime: Any) -> None:
    fake = FakeLambda(
        {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": io.BytesIO(b'{"errorMessage": "boom"}')}
    )
    runtime = make_runtime(stack=FakeStack(fake))
    with pytest.raises(ExpectationFailed) as info:
        run(
            scenario("- invoke: {function: WorkerArn, invocation_type: Event}\n  expect: {function_error: null}"),
            runtime,
        )
    assert 'function_error: expected null, observed "Unhandled"' in str(info.value)
    assert fake.calls[0]["FunctionName"].endswith("function:orders-test-Worker")
    assert fake.calls[0]["InvocationType"] == "Event"
