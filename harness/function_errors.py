"""A failing test's function errors, told in its report: which function, what it raised, what it logged.

A scenario that calls an API sees a 502; the cause is in the function. When a
test fails, ``collect`` reads the test's trace for failed function
invocations (``harness.traces.causes``), fetches each one's log lines
(``harness.lambda_logs``, CloudWatch Logs on AWS and on the emulator) and
returns plain JSON-able data: it becomes a section of the test's report
(``section``) and travels with the test's trace record to the HTML report.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NotRequired, TypedDict

from harness import lambda_logs
from harness.traces.causes import LINKED, FunctionFailure, failures
from harness.traces.model import Trace

TAIL_LINES = 20


class FunctionErrorJSON(TypedDict):
    function: str
    request_id: str | None
    error_type: str
    message: str
    stack: list[str]
    log_tail: list[str]
    #: On the embedded emulator: why this error may be the emulator's, not the function's.
    note: NotRequired[str]
    #: The invocation ran in another trace that links to the test's: a queue or stream consumer of its writes.
    linked_trace: NotRequired[str]


#: A quoted absolute path under AWS's fixed Lambda folders in an error message (Python's
#: ``[Errno 2] No such file or directory: '/opt/bin/tool'``, Node.js's ``ENOENT: ..., open '/opt/x'``).
_AWS_PATH = re.compile(r"""['"](?P<path>/(?:opt|var/task)(?:/[^'"]*)?)['"]""")
_MISSING = ("No such file or directory", "ENOENT", "Not a directory", "ENOTDIR")


def local_note(message: str) -> str | None:
    """Why a missing ``/opt`` or ``/var/task`` path is the embedded emulator's doing (None when it is not that).

    On AWS a function's layers are extracted into ``/opt`` and its code is in ``/var/task``
    (``LAMBDA_TASK_ROOT``). The emulator runs each function from a folder of its own and puts
    its layers on ``sys.path`` (``PYTHONPATH``/``NODE_PATH``) without a ``/opt``: a file read, written or
    run by its absolute path there is missing here, whatever the function ships.
    """
    found = _AWS_PATH.search(message)
    if found is None or not any(m in message for m in _MISSING):
        return None
    path = found["path"]
    if path == "/var/task" or path.startswith("/var/task/"):
        return (
            f"{path} is where AWS puts the function's code; the embedded emulator runs it from another folder, "
            "so this path is missing here and may exist on AWS: build the path from LAMBDA_TASK_ROOT "
            "(set on both) or the module's own folder (os.path.dirname(__file__)), or run this test with --target aws"
        )
    return (
        f"{path} is under /opt, where AWS extracts the function's layers (read-only); the embedded emulator "
        "has no /opt (it puts the layers' python/ and nodejs/node_modules on the import path only), so this "
        "path is missing here and exists on AWS if a layer ships it: build the path from a module of the layer "
        "(os.path.dirname(module.__file__)), or run this test with --target aws"
    )


def collect(
    fetch_trace: Callable[[], Trace],
    logs_client: Callable[[], Any] | None,
    *,
    log_wait: float = 0.0,
    local: bool = False,
    linked: Callable[[], list[Trace]] | None = None,
) -> list[FunctionErrorJSON]:
    """The failed invocations of the test's trace, each with its log tail (never raises: it reports).

    ``local``: the target is the embedded emulator, whose known causes of an error that AWS would
    not raise are named in the error's ``note`` (:func:`local_note`). ``linked``: the traces that
    link to the test's (queue and stream consumers of its writes, where the source can list them);
    their failed invocations follow, each naming its trace.
    """
    try:
        found: list[tuple[FunctionFailure, str | None]] = [(f, None) for f in failures(fetch_trace())]
    except Exception as exc:  # noqa: BLE001 - a failing test's report must still be written
        return [_unreadable(exc)]
    unread: list[FunctionErrorJSON] = []
    try:
        for trace in linked() if linked is not None else ():
            found += [(f, trace.trace_id) for f in failures(trace)]
    except Exception as exc:  # noqa: BLE001 - the test's own errors are still told
        unread.append(_unreadable(exc))
    out: list[FunctionErrorJSON] = []
    for failure, linked_trace in found:
        err = FunctionErrorJSON(
            function=failure.function,
            request_id=failure.request_id,
            error_type=failure.error_type,
            message=failure.message,
            stack=list(failure.stack),
            log_tail=_tail(failure, logs_client, log_wait),
        )
        note = local_note(failure.message) if local else None
        if note:
            err["note"] = note
        if linked_trace:
            err["linked_trace"] = linked_trace
        out.append(err)
    return out + unread


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
        if err.get("linked_trace"):
            lines.append(f"  in trace {err['linked_trace']}, {LINKED}")
        lines += [f"  at {frame}" for frame in err["stack"]]
        if err.get("note"):
            lines.append(f"  note: {err['note']}")
        if err["log_tail"]:
            lines.append(f"  last {len(err['log_tail'])} log lines:")
            lines += [f"    | {line}" for line in err["log_tail"]]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
