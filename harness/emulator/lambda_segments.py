"""The two segments Lambda records for a traced invocation, as on AWS, and their sending.

For a function whose tracing mode is ``Active``, AWS records (see "Visualize
Lambda function invocations using AWS X-Ray" in the Lambda developer guide):

* an ``AWS::Lambda`` segment for the service (the invocation request, from its
  arrival to the response), a child of the caller's subsegment;
* an ``AWS::Lambda::Function`` segment for the code, a child of the first,
  with the subsegments ``Initialization`` (cold starts only), ``Invocation``
  (the handler) and ``Overhead`` (the runtime after the handler returned).

An unhandled error makes the function segment a ``fault`` with
``cause.exceptions`` (``message``, ``type``, ``stack`` of ``path``/``line``/
``label``), as X-Ray records exceptions. Built from an
``invocation_record.Record`` and sent over UDP with the daemon protocol, so the
harness's collector receives them like any other segment.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from typing import Any

from harness.emulator.invocation_record import DAEMON_HEADER, Record


def _sub(name: str, start: float, end: float, **extra: Any) -> dict[str, Any]:
    return {"id": secrets.token_hex(8), "name": name, "start_time": start, "end_time": end, **extra}


def _cause(rec: Record) -> dict[str, Any]:
    err = rec.error or {}
    return {
        "working_directory": "/var/task",
        "exceptions": [
            {
                "id": secrets.token_hex(8),
                "message": str(err.get("message", "")),
                "type": str(err.get("type", "")),
                "remote": False,
                "stack": list(err.get("stack") or ()),
            }
        ],
    }


def documents(rec: Record) -> list[dict[str, Any]]:
    """The ``AWS::Lambda`` and ``AWS::Lambda::Function`` segments of a traced invocation (none if untraced)."""
    if rec.lambda_id is None or rec.function_id is None or rec.end is None:
        return []
    service: dict[str, Any] = {
        "id": rec.lambda_id,
        "name": rec.function,
        "trace_id": rec.root,
        "start_time": rec.start,
        "end_time": rec.end,
        "origin": "AWS::Lambda",
        "resource_arn": rec.arn,
        "http": {"response": {"status": 200}},
        "aws": {"request_id": rec.request_id},
    }
    if rec.parent:
        service["parent_id"] = rec.parent
    subs: list[dict[str, Any]] = []
    begin = rec.start
    if rec.init is not None:
        begin = rec.init[0]
        init = _sub("Initialization", *rec.init)
        if rec.init_error is not None:
            init.update(fault=True, cause=_cause(rec))
        subs.append(init)
    if rec.init_error is None:
        invoked_at = rec.init[1] if rec.init else (rec.invoke[0] if rec.invoke else rec.start)
        handler_end = rec.invoke[1] if rec.invoke else rec.end
        invocation = _sub("Invocation", invoked_at, handler_end)
        if rec.error is not None:
            invocation["fault"] = True
        subs.append(invocation)
        if rec.end > handler_end:
            subs.append(_sub("Overhead", handler_end, rec.end))
    function: dict[str, Any] = {
        "id": rec.function_id,
        "name": rec.function,
        "trace_id": rec.root,
        "parent_id": rec.lambda_id,
        "start_time": begin,
        "end_time": rec.end,
        "origin": "AWS::Lambda::Function",
        "resource_arn": rec.arn,
        "aws": {"function_arn": rec.arn, "resource_names": [rec.function], "request_id": rec.request_id},
        "subsegments": subs,
    }
    if rec.error is not None:
        function.update(fault=True, cause=_cause(rec))
    if rec.links:
        function["links"] = list(rec.links)  # the traces that wrote the records it processed
    return [service, function]


def send(rec: Record, address: str | None = None) -> int:
    """Send the invocation's segments to the daemon (``AWS_XRAY_DAEMON_ADDRESS``); returns how many were sent."""
    address = address or os.environ.get("AWS_XRAY_DAEMON_ADDRESS", "")
    host, _, port = address.rpartition(":")
    docs = documents(rec)
    if not docs or not host or not port.isdigit():
        return 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for doc in docs:
            sock.sendto(DAEMON_HEADER + json.dumps(doc).encode(), (host, int(port)))
    return len(docs)
