"""Helpers for the trace tests (imported by name: ``from traces_support import ...``)."""

from __future__ import annotations

from typing import Any

from harness.traces.model import Span, Trace

TRACE = "1-6b043315-23214c168721134c5ded6f95"


def sdk_subsegment(
    id: str,
    parent: str,
    *,
    trace: str = TRACE,
    name: str = "dynamodb",
    operation: str = "PutItem",
    table: str = "orders",
    start: float = 100.0,
    end: float = 100.01,
    **extra: Any,
) -> dict[str, Any]:
    """A subsegment as aws-xray-sdk 2.15 sends it from a function in the emulator (see local_nodes)."""
    doc = {
        "id": id,
        "name": name,
        "start_time": start,
        "parent_id": parent,
        "in_progress": False,
        "http": {"response": {"status": 200}},
        "aws": {"operation": operation, "region": "us-east-1", "request_id": "r", "table_name": table},
        "trace_id": trace,
        "type": "subsegment",
        "namespace": "aws",
        "end_time": end,
    }
    doc.update(extra)
    return doc


def shape(trace: Trace) -> list[tuple[int, str, str]]:
    """(depth, kind, service) of every span, depth first."""
    out: list[tuple[int, str, str]] = []

    def walk(span: Span, depth: int) -> None:
        out.append((depth, span.kind, span.service))
        for child in span.children:
            walk(child, depth + 1)

    for root in trace.roots:
        walk(root, 0)
    return out


def lambda_segments(
    parent: str | None, *, trace: str = TRACE, function: str = "orders-fn", cold: bool = True
) -> list[dict[str, Any]]:
    """The ``AWS::Lambda`` and ``AWS::Lambda::Function`` segments the emulator adaptation sends for one invocation.

    The function segment's id is ``f000000000000001``: the SDK's subsegments name it as parent.
    """
    from harness.emulator.invocations import Record
    from harness.emulator.lambda_segments import documents

    record = Record(
        function=function,
        arn=f"arn:aws:lambda:us-east-1:000000000000:function:{function}",
        runtime="python3.11",
        request_id="req-1",
        tracing=True,
        start=100.0,
        end=100.5,
        root=trace,
        parent=parent,
        lambda_id="1000000000000001",
        function_id=FUNCTION_SEGMENT,
        init=(100.0, 100.2) if cold else None,
        invoke=(100.0, 100.4),
    )
    return documents(record)


FUNCTION_SEGMENT = "f000000000000001"
