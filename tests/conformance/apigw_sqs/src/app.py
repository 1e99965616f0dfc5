import json
import os

import boto3

table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


def lambda_handler(event, context):
    for record in event["Records"]:
        webhook = json.loads(record["body"])  # a body that is not JSON fails the batch: it ends in the DLQ
        table.put_item(Item={"eventId": webhook["eventId"], "type": webhook["type"], "messageId": record["messageId"]})
