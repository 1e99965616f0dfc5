import os
import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError


@pytest.fixture(scope="module")
def outputs():
    stack = boto3.client("cloudformation").describe_stacks(StackName=os.environ["AWS_SAM_STACK_NAME"])["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


@pytest.fixture
def s3(outputs):
    client = boto3.client("s3")
    yield client
    # Buckets must be empty before the stack can be deleted.
    for bucket in (outputs["SourceBucketName"], outputs["DestinationBucketName"]):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=obj["Key"])


def wait_for_object(s3, bucket, key, timeout=60):
    deadline = time.time() + timeout
    while True:
        try:
            return s3.get_object(Bucket=bucket, Key=key)
        except ClientError as e:
            if e.response["Error"]["Code"] != "NoSuchKey" or time.time() > deadline:
                raise
        time.sleep(1)


def test_uploaded_file_is_normalized(s3, outputs):
    name = f"{uuid.uuid4().hex[:8]}.txt"
    s3.put_object(Bucket=outputs["SourceBucketName"], Key=f"incoming/{name}", Body=b"hello   wide\n world")
    obj = wait_for_object(s3, outputs["DestinationBucketName"], f"normalized/{name}")
    assert obj["Body"].read() == b"HELLO WIDE WORLD"
    assert obj["Metadata"] == {"source-key": f"incoming/{name}"}


def test_files_outside_the_filter_are_ignored(s3, outputs):
    ignored = f"{uuid.uuid4().hex[:8]}"
    s3.put_object(Bucket=outputs["SourceBucketName"], Key=f"incoming/{ignored}.csv", Body=b"a,b")
    s3.put_object(Bucket=outputs["SourceBucketName"], Key=f"other/{ignored}.txt", Body=b"x")
    # A matching upload made after them: once it is processed, the others would have been too.
    marker = f"{uuid.uuid4().hex[:8]}.txt"
    s3.put_object(Bucket=outputs["SourceBucketName"], Key=f"incoming/{marker}", Body=b"marker")
    wait_for_object(s3, outputs["DestinationBucketName"], f"normalized/{marker}")
    listed = s3.list_objects_v2(Bucket=outputs["DestinationBucketName"], Prefix="normalized/")
    keys = {o["Key"] for o in listed.get("Contents", [])}
    assert f"normalized/{ignored}.csv" not in keys
    assert f"normalized/{ignored}.txt" not in keys
