import base64
import json
import os
from collections import Counter

import boto3

table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


def lambda_handler(event, context):
    views = Counter()
    for record in event["Records"]:
        payload = json.loads(base64.b64decode(record["kinesis"]["data"]))
        views[payload["page"]] += 1
    for page, count in views.items():
        table.update_item(
            Key={"page": page},
            UpdateExpression="ADD #views :n",
            ExpressionAttributeNames={"#views": "views"},  # a reserved word
            ExpressionAttributeValues={":n": count},
        )
    print(f"processed {len(event['Records'])} records for {len(views)} pages")
    return {"records": len(event["Records"])}
