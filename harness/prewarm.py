"""Imports a stack session needs once its stack is up, made while it waits for the stack.

The stack starts on a thread beside collection; when the session reaches
something that needs the stack (a test module, a conftest, the test loop) it
waits for the start, idle. What it needs right after (the HTTP client the
exported URLs are routed through, Faker and its providers, the scenario
engine, the step runner) used to be imported after that wait, one after the
other. A background thread imports them during the wait instead, and the
session joins it before it goes on, so nothing after the wait runs while the
thread still imports.

Its own steps only import (and build one throwaway Faker, whose construction
is what imports its providers; and fill hypothesis's cache of the project's
constants, see :func:`hypothesis_constants`): nothing decided. The caller may add steps
that build what the session will use (the controller adds the tests' boto3
clients, ``Role.make_clients_ahead``), handed over by the join. An import that fails is recorded and left alone: Python does not keep a
failed module, so the session's own import fails again where it always did,
with its usual error.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable, Sequence

#: What a stack session imports after its deploy, in the order it needs them.
AFTER_DEPLOY = (
    "requests",  # the export's URL routing
    "faker",
    "harness.scenarios.loader",  # collection of scenario files (PyYAML, the schema, the steps)
    "harness.scenarios.runner",  # the session's preparation of its tests
    "harness.function_logs",
    # the start's checks after the deploy and the session's end (the lifecycle imports them where used,
    # so they are no part of the work before the deploy command's launch)
    "harness.drift",
    "harness.fidelity",
    "harness.teardown",
)


def faker_providers() -> None:
    from faker import Faker

    Faker()  # the first Faker imports the providers of its locale


def hypothesis_constants() -> None:
    """Hypothesis's pytest plugin gathers the constants of the project's own modules when collection ends (for
    its property tests to try): every module imported so far, read once and cached. Gathered here, while the
    session waits for its stack, what is left for the end of collection is the modules imported after (the
    test modules and what they import). The same constants either way; only where hypothesis is imported
    already (this never imports it), and only as long as hypothesis keeps that cache.
    """
    if "hypothesis" not in sys.modules:
        return
    from hypothesis.internal.conjecture.providers import _get_local_constants

    _get_local_constants()


class Prewarm:
    """A daemon thread importing ``modules`` (then running ``extra``); :meth:`join` before using them."""

    def __init__(
        self,
        modules: Sequence[str] = AFTER_DEPLOY,
        extra: Sequence[Callable[[], object]] = (faker_providers, hypothesis_constants),
    ) -> None:
        self.modules = tuple(modules)
        self.extra = tuple(extra)
        self.failed: list[str] = []  # what could not be imported (the session's own import will say why)
        self._thread = threading.Thread(target=self._run, name="branchstack-prewarm", daemon=True)

    def start(self) -> Prewarm:
        self._thread.start()
        return self

    def join(self) -> None:
        if self._thread.is_alive() or self._thread.ident is not None:
            self._thread.join()

    def _run(self) -> None:
        for name in self.modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the session's own import raises it where it belongs
                self.failed.append(name)
        for step in self.extra:
            try:
                step()
            except Exception:  # noqa: BLE001 - as above
                self.failed.append(getattr(step, "__name__", repr(step)))
