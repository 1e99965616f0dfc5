"""Project-wide pytest configuration.

The harness itself is loaded as a plugin through its ``pytest11`` entry point;
this file only sets the hypothesis profiles the project's tests use.

Importing hypothesis takes a fifth of a second, so it is not done when this
file loads: a thread imports it and registers the profiles from the start of
collection (a stack session's deploy command runs by then; hypothesis's own
plugin imports it at the terminal summary of every session anyway). What needs the profiles
waits for that thread: a test module about to be imported (it may read a
profile at import), and ``--hypothesis-profile`` at configure (hypothesis's
plugin loads the named profile right after).
"""

from __future__ import annotations

import functools
import threading

import pytest

_importing: list[threading.Thread] = []  # the thread of pytest_collection


@functools.cache
def register_profiles() -> None:
    from hypothesis import HealthCheck, settings

    # Property tests against a deployed stack: few examples, no deadline (each
    # example makes network calls), no health check on slow data generation.
    settings.register_profile(
        "stack",
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )

    # `make test-fast`: the unit tests' property tests try a fifth of their examples (tests/unit/examples.py).
    settings.register_profile("fast", max_examples=20)


def _register_quietly() -> None:
    try:
        register_profiles()
    except Exception:  # noqa: BLE001, S110 - not cached: the main thread's own call raises it
        pass


def profiles_ready() -> None:
    for thread in _importing:
        thread.join()
    register_profiles()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("hypothesis_profile", None):
        profiles_ready()


def pytest_collection(session: pytest.Session) -> None:
    thread = threading.Thread(target=_register_quietly, name="hypothesis-profiles", daemon=True)
    thread.start()
    _importing.append(thread)


def pytest_collectstart(collector: pytest.Collector) -> None:
    if isinstance(collector, pytest.Module):  # its module is imported next
        profiles_ready()
