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


def test_page_views_are_counted(outputs):
    kinesis = boto3.client("kinesis")
    table = boto3.resource("dynamodb").Table(outputs["PageViewsTableName"])
    page = f"/products/{uuid.uuid4().hex[:8]}"
    records = [
        {"Data": json.dumps({"page": page, "user": f"u{i}"}).encode(), "PartitionKey": f"u{i}"} for i in range(5)
    ]
    response = kinesis.put_records(StreamName=outputs["StreamName"], Records=records)
    assert response["FailedRecordCount"] == 0

    deadline = time.time() + 60
    views = None
    while time.time() < deadline:
        item = table.get_item(Key={"page": page}, ConsistentRead=True).get("Item")
        views = item and item["views"]
        if views == 5:
            break
        time.sleep(1)
    assert views == 5


def test_stream_is_encrypted(outputs):
    summary = boto3.client("kinesis").describe_stream_summary(StreamName=outputs["StreamName"])
    assert summary["StreamDescriptionSummary"]["EncryptionType"] == "KMS"
