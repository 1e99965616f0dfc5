"""Orders table stream -> Audit table, each change audited exactly once.

Every stream record becomes one Audit item keyed by (order_id, event), where
``event`` is the record's eventName: "INSERT" or "REMOVE", which happen once in
an order's life, or "MODIFY#<sequence number>", since an order can change many
times. The put is conditional on the item not existing yet.

A failure raises, and Lambda retries the whole batch (bisecting it, see the
template): records already audited by an earlier attempt are then skipped by
the condition, so a retried batch audits each change exactly once.

Each new order (an INSERT) is then announced as an ``OrderAudited`` event on
the orders bus (source ``orders.audit``), at least once: a retried batch
announces its orders again, so consumers key on ``order_id``.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from decimal import Decimal
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
EVENTS = boto3.client("events")
EVENT_BUS = os.environ["EVENT_BUS"]
EVENT_SOURCE = "orders.audit"

_deserialize = TypeDeserializer().deserialize


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    records = event.get("Records") or []
    audited = sum(_audit(record) for record in records)
    announced = _announce([r for r in records if r["eventName"] == "INSERT"])
    return {
        "records": len(records),
        "audited": audited,
        "duplicates": len(records) - audited,
        "announced": announced,
    }


def _announce(inserts: list[dict[str, Any]]) -> int:
    """One OrderAudited event per new order, ten to a PutEvents call; a refused entry fails the batch."""
    entries = [
        {
            "EventBusName": EVENT_BUS,
            "Source": EVENT_SOURCE,
            "DetailType": "OrderAudited",
            "Detail": json.dumps(_summary(record["dynamodb"].get("NewImage") or {})),
        }
        for record in inserts
    ]
    for start in range(0, len(entries), 10):
        response = EVENTS.put_events(Entries=entries[start : start + 10])
        if response.get("FailedEntryCount"):
            failed = [e for e in response["Entries"] if e.get("ErrorCode")]
            raise RuntimeError(f"EventBridge refused {len(failed)} OrderAudited event(s): {failed[:3]}")
    return len(entries)


def _summary(image: dict[str, Any]) -> dict[str, Any]:
    order = {k: _plain(_deserialize(v)) for k, v in image.items()}
    return {k: order.get(k) for k in ("order_id", "customer_id", "status", "total_qty", "items", "created_at")}


def _plain(value: Any) -> Any:
    """DynamoDB numbers (Decimal) as JSON numbers."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


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
        item["changed_at"] = datetime.fromtimestamp(float(change["ApproximateCreationDateTime"]), UTC).isoformat(
            timespec="seconds"
        )
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
