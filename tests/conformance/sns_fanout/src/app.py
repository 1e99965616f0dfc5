import json
import os

import boto3

table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


def lambda_handler(event, context):
    for record in event["Records"]:
        sns = record["Sns"]
        attributes = {k: v["Value"] for k, v in (sns.get("MessageAttributes") or {}).items()}
        table.put_item(
            Item={
                "messageId": sns["MessageId"],
                "subject": sns.get("Subject") or "",
                "message": json.loads(sns["Message"]),
                "priority": attributes.get("priority", "normal"),
            }
        )
