"""Emulator ownership records and the orphan sweep (no emulator: identities of this process and dead pids)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
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


def _stopped_emulator(run_dir: Path) -> tuple[Path, Path, int]:
    """A record and a scratch folder of an emulator that has been stopped (its pid: a dead one)."""
    scratch = run_dir / "emulator-tmp" / "5678-x"
    (scratch / "ministack-lambda-fn" / "code").mkdir(parents=True)
    (scratch / "ministack-lambda-fn" / "code" / "app.py").write_text("x = 1\n")
    dead = _dead_identity()
    path = _write(run_dir, str(dead["pid"]), {"emulator": dead, "owner": procs.identity(), "scratch": str(scratch)})
    return path, scratch, int(dead["pid"])  # type: ignore[call-overload]


def test_forget_later_removes_the_scratch_folder_then_the_record_in_a_detached_remover(tmp_path: Path) -> None:
    path, scratch, pid = _stopped_emulator(tmp_path)
    remover = owners.forget_later(tmp_path, pid, scratch=scratch)
    assert remover is not None
    assert os.getpgid(remover.pid) == remover.pid  # a session of its own: it does not end with this run
    assert remover.wait(30) == 0  # hang guard
    assert not scratch.exists() and not path.exists()
    assert owners.sweep(tmp_path) == []


def test_forget_later_without_a_folder_forgets_at_once(tmp_path: Path) -> None:
    path, scratch, pid = _stopped_emulator(tmp_path)
    shutil.rmtree(scratch)
    assert owners.forget_later(tmp_path, pid, scratch=scratch) is None
    assert not path.exists()


def test_a_sweep_leaves_a_folder_to_its_live_remover_and_takes_over_from_a_dead_one(tmp_path: Path) -> None:
    path, scratch, _pid = _stopped_emulator(tmp_path)
    data = json.loads(path.read_text())
    _write(tmp_path, path.stem, {**data, "remover": procs.identity()})  # this process: a remover still at work
    assert owners.sweep(tmp_path) == [] and scratch.exists() and path.exists()
    _write(tmp_path, path.stem, {**data, "remover": _dead_identity()})  # killed before it finished
    assert owners.sweep(tmp_path) == [f"removed the orphaned emulator's scratch folder {scratch}"]
    assert not scratch.exists() and not path.exists()


KILLED_WHILE_HANDING_OVER = """
import os, signal, sys
from pathlib import Path
from harness.emulator import owners
owners._replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)  # SIGKILL before the record names the remover
owners.forget_later(Path(sys.argv[1]), int(sys.argv[2]), scratch=sys.argv[3])
"""


def test_a_run_killed_while_it_hands_the_folder_over_still_leaves_nothing(tmp_path: Path) -> None:
    path, scratch, pid = _stopped_emulator(tmp_path)
    killed = subprocess.run(  # noqa: S603 - this interpreter
        [sys.executable, "-c", KILLED_WHILE_HANDING_OVER, str(tmp_path), str(pid), str(scratch)], timeout=60
    )
    assert killed.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 30  # hang guard: the orphaned remover goes on once its stdin closes
    while (scratch.exists() or path.exists()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not scratch.exists() and not path.exists()


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
