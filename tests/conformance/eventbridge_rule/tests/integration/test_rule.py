import json
import os
import time
import uuid

import boto3
import pytest


@pytest.fixture(scope="module")
def outputs():
    stack = boto3.client("cloudformation").describe_stacks(StackName=os.environ["AWS_SAM_STACK_NAME"])["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def put_order(bus, order_id, total, detail_type="OrderPlaced"):
    response = boto3.client("events").put_events(
        Entries=[
            {
                "EventBusName": bus,
                "Source": "com.example.orders",
                "DetailType": detail_type,
                "Detail": json.dumps({"orderId": order_id, "total": total}),
            }
        ]
    )
    assert response["FailedEntryCount"] == 0, response


def wait_for_item(table, key, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        item = table.get_item(Key=key, ConsistentRead=True).get("Item")
        if item:
            return item
        time.sleep(1)
    return None


def test_large_order_reaches_the_function(outputs):
    table = boto3.resource("dynamodb").Table(outputs["LargeOrdersTableName"])
    order_id = str(uuid.uuid4())
    put_order(outputs["EventBusName"], order_id, 250)
    item = wait_for_item(table, {"orderId": order_id})
    assert item is not None
    assert item["total"] == 250
    assert item["source"] == "com.example.orders"
    assert item["detailType"] == "OrderPlaced"


def test_small_orders_and_other_events_are_filtered_out(outputs):
    table = boto3.resource("dynamodb").Table(outputs["LargeOrdersTableName"])
    small, cancelled, marker = (str(uuid.uuid4()) for _ in range(3))
    put_order(outputs["EventBusName"], small, 20)
    put_order(outputs["EventBusName"], cancelled, 500, detail_type="OrderCancelled")
    put_order(outputs["EventBusName"], marker, 100)
    # The matching event sent last has arrived, so the earlier ones were evaluated too.
    assert wait_for_item(table, {"orderId": marker}) is not None
    assert "Item" not in table.get_item(Key={"orderId": small}, ConsistentRead=True)
    assert "Item" not in table.get_item(Key={"orderId": cancelled}, ConsistentRead=True)
