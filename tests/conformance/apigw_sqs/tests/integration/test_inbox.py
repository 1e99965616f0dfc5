import json
import os
import time
import uuid

import boto3
import pytest
import requests


@pytest.fixture(scope="module")
def outputs():
    stack = boto3.client("cloudformation").describe_stacks(StackName=os.environ["AWS_SAM_STACK_NAME"])["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def eventually(fetch, timeout=60):
    deadline = time.time() + timeout
    while True:
        value = fetch()
        if value or time.time() > deadline:
            return value
        time.sleep(1)


def test_webhook_is_queued_and_processed(outputs):
    event_id = str(uuid.uuid4())
    response = requests.post(outputs["InboxUrl"], json={"eventId": event_id, "type": "invoice.paid"}, timeout=30)
    assert response.status_code == 200, response.text
    message_id = response.json()["messageId"]
    assert message_id

    table = boto3.resource("dynamodb").Table(outputs["InboxTableName"])
    item = eventually(lambda: table.get_item(Key={"eventId": event_id}, ConsistentRead=True).get("Item"))
    assert item == {"eventId": event_id, "type": "invoice.paid", "messageId": message_id}


def test_unprocessable_message_ends_in_the_dlq(outputs):
    marker = f"not json {uuid.uuid4()}"
    response = requests.post(outputs["InboxUrl"], data=marker, headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 200, response.text

    sqs = boto3.client("sqs")

    def dead_lettered():
        messages = sqs.receive_message(
            QueueUrl=outputs["InboxDeadLetterQueueUrl"], MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        return [m for m in messages if m["Body"] == marker]

    assert eventually(dead_lettered)


def test_get_is_not_allowed(outputs):
    response = requests.get(outputs["InboxUrl"], timeout=30)
    assert response.status_code == 403
    assert json.loads(response.text) == {"message": "Missing Authentication Token"}
