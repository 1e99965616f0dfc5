"""A pytest-xdist worker: it reads what the controller sent through ``workerinput``, once.

A worker deploys nothing and tears nothing down: it sees the controller's
stack (environment, URL routing, trace instrumentation), runs its share of the
tests, and sends each test's trace record back on the report.
"""

from __future__ import annotations

import pytest

from harness.pytest.role import WORKERINPUT, Role


class Worker(Role):
    """Run id, seed, shard, stack and trace state, as the controller sent them."""

    def __init__(self, config: pytest.Config) -> None:
        super().__init__(config)
        received = config.workerinput  # type: ignore[attr-defined]
        self.worker_id = received["workerid"]
        run = received.get(WORKERINPUT + "_run")
        if run:
            self.run_id, self.seed = run[0], int(run[1])
        shard = received.get(WORKERINPUT + "_shard")
        self.shard = (int(shard[0]), int(shard[1])) if shard else None
        info = received.get(WORKERINPUT)
        if info:
            from harness.pytest.tracing import RunTracing

            self.info = info
            self.export(info)
            self.tracing = RunTracing(received[WORKERINPUT + "_traces"])
            self.tracing.activate(info)
            config.add_cleanup(self.tracing.close)
