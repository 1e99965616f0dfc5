"""Python scenarios for the CDK orders app: one app, two stacks, one set of outputs."""

from __future__ import annotations

from harness import Stack
from harness.traces import Span


def chain(span: Span) -> list[str]:
    """The path from the trace root to ``span``: client, calls and functions (as on AWS)."""
    path: list[str] = []
    node: Span | None = span
    while node is not None:
        if node.kind == "client":
            path.append("client")
        elif node.kind == "function":
            path.append("function")
        elif node.kind == "call":
            path.append(f"{node.service} {node.operation}")
        node = node.parent
    return path[::-1]


def test_the_app_is_two_stacks_with_an_output_from_each(stack: Stack):
    data, api = stack.stacks
    assert data.startswith("orders-cdk-data-") and api.startswith("orders-cdk-api-")
    assert stack.name == api  # the primary: stack-name-pattern names it
    assert stack.output("OrdersTableName", stack=data) == stack.output("OrdersTableName")
    assert stack.output("ApiUrl", stack=api).endswith("/v1/")
    table = stack.client("dynamodb").describe_table(TableName=stack.output("OrdersTableName"))["Table"]
    assert table["TableStatus"] == "ACTIVE"


def test_the_function_writes_the_table_it_imports(stack: Stack, http, unique_id):
    created = http.post("/orders", json={"order_id": unique_id, "item": "pen"})
    assert created.status_code == 201, created.text
    key = {"order_id": {"S": unique_id}}
    item = stack.client("dynamodb").get_item(TableName=stack.output("OrdersTableName"), Key=key)["Item"]
    assert item["item"] == {"S": "pen"}


def test_trace_goes_api_gateway_lambda_dynamodb(stack: Stack, http, trace, unique_id):
    assert http.post("/orders", json={"order_id": unique_id, "item": "ink"}).status_code == 201
    t = trace.wait_for_call("DynamoDB", "PutItem", stack.output("OrdersTableName"))
    [put] = t.assert_calls("DynamoDB", "PutItem", stack.output("OrdersTableName"), count=1)
    assert chain(put) == ["client", "API Gateway POST", "Lambda Invoke", "function", "DynamoDB PutItem"], t.render()
    [function] = t.functions()
    assert function.name == stack.output("FunctionName")
    t.assert_no_call("DynamoDB", "GetItem")
