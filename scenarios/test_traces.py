"""Python scenarios asserting on the test's X-Ray trace (the ``trace`` fixture).

Each test acts on the stack, then reads its own trace (``trace.fetch()`` /
``trace.wait_for_call(...)``) and checks which calls were made, in which
shape, what failed and what started cold. Data is keyed by ``unique_id``.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import botocore.exceptions
import pytest

from harness import Stack
from harness.traces import Span, Trace

GET_ORDER_SOURCE = Path(__file__).resolve().parents[1] / "reference-stack" / "functions" / "get_order" / "app.py"


def chain(span: Span) -> list[str]:
    """The path from the trace root to ``span``, as callers see it (client, calls, functions).

    Service segments and local subsegments (``AWS::Lambda``, ``Invocation``) are
    left out, so the chain is the same on AWS and on the emulator.
    """
    path: list[str] = []
    node: Span | None = span
    while node is not None:
        if node.kind == "client":
            path.append("client")
        elif node.kind == "function":
            path.append(f"function {node.name}")
        elif node.kind == "call":
            path.append(f"{node.service} {node.operation}")
        node = node.parent
    return path[::-1]


def function_under(call: Span) -> Span:
    """The function span an Invoke call led to."""
    found = [s for s in call.walk() if s.kind == "function"]
    assert found, f"no function span under {call.describe()}"
    return found[0]


def test_get_order_reads_once_and_never_writes(stack: Stack, http, trace, unique_id):
    orders = stack.output("OrdersTableName")
    # Seeded with a batch write, so any PutItem in the trace would be the read path's.
    item = {"order_id": {"S": unique_id}, "customer_id": {"S": "c-1"}, "status": {"S": "CREATED"}}
    stack.client("dynamodb").batch_write_item(RequestItems={orders: [{"PutRequest": {"Item": item}}]})

    got = http.get(f"/orders/{unique_id}")
    assert got.status_code == 200, got.text

    t = trace.wait_for_call("DynamoDB", "GetItem", orders)
    [read] = t.assert_calls("DynamoDB", "GetItem", orders, count=1)
    t.assert_no_call("DynamoDB", "PutItem")
    t.assert_no_call("DynamoDB", "UpdateItem")
    assert chain(read) == [
        "client",
        "API Gateway GET",
        "Lambda Invoke",
        f"function {stack.resources['GetOrderFunction']}",
        "DynamoDB GetItem",
    ], t.render()
    assert not [s for s in t.errors() if s.kind != "client"], t.render()


def test_direct_invoke_trace_shape(stack: Stack, invoke, trace, unique_id):
    body = {"order_id": unique_id, "customer_id": "c-1", "items": [{"sku": "A", "qty": 1}]}
    result = invoke("CreateOrderFunction", {"body": json.dumps(body)})
    assert result.payload["statusCode"] == 201, result.payload

    t = trace.fetch()
    function = stack.resources["CreateOrderFunction"]
    [put] = t.assert_calls("DynamoDB", "PutItem", stack.output("OrdersTableName"), count=1)
    # client -> Lambda Invoke -> the function -> DynamoDB PutItem, as on AWS.
    assert chain(put) == ["client", "Lambda Invoke", f"function {function}", "DynamoDB PutItem"], t.render()
    [call] = t.calls("Lambda", "Invoke", function)
    assert call.parent is not None and call.parent.kind == "client"
    assert [f.name for f in t.functions()] == [function]
    t.assert_no_call("API Gateway")


@pytest.fixture
def fresh_function(stack: Stack, unique_id: str, eventually) -> Iterator[str]:
    """A new function configured like the stack's GetOrderFunction (same role, layer, tracing, table).

    Nothing has invoked it, so its first invocation must start a new
    execution environment, whatever other tests did to the stack's functions.
    """
    client = stack.client("lambda")
    config = client.get_function_configuration(FunctionName=stack.resources["GetOrderFunction"])
    name = f"{stack.name[:40]}-cold-{hashlib.sha256(unique_id.encode()).hexdigest()[:10]}"
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as zf:
        zf.writestr("app.py", GET_ORDER_SOURCE.read_text())
    client.create_function(
        FunctionName=name,
        Runtime=config["Runtime"],
        Handler=config["Handler"],
        Role=config["Role"],
        Code={"ZipFile": code.getvalue()},
        Layers=[layer["Arn"] for layer in config.get("Layers", [])],
        Environment={"Variables": config["Environment"]["Variables"]},
        TracingConfig={"Mode": "Active"},
        Timeout=config.get("Timeout", 10),
        MemorySize=config.get("MemorySize", 256),
        Tags={"harness:test": unique_id[:200]},
    )

    def active() -> None:
        state = client.get_function_configuration(FunctionName=name)["State"]
        if state == "Failed":
            raise RuntimeError(f"{name} failed to create")
        assert state == "Active", f"{name} is {state}"

    try:
        # Polled at once, then at growing intervals: a waiter's fixed 1 s delay overshoots a function
        # that is active a few milliseconds after it was created.
        eventually(active, within=60)
        yield name
    finally:
        client.delete_function(FunctionName=name)


def test_first_invocation_of_a_function_is_a_cold_start(stack: Stack, invoke, trace, fresh_function, unique_id):
    event = {"httpMethod": "GET", "pathParameters": {"order_id": f"{unique_id}-none"}}
    assert invoke(fresh_function, event).payload["statusCode"] == 404
    assert invoke(fresh_function, event).payload["statusCode"] == 404

    t = trace.fetch(accept=lambda t: len(t.functions(fresh_function)) == 2)
    first, second = (function_under(c) for c in sorted(t.calls("Lambda", "Invoke"), key=lambda s: s.start or 0))
    assert first.cold_start, t.render()
    assert not second.cold_start, t.render()  # the same environment, reused
    assert [s.name for s in t.cold_starts()] == [fresh_function], t.render()
    t.assert_calls("DynamoDB", "GetItem", stack.output("OrdersTableName"), count=2)


@pytest.mark.skipif(
    "config.getoption('target') == 'aws'",
    reason="on AWS the function role trusts only lambda.amazonaws.com; use IAM Access Analyzer there",
)
def test_denied_write_is_an_error_span(stack: Stack, trace, unique_id):
    """The read function's role may read orders but not write them: the denied PutItem is an error span."""
    creds = stack.client("sts").assume_role(RoleArn=stack.output("GetOrderFunctionRoleArn"), RoleSessionName="lp")[
        "Credentials"
    ]
    as_role = boto3.client(
        "dynamodb",
        endpoint_url=stack.endpoint_url,
        region_name=stack.region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    orders = stack.output("OrdersTableName")
    as_role.get_item(TableName=orders, Key={"order_id": {"S": unique_id}})
    with pytest.raises(botocore.exceptions.ClientError):
        as_role.put_item(TableName=orders, Item={"order_id": {"S": unique_id}})

    t: Trace = trace.fetch()
    [read] = t.calls("DynamoDB", "GetItem", orders)
    [denied] = t.calls("DynamoDB", "PutItem", orders)
    assert not read.failed, t.render()
    assert denied.error and not denied.fault, t.render()  # a 4xx: the caller's fault, not the service's
    assert denied.status in (400, 403), t.render()  # AWS answers AccessDenied with 400, the emulator with 403
    assert [s for s in t.errors() if s.kind != "client"] == [denied], t.render()
