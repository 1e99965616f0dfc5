"""A stack session hands the GIL between threads sooner, and only for as long as the session lasts."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.pytest.role import HANDOFF_SECONDS, Role


class Config:
    def __init__(self) -> None:
        self.cleanups: list[Callable[[], Any]] = []

    def add_cleanup(self, func: Callable[[], Any]) -> None:
        self.cleanups.append(func)

    def end(self) -> None:  # as pytest runs its cleanups: last added first
        while self.cleanups:
            self.cleanups.pop()()


@pytest.fixture
def interval() -> Iterator[float]:
    before = sys.getswitchinterval()
    yield before
    sys.setswitchinterval(before)


def test_the_session_lowers_the_switch_interval_and_its_end_puts_it_back(interval: float) -> None:
    sys.setswitchinterval(0.005)
    config = Config()
    Role(config).quick_handoffs()  # type: ignore[arg-type]
    assert sys.getswitchinterval() == HANDOFF_SECONDS < 0.005
    config.end()
    assert sys.getswitchinterval() == 0.005


def test_a_process_that_already_hands_over_sooner_is_left_as_it_is(interval: float) -> None:
    sys.setswitchinterval(HANDOFF_SECONDS / 2)
    config = Config()
    Role(config).quick_handoffs()  # type: ignore[arg-type]
    assert sys.getswitchinterval() == HANDOFF_SECONDS / 2
    assert config.cleanups == []
