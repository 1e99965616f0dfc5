"""The deployment, as a script team's tool does it without CloudFormation.

A table, a role (with its policy), a function and a queue, each tagged with the
harness's tags (``HARNESS_STACK_TAGS``' Key=Value words for DynamoDB and IAM,
``HARNESS_STACK_TAGS_JSON`` for Lambda and SQS), and a state file (like
Terraform's) that ``make outputs`` reads. ``python deploy.py STACK`` creates them;
``python deploy.py STACK --destroy [--forget-queue]`` deletes them (all but the
queue with ``--forget-queue``), going on past what is already gone. One process
with boto3: the AWS CLI took an interpreter per call.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import sys
import zipfile
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
PUT_ORDERS = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["dynamodb:PutItem"], "Resource": "*"}],
}


def names(stack: str) -> dict[str, str]:
    return {"table": f"{stack}-orders", "function": f"{stack}-fn", "role": f"{stack}-role", "queue": f"{stack}-events"}


def deploy(stack: str) -> None:
    n = names(stack)
    words = [w.split("=", 1) for w in os.environ["HARNESS_STACK_TAGS"].split()]
    kv = [{"Key": k, "Value": v} for k, v in words]
    tag_map = json.loads(os.environ["HARNESS_STACK_TAGS_JSON"])
    boto3.client("dynamodb").create_table(
        TableName=n["table"],
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        Tags=kv,
    )
    iam = boto3.client("iam")
    role = iam.create_role(RoleName=n["role"], AssumeRolePolicyDocument=json.dumps(TRUST), Tags=kv)["Role"]["Arn"]
    iam.put_role_policy(RoleName=n["role"], PolicyName="put-orders", PolicyDocument=json.dumps(PUT_ORDERS))
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.write("handler.py")
    boto3.client("lambda").create_function(
        FunctionName=n["function"],
        Runtime="python3.11",
        Handler="handler.handler",
        Role=role,
        Code={"ZipFile": code.getvalue()},
        Environment={"Variables": {"TABLE": n["table"]}},
        Tags=tag_map,
    )
    boto3.client("sqs").create_queue(QueueName=n["queue"], tags=tag_map)
    Path(".state").mkdir(exist_ok=True)
    state = {"table": n["table"], "function": n["function"], "queue": n["queue"], "api_key": secrets.token_hex(16)}
    Path(f".state/{stack}.json").write_text(json.dumps(state))


def destroy(stack: str, *, forget_queue: bool) -> None:
    n = names(stack)
    iam, sqs = boto3.client("iam"), boto3.client("sqs")
    steps = [
        lambda: boto3.client("lambda").delete_function(FunctionName=n["function"]),
        lambda: iam.delete_role_policy(RoleName=n["role"], PolicyName="put-orders"),
        lambda: iam.delete_role(RoleName=n["role"]),
        lambda: boto3.client("dynamodb").delete_table(TableName=n["table"]),
    ]
    if not forget_queue:
        steps.append(lambda: sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=n["queue"])["QueueUrl"]))
    for step in steps:
        try:
            step()
        except ClientError as exc:  # already gone: go on, as `-aws ...` in a Makefile does
            print(exc, file=sys.stderr)
    with contextlib.suppress(FileNotFoundError):
        Path(f".state/{stack}.json").unlink()


if __name__ == "__main__":
    if "--destroy" in sys.argv:
        destroy(sys.argv[1], forget_queue="--forget-queue" in sys.argv)
    else:
        deploy(sys.argv[1])
