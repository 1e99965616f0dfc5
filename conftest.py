"""Project-wide pytest configuration.

The harness itself is loaded as a plugin through its ``pytest11`` entry point;
this file only sets the hypothesis profiles the project's tests use.
"""

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
