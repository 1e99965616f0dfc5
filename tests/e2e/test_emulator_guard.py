"""The embedded emulator is pinned: the launcher refuses any other MiniStack version."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.emulator import PINNED_VERSION, adapt
from harness.errors import TargetError
from harness.settings import resolve
from harness.targets.local import LocalTarget

pytestmark = pytest.mark.e2e


def test_check_version_refuses_another_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapt, "installed_version", lambda: "9.9.9")
    with pytest.raises(adapt.AdaptationError) as err:
        adapt.check_version()
    assert "9.9.9" in str(err.value)
    assert PINNED_VERSION in str(err.value)
    assert f"pip install ministack=={PINNED_VERSION}" in str(err.value)


def test_the_launcher_applies_nothing_on_another_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapt, "installed_version", lambda: "9.9.9")
    with pytest.raises(adapt.AdaptationError, match="9.9.9"):
        adapt.apply_all()


def test_local_target_refuses_to_start_another_version(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(adapt, "installed_version", lambda: "9.9.9")
    settings = resolve({}, {}, tmp_path)
    target = LocalTarget(settings, tmp_path / "report")
    with pytest.raises(TargetError) as err:
        target.start()
    assert "9.9.9" in err.value.message and PINNED_VERSION in err.value.message
    assert target.pid is None, "an emulator was started despite the version mismatch"


def test_installed_version_is_the_pinned_one() -> None:
    assert adapt.installed_version() == PINNED_VERSION
    assert adapt.check_version() == PINNED_VERSION
