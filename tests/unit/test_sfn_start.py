"""The Step Functions start adaptation: the pinned emulator's fixed pause before an execution's first state goes,
every other sleep stays."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from harness.emulator import adapt, guard, sfn_start


def test_only_the_pause_of_the_code_it_names_is_skipped() -> None:
    slept: list[float] = []
    real = SimpleNamespace(sleep=slept.append, monotonic=lambda: 42.0)

    def run_execution() -> None:
        shim.sleep(0.15)  # the pause: skipped
        shim.sleep(0.3)  # a Wait state of its own: slept

    shim = sfn_start.PauselessTime(real, run_execution.__code__)
    run_execution()
    shim.sleep(0.15)  # the same seconds from other code: slept

    assert slept == [0.3, 0.15]
    assert shim.monotonic() == 42.0  # every other name is the real module's


def test_applied_to_the_pinned_emulator_once(monkeypatch: pytest.MonkeyPatch) -> None:
    sfn = guard.module(sfn_start.SFN, sfn_start.NAME)
    monkeypatch.setattr(sfn, "time", time)  # restored after the test: this process's module stays as shipped
    assert sfn_start.pauses(sfn._run_execution.__code__)  # the gap, as pinned

    sfn_start.apply()
    shim = sfn.time
    sfn_start.apply()  # a second time changes nothing

    assert isinstance(shim, sfn_start.PauselessTime) and sfn.time is shim
    assert shim._code is sfn._run_execution.__code__
    assert sfn_start.NAME in [name for name, _fn in adapt.ADAPTATIONS]


def test_an_emulator_without_the_pause_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    sfn = guard.module(sfn_start.SFN, sfn_start.NAME)
    monkeypatch.setattr(sfn, "time", time)

    def _run_execution(exec_arn: str) -> None:  # the shape, without the pause
        time.sleep(0.01)

    monkeypatch.setattr(sfn, "_run_execution", _run_execution)
    with pytest.raises(guard.AdaptationError, match="closed this gap, remove the adaptation"):
        sfn_start.apply()
    assert sfn.time is time
