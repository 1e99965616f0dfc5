"""Who owns each emulator the harness started in a project, and what to do with orphans.

Every emulator the harness launches gets a record, ``<report dir>/emulators/<pid>.json``:
the emulator's identity (pid and start time, so a reused pid never matches),
its owner's identity (the process holding its lifeline), its port and its
scratch folder. A kept emulator's record says ``kept``: its owner is then the
state file (``emulator.json``), not a process.

:func:`sweep` is run by the next run on the local target, ``harness down`` and
``harness gc``. It stops what nobody owns any more and says what it stopped:

* an emulator whose owner has ended (the lifeline normally ends it first; this
  catches what it cannot, such as an emulator SIGKILLed mid-shutdown);
* a kept emulator that its state file no longer names;
* the processes left in a dead emulator's process group (Lambda runtimes of an
  emulator killed by SIGKILL), and its scratch folder (extracted Lambda code).

A session that stops its emulator hands the scratch folder to a detached
remover (:func:`forget_later`): removing the code of every Lambda runtime
takes from a fraction of a second to many seconds on a busy machine, and
nothing in the run depends on it. The record stays until the folder is gone
and names the remover; a sweep leaves a record alone while its remover runs,
and removes the folder itself when the remover is gone (killed) before it
finished.

Processes are matched by pid and start time, never by name.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import procs

FOLDER = "emulators"
STATE_FILE = "emulator.json"


@dataclass(frozen=True)
class Record:
    path: Path
    data: dict[str, Any]

    @property
    def pid(self) -> int:
        return int(self.data.get("emulator", {}).get("pid", 0))


def register(run_dir: Path, pid: int, *, port: int, scratch: Path) -> Path:
    """Record an emulator this process has just started (and owns through its lifeline)."""
    folder = run_dir / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{pid}.json"
    data = {
        "emulator": procs.identity(pid),
        "owner": procs.identity(),
        "port": port,
        "scratch": str(scratch),
        "kept": False,
    }
    path.write_text(json.dumps(data))
    return path


def mark_kept(run_dir: Path, pid: int) -> None:
    """The emulator is handed over to its state file."""
    path = run_dir / FOLDER / f"{pid}.json"
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text())
        data["kept"] = True
        path.write_text(json.dumps(data))


def forget(run_dir: Path, pid: int | None, *, scratch: str | Path | None = None) -> None:
    """The emulator was stopped by its owner: drop its record and its scratch folder."""
    if pid is not None:
        path = run_dir / FOLDER / f"{pid}.json"
        if scratch is None:
            with contextlib.suppress(OSError, ValueError):
                scratch = json.loads(path.read_text()).get("scratch")
        with contextlib.suppress(OSError):
            path.unlink()
    if scratch:
        shutil.rmtree(Path(scratch), ignore_errors=True)


# Stdlib only, no site (-I -S): the remover starts in a few milliseconds and imports nothing of the run.
# It starts once its stdin closes: after the record names it (or its caller has ended).
_REMOVER = (
    "import os, shutil, sys\n"
    "while os.read(0, 64): pass\n"
    "shutil.rmtree(sys.argv[2], ignore_errors=True)\n"
    "try: os.unlink(sys.argv[1])\n"
    "except OSError: pass"
)


def forget_later(run_dir: Path, pid: int, *, scratch: str | Path | None) -> subprocess.Popen[bytes] | None:
    """The emulator was stopped by its owner: a detached remover removes its scratch folder, then its record.

    Call it once nothing of the emulator's process group runs any more (a
    runtime still running could write into the folder again). The remover runs
    in a session of its own, with no terminal and no inherited output, so it
    neither holds a pipe its caller's reader waits on nor dies with the caller;
    the record names it until it is done, and if it ends early anyway the next
    :func:`sweep` finishes the job. Without a folder to remove, or without a
    process to spare, this is :func:`forget`. Returns the remover (None if none).
    """
    path = run_dir / FOLDER / f"{pid}.json"
    if not scratch or not Path(scratch).is_dir() or not path.is_file():
        forget(run_dir, pid, scratch=scratch)
        return None
    try:
        remover = subprocess.Popen(  # noqa: S603 - this interpreter and fixed arguments
            [sys.executable, "-I", "-S", "-c", _REMOVER, str(path), str(scratch)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,
        )
    except OSError:
        forget(run_dir, pid, scratch=scratch)
        return None
    try:
        data = json.loads(path.read_text())
        data["remover"] = procs.identity(remover.pid)
        _replace(path, json.dumps(data))
    except (OSError, ValueError):
        pass  # the record is the remover's to drop either way
    finally:
        assert remover.stdin is not None
        remover.stdin.close()  # go
    return remover


def _replace(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (a reader never sees half a record)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def records(run_dir: Path) -> list[Record]:
    out = []
    for path in sorted((run_dir / FOLDER).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("emulator"), dict):
            out.append(Record(path, data))
    return out


def _kept_pid(run_dir: Path) -> int | None:
    try:
        return int(json.loads((run_dir / STATE_FILE).read_text()).get("pid", 0)) or None
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def sweep(run_dir: Path) -> list[str]:
    """Stop this project's orphaned emulators and their leftovers; one line per thing stopped."""
    said: list[str] = []
    kept = _kept_pid(run_dir)
    for rec in records(run_dir):
        alive = procs.identity_alive(rec.data["emulator"])
        if alive is None:
            continue  # another machine, container or boot: not ours to judge
        if not alive and procs.identity_alive(rec.data.get("remover")):
            continue  # stopped by its owner; its remover is removing the scratch folder
        if alive:
            why = _orphaned(rec, kept)
            if not why:
                continue
            stopped = [rec.pid, *(p.pid for p in procs.descendants(rec.pid))]
            procs.stop_tree(rec.pid)
            said.append(
                f"stopped an orphaned emulator (MiniStack pid {rec.pid}, port {rec.data.get('port')}; {why})"
                + (f" and {len(stopped) - 1} process(es) it started" if len(stopped) > 1 else "")
            )
        else:
            left = procs.group_members(rec.data["emulator"])
            for p in left:
                with contextlib.suppress(Exception):
                    p.kill()
            if left:
                said.append(
                    f"stopped {len(left)} process(es) left by the dead emulator pid {rec.pid} "
                    f"(pids {', '.join(str(p.pid) for p in left)})"
                )
        scratch = rec.data.get("scratch")
        if scratch and Path(scratch).exists():
            said.append(f"removed the orphaned emulator's scratch folder {scratch}")
        forget(run_dir, rec.pid, scratch=scratch)
    return said


def _orphaned(rec: Record, kept: int | None) -> str:
    """Why a live emulator belongs to nobody ('' if it has an owner)."""
    if rec.data.get("kept"):
        return "" if kept == rec.pid else "it was kept, but the state file no longer names it"
    owner = rec.data.get("owner") or {}
    if procs.identity_alive(owner) is False:
        return f"the process that started it, pid {owner.get('pid')}, has ended"
    return ""
