"""Fakes shared by the unit tests (imported as ``tests.unit.fakes``)."""

from __future__ import annotations


class FakeClock:
    """``clock``/``sleep`` pair: sleeping advances time instantly and is recorded."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, seconds
        self.sleeps.append(seconds)
        self.now += seconds
