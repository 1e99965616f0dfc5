"""Version-guarded adaptation: a Step Functions execution starts without the emulator's fixed pause.

The gap (MiniStack 1.5.33): ``_run_execution``, which runs every execution
(on a thread of its own for ``StartExecution``, inside the request for
``StartSyncExecution``), begins with ``time.sleep(0.15)``. Every execution's
first state starts 150 ms after the start, and every ``StartSyncExecution``
answers 150 ms late; a scenario that waits for an execution, and a session
that waits for the executions its last tests started, wait that long too.
AWS documents no such pause: ``StartExecution`` returns once the execution
is started and its states run from then on.

The adaptation (``stepfunctions-starts-without-a-pause``) gives the module a
``time`` whose ``sleep`` skips exactly that call: one of 0.15 s made by
``_run_execution``'s own code. Every other sleep of the module (Wait states,
retry back-off, through ``_scaled_sleep``) is the real one, and every other
name of ``time`` is the real module's.
"""

from __future__ import annotations

import inspect
import sys
import time
from types import CodeType, ModuleType
from typing import Any

from harness.emulator import guard

NAME = "stepfunctions-starts-without-a-pause"
SFN = "ministack.services.stepfunctions"
PAUSE = 0.15  # seconds, the literal in _run_execution


class PauselessTime:
    """The ``time`` module, but for the pause at the start of ``code`` (a function's own code object)."""

    def __init__(self, real: ModuleType | Any, code: CodeType) -> None:
        self._real = real
        self._code = code

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def sleep(self, seconds: float) -> None:
        if seconds == PAUSE and sys._getframe(1).f_code is self._code:
            return
        self._real.sleep(seconds)


def pauses(code: CodeType) -> bool:
    """Whether ``code`` still sleeps the fixed pause (``time.sleep(0.15)``)."""
    return PAUSE in code.co_consts and {"time", "sleep"} <= set(code.co_names)


def apply() -> None:
    """Start every execution at once. Raises ``AdaptationError`` when the pinned code changed shape."""
    sfn = guard.module(SFN, NAME)
    run = guard.function(sfn, "_run_execution", ("exec_arn",), NAME)
    if isinstance(getattr(sfn, "time", None), PauselessTime):
        return  # applied already in this process
    if getattr(sfn, "time", None) is not time:
        raise guard.AdaptationError(f"{NAME}: {SFN}.time is no longer the time module")
    code = inspect.unwrap(run).__code__  # the emulator's own, under any adaptation's wrapper
    if not pauses(code):
        raise guard.AdaptationError(
            f"{NAME}: {SFN}._run_execution no longer sleeps {PAUSE}s before the first state; "
            "the emulator closed this gap, remove the adaptation"
        )
    sfn.time = PauselessTime(time, code)
