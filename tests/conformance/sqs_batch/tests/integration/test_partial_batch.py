import json
import os
import time
import uuid

import boto3
import pytest


@pytest.fixture(scope="module")
def outputs():
    stack_name = os.environ["AWS_SAM_STACK_NAME"]
    stack = boto3.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def wait_for(fetch, timeout=60, interval=1):
    deadline = time.time() + timeout
    while True:
        result = fetch()
        if result or time.time() > deadline:
            return result
        time.sleep(interval)


def test_good_messages_processed_once_bad_one_dead_lettered(outputs):
    sqs = boto3.client("sqs")
    table = boto3.resource("dynamodb").Table(outputs["OrdersTableName"])
    run = uuid.uuid4().hex[:8]
    good = [{"orderId": f"{run}-{i}", "amount": i * 10} for i in range(3)]
    bad = {"note": f"{run}-no-order-id"}
    entries = [{"Id": str(i), "MessageBody": json.dumps(body)} for i, body in enumerate([*good, bad])]
    response = sqs.send_message_batch(QueueUrl=outputs["OrdersQueueUrl"], Entries=entries)
    assert not response.get("Failed")

    def dead_lettered():
        messages = sqs.receive_message(
            QueueUrl=outputs["OrdersDeadLetterQueueUrl"], MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        return [m for m in messages if json.loads(m["Body"]) == bad]

    assert wait_for(dead_lettered), "the failing message never reached the dead-letter queue"

    for order in good:
        item = wait_for(lambda o=order: table.get_item(Key={"orderId": o["orderId"]}).get("Item"))
        assert item is not None, f"order {order['orderId']} was not processed"
        assert item["amount"] == order["amount"]
        # Reported as a success, so never delivered again with the failed one.
        assert item["deliveries"] == 1
