"""The one polling loop: retry an observation until it is accepted or time runs out.

Every wait in the harness is this loop with different data: the operation
(``fn``), the delay schedule (``interval`` growing by ``backoff`` up to
``max_interval``, with jitter so parallel workers do not poll in lockstep),
the deadline (``within``) and the acceptor (``fn`` returns instead of raising).
Time and sleep are injectable so tests run in microseconds.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from typing import TypeVar

from harness.errors import ExpectationFailed
from harness.traces.propagation import poll_attempt

T = TypeVar("T")
_POLL_IDS = itertools.count(1)

#: The default schedule: the first attempt at once, then 50 ms pauses growing by a fifth, at most 1 s.
#: A condition that holds after t seconds is seen at most about t/5 (or 50 ms) late, for a few
#: dozen cheap observations in a 10 s wait.
INTERVAL = 0.05
BACKOFF = 1.2
MAX_INTERVAL = 1.0


class WaitTimeout(ExpectationFailed):
    """``eventually`` ran out of time; carries the last failure (the last observation)."""

    def __init__(
        self, description: str, *, within: float, attempts: int, elapsed: float, last_error: BaseException
    ) -> None:
        self.description = description
        self.within = within
        self.attempts = attempts
        self.elapsed = elapsed
        self.last_error = last_error
        plural = "attempt" if attempts == 1 else "attempts"
        super().__init__(
            f"{description} was not met within {within:g}s ({attempts} {plural}, {elapsed:.2f}s)\n"
            f"last failure: {last_error}",
            hint="raise `within` if the system is just slow; otherwise the last failure above is the state it settled in",
        )


def eventually(
    fn: Callable[[], T],
    *,
    within: float = 10.0,
    interval: float = INTERVAL,
    backoff: float = BACKOFF,
    max_interval: float = MAX_INTERVAL,
    description: str | None = None,
    jitter: float = 0.1,
    retry_on: tuple[type[BaseException], ...] = (AssertionError,),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """Call ``fn`` until it returns, and return its value.

    ``fn`` signals "not yet" by raising ``AssertionError`` (or any of
    ``retry_on``); other exceptions propagate at once. Pauses start at
    ``interval`` and grow by ``backoff`` up to ``max_interval``, each varied by
    ``±jitter`` (a fraction) and cut short so the last attempt runs at the
    deadline. When ``within`` seconds have passed, raises :class:`WaitTimeout`
    (an ``AssertionError``) that shows the last failure; ``within=0`` means a
    single attempt.
    """
    if within < 0 or interval <= 0 or backoff < 1 or max_interval <= 0 or not 0 <= jitter < 1:
        raise ValueError(
            f"eventually: need within >= 0, interval > 0, backoff >= 1, max_interval > 0, 0 <= jitter < 1; "
            f"got within={within}, interval={interval}, backoff={backoff}, max_interval={max_interval}, "
            f"jitter={jitter}"
        )
    rng = rng or random.Random()
    what = description or getattr(fn, "__name__", "condition")
    start = clock()
    deadline = start + within
    delay = min(interval, max_interval)
    attempts = 0
    poll_id = f"p{next(_POLL_IDS)}"  # the traced calls of each attempt carry (poll_id, attempt)
    while True:
        attempts += 1
        try:
            with poll_attempt(poll_id, attempts):
                return fn()
        except retry_on as exc:
            last = exc
        now = clock()
        remaining = deadline - now
        if remaining <= 0:
            raise WaitTimeout(what, within=within, attempts=attempts, elapsed=now - start, last_error=last) from last
        sleep(min(remaining, delay * (1 + rng.uniform(-jitter, jitter))))
        delay = min(delay * backoff, max_interval)
