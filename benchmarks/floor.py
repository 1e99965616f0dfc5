"""The floor: the calls of a few reference scenarios, made by a plain script.

No harness, no pytest: boto3 and requests against the same deployed stack on
the same emulator. It makes the HTTP and DynamoDB calls of these scenarios of
``scenarios/orders.yaml`` (``benchmarks.runner.SUBSET`` names them), checking
the same things:

* create then read an order: POST /orders (201), GET /orders/{id} (200)
* missing customer is rejected: POST /orders without customer_id (400)
* unknown order is not found: GET /orders/{id}-missing (404)
* every created order is audited once through the stream: POST /orders (201),
  poll the Audit table every 0.1 s until the INSERT item is there, then query
  it (exactly one item)

Usage: ``python -m benchmarks.floor --endpoint-url URL --stack-name NAME [--region R]``.
Prints one JSON line: ``{"calls": seconds for the calls only, "setup": seconds
for clients and describe-stacks, "clients": seconds to build the DynamoDB
client and the HTTP session, "scenarios": {name: seconds}}``. Clients are
made before the timed part: that is the floor.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import boto3
import requests


def api_base(api_url: str, endpoint_url: str) -> str:
    """``https://{api}.execute-api.{region}.amazonaws.com/Prod/`` as the emulator serves it."""
    parts = urlsplit(api_url)
    api = (parts.hostname or "").split(".", 1)[0]
    return f"{endpoint_url.rstrip('/')}/_aws/execute-api/{api}{parts.path.rstrip('/')}"


def check(cond: bool, what: str) -> None:
    if not cond:
        raise SystemExit(f"floor: check failed: {what}")


def run_calls(http: requests.Session, ddb: Any, outputs: dict[str, str], endpoint_url: str) -> dict[str, float]:
    """The four scenarios' calls and checks; seconds per scenario."""
    base = api_base(outputs["ApiUrl"], endpoint_url)
    audit_table = outputs["AuditTableName"]
    run = uuid.uuid4().hex[:8]
    per: dict[str, float] = {}

    t = time.perf_counter()
    customer = f"floor-{run}-a"
    r = http.post(f"{base}/orders", json={"customer_id": customer, "items": [{"sku": "ABC-1", "qty": 2}]}, timeout=30)
    check(r.status_code == 201 and r.json()["status"] == "CREATED" and r.json()["total_qty"] == 2, f"create: {r.text}")
    oid = r.json()["order_id"]
    r = http.get(f"{base}/orders/{oid}", timeout=30)
    check(r.status_code == 200 and r.json()["items"] == [{"sku": "ABC-1", "qty": 2}], f"read: {r.text}")
    per["create then read an order"] = time.perf_counter() - t

    t = time.perf_counter()
    r = http.post(f"{base}/orders", json={"items": [{"sku": "A", "qty": 1}]}, timeout=30)
    check(r.status_code == 400 and r.json().get("field") == "customer_id", f"400: {r.text}")
    per["missing customer is rejected"] = time.perf_counter() - t

    t = time.perf_counter()
    r = http.get(f"{base}/orders/floor-{run}-missing", timeout=30)
    check(r.status_code == 404 and r.json() == {"error": "order not found"}, f"404: {r.text}")
    per["unknown order is not found"] = time.perf_counter() - t

    t = time.perf_counter()
    oid = f"floor-{run}-audit"
    body = {"order_id": oid, "customer_id": f"{run}@example.com", "items": [{"sku": "A", "qty": 4}]}
    r = http.post(f"{base}/orders", json=body, timeout=30)
    check(r.status_code == 201, f"audit create: {r.text}")
    key = {"order_id": {"S": oid}, "event": {"S": "INSERT"}}
    deadline = time.monotonic() + 20
    while True:
        item = ddb.get_item(TableName=audit_table, Key=key, ConsistentRead=True).get("Item")
        if item or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    check(bool(item) and item["new_image"]["M"]["total_qty"]["N"] == "4", f"audit item: {item}")
    q = ddb.query(
        TableName=audit_table,
        KeyConditionExpression="order_id = :o",
        ExpressionAttributeValues={":o": {"S": oid}},
        ConsistentRead=True,
    )
    check(q["Count"] == 1, f"audit count: {q['Count']}")
    per["every created order is audited once through the stream"] = time.perf_counter() - t

    return per


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.floor")
    p.add_argument("--endpoint-url", required=True)
    p.add_argument("--stack-name", required=True)
    p.add_argument("--region", default="us-east-1")
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=args.region)  # noqa: S106
    t_session = time.perf_counter()
    cfn = session.client("cloudformation", endpoint_url=args.endpoint_url)
    t1 = time.perf_counter()
    ddb = session.client("dynamodb", endpoint_url=args.endpoint_url)
    http = requests.Session()
    # What the scenarios' own clients cost to build: the boto3 session, the DynamoDB client, the HTTP session.
    clients = (t_session - t0) + (time.perf_counter() - t1)
    desc = cfn.describe_stacks(StackName=args.stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in desc.get("Outputs") or []}
    setup = time.perf_counter() - t0

    started = time.perf_counter()
    per = run_calls(http, ddb, outputs, args.endpoint_url)
    calls = time.perf_counter() - started
    print(json.dumps({"calls": calls, "setup": setup, "clients": clients, "scenarios": per}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
