from __future__ import annotations

from typing import Any

from traces_support import TRACE, sdk_subsegment, shape

from harness.traces import local_nodes
from harness.traces.collector import FunctionInfo, Received
from harness.traces.model import Trace

T0 = 1795437334.0
ARN = "arn:aws:lambda:us-east-1:000000000000:function:orders-CreateOrder"
FN = FunctionInfo(name="orders-CreateOrder", arn=ARN)


def rec(doc: dict[str, Any], src: int = 50001, fn: FunctionInfo | None = FN, cold: bool = True) -> Received:
    return Received(doc=doc, src=src, fn=fn, cold=cold)


def client(*subsegments: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "test_x",
        "id": "c000000000000001",
        "trace_id": TRACE,
        "start_time": T0,
        "end_time": T0 + 1,
        "annotations": {"harness_client": True, "harness_test": "t.py::test_x"},
        "subsegments": list(subsegments),
    }


def invoke(id: str, function: str = "orders-CreateOrder", status: int = 200, **aws: Any) -> dict[str, Any]:
    return {
        "id": id,
        "name": "Lambda",
        "namespace": "aws",
        "start_time": T0 + 0.1,
        "end_time": T0 + 0.5,
        "http": {"response": {"status": status}},
        "aws": {"operation": "Invoke", "function_name": function, **aws},
    }


def http(id: str, url: str, status: int = 201) -> dict[str, Any]:
    return {
        "id": id,
        "name": "host",
        "namespace": "remote",
        "start_time": T0 + 0.1,
        "end_time": T0 + 0.6,
        "http": {"request": {"url": url, "method": "POST"}, "response": {"status": status}},
    }


def build(received: list[Received], *others: dict[str, Any]) -> Trace:
    return Trace(TRACE, local_nodes.build(received, list(others)))


def test_client_invoke_function_dynamodb() -> None:
    put = sdk_subsegment("d000000000000001", "c000000000000002", start=T0 + 0.2, end=T0 + 0.25)
    get = sdk_subsegment("d000000000000002", "c000000000000002", operation="GetItem", start=T0 + 0.3, end=T0 + 0.32)
    trace = build([rec(put), rec(get)], client(invoke("c000000000000002")))
    assert shape(trace) == [
        (0, "client", "client"),
        (1, "call", "Lambda"),
        (2, "function", "Lambda"),
        (3, "call", "DynamoDB"),
        (3, "call", "DynamoDB"),
    ]
    (fn,) = trace.functions()
    assert fn.name == "orders-CreateOrder" and fn.synthetic and fn.cold_start
    assert fn.aws["function_arn"] == ARN and trace.functions(ARN) == [fn]
    assert (fn.start, fn.end) == (T0 + 0.2, T0 + 0.32)  # the span of its traced calls
    assert [c.operation for c in fn.children] == ["PutItem", "GetItem"]
    trace.assert_calls("DynamoDB", "PutItem", resource="orders", count=1)


def test_the_function_name_comes_from_the_invoke_when_the_runtime_is_unknown() -> None:
    put = sdk_subsegment("d000000000000001", "c000000000000002")
    trace = build([rec(put, fn=None)], client(invoke("c000000000000002", function=ARN + ":live")))
    assert [f.name for f in trace.functions()] == ["orders-CreateOrder"]
    lone = build([rec(put, fn=None)])
    assert [f.name for f in lone.functions()] == [local_nodes.UNKNOWN_FUNCTION]


def test_api_gateway_nodes_are_built_as_aws_records_them() -> None:
    for url in (
        "https://abc123.execute-api.us-east-1.amazonaws.com/Prod/orders",
        "http://127.0.0.1:4566/_aws/execute-api/abc123/Prod/orders",
    ):
        put = sdk_subsegment("d000000000000001", "c000000000000002", start=T0 + 0.2, end=T0 + 0.3)
        trace = build([rec(put)], client(http("c000000000000002", url)))
        assert shape(trace) == [
            (0, "client", "client"),
            (1, "call", "API Gateway"),
            (2, "service", "API Gateway"),
            (3, "call", "Lambda"),
            (4, "function", "Lambda"),
            (5, "call", "DynamoDB"),
        ]
        (stage,) = trace.spans_of("service")
        assert stage.name == "abc123/Prod" and stage.origin == "AWS::ApiGateway::Stage" and stage.status == 201
        (integration,) = trace.calls("Lambda", "Invoke", resource="orders-CreateOrder")
        assert integration.parent is stage
        assert trace.calls("API Gateway", "POST", resource="/orders")


