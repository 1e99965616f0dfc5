import json
import os

import boto3
from aws_xray_sdk.core import patch_all

patch_all()
TABLE = boto3.resource("dynamodb").Table(os.environ["TABLE"])


def handler(event, context):
    if "requestContext" in event:  # an HTTP API request (payload 2.0)
        TABLE.get_item(Key={"pk": "http"})
        return {"statusCode": 200, "body": json.dumps({"path": event.get("rawPath")})}
    TABLE.get_item(Key={"pk": str(event.get("pk"))})
    return {"pk": str(event.get("pk")), "checked": True}
