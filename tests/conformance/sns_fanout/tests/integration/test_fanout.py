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


def publish(outputs, priority):
    body = {"alert": str(uuid.uuid4()), "priority": priority}
    message_id = boto3.client("sns").publish(
        TopicArn=outputs["TopicArn"],
        Subject="disk space",
        Message=json.dumps(body),
        MessageAttributes={"priority": {"DataType": "String", "StringValue": priority}},
    )["MessageId"]
    return message_id, body


def drain(queue_url, timeout=30, want=1):
    sqs = boto3.client("sqs")
    got = []
    deadline = time.time() + timeout
    while time.time() < deadline and len(got) < want:
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            got.append(message)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return got


def test_every_message_reaches_the_audit_queue_raw(outputs):
    _, low = publish(outputs, "low")
    _, high = publish(outputs, "high")
    bodies = []
    deadline = time.time() + 30
    while not (low in bodies and high in bodies) and time.time() < deadline:
        # Raw message delivery: the body is the message itself, not an SNS envelope.
        bodies.extend(json.loads(m["Body"]) for m in drain(outputs["AuditQueueUrl"], timeout=5))
    assert low in bodies
    assert high in bodies


def test_priority_queue_only_gets_high_priority(outputs):
    _, low = publish(outputs, "low")
    _, high = publish(outputs, "high")
    seen = []
    deadline = time.time() + 30
    while high not in seen and time.time() < deadline:
        seen.extend(json.loads(json.loads(m["Body"])["Message"]) for m in drain(outputs["PriorityQueueUrl"], timeout=5))
    assert high in seen
    assert low not in seen


def test_priority_queue_gets_the_sns_envelope(outputs):
    message_id, high = publish(outputs, "high")
    envelope = None
    deadline = time.time() + 30
    while envelope is None and time.time() < deadline:
        for message in drain(outputs["PriorityQueueUrl"], timeout=5):
            body = json.loads(message["Body"])
            if body["MessageId"] == message_id:
                envelope = body
    assert envelope is not None
    assert envelope["Type"] == "Notification"
    assert envelope["TopicArn"] == outputs["TopicArn"]
    assert envelope["Subject"] == "disk space"
    assert json.loads(envelope["Message"]) == high
    assert envelope["MessageAttributes"]["priority"] == {"Type": "String", "Value": "high"}


def test_lambda_subscriber_records_the_message(outputs):
    table = boto3.resource("dynamodb").Table(outputs["DeliveriesTableName"])
    message_id, body = publish(outputs, "high")
    deadline = time.time() + 30
    item = None
    while time.time() < deadline and item is None:
        item = table.get_item(Key={"messageId": message_id}, ConsistentRead=True).get("Item")
        time.sleep(0.5)
    assert item == {"messageId": message_id, "subject": "disk space", "message": body, "priority": "high"}
