"""Which traced write caused each record a queue or stream consumer receives: ``links`` on its function segment.

A DynamoDB stream or SQS consumer runs on the emulator's poller thread, in a
trace of its own, as on AWS. To say which test's writes a consumer invocation
processed (behaviour snapshots attribute the consumer's calls to that test),
the emulator remembers, per stream record, the trace of the request that
wrote it, and the invocation's ``AWS::Lambda::Function`` segment lists those
traces as ``links`` (``[{"trace_id": ..., "id": ...}]``, the shape of X-Ray's
span links). The consumer's trace stays its own: nothing is re-parented.

* DynamoDB streams: ``dynamodb.handle_request`` keeps the request's
  ``X-Amzn-Trace-Id`` (the Lambda trace-header ContextVar) and
  ``_build_change_record``, which ``_emit_stream_event`` calls for every
  stream record, notes the record's ``eventID`` against that trace.
  AWS records no such link for DynamoDB streams; it exists locally only.
* SQS: a message's ``AWSTraceHeader`` system attribute, which the sender set
  (the harness's clients and the X-Ray SDKs do), names its trace; AWS links
  an SQS-triggered invocation's trace to it the same way.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from harness.emulator import guard
from harness.emulator.trace_header import INBOUND_TRACE_HEADER, with_inbound_trace_header

NAME = "consumers-link-the-writers-trace"
DYNAMODB = "ministack.services.dynamodb"
#: Stream records remembered (oldest forgotten first): far more than a stream holds between two polls.
MAX_RECORDS = 20_000

_writers: OrderedDict[str, tuple[str, str | None]] = OrderedDict()
_lock = threading.Lock()


def _parse(header: str) -> tuple[str, str | None] | None:
    """``(root, parent)`` of an ``X-Amzn-Trace-Id`` value, or None without a root."""
    fields = dict(part.strip().partition("=")[::2] for part in header.split(";") if "=" in part)
    root = fields.get("Root")
    return (root, fields.get("Parent") or None) if root else None


def remember(event_id: str, header: str | None) -> None:
    """Note that the stream record ``event_id`` was written by the request traced by ``header``."""
    parsed = _parse(header) if header else None
    if parsed is None:
        return
    with _lock:
        _writers[event_id] = parsed
        while len(_writers) > MAX_RECORDS:
            _writers.popitem(last=False)


def links_for(event: Any) -> list[dict[str, str]]:
    """The ``links`` of an invocation: the traces that wrote the records of ``event``, once each, in order."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        return []
    found: dict[str, str | None] = {}
    for record in records:
        if not isinstance(record, Mapping):
            continue
        writer: tuple[str, str | None] | None = None
        if record.get("eventSource") == "aws:dynamodb":
            with _lock:
                writer = _writers.get(str(record.get("eventID")))
        elif record.get("eventSource") == "aws:sqs":
            header = (record.get("attributes") or {}).get("AWSTraceHeader")
            writer = _parse(header) if isinstance(header, str) else None
        if writer is not None:
            found.setdefault(writer[0], writer[1])
    return [{"trace_id": root, **({"id": parent} if parent else {})} for root, parent in found.items()]


def apply() -> None:
    """Remember the writer's trace of every DynamoDB stream record (see the module docstring)."""
    ddb = guard.module(DYNAMODB, NAME)
    handle = guard.function(
        ddb, "handle_request", ("method", "path", "headers", "body", "query_params"), NAME, coroutine=True
    )
    build = guard.function(
        ddb, "_build_change_record", ("table", "event_name", "old_item", "new_item", "view_type"), NAME
    )
    guard.calls_by_name(ddb, "_emit_stream_event", "_build_change_record", NAME)
    if guard.adapted(build, NAME):
        return  # applied already in this process

    @functools.wraps(build)
    def build_change_record(*args: Any, **kwargs: Any) -> Any:
        record = build(*args, **kwargs)
        if isinstance(record, dict) and record.get("eventID"):
            remember(str(record["eventID"]), INBOUND_TRACE_HEADER.get())
        return record

    ddb._build_change_record = guard.mark(build_change_record, NAME)
    ddb.handle_request = guard.mark(with_inbound_trace_header(handle, 2), NAME)
