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
