from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from traces_support import TRACE, sdk_subsegment, shape

from harness.errors import ExpectationFailed
from harness.traces.model import Trace, execute_api_parts, service_name
from harness.traces.propagation import TraceContext

T0 = 1795437334.0
URL = "https://abc123.execute-api.us-east-1.amazonaws.com/Prod/orders"
FN_ARN = "arn:aws:lambda:us-east-1:123456789012:function:orders-dev-CreateOrder"


def client_segment(*subsegments: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "test_create_order",
        "id": "c000000000000001",
        "trace_id": TRACE,
        "start_time": T0,
        "end_time": T0 + 1.0,
        "annotations": {"harness_client": True, "harness_test": "tests/test_orders.py::test_create_order"},
        "subsegments": list(subsegments),
    }


def aws_api_trace() -> list[dict[str, Any]]:
    """What BatchGetTraces returns for client -> REST API -> Lambda -> DynamoDB (documented shapes)."""
    http_call = {
        "id": "c000000000000002",
        "name": "abc123.execute-api.us-east-1.amazonaws.com",
        "namespace": "remote",
        "start_time": T0 + 0.1,
        "end_time": T0 + 0.9,
        "http": {"request": {"url": URL, "method": "POST"}, "response": {"status": 201}},
    }
    stage = {
        "id": "a000000000000001",
        "name": "abc123/Prod",
        "origin": "AWS::ApiGateway::Stage",
        "trace_id": TRACE,
        "parent_id": "c000000000000002",
        "start_time": T0 + 0.11,
        "end_time": T0 + 0.89,
        "http": {"request": {"url": URL, "method": "POST"}, "response": {"status": 201}},
        "aws": {"api_gateway": {"rest_api_id": "abc123", "stage": "Prod"}},
        "subsegments": [
            {
                "id": "a000000000000002",
                "name": "Lambda",
                "namespace": "aws",
                "start_time": T0 + 0.12,
                "end_time": T0 + 0.88,
                "http": {"response": {"status": 200}},
                "aws": {
                    "operation": "Invoke",
                    "function_name": "orders-dev-CreateOrder",
                    "resource_names": ["orders-dev-CreateOrder"],
                },
            }
        ],
    }
    service = {
        "id": "b000000000000001",
        "name": "orders-dev-CreateOrder",
        "origin": "AWS::Lambda",
        "trace_id": TRACE,
        "parent_id": "a000000000000002",
        "start_time": T0 + 0.13,
        "end_time": T0 + 0.87,
        "http": {"response": {"status": 200}},
        "aws": {"request_id": "r1"},
        "resource_arn": FN_ARN,
    }
    function = {
        "id": "f000000000000001",
        "name": "orders-dev-CreateOrder",
        "origin": "AWS::Lambda::Function",
        "trace_id": TRACE,
        "parent_id": "b000000000000001",
        "start_time": T0 + 0.14,
        "end_time": T0 + 0.86,
        "aws": {"function_arn": FN_ARN, "resource_names": ["orders-dev-CreateOrder"]},
        "subsegments": [
            {"id": "f000000000000002", "name": "Initialization", "start_time": T0 + 0.14, "end_time": T0 + 0.5},
            {"id": "f000000000000003", "name": "Invocation", "start_time": T0 + 0.5, "end_time": T0 + 0.85},
            {"id": "f000000000000004", "name": "Overhead", "start_time": T0 + 0.85, "end_time": T0 + 0.86},
        ],
    }
    put = sdk_subsegment("d000000000000001", "f000000000000001", start=T0 + 0.6, end=T0 + 0.7)
    table = {
        "id": "d000000000000002",
        "name": "DynamoDB",
        "origin": "AWS::DynamoDB::Table",
        "trace_id": TRACE,
        "parent_id": "d000000000000001",
        "inferred": True,
        "start_time": T0 + 0.6,
        "end_time": T0 + 0.7,
        "aws": {"operation": "PutItem", "table_name": "orders"},
    }
    return [client_segment(http_call), stage, service, function, put, table]


def test_an_aws_trace_becomes_one_tree() -> None:
    trace = Trace.from_documents(aws_api_trace())
    assert shape(trace) == [
        (0, "client", "client"),
        (1, "call", "API Gateway"),
        (2, "service", "API Gateway"),
        (3, "call", "Lambda"),
        (4, "service", "Lambda"),
        (5, "function", "Lambda"),
        (6, "local", "local"),
        (6, "local", "local"),
        (6, "call", "DynamoDB"),
        (7, "service", "DynamoDB"),
        (6, "local", "local"),
    ]
    # calls count what callers did: the table's own segment is not a second PutItem
    (put,) = trace.calls("DynamoDB", "PutItem", resource="orders")
    assert trace.calls("dynamodb") == [put]  # any spelling of the service
    assert put.parent is not None and put.parent.kind == "function"
    (api,) = trace.calls("API Gateway", "POST", resource="/orders")
    assert api.status == 201
    (invoke,) = trace.calls("Lambda", "Invoke", resource="orders-dev-CreateOrder")
    (fn,) = trace.functions("orders-dev-CreateOrder")
    assert trace.functions(FN_ARN) == [fn]
    assert trace.cold_starts() == [fn] and fn.cold_start
    assert trace.duration == pytest.approx(1.0)
    assert trace.slowest() is api
    assert trace.slowest("DynamoDB") is put
    assert trace.errors() == [] and not trace.in_progress
    trace.assert_no_call("DynamoDB", "Scan")
    trace.assert_no_call("SQS")
    assert trace.assert_calls("DynamoDB", "PutItem", count=1) == [put]


