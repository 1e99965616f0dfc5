"""The inbound X-Ray trace header, as the emulator adaptations share it.

A request's ``X-Amzn-Trace-Id`` is kept in a ContextVar while the emulator
handles it, so the Lambda invocation it leads to continues the caller's trace.
``adapt`` (Invoke, API Gateway), ``notify_traces`` (SNS, S3) and ``sfn_traces``
(Step Functions) all use it; it lives apart from them so none imports another.
"""

from __future__ import annotations

import contextvars
import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

TRACE_ROOT_RE = re.compile(r"(?:^|;)\s*Root=1-[0-9a-fA-F]{8}-[0-9a-fA-F]{24}\s*(?:;|$)")
INBOUND_TRACE_HEADER: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "harness_inbound_trace_header", default=None
)


def inbound_trace_header(headers: Any) -> str | None:
    """The request's ``X-Amzn-Trace-Id`` if it names a trace root (MiniStack lower-cases header names)."""
    if not isinstance(headers, Mapping):
        return None
    value = headers.get("x-amzn-trace-id") or headers.get("X-Amzn-Trace-Id")
    if isinstance(value, str) and TRACE_ROOT_RE.search(value):
        return value.strip()
    return None


def with_inbound_trace_header(fn: Callable[..., Any], headers_at: int) -> Callable[..., Any]:
    """``fn`` (a coroutine function) with the request's trace header (argument ``headers_at``) kept while it runs."""

    @functools.wraps(fn)
    async def adapted(*args: Any, **kwargs: Any) -> Any:
        headers = kwargs["headers"] if "headers" in kwargs else (args[headers_at] if len(args) > headers_at else None)
        value = inbound_trace_header(headers)
        if value is None:
            return await fn(*args, **kwargs)
        token = INBOUND_TRACE_HEADER.set(value)
        try:
            return await fn(*args, **kwargs)
        finally:
            INBOUND_TRACE_HEADER.reset(token)

    adapted.__harness_adapted__ = True  # type: ignore[attr-defined]
    return adapted