def test_an_invocation_no_request_started_is_a_root() -> None:
    # A stream-triggered function: the emulator invented the parent id.
    put = sdk_subsegment("d000000000000001", "9999999999999999", start=T0 + 2, end=T0 + 2.1)
    trace = build([rec(put, fn=FunctionInfo(name="audit", arn=None))], client())
    assert shape(trace) == [(0, "client", "client"), (0, "function", "Lambda"), (1, "call", "DynamoDB")]


def test_every_invoke_gets_a_function_node_even_without_sdk_calls() -> None:
    # Two invocations in one trace on a warm runtime: aws-xray-sdk keeps the
    # first facade (same root), so both PutItems name the first invocation.
    first = sdk_subsegment("d000000000000001", "c000000000000002")
    second = sdk_subsegment("d000000000000002", "c000000000000002", start=T0 + 0.7, end=T0 + 0.71)
    trace = build(
        [rec(first), rec(second, cold=False)],
        client(invoke("c000000000000002"), invoke("c000000000000003"), invoke("c000000000000004", status=202)),
    )
    fns = trace.functions()
    assert [len(f.children) for f in fns] == [2, 0, 0]
    assert [f.parent.id for f in fns if f.parent] == ["c000000000000002", "c000000000000003", "c000000000000004"]
    assert len(trace.cold_starts()) == 1
    # a refused invoke ran nothing
    refused = build([], client(invoke("c000000000000005", status=404)))
    assert refused.functions() == []


def test_a_failed_function_is_flagged() -> None:
    trace = build([], client(invoke("c000000000000002", function_error="Unhandled")))
    (fn,) = trace.functions()
    assert fn.fault and trace.errors() == [fn]
    handled = build([], client(invoke("c000000000000002", function_error="Handled")))
    assert handled.functions()[0].error


def test_subsegments_nested_in_the_same_runtime_keep_their_parent() -> None:
    handler = {
        "id": "e000000000000001",
        "name": "## handler",
        "trace_id": TRACE,
        "type": "subsegment",
        "parent_id": "c000000000000002",
        "start_time": T0 + 0.2,
        "end_time": T0 + 0.4,
    }
    put = sdk_subsegment("d000000000000001", "e000000000000001")
    trace = build([rec(put), rec(handler)], client(invoke("c000000000000002")))
    assert shape(trace) == [
        (0, "client", "client"),
        (1, "call", "Lambda"),
        (2, "function", "Lambda"),
        (3, "local", "local"),
        (4, "call", "DynamoDB"),
    ]


def test_function_calling_function() -> None:
    outer_invoke = {**invoke("e000000000000001", function="inner"), "type": "subsegment", "trace_id": TRACE}
    outer_invoke["parent_id"] = "c000000000000002"
    inner_put = sdk_subsegment("d000000000000001", "e000000000000001")
    trace = build(
        [rec(outer_invoke, src=1), rec(inner_put, src=2, fn=FunctionInfo(name="inner", arn=None))],
        client(invoke("c000000000000002", function="outer")),
    )
    assert shape(trace) == [
        (0, "client", "client"),
        (1, "call", "Lambda"),
        (2, "function", "Lambda"),
        (3, "call", "Lambda"),
        (4, "function", "Lambda"),
        (5, "call", "DynamoDB"),
    ]
    assert [f.name for f in trace.functions()] == ["orders-CreateOrder", "inner"]


def test_built_ids_are_stable_across_processes() -> None:
    put = sdk_subsegment("d000000000000001", "c000000000000002")
    one = local_nodes.build([rec(put)], [client(invoke("c000000000000002"))])
    two = local_nodes.build([rec(put)], [client(invoke("c000000000000002"))])
    assert one == two