def test_independent_subsegments_attach_to_nested_parents() -> None:
    ctx_doc = client_segment(
        {
            "id": "c000000000000002",
            "name": "Lambda",
            "namespace": "aws",
            "start_time": T0,
            "end_time": T0 + 0.5,
            "aws": {"operation": "Invoke", "function_name": "f"},
        }
    )
    child = sdk_subsegment("d000000000000001", "c000000000000002")
    trace = Trace.from_documents([json.dumps(child), ctx_doc])  # JSON strings as the API returns them
    assert shape(trace) == [(0, "client", "client"), (1, "call", "Lambda"), (2, "call", "DynamoDB")]
    assert trace.trace_id == TRACE


@pytest.mark.parametrize("order", ["progress-first", "complete-first"])
def test_a_complete_copy_replaces_an_in_progress_one(order: str) -> None:
    open_doc = {"id": "a000000000000001", "name": "svc", "trace_id": TRACE, "start_time": T0, "in_progress": True}
    done_doc = {**open_doc, "end_time": T0 + 2, "in_progress": False}
    docs = [open_doc, done_doc] if order == "progress-first" else [done_doc, open_doc]
    trace = Trace.from_documents(docs)
    (span,) = trace.walk()
    assert not span.in_progress and span.duration == 2 and not trace.in_progress
    assert Trace.from_documents([open_doc]).in_progress


def test_unknown_parents_and_cycles_become_roots() -> None:
    docs = [
        sdk_subsegment("0000000000000001", "ffffffffffffffff"),  # parent never arrived
        sdk_subsegment("0000000000000002", "0000000000000003"),
        sdk_subsegment("0000000000000003", "0000000000000002"),  # a cycle
        sdk_subsegment("0000000000000004", "0000000000000004"),  # its own parent
    ]
    trace = Trace.from_documents(docs)
    assert sorted(s.id for s in trace.walk()) == [f"000000000000000{i}" for i in range(1, 5)]
    assert len(trace.roots) == 3


def test_errors_faults_throttles() -> None:
    docs = [
        client_segment(
            sdk_subsegment("0000000000000001", "x", error=True, http={"response": {"status": 400}}),
            sdk_subsegment("0000000000000002", "x", fault=True),
            sdk_subsegment("0000000000000003", "x", throttle=True, error=True),
            sdk_subsegment("0000000000000004", "x"),
        )
    ]
    trace = Trace.from_documents(docs)
    assert [s.id for s in trace.errors()] == ["0000000000000001", "0000000000000002", "0000000000000003"]
    assert "HTTP 400, error" in trace.errors()[0].describe()


def test_resources_answer_to_names_urls_and_arns() -> None:
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/jobs"
    docs = [
        client_segment(
            {
                "id": "0000000000000001",
                "name": "SQS",
                "namespace": "aws",
                "aws": {"operation": "SendMessage", "queue_url": url},
            },
            {
                "id": "0000000000000002",
                "name": "Lambda",
                "namespace": "aws",
                "aws": {"operation": "Invoke", "function_name": FN_ARN},
            },
            {
                "id": "0000000000000003",
                "name": "DynamoDB",
                "namespace": "aws",
                "aws": {"operation": "BatchWriteItem", "table_names": ["a", "b"]},
            },
        )
    ]
    trace = Trace.from_documents(docs)
    assert trace.calls("SQS", resource="jobs") == trace.calls("SQS", resource=url) != []
    assert trace.calls("Lambda", resource="orders-dev-CreateOrder") == trace.calls("Lambda", resource=FN_ARN) != []
    assert trace.calls("DynamoDB", resource="b") != [] and trace.calls("DynamoDB", resource="c") == []
    assert trace.calls("SQS", "sendmessage") != []  # operations are case-insensitive too


def test_assert_no_call_lists_every_offender_with_its_caller() -> None:
    trace = Trace.from_documents(
        aws_api_trace() + [sdk_subsegment("d000000000000009", "f000000000000001", operation="Scan")]
    )
    trace.assert_no_call("DynamoDB", "Scan", resource="other-table")
    with pytest.raises(ExpectationFailed) as info:
        trace.assert_no_call("DynamoDB")
    text = str(info.value)
    assert isinstance(info.value, AssertionError)
    assert "expected no call to DynamoDB, found 2" in text
    assert "DynamoDB PutItem orders" in text and "DynamoDB Scan orders" in text
    assert "<- Lambda function orders-dev-CreateOrder" in text and TRACE in text


