from __future__ import annotations

from typing import Any

from traces_support import TRACE, sdk_subsegment, shape

from harness.emulator.invocations import Record
from harness.emulator.lambda_segments import documents
from harness.traces import local_nodes
from harness.traces.collector import Received
from harness.traces.model import Trace

T0 = 1795437334.0
ARN = "arn:aws:lambda:us-east-1:000000000000:function:orders-CreateOrder"


def rec(doc: dict[str, Any], src: int = 50001) -> Received:
    return Received(doc=doc, src=src)


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


def lambda_segments(parent: str | None, *, cold: bool = True, error: dict[str, Any] | None = None) -> list[Received]:
    """The two segments the emulator adaptation records for one invocation (lambda id 1..., function id f...)."""
    record = Record(
        function="orders-CreateOrder",
        arn=ARN,
        runtime="python3.11",
        request_id="req-1",
        tracing=True,
        start=T0 + 0.15,
        end=T0 + 0.45,
        root=TRACE,
        parent=parent,
        lambda_id="1000000000000001",
        function_id="f000000000000001",
        init=(T0 + 0.16, T0 + 0.3) if cold else None,
        invoke=(T0 + 0.16, T0 + 0.4),
        error=error,
    )
    return [rec(doc, src=40000) for doc in documents(record)]


def test_client_invoke_lambda_function_dynamodb() -> None:
    put = sdk_subsegment("d000000000000001", "f000000000000001", start=T0 + 0.31, end=T0 + 0.35)
    trace = build([*lambda_segments("c000000000000002"), rec(put)], client(invoke("c000000000000002")))
    assert sorted(shape(trace)) == [
        (0, "client", "client"),
        (1, "call", "Lambda"),
        (2, "service", "Lambda"),
        (3, "function", "Lambda"),
        (4, "call", "DynamoDB"),
        (4, "local", "local"),
        (4, "local", "local"),
        (4, "local", "local"),
    ]
    (function,) = trace.functions("orders-CreateOrder")
    assert function.cold_start and not function.synthetic
    assert [c.name for c in function.children if c.kind == "local"] == ["Initialization", "Invocation", "Overhead"]


def test_a_warm_invocation_has_no_initialization() -> None:
    trace = build(lambda_segments("c000000000000002", cold=False), client(invoke("c000000000000002")))
    (function,) = trace.functions()
    assert not function.cold_start
    assert [c.name for c in function.children] == ["Invocation", "Overhead"]


def test_api_gateway_nodes_are_built_as_aws_records_them() -> None:
    for url in (
        "https://abc123.execute-api.us-east-1.amazonaws.com/Prod/orders",
        "http://127.0.0.1:4566/_aws/execute-api/abc123/Prod/orders",
    ):
        trace = build(lambda_segments("c000000000000002", cold=False), client(http("c000000000000002", url)))
        assert shape(trace)[:6] == [
            (0, "client", "client"),
            (1, "call", "API Gateway"),
            (2, "service", "API Gateway"),
            (3, "call", "Lambda"),
            (4, "service", "Lambda"),
            (5, "function", "Lambda"),
        ]
        stage = next(s for s in trace.spans_of("service") if s.origin == "AWS::ApiGateway::Stage")
        assert stage.name == "abc123/Prod" and stage.status == 201 and stage.synthetic
        (integration,) = trace.calls("Lambda", "Invoke", resource="orders-CreateOrder")
        assert integration.parent is stage
        assert trace.calls("API Gateway", "POST", resource="/orders")


def test_an_invocation_no_request_started_is_a_root() -> None:
    # A stream-triggered function: no caller, the Lambda service segment is the root.
    trace = build(lambda_segments(None), client())
    assert shape(trace)[:3] == [(0, "client", "client"), (0, "service", "Lambda"), (1, "function", "Lambda")]


def test_nothing_is_invented_for_an_invoke_without_segments() -> None:
    # A PassThrough function: AWS records no Lambda segments, and neither does the harness.
    trace = build([], client(invoke("c000000000000002")))
    assert trace.functions() == []
    assert shape(trace) == [(0, "client", "client"), (1, "call", "Lambda")]


def test_a_failed_function_carries_its_cause() -> None:
    error = {"type": "ValueError", "message": "boom", "stack": [{"path": "/var/task/app.py", "line": 3, "label": "h"}]}
    received = lambda_segments("c000000000000002", error=error)
    trace = build(received, client(invoke("c000000000000002", status=200)))
    (function,) = trace.functions()
    assert function.fault and not function.error
    function_doc = next(r["doc"] for r in received if r["doc"]["origin"] == "AWS::Lambda::Function")
    assert function_doc["cause"]["exceptions"][0]["type"] == "ValueError"
    assert function_doc["cause"]["exceptions"][0]["message"] == "boom"
