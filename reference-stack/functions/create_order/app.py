"""POST /orders: validate an order and store it exactly once.

A client that supplies its own ``order_id`` can retry safely: the same order
under the same id answers 200 with the stored order, a different order under
that id answers 409. The store is one conditional PutItem, so the function
needs no read access to the table.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import uuid
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

ORDERS = boto3.resource("dynamodb").Table(os.environ["ORDERS_TABLE"])

ORDER_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")
MAX_CUSTOMER_ID = 64
MAX_SKU = 64
MAX_ITEMS = 50
MAX_QTY = 1000

_deserialize = TypeDeserializer().deserialize


class ValidationError(ValueError):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        body = _parse_body(event)
        customer_id, items, order_id = _validate(body)
    except ValidationError as exc:
        payload: dict[str, Any] = {"error": str(exc)}
        if exc.field is not None:
            payload["field"] = exc.field
        return _response(400, payload)

    order = {
        "order_id": order_id or uuid.uuid4().hex,
        "customer_id": customer_id,
        "items": items,
        "total_qty": sum(item["qty"] for item in items),
        "status": "CREATED",
        "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    try:
        ORDERS.put_item(
            Item=order,
            ConditionExpression="attribute_not_exists(order_id)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        existing = {k: _deserialize(v) for k, v in exc.response.get("Item", {}).items()}
        if _same_order(existing, customer_id, items):
            logger.info("order %s already exists; idempotent replay", order["order_id"])
            return _response(200, existing)
        logger.info("order %s already exists with different content", order["order_id"])
        return _response(409, {"error": "order_id already used for a different order", "field": "order_id"})

    logger.info("created order %s (%d items)", order["order_id"], len(items))
    return _response(201, order)


def _parse_body(event: dict[str, Any]) -> Any:
    raw = event.get("body")
    if isinstance(raw, dict):  # a direct invoke may pass the object itself
        return raw
    if raw is None or raw == "":
        raise ValidationError("request body is required")
    try:
        if event.get("isBase64Encoded"):
            raw = base64.b64decode(raw, validate=True).decode("utf-8")
        return json.loads(raw)
    except (ValueError, TypeError) as exc:  # JSONDecodeError, binascii.Error, UnicodeDecodeError
        raise ValidationError("request body is not valid JSON") from exc


def _validate(body: Any) -> tuple[str, list[dict[str, Any]], str | None]:
    if not isinstance(body, dict):
        raise ValidationError("request body must be a JSON object")

    customer_id = body.get("customer_id")
    if not _is_text(customer_id, MAX_CUSTOMER_ID):
        raise ValidationError(
            f"customer_id must be a string of 1 to {MAX_CUSTOMER_ID} characters", "customer_id"
        )

    raw_items = body.get("items")
    if not isinstance(raw_items, list) or not 1 <= len(raw_items) <= MAX_ITEMS:
        raise ValidationError(f"items must be a list of 1 to {MAX_ITEMS} items", "items")
    items = []
    for index, item in enumerate(raw_items):
        if not isinstance(item, dict):
            raise ValidationError("each item must be an object", f"items[{index}]")
        sku, qty = item.get("sku"), item.get("qty")
        if not _is_text(sku, MAX_SKU):
            raise ValidationError(f"sku must be a string of 1 to {MAX_SKU} characters", f"items[{index}].sku")
        if type(qty) is not int or not 1 <= qty <= MAX_QTY:  # bool and float are not quantities
            raise ValidationError(f"qty must be an integer from 1 to {MAX_QTY}", f"items[{index}].qty")
        items.append({"sku": sku, "qty": qty})

    order_id = body.get("order_id")
    if "order_id" in body and not (isinstance(order_id, str) and ORDER_ID_RE.fullmatch(order_id)):
        raise ValidationError("order_id must match ^[A-Za-z0-9_-]{1,128}$", "order_id")
    return customer_id, items, order_id


def _is_text(value: Any, max_len: int) -> bool:
    """A string of 1..max_len characters that DynamoDB can store (no lone surrogates)."""
    if not isinstance(value, str) or not 1 <= len(value) <= max_len:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _same_order(existing: dict[str, Any], customer_id: str, items: list[dict[str, Any]]) -> bool:
    stored = [{"sku": i.get("sku"), "qty": i.get("qty")} for i in existing.get("items", [])]
    return existing.get("customer_id") == customer_id and stored == items


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body, default=_json_default),
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
