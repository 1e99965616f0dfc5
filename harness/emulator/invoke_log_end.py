"""Gap: every Invoke of a Python function that logs nothing answers 50 ms late.

AWS: an invocation's response goes back when the handler returns; its log
lines reach CloudWatch Logs on their own (``LogType=Tail`` returns the last
4 KB of them with the response).

MiniStack 1.5.33's worker cannot tell when an invocation's output has all
arrived: its runtime writes the handler's prints and logs to stderr, a thread
queues the lines, and after the response ``Worker._drain_stderr_bounded``
waits for them: 5 ms of quiet after the last line, or 50 ms when none came
(up to 250 ms). A handler that logs nothing on success (the common case: a
logger at INFO with no info lines, an X-Ray segment sent over UDP) waits the
whole 50 ms at every invocation; a scenario's call through API Gateway to
such a function took 60 ms of which 50 were this wait.

The adaptation (``lambda-invoke-log-end``): the runtime sandbox's worker
marks the end of each invocation's output: it flushes ``sys.stdout`` and
``sys.stderr`` and writes a line of its own (a token unique to this emulator
and the invocation's request id) to its stderr before its response. The
emulator's drain of a Python function's worker takes the lines up to the mark
of the invocation it answers (the same 250 ms ceiling), so it ends as soon as
the output is all there; no mark is ever in a log, and a mark that comes after
its drain gave up is passed over by the next one. A line a handler's
background thread writes after the mark is in the next invocation's log, as
AWS shows output made while an environment was frozen. Only with the runtime
sandbox, whose worker writes the mark (left out with it); other runtimes drain as
before.
"""

from __future__ import annotations

import functools
import os
import queue
import threading
import time
import uuid
from typing import Any

from harness.emulator import guard

NAME = "lambda-invoke-log-end"
#: In the emulator's environment: the line a sandboxed Python worker writes to stderr after each invocation.
MARK_ENV = "HARNESS_LAMBDA_LOG_END"
_DRAIN_PARAMS = ("self", "first_line_wait", "idle_confirm", "hard_cap")
_INVOKE_PARAMS = ("self", "event", "request_id", "trace_id", "depth", "durable", "invoked_function_arn")
_answering = threading.local()  # the request id the worker's invoke in this thread answers


def drain_to_mark(lines: queue.Queue[str], mark: str, request_id: str, hard_cap: float) -> str:
    """The log lines queued before ``request_id``'s mark, waiting for it at most ``hard_cap``; marks are
    never returned (another request's is one its own drain gave up on)."""
    taken: list[str] = []
    own = f"{mark} {request_id}"
    deadline = time.monotonic() + hard_cap
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        at = line.find(mark)
        if at == -1:
            taken.append(line)
            continue
        if at:  # output the handler left without a newline, ended by the mark
            taken.append(line[:at])
        if line[at:] == own:
            break
    return "\n".join(taken)


def apply() -> None:
    """Make a sandboxed Python worker mark the end of each invocation's output and drain its log to the mark."""
    lr = guard.module("ministack.core.lambda_runtime", NAME)
    worker = getattr(lr, "Worker", None)
    drain = guard.function(worker, "_drain_stderr_bounded", _DRAIN_PARAMS, NAME)
    if guard.adapted(drain, NAME):
        return
    invoke = guard.function(worker, "invoke", _INVOKE_PARAMS, NAME)
    guard.calls_by_name(worker, "invoke", "_drain_stderr_bounded", NAME)
    if not getattr(getattr(lr, "_detect_runtime_binary", None), "__harness_adapted__", False):
        return  # the runtime sandbox is left out: its worker, which writes the mark, is not the one that runs
    mark = os.environ.setdefault(MARK_ENV, f"harness-invocation-end-{uuid.uuid4().hex}")

    @functools.wraps(invoke)
    def _invoke(self: Any, event: Any, request_id: str, **kwargs: Any) -> Any:
        _answering.request_id = request_id
        try:
            return invoke(self, event, request_id, **kwargs)
        finally:
            _answering.request_id = None

    @functools.wraps(drain)
    def _drain_stderr_bounded(
        self: Any, first_line_wait: float = 0.050, idle_confirm: float = 0.005, hard_cap: float = 0.250
    ) -> str:
        request_id = getattr(_answering, "request_id", None)  # None: not inside an invoke of this worker class
        python = type(self) is worker and str(self.config.get("Runtime", "")).startswith("python")
        if request_id is None or not python:  # no sandboxed worker's mark to wait for
            return drain(self, first_line_wait, idle_confirm, hard_cap)  # type: ignore[no-any-return]
        return drain_to_mark(self._stderr_queue, mark, request_id, hard_cap)  # noqa: SLF001 - the worker's queue

    worker.invoke = guard.mark(_invoke, NAME)
    worker._drain_stderr_bounded = guard.mark(_drain_stderr_bounded, NAME)
