"""Walks of a project or report folder while a detached remover removes a stopped emulator's scratch folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness import fingerprint
from harness.tagged.masking import mask_files


@pytest.fixture
def vanishing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tree whose scratch folder goes the moment a walk comes to list it."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("SECRET = 'hunter2'\n")
    scratch = tmp_path / "harness-report" / "emulator-tmp" / "1234-x"
    (scratch / "code").mkdir(parents=True)
    (scratch / "code" / "app.py").write_text("hunter2\n")
    real = os.scandir

    def scandir(path: str | os.PathLike[str] | int = ".") -> object:
        if not isinstance(path, int) and Path(path) == scratch / "code":
            shutil.rmtree(scratch)
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    return tmp_path


def test_the_fingerprint_of_a_folder_outside_git_skips_a_folder_that_goes(vanishing: Path) -> None:
    assert fingerprint.candidate_files(vanishing) == ["src/app.py"]  # tmp_path is no git checkout


def test_masking_leaves_out_the_scratch_folder_and_skips_a_folder_that_goes(vanishing: Path) -> None:
    assert mask_files(vanishing, ["hunter2"], exclude=("harness-report",)) == []
    assert "hunter2" not in (vanishing / "src" / "app.py").read_text()
    assert mask_files(vanishing, ["hunter2"]) == []  # not excluded: walked, and its vanishing is no error
