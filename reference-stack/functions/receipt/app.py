"""OrderAudited event -> receipts/<order_id>.json in the receipts bucket (a task of the receipt flow).

The flow passes the event; the receipt is its ``detail``, as JSON. Writing the
same key again (a retried execution) replaces the receipt with the same content.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import boto3
from aws_xray_sdk.core import patch_all

patch_all()  # boto3 calls become X-Ray subsegments

logging.basicConfig()  # a no-op on Lambda, whose runtime configures the root logger
logger = logging.getLogger(__name__)
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO"))

S3 = boto3.client("s3")
BUCKET = os.environ["RECEIPTS_BUCKET"]


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    detail = event.get("detail") or {}
    order_id = str(detail.get("order_id") or "")
    if not order_id:
        raise ValueError("an OrderAudited event without detail.order_id")
    key = f"receipts/{order_id}.json"
    S3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(detail).encode(), ContentType="application/json")
    logger.info("receipt of order %s written to %s", order_id, key)
    return {"bucket": BUCKET, "key": key}
