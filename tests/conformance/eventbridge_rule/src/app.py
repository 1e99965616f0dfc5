import os
from decimal import Decimal

import boto3

table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


def lambda_handler(event, context):
    detail = event["detail"]
    table.put_item(
        Item={
            "orderId": detail["orderId"],
            "total": Decimal(str(detail["total"])),
            "eventId": event["id"],
            "source": event["source"],
            "detailType": event["detail-type"],
        }
    )
    return {"recorded": detail["orderId"]}
