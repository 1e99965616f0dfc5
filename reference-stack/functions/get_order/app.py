"""GET /orders/{order_id}: return one order, or 404."""

from __future__ import annotations

import json
import logging
import os
import re
from decimal import Decimal
from typing import Any

import boto3
from aws_xray_sdk.core import patch_all

patch_all()  # boto3 calls become X-Ray subsegments

logging.basicConfig()  # a no-op on Lambda, whose runtime configures the root logger
logger = logging.getLogger(__name__)
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO"))

ORDERS = boto3.resource("dynamodb").Table(os.environ["ORDERS_TABLE"])

ORDER_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    order_id = (event.get("pathParameters") or {}).get("order_id")
    if not isinstance(order_id, str) or not ORDER_ID_RE.fullmatch(order_id):
        return _response(400, {"error": "order_id must match ^[A-Za-z0-9_-]{1,128}$", "field": "order_id"})

    # Strongly consistent: a client reading right after its 201 must see the order.
    item = ORDERS.get_item(Key={"order_id": order_id}, ConsistentRead=True).get("Item")
    if item is None:
        return _response(404, {"error": "order not found"})
    return _response(200, item)


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
