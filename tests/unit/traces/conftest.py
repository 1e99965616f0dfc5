"""Fixtures for the trace tests; helpers are in ``traces_support.py``."""

from __future__ import annotations

import pytest

from tests.unit.fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
