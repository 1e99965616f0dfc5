"""Which Lambda function sent a datagram: the emulator's runtime processes.

The X-Ray SDK inside a function sends from one UDP socket per process, and
its subsegments do not name the function. MiniStack starts each function's
runtime as a child process with ``AWS_LAMBDA_FUNCTION_NAME`` and
``_LAMBDA_FUNCTION_ARN`` in its environment, so the source port of a
datagram leads to the process (its UDP socket) and the process to the
function. Looked up once per runtime process, when its first datagram
arrives (a few milliseconds with psutil).
"""

from __future__ import annotations

from collections.abc import Callable

import psutil

from harness.traces.collector import FunctionInfo


def runtime_resolver(root_pid: int | Callable[[], int | None]) -> Callable[[int], FunctionInfo | None]:
    """A collector resolver: source port -> the function run by the emulator's child owning it.

    ``root_pid`` is the emulator's pid (or a callable returning it, for an
    emulator started after the collector).
    """

    def resolve(port: int) -> FunctionInfo | None:
        pid = root_pid() if callable(root_pid) else root_pid
        if not pid:
            return None
        try:
            root = psutil.Process(pid)
            candidates = [*root.children(recursive=True), root]
        except psutil.Error:
            return None
        for proc in candidates:
            try:
                if not any(c.laddr and c.laddr.port == port for c in proc.net_connections(kind="udp4")):
                    continue
                env = proc.environ()
            except psutil.Error:
                continue
            name = env.get("AWS_LAMBDA_FUNCTION_NAME")
            if name:
                return FunctionInfo(name=name, arn=env.get("_LAMBDA_FUNCTION_ARN") or None)
        return None

    return resolve
