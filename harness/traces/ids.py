"""X-Ray identifiers and the ``X-Amzn-Trace-Id`` header.

A trace id is ``1-<8 hex: epoch seconds>-<24 hex: random>``; a segment id is
16 hex digits. The header is ``Root=<trace id>;Parent=<segment id>;Sampled=1``
(order-free ``key=value`` pairs; unknown keys such as ``Lineage`` or ``Self``
are kept). These run on every traced call, so they use ``os.urandom``
directly: about a microsecond each.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field

HEADER = "X-Amzn-Trace-Id"
TRACE_ID_RE = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")
SEGMENT_ID_RE = re.compile(r"^[0-9a-f]{16}$")


def new_trace_id(now: float | None = None) -> str:
    """A fresh trace id whose time part is ``now`` (default: the current time)."""
    epoch = int(time.time() if now is None else now)
    return f"1-{epoch:08x}-{os.urandom(12).hex()}"


def new_segment_id() -> str:
    """A fresh 16-hex-digit segment (or subsegment) id."""
    return os.urandom(8).hex()


def is_trace_id(value: object) -> bool:
    return isinstance(value, str) and TRACE_ID_RE.match(value) is not None


def is_segment_id(value: object) -> bool:
    return isinstance(value, str) and SEGMENT_ID_RE.match(value) is not None


def trace_epoch(trace_id: str) -> int:
    """The epoch second embedded in a trace id (X-Ray rejects ids older than 30 days)."""
    if not is_trace_id(trace_id):
        raise ValueError(f"not an X-Ray trace id: {trace_id!r} (expected 1-<8 hex>-<24 hex>)")
    return int(trace_id[2:10], 16)


@dataclass(frozen=True)
class TraceHeader:
    """A parsed ``X-Amzn-Trace-Id`` value."""

    root: str | None = None
    parent: str | None = None
    sampled: bool | None = None
    extra: tuple[tuple[str, str], ...] = field(default=())

    def render(self) -> str:
        parts = []
        if self.root:
            parts.append(f"Root={self.root}")
        if self.parent:
            parts.append(f"Parent={self.parent}")
        if self.sampled is not None:
            parts.append(f"Sampled={1 if self.sampled else 0}")
        parts.extend(f"{k}={v}" for k, v in self.extra)
        return ";".join(parts)


def header_value(trace_id: str, parent_id: str, sampled: bool = True) -> str:
    """``Root=...;Parent=...;Sampled=1``: the header a traced caller sends."""
    return f"Root={trace_id};Parent={parent_id};Sampled={1 if sampled else 0}"


def parse_header(value: str | None) -> TraceHeader:
    """Parse a header value; anything malformed becomes an empty field, never an error."""
    if not value:
        return TraceHeader()
    root = parent = None
    sampled: bool | None = None
    extra: list[tuple[str, str]] = []
    for part in value.split(";"):
        key, sep, val = part.strip().partition("=")
        if not sep:
            continue
        key, val = key.strip(), val.strip()
        if key == "Root":
            root = val or None
        elif key == "Parent":
            parent = val or None
        elif key == "Sampled":
            sampled = {"1": True, "0": False}.get(val)
        else:
            extra.append((key, val))
    return TraceHeader(root=root, parent=parent, sampled=sampled, extra=tuple(extra))
