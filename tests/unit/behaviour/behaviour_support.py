"""Traces as the harness receives them, built small, for the behaviour tests."""

from __future__ import annotations

import itertools
from typing import Any

from harness.behaviour.derive import Names
from harness.traces.model import Trace
from harness.traces.propagation import CLIENT_ANNOTATION, TEST_ANNOTATION

TEST_TRACE = "1-6b043315-23214c168721134c5ded6f95"
CONSUMER_TRACE = "1-6b043316-0000000000000000000000aa"
STACK = "orders-feature-x"
API = "a1b2c3"
_ids = itertools.count(1)


def new_id() -> str:
    return f"{next(_ids):016x}"


def names() -> Names:
    return Names.from_stack(
        {
            "OrdersTable": f"{STACK}-OrdersTable-1AB2",
            "AuditTable": f"{STACK}-AuditTable-9ZZ",
            "GetOrderFunction": f"{STACK}-GetOrderFunction-77",
            "AuditFunction": f"{STACK}-AuditFunction-88",
            "ServerlessRestApi": API,
        },
        {"OrdersTableName": f"{STACK}-OrdersTable-1AB2", "ApiUrl": f"https://{API}.execute-api/Prod/"},
        ["/orders", "/orders/{order_id}"],
        [STACK],
    )


def ddb(operation: str, table: str, **flags: Any) -> dict[str, Any]:
    return {
        "id": new_id(),
        "name": "DynamoDB",
        "namespace": "aws",
        "start_time": 1.0,
        "end_time": 1.1,
        "aws": {"operation": operation, "table_name": f"{STACK}-{table}", **flags.pop("aws", {})},
        **flags,
    }


FUNCTIONS = {"GetOrderFunction": f"{STACK}-GetOrderFunction-77", "AuditFunction": f"{STACK}-AuditFunction-88"}


def function(logical: str, calls: list[dict[str, Any]], *, cold: bool = False, **extra: Any) -> dict[str, Any]:
    name = FUNCTIONS[logical]
    subs = [{"id": new_id(), "name": "Initialization", "start_time": 1.0, "end_time": 1.05}] if cold else []
    return {
        "id": new_id(),
        "name": name,
        "origin": "AWS::Lambda::Function",
        "start_time": 1.0,
        "end_time": 1.2,
        "aws": {"resource_names": [name]},
        "subsegments": subs + calls,
        **extra,
    }


def api_call(
    method: str, path: str, fn: dict[str, Any] | None, *, status: int = 200, poll: Any = None
) -> list[dict[str, Any]]:
    """The test's request to the REST API (a client subsegment) and the function it reached (a segment of its own)."""
    call: dict[str, Any] = {
        "id": new_id(),
        "name": f"{API}.execute-api.us-east-1.amazonaws.com",
        "namespace": "remote",
        "start_time": 1.0,
        "end_time": 1.3,
        "http": {
            "request": {"url": f"https://{API}.execute-api.us-east-1.amazonaws.com/Prod{path}", "method": method},
            "response": {"status": status},
        },
    }
    if status >= 400:
        call["error"] = True
    if poll is not None:
        call["metadata"] = {"harness": {"poll": list(poll)}}
    docs = [call]
    if fn is not None:
        docs.append({**fn, "trace_id": TEST_TRACE, "parent_id": call["id"]})
    return docs


def client_call(doc: dict[str, Any], poll: tuple[str, int] | None = None) -> dict[str, Any]:
    if poll is not None:
        doc = {**doc, "metadata": {"harness": {"poll": list(poll)}}}
    return doc


def make_trace(*parts: list[dict[str, Any]] | dict[str, Any]) -> Trace:
    """The test's client segment holding the calls, plus the segments downstream of them."""
    calls, others = [], []
    for part in parts:
        docs = part if isinstance(part, list) else [part]
        calls.append(docs[0])
        others += docs[1:]
    client = {
        "id": new_id(),
        "name": "test",
        "trace_id": TEST_TRACE,
        "start_time": 0.5,
        "end_time": 2.0,
        "annotations": {CLIENT_ANNOTATION: True, TEST_ANNOTATION: "scenarios/x.yaml::a"},
        "subsegments": calls,
    }
    return Trace(TEST_TRACE, [client, *others])


def consumer_trace(trace_id: str, calls: list[dict[str, Any]], links: list[str], name: str = "AuditFunction") -> Trace:
    fn = function(name, calls, links=[{"trace_id": t} for t in links], trace_id=trace_id)
    return Trace(trace_id, [fn])
