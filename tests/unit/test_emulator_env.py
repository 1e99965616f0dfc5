"""The embedded emulator's environment keeps everything it writes inside the run's scratch folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.targets.local import child_env


def test_every_folder_the_emulator_writes_is_inside_its_scratch_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MiniStack's defaults are machine-wide: /tmp for its pid file, /tmp/ministack-state for Cognito's key."""
    monkeypatch.setenv("TMPDIR", "/elsewhere")
    monkeypatch.setenv("STATE_DIR", "/tmp/ministack-state")  # noqa: S108 - the default being replaced
    scratch = tmp_path / "emulator-tmp" / "1234-x"
    env = child_env(4566, scratch, region="us-east-1", iam_enforcement=True)
    # The folders MiniStack 1.5.33 writes into: its pid file and temporary files, S3's objects,
    # STATE_DIR (Cognito's signing keys; persistence, when it is on).
    folders = {k: env[k] for k in ("TMPDIR", "S3_DATA_DIR", "STATE_DIR")}
    assert all(Path(v).is_relative_to(scratch) for v in folders.values()), folders
