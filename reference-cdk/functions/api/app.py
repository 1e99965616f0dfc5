"""The orders API behind a REST API (proxy integration): POST /orders, GET /orders/{order_id}."""

from __future__ import annotations

import json
import os
import re
import uuid
from decimal import Decimal
from typing import Any

import boto3
from aws_xray_sdk.core import patch_all

patch_all()  # boto3 calls become X-Ray subsegments

ORDERS = boto3.resource("dynamodb").Table(os.environ["ORDERS_TABLE"])
ORDER_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    method = event.get("httpMethod")
    parts = [p for p in (event.get("path") or "").split("/") if p]
    if parts[:1] != ["orders"] or len(parts) > 2:
        return _response(404, {"error": "not found"})
    if method == "POST" and len(parts) == 1:
        return _create(event.get("body"))
    if method == "GET" and len(parts) == 2:
        return _get(parts[1])
    return _response(405, {"error": f"{method} is not allowed here"})


def _create(body: str | None) -> dict[str, Any]:
    try:
        order = json.loads(body or "{}")
    except ValueError:
        return _response(400, {"error": "the body must be JSON"})
    if not isinstance(order, dict) or not isinstance(order.get("item"), str) or not order["item"]:
        return _response(400, {"error": "item (a non-empty string) is required", "field": "item"})
    order_id = order.get("order_id") or uuid.uuid4().hex
    if not isinstance(order_id, str) or not ORDER_ID_RE.fullmatch(order_id):
        return _response(400, {"error": "order_id must match ^[A-Za-z0-9_-]{1,128}$", "field": "order_id"})
    record = {"order_id": order_id, "item": order["item"], "quantity": int(order.get("quantity") or 1)}
    ORDERS.put_item(Item=record)
    return _response(201, record)


def _get(order_id: str) -> dict[str, Any]:
    if not ORDER_ID_RE.fullmatch(order_id):
        return _response(400, {"error": "order_id must match ^[A-Za-z0-9_-]{1,128}$", "field": "order_id"})
    item = ORDERS.get_item(Key={"order_id": order_id}, ConsistentRead=True).get("Item")
    if item is None:
        return _response(404, {"error": "order not found"})
    return _response(200, item)


def _response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body, default=lambda v: int(v) if isinstance(v, Decimal) else str(v)),
    }
