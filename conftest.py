"""Project-wide pytest configuration.

The harness itself is loaded as a plugin through its ``pytest11`` entry point;
this file only sets the hypothesis profiles the project's tests use.

They are registered when something may use them, not when this file loads:
importing hypothesis takes a fifth of a second, and a run of scenario files
alone (the edit loop: one YAML scenario) never needs it. Before the first
test module is collected (its module may read a profile at import), or at
configure when ``--hypothesis-profile`` is given (hypothesis's plugin loads
the named profile right after).
"""

from __future__ import annotations

import functools

import pytest


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


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("hypothesis_profile", None):
        register_profiles()


def pytest_collectstart(collector: pytest.Collector) -> None:
    if isinstance(collector, pytest.Module):  # its module is imported next
        register_profiles()
