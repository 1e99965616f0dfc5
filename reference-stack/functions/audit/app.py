"""Orders table stream -> Audit table, each change audited exactly once.

Every stream record becomes one Audit item keyed by (order_id, event), where
``event`` is the record's eventName: "INSERT" or "REMOVE", which happen once in
an order's life, or "MODIFY#<sequence number>", since an order can change many
times. The put is conditional on the item not existing yet.

A failure raises, and Lambda retries the whole batch (bisecting it, see the
template): records already audited by an earlier attempt are then skipped by
the condition, so a retried batch audits each change exactly once.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_xray_sdk.core import patch_all
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

patch_all()  # boto3 calls become X-Ray subsegments

logging.basicConfig()  # a no-op on Lambda, whose runtime configures the root logger
logger = logging.getLogger(__name__)
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO"))

AUDIT = boto3.resource("dynamodb").Table(os.environ["AUDIT_TABLE"])

_deserialize = TypeDeserializer().deserialize


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    records = event.get("Records") or []
    audited = sum(_audit(record) for record in records)
    return {"records": len(records), "audited": audited, "duplicates": len(records) - audited}


def _audit(record: dict[str, Any]) -> bool:
    """Write the record's audit item; False if an earlier attempt already did."""
    change = record["dynamodb"]
    name: str = record["eventName"]
    sequence_number: str = change["SequenceNumber"]
    order_id = _deserialize(change["Keys"]["order_id"])
    item: dict[str, Any] = {
        "order_id": order_id,
        "event": f"MODIFY#{sequence_number}" if name == "MODIFY" else name,
        "event_name": name,
        "event_id": record["eventID"],
        "sequence_number": sequence_number,
        "audited_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    if "ApproximateCreationDateTime" in change:
        item["changed_at"] = datetime.fromtimestamp(
            float(change["ApproximateCreationDateTime"]), UTC
        ).isoformat(timespec="seconds")
    if "NewImage" in change:
        item["new_image"] = {k: _deserialize(v) for k, v in change["NewImage"].items()}
    try:
        AUDIT.put_item(Item=item, ConditionExpression="attribute_not_exists(order_id)")
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        logger.info("%s of order %s already audited (event %s)", name, order_id, record["eventID"])
        return False
    logger.info("audited %s of order %s", name, order_id)
    return True
