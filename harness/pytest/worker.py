"""A pytest-xdist worker: it reads what the controller sent through ``workerinput``, once.

A worker deploys nothing and tears nothing down: it sees the controller's
stack (environment, URL routing, trace instrumentation), runs its share of the
tests, and sends each test's trace record back on the report. On aws with a
role it assumes the role itself, from what the run started with, so its
environment's keys are refreshed between its tests as the controller's are.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.pytest.role import WORKERINPUT, Role


class Worker(Role):
    """Run id, seed, shard, stack and trace state, as the controller sent them."""

    credentials: Any = None  # on aws with a role: the worker's own RunCredentials, refreshed when due

    def __init__(self, config: pytest.Config) -> None:
        super().__init__(config)
        received = config.workerinput  # type: ignore[attr-defined]
        self.worker_id = received["workerid"]
        run = received.get(WORKERINPUT + "_run")
        if run:
            self.run_id, self.seed = run[0], int(run[1])
        shard = received.get(WORKERINPUT + "_shard")
        self.shard = (int(shard[0]), int(shard[1])) if shard else None
        spec = received.get(WORKERINPUT + "_aws")
        if spec:
            self.credentials = _own_credentials(spec)
        info = received.get(WORKERINPUT)
        if info:
            from harness.pytest.tracing import RunTracing

            self.quick_handoffs()
            self.info = info
            self.export(info)
            self.tracing = RunTracing(received[WORKERINPUT + "_traces"])
            self.tracing.activate(info)
            config.add_cleanup(self.tracing.close)

    def credential_env(self) -> dict[str, str | None]:
        """On aws with a role: this worker's own refreshed keys in, every competing variable out."""
        if self.credentials is None:
            return {}
        from harness.targets import aws_credentials

        return aws_credentials.process_env(self.credentials)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.close_listeners()  # before the controller's teardown checks what is left


def _own_credentials(spec: dict[str, Any]) -> Any:
    """The run's role, assumed by this worker; on failure, the keys it inherited (they last the role's session)."""
    from harness.targets import aws_credentials

    try:
        return aws_credentials.for_worker(spec)
    except Exception as exc:  # noqa: BLE001 - the run goes on with the inherited keys, and says so
        import warnings

        warnings.warn(
            f"branchstack: this worker could not assume {spec.get('role_arn')} itself ({exc}); its tests use the "
            "keys it started with, which end with the role's session",
            stacklevel=2,
        )
        return None
