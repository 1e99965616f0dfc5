"""Where a run's own time goes: wall-clock seconds per phase, recorded cheaply and never printed.

The lifecycle and the plugin wrap each of their phases (plan, fingerprint and
lease, the deploy's read-back, trace collection, teardown and verification,
the report) in :meth:`Phases.measure`: two ``perf_counter`` calls and a dict
update. Nothing reads the record during a run; ``benchmarks/probe.py`` reads
it at the end, so the benchmark can say which part of the harness's own time
is which.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: The phases in run order (a phase measured more than once adds up).
PLAN = "plan"
TARGET = "target"  # the emulator's boot (or attaching to a kept one): not the harness's own time
FINGERPRINT_LEASE = "fingerprint/lease"
DEPLOY = "deploy"  # the whole deploy step; its command's own seconds are Deployed.seconds
CHECKS = "checks"  # drift, fidelity and runtime checks after the deploy (on the start's thread)
CHECKS_WAITED = "checks waited for"  # the part of them the session waited for before its first test
READ_BACK = "read-back"  # what the session does with the stack before the tests (export, clients, tracing)
TRACES = "trace collection"
TEARDOWN = "teardown + verification"
TARGET_STOP = "target stop"
REPORT = "report"


class Phases:
    """Seconds per phase, in the order first measured."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.seconds: dict[str, float] = {}
        self._clock = clock

    @contextmanager
    def measure(self, name: str) -> Iterator[None]:
        """Add the time spent in the block to ``name`` (also when the block raises)."""
        start = self._clock()
        try:
            yield
        finally:
            self.add(name, self._clock() - start)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def as_dict(self) -> dict[str, float]:
        return dict(self.seconds)
