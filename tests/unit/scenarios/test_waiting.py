"""``eventually``: retries, deadline, backoff cap, jitter, and the error it raises."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from harness.errors import ExpectationFailed
from harness.scenarios.waiting import WaitTimeout, eventually

# The `clock` fixture (conftest.FakeClock): calling it reads time, .sleep advances it.
FakeClock = Any


def flaky(failures: int) -> tuple[list[int], object]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise AssertionError(f"observed {len(calls)}")
        return "done"

    return calls, fn


def test_returns_the_value_after_n_tries(clock: FakeClock) -> None:
    calls, fn = flaky(3)
    assert eventually(fn, within=10, interval=0.1, backoff=1.5, jitter=0, clock=clock, sleep=clock.sleep) == "done"
    assert len(calls) == 4
    assert clock.sleeps == pytest.approx([0.1, 0.15, 0.225])


def test_first_try_success_does_not_sleep(clock: FakeClock) -> None:
    assert eventually(lambda: 42, clock=clock, sleep=clock.sleep) == 42
    assert clock.sleeps == []


def test_times_out_with_the_last_observation(clock: FakeClock) -> None:
    calls, fn = flaky(10_000)
    with pytest.raises(WaitTimeout) as info:
        eventually(fn, within=5, interval=0.5, jitter=0, description="order shipped", clock=clock, sleep=clock.sleep)
    err = info.value
    assert isinstance(err, ExpectationFailed) and isinstance(err, AssertionError)
    assert err.attempts == len(calls)
    assert str(err.last_error) == f"observed {len(calls)}"
    assert "order shipped was not met within 5s" in str(err)
    assert f"last failure: observed {len(calls)}" in str(err)
    assert err.__cause__ is err.last_error
    # The last pause is cut short so the final attempt happens exactly at the deadline.
    assert sum(clock.sleeps) == pytest.approx(5)
    assert err.elapsed == pytest.approx(5)


def test_backoff_is_capped(clock: FakeClock) -> None:
    _, fn = flaky(10_000)
    with pytest.raises(WaitTimeout):
        eventually(fn, within=30, interval=1, backoff=2, max_interval=4, jitter=0, clock=clock, sleep=clock.sleep)
    assert clock.sleeps[:5] == [1, 2, 4, 4, 4]
    assert max(clock.sleeps) == 4


def test_jitter_stays_within_bounds(clock: FakeClock) -> None:
    _, fn = flaky(10_000)
    with pytest.raises(WaitTimeout):
        eventually(
            fn, within=100, interval=1, backoff=1, jitter=0.2, rng=random.Random(3), clock=clock, sleep=clock.sleep
        )
    body = clock.sleeps[:-1]  # the last one is trimmed to the deadline
    assert all(0.8 <= s <= 1.2 for s in body)
    assert len(set(body)) > 1


def test_within_zero_is_one_attempt(clock: FakeClock) -> None:
    calls, fn = flaky(1)
    with pytest.raises(WaitTimeout, match=r"\(1 attempt,"):
        eventually(fn, within=0, clock=clock, sleep=clock.sleep)
    assert len(calls) == 1 and clock.sleeps == []


def test_other_exceptions_propagate_at_once(clock: FakeClock) -> None:
    def boom() -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        eventually(boom, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == []


def test_retry_on_widens_what_counts_as_not_yet(clock: FakeClock) -> None:
    tries = iter([LookupError("not yet"), None])

    def fn() -> str:
        exc = next(tries)
        if exc:
            raise exc
        return "ok"

    assert eventually(fn, retry_on=(LookupError,), clock=clock, sleep=clock.sleep) == "ok"


@pytest.mark.parametrize(
    "kwargs", [{"within": -1}, {"interval": 0}, {"backoff": 0.5}, {"max_interval": 0}, {"jitter": 1}]
)
def test_bad_arguments(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="eventually"):
        eventually(lambda: 1, **kwargs)


def test_default_description_is_the_function_name(clock: FakeClock) -> None:
    def order_is_shipped() -> None:
        raise AssertionError("status PENDING")

    with pytest.raises(WaitTimeout, match="order_is_shipped was not met"):
        eventually(order_is_shipped, within=1, clock=clock, sleep=clock.sleep)


def test_the_default_schedule_polls_at_once_then_short_pauses_growing_by_a_fifth(clock: FakeClock) -> None:
    calls, fn = flaky(4)
    assert eventually(fn, jitter=0, clock=clock, sleep=clock.sleep) == "done"
    assert len(calls) == 5  # the first attempt slept nothing before it
    assert clock.sleeps == pytest.approx([0.05, 0.06, 0.072, 0.0864])


def test_the_default_pauses_stop_growing_at_one_second(clock: FakeClock) -> None:
    _, fn = flaky(10_000)
    with pytest.raises(WaitTimeout):
        eventually(fn, within=30, jitter=0, clock=clock, sleep=clock.sleep)
    assert max(clock.sleeps) == pytest.approx(1.0)
    # a condition that holds from moment t on is seen by 1.2 t + 50 ms at the latest
    times = [sum(clock.sleeps[:i]) for i in range(len(clock.sleeps) + 1)]
    assert all(b - a <= 0.2 * a + 0.05 + 1e-9 for a, b in itertools.pairwise(times))
