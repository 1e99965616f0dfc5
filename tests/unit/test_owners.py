"""Emulator ownership records and the orphan sweep (no emulator: identities of this process and dead pids)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from harness import lifeline, procs
from harness.emulator import owners


def _dead_identity() -> dict[str, object]:
    """This machine, a pid no process has: an emulator (or owner) that has ended."""
    pid = 2**22 - 3
    while Path(f"/proc/{pid}").exists():
        pid -= 1
    return {**procs.identity(), "pid": pid, "started": 1.0}


def _write(run_dir: Path, name: str, data: dict[str, object]) -> Path:
    folder = run_dir / owners.FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


def test_register_mark_kept_and_forget(tmp_path: Path) -> None:
    scratch = tmp_path / "emulator-tmp" / "1234-x"
    scratch.mkdir(parents=True)
    path = owners.register(tmp_path, os.getpid(), port=1234, scratch=scratch)
    data = json.loads(path.read_text())
    assert data["emulator"]["pid"] == os.getpid() and data["owner"]["pid"] == os.getpid()
    assert data["kept"] is False and data["scratch"] == str(scratch)
    owners.mark_kept(tmp_path, os.getpid())
    assert json.loads(path.read_text())["kept"] is True
    owners.forget(tmp_path, os.getpid())
    assert not path.exists() and not scratch.exists()


def test_sweep_drops_a_dead_emulator_and_removes_its_scratch(tmp_path: Path) -> None:
    scratch = tmp_path / "emulator-tmp" / "old"
    (scratch / "code").mkdir(parents=True)
    dead = _dead_identity()
    path = _write(tmp_path, str(dead["pid"]), {"emulator": dead, "owner": dead, "port": 1, "scratch": str(scratch)})
    said = owners.sweep(tmp_path)
    assert said == [f"removed the orphaned emulator's scratch folder {scratch}"]
    assert not path.exists() and not scratch.exists()
    assert owners.sweep(tmp_path) == []  # nothing to do the second time


def test_sweep_leaves_an_owned_or_kept_emulator_alone(tmp_path: Path) -> None:
    me = procs.identity()
    # A live "emulator" (this process) whose owner is alive: not an orphan.
    owned = _write(tmp_path, "owned", {"emulator": me, "owner": me, "port": 1, "scratch": ""})
    assert owners.sweep(tmp_path) == [] and owned.exists()
    # Kept and named by the state file: the state file owns it, whatever became of its starter.
    owned.unlink()
    kept = _write(tmp_path, "kept", {"emulator": me, "owner": _dead_identity(), "kept": True, "scratch": ""})
    (tmp_path / owners.STATE_FILE).write_text(json.dumps({"pid": os.getpid()}))
    assert owners.sweep(tmp_path) == [] and kept.exists()


def test_sweep_ignores_records_of_another_machine(tmp_path: Path) -> None:
    other = {"machine": "elsewhere|boot|ns", "pid": 1, "started": 1.0}
    path = _write(tmp_path, "other", {"emulator": other, "owner": other, "scratch": ""})
    assert owners.sweep(tmp_path) == [] and path.exists()


def test_unreadable_records_are_skipped(tmp_path: Path) -> None:
    _write(tmp_path, "x", {"emulator": "not a dict"})
    (tmp_path / owners.FOLDER / "broken.json").write_text("{")
    assert owners.records(tmp_path) == []


@pytest.mark.parametrize("chunks", [[lifeline.KEEP], [b"ke", b"ep\n"]])
def test_the_lifeline_hands_over_on_keep(chunks: list[bytes]) -> None:
    read_end, write_end = lifeline.pipe()
    done = threading.Event()
    thread = threading.Thread(target=lambda: (lifeline._wait(read_end, None), done.set()), daemon=True)
    thread.start()
    for chunk in chunks:
        os.write(write_end, chunk)
    thread.join(10)
    os.close(write_end)
    assert done.is_set(), "the watcher did not return after the keep message"


def test_watch_without_a_lifeline_does_nothing() -> None:
    env = {"PATH": "/bin"}
    assert lifeline.watch(env) is None
    env[lifeline.LIFELINE_ENV] = "not-a-number"
    assert lifeline.watch(env) is None and lifeline.LIFELINE_ENV not in env
