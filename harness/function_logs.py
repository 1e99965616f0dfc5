"""The log lines of the Lambda invocations a test caused: the ``logs`` fixture and ``expect_log``.

A test's invocations are the ones in its trace (``harness.traces.causes.invocations``:
the ``AWS::Lambda`` segments Lambda records, each with its request id), so
they are matched by trace id, through API Gateway, Invoke, and the queues
and streams the trace reaches; each one's lines come from CloudWatch Logs
(``harness.lambda_logs``: the emulator's locally, ``FilterLogEvents`` on AWS).
Only functions with active tracing are in a trace, hence here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from harness import lambda_logs
from harness.errors import ExpectationFailed
from harness.lambda_logs import InvocationLog
from harness.traces.causes import invocations
from harness.traces.model import Trace


class FunctionLogs:
    """This test's function logs. ``fetch_trace`` reads the test's trace; ``logs_client`` builds a Logs client."""

    def __init__(
        self,
        fetch_trace: Callable[[], Trace],
        logs_client: Callable[[], Any],
        *,
        within: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._fetch_trace = fetch_trace
        self._logs_client = logs_client
        self.within = within
        self.clock = clock
        self.sleep = sleep
        self._client: Any = None
        self._done: dict[str, InvocationLog] = {}  # request id -> a complete log (it will not change)

    def _logs(self) -> Any:
        if self._client is None:
            self._client = self._logs_client()
        return self._client

    def invocations(self, function: str | None = None) -> list[InvocationLog]:
        """Each invocation of the test's trace (optionally of one function: name or part of it), with its lines."""
        out = []
        for inv in invocations(self._fetch_trace()):
            if function is not None and function not in inv.function:
                continue
            log = self._done.get(inv.request_id)
            if log is None:
                log = lambda_logs.fetch(self._logs(), inv.function, inv.request_id, inv.start, inv.end)
                if log.complete:
                    self._done[inv.request_id] = log
            out.append(log)
        return out

    def lines(self, function: str | None = None) -> list[str]:
        """Every line the test's invocations logged, invocation after invocation."""
        return [line for log in self.invocations(function) for line in log.lines]

    def wait_for(self, pattern: str, function: str | None = None, *, within: float | None = None) -> list[str]:
        """The lines matching ``pattern`` (a regular expression), once there is one; ExpectationFailed after ``within``."""
        __tracebackhide__ = True
        regex = re.compile(pattern)
        deadline = self.clock() + (self.within if within is None else within)
        while True:
            seen = self.invocations(function)
            found = [line for log in seen for line in log.lines if regex.search(line)]
            if found or self.clock() >= deadline:
                break
            self.sleep(0.5)
        if not found:
            raise ExpectationFailed(
                f"no log line matching {pattern!r} in the {len(seen)} invocation(s) of "
                f"{function or 'any function'} in this test's trace:\n{describe(seen)}",
                hint="only functions with active tracing are in a trace; check the function name and the pattern",
            )
        return found


def describe(seen: list[InvocationLog], tail: int = 10) -> str:
    """The invocations and their last lines, for a failure message."""
    if not seen:
        return "  (no invocation)"
    parts = []
    for log in seen:
        parts.append(f"  {log.function} (request id {log.request_id}):")
        parts += [f"    | {line}" for line in log.tail(tail)] or ["    (no lines)"]
    return "\n".join(parts)
