import os

import boto3

TABLE = boto3.resource("dynamodb").Table(os.environ["TABLE"])


def handler(event, context):
    TABLE.put_item(Item={"id": event["id"], "source": "tagged"})
    return {"stored": event["id"]}