def test_assert_calls_counts() -> None:
    trace = Trace.from_documents(aws_api_trace())
    trace.assert_calls("DynamoDB")  # at least one by default
    trace.assert_calls("DynamoDB", "PutItem", at_least=1)
    with pytest.raises(ExpectationFailed, match=r"expected exactly 2 call\(s\) to DynamoDB PutItem, found 1"):
        trace.assert_calls("DynamoDB", "PutItem", count=2)
    with pytest.raises(ExpectationFailed, match=r"every call to DynamoDB in the trace:\n  DynamoDB PutItem orders"):
        trace.assert_calls("DynamoDB", "GetItem")


def test_cold_start_markers() -> None:
    base = {"name": "f", "origin": "AWS::Lambda::Function", "trace_id": TRACE, "start_time": T0, "end_time": T0 + 1}
    marked = Trace.from_documents([{**base, "id": "0000000000000001", "aws": {"cold_start": True}}])
    annotated = Trace.from_documents([{**base, "id": "0000000000000001", "annotations": {"ColdStart": True}}])
    warm = Trace.from_documents(
        [{**base, "id": "0000000000000001", "subsegments": [{"id": "0000000000000002", "name": "Invocation"}]}]
    )
    assert len(marked.cold_starts()) == len(annotated.cold_starts()) == 1
    assert warm.cold_starts() == [] and len(warm.functions()) == 1


def test_json_round_trip_for_reports_and_workers() -> None:
    trace = Trace.from_documents(aws_api_trace())
    data = trace.to_json()
    again = Trace.from_json(json.loads(json.dumps(data)))
    assert shape(again) == shape(trace) and again.trace_id == TRACE
    assert data["spans"][0] == {
        "depth": 0,
        "id": "c000000000000001",
        "kind": "client",
        "service": "client",
        "operation": None,
        "resource": "tests/test_orders.py::test_create_order",
        "duration_ms": 1000.0,
        "error": False,
        "fault": False,
        "throttle": False,
        "cold_start": False,
        "in_progress": False,
    }
    text = trace.render()
    assert text.splitlines()[0] == f"trace {TRACE} (1000.0 ms)"
    assert "            Lambda function orders-dev-CreateOrder (720.0 ms) [cold start]" in text


def test_the_client_segment_of_a_context_is_a_client_span() -> None:
    ctx = TraceContext("tests/a.py::test_b")
    call = ctx.begin_aws_call("DynamoDB", "GetItem", {"TableName": "t"})
    call.finish(status=200)
    ctx.finish()
    trace = Trace(ctx.trace_id, [ctx.segment_document()])
    assert shape(trace) == [(0, "client", "client"), (1, "call", "DynamoDB")]
    assert trace.roots[0].resource == "tests/a.py::test_b"


def test_service_names_and_execute_api_urls() -> None:
    assert service_name("dynamodb") == "DynamoDB" and service_name("Events") == "EventBridge"
    assert service_name("MyApp") == "MyApp"
    assert execute_api_parts(URL + "/1?x=1") == ("abc123", "Prod", "/orders/1")
    assert execute_api_parts("http://127.0.0.1:4566/_aws/execute-api/abc123/Prod/orders") == (
        "abc123",
        "Prod",
        "/orders",
    )
    assert execute_api_parts("https://example.com/Prod/orders") is None


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kinds are"):
        Trace(TRACE, []).spans_of("lambda")


ids_ = st.sampled_from([f"{i:016x}" for i in range(8)])
docs_ = st.lists(
    st.fixed_dictionaries(
        {"id": ids_, "trace_id": st.just(TRACE)},
        optional={
            "parent_id": ids_,
            "type": st.just("subsegment"),
            "namespace": st.sampled_from(["aws", "remote", "local"]),
            "name": st.text(max_size=5),
            "start_time": st.floats(0, 10),
            "end_time": st.floats(0, 10),
            "in_progress": st.booleans(),
            "subsegments": st.lists(st.fixed_dictionaries({"id": ids_}), max_size=3),
            "aws": st.dictionaries(st.sampled_from(["operation", "table_name", "queue_url"]), st.text(max_size=5)),
        },
    ),
    max_size=12,
)


@given(docs_)
def test_any_documents_give_a_tree_where_every_span_appears_once(docs: list[dict[str, Any]]) -> None:
    trace = Trace.from_documents(docs)
    seen = [s.id for s in trace.walk()]
    assert sorted(seen) == sorted(trace.spans)
    Trace.from_json(json.loads(json.dumps(trace.to_json())))
    trace.render()
