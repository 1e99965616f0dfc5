"""What a running scenario needs from the outside world, built per test item.

The plugin owns how these are made (target, URL mapping, seeding); the
scenario engine only consumes them, which keeps it testable with moto and a
local HTTP server.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import requests

    from harness.events.listeners import Listeners
    from harness.function_logs import FunctionLogs
    from harness.stack import Stack
    from harness.traces.run import TraceHandle


@dataclass
class StepRuntime:
    """Per-test inputs of the step executors.

    ``unique`` is an id scoped to run, worker and test (``t3f9a2-gw0-1a2b3c``);
    ``fake`` is a Faker seeded with ``seed`` (printed on failure so a run can be
    replayed); ``resolve_url`` maps a stack's public URL to where it is really
    served (identity on AWS). ``trace`` is this test's X-Ray trace (``None`` when
    traces are off), read by ``expect_trace``; ``logs`` the function logs of the
    invocations in that trace, read by ``expect_log``; ``listeners`` the process's event
    listeners on the stack (``expect_event``, ``expect_message``; ``None`` outside a
    session); ``started`` when the test began (on ``clock``). ``clock`` and ``sleep``
    exist so tests need not wait.
    """

    stack: Stack
    unique: str
    fake: Any
    seed: int
    resolve_url: Callable[[str], str]
    http: requests.Session
    env: Mapping[str, str]
    http_timeout: float = 30.0
    trace: TraceHandle | None = None
    logs: FunctionLogs | None = None
    listeners: Listeners | None = None
    clock: Callable[[], float] = field(default=time.monotonic)
    sleep: Callable[[float], None] = field(default=time.sleep)
    started: float | None = None

    def __post_init__(self) -> None:
        if self.started is None:
            self.started = self.clock()


# The plugin stores here a factory that builds the runtime for one test item.
RUNTIME_FACTORY_KEY: pytest.StashKey[Callable[[pytest.Item], StepRuntime]] = pytest.StashKey()
