"""The log lines of one Lambda invocation, from CloudWatch Logs, on AWS and on the emulator alike.

Lambda writes each invocation's output to the function's log group
(``/aws/lambda/<function>``) between two platform lines::

    START RequestId: 6f1c... Version: $LATEST
    ...what the function printed or logged...
    END RequestId: 6f1c...
    REPORT RequestId: 6f1c...  Duration: 12.3 ms ...

Invocations of one execution environment share a log stream and follow each
other, so an invocation's lines are the ones of its stream from its ``START``
to its ``REPORT``. ``FilterLogEvents`` over the invocation's time window
returns them (lines a function prints carry no request id, so a filter pattern
on the id would miss them); the emulator (MiniStack) writes the same lines to
its CloudWatch Logs, one stream per invocation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: How much earlier than the invocation's first span the window starts (clock skew, init lines).
MARGIN_MS = 5_000


@dataclass(frozen=True)
class InvocationLog:
    """What one invocation logged."""

    function: str
    request_id: str
    lines: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """Whether the invocation's ``REPORT`` line is in (CloudWatch ingests with a delay on AWS)."""
        return any(line.startswith(f"REPORT RequestId: {self.request_id}") for line in self.lines)

    def tail(self, count: int = 20) -> list[str]:
        """The last ``count`` lines, without the platform's END/REPORT lines."""
        body = [line for line in self.lines if not line.startswith(("END RequestId:", "REPORT RequestId:"))]
        return body[-count:]

    def text(self) -> str:
        return "\n".join(self.lines)


def log_group(function: str) -> str:
    return f"/aws/lambda/{function}"


def slice_invocation(events: Iterable[Mapping[str, Any]], request_id: str) -> tuple[str, ...]:
    """The lines of ``request_id``'s invocation among ``FilterLogEvents`` events (any order, any streams)."""
    by_stream: dict[str, list[Mapping[str, Any]]] = {}
    for event in events:
        by_stream.setdefault(str(event.get("logStreamName", "")), []).append(event)
    start_tag, report_tag = f"START RequestId: {request_id}", f"REPORT RequestId: {request_id}"
    for stream_events in by_stream.values():
        ordered = sorted(stream_events, key=lambda e: (e.get("timestamp", 0), e.get("ingestionTime", 0)))
        messages = [str(e.get("message", "")).rstrip("\n") for e in ordered]
        starts = [i for i, m in enumerate(messages) if m.startswith(start_tag)]
        if not starts:
            continue
        out: list[str] = []
        for message in messages[starts[0] :]:
            out.append(message)
            if message.startswith(report_tag):
                break
        return tuple(out)
    return ()


def fetch(
    logs: Any,
    function: str,
    request_id: str,
    start: float,
    end: float,
    *,
    within: float = 0.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> InvocationLog:
    """The invocation's log lines (``logs``: a boto3 CloudWatch Logs client), waiting up to ``within`` s for REPORT.

    A missing log group gives no lines, never an error: the log is an aid to
    reading a failure, not a reason for another one.
    """
    deadline = clock() + within
    while True:
        events: list[Mapping[str, Any]] = []
        try:
            pages = logs.get_paginator("filter_log_events").paginate(
                logGroupName=log_group(function),
                startTime=int(start * 1000) - MARGIN_MS,
                endTime=int(end * 1000) + MARGIN_MS,
            )
            for page in pages:
                events.extend(page.get("events") or ())
        except Exception as exc:  # noqa: BLE001 - ResourceNotFound, AccessDenied...: no log, said so
            return InvocationLog(function, request_id, (f"(no log: {type(exc).__name__}: {exc})",))
        found = InvocationLog(function, request_id, slice_invocation(events, request_id))
        if found.complete or clock() >= deadline:
            return found
        sleep(0.5)
