import json
import os

import boto3

table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


def process_message(record):
    order = json.loads(record["body"])
    if "orderId" not in order:
        raise ValueError(f"message {record['messageId']} has no orderId")
    # ADD counts deliveries: a message handled twice shows up as 2.
    table.update_item(
        Key={"orderId": order["orderId"]},
        UpdateExpression="SET amount = :amount ADD deliveries :one",
        ExpressionAttributeValues={":amount": order.get("amount", 0), ":one": 1},
    )


def lambda_handler(event, context):
    batch_item_failures = []
    for record in event["Records"]:
        try:
            process_message(record)
        except Exception as e:
            print(f"failed to process {record['messageId']}: {e}")
            batch_item_failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": batch_item_failures}
