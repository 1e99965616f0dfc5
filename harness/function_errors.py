"""A failing test's function errors, told in its report: which function, what it raised, what it logged.

A scenario that calls an API sees a 502; the cause is in the function. When a
test fails, ``collect`` reads the test's trace for failed function
invocations (``harness.traces.causes``), fetches each one's log lines
(``harness.lambda_logs``, CloudWatch Logs on AWS and on the emulator) and
returns plain JSON-able data: it becomes a section of the test's report
(``section``) and travels with the test's trace record to the HTML report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

from harness import lambda_logs
from harness.traces.causes import FunctionFailure, failures
from harness.traces.model import Trace

TAIL_LINES = 20


class FunctionErrorJSON(TypedDict):
    function: str
    request_id: str | None
    error_type: str
    message: str
    stack: list[str]
    log_tail: list[str]


def collect(
    fetch_trace: Callable[[], Trace], logs_client: Callable[[], Any] | None, *, log_wait: float = 0.0
) -> list[FunctionErrorJSON]:
    """The failed invocations of the test's trace, each with its log tail (never raises: it reports)."""
    try:
        found = failures(fetch_trace())
    except Exception as exc:  # noqa: BLE001 - a failing test's report must still be written
        return [_unreadable(exc)]
    out: list[FunctionErrorJSON] = []
    for failure in found:
        out.append(
            FunctionErrorJSON(
                function=failure.function,
                request_id=failure.request_id,
                error_type=failure.error_type,
                message=failure.message,
                stack=list(failure.stack),
                log_tail=_tail(failure, logs_client, log_wait),
            )
        )
    return out


def _tail(failure: FunctionFailure, logs_client: Callable[[], Any] | None, wait: float) -> list[str]:
    if logs_client is None or failure.request_id is None or failure.start is None:
        return []
    try:
        log = lambda_logs.fetch(
            logs_client(),
            failure.function,
            failure.request_id,
            failure.start,
            failure.end or failure.start,
            within=wait,
        )
    except Exception as exc:  # noqa: BLE001
        return [f"(log not read: {type(exc).__name__}: {exc})"]
    return log.tail(TAIL_LINES)


def _unreadable(exc: Exception) -> FunctionErrorJSON:
    return FunctionErrorJSON(
        function="?",
        request_id=None,
        error_type="(trace not read)",
        message=f"{type(exc).__name__}: {exc}",
        stack=[],
        log_tail=[],
    )


def section(errors: list[FunctionErrorJSON]) -> str:
    """The report section's text: one block per failed invocation."""
    blocks = []
    for err in errors:
        lines = [f"{err['function']}: {err['error_type']}: {err['message']}"]
        if err["request_id"]:
            lines[0] += f"  (request id {err['request_id']})"
        lines += [f"  at {frame}" for frame in err["stack"]]
        if err["log_tail"]:
            lines.append(f"  last {len(err['log_tail'])} log lines:")
            lines += [f"    | {line}" for line in err["log_tail"]]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
