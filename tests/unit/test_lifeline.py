"""The lifeline: when the owner's end of the pipe closes, the whole process group ends and its scratch goes.

A stand-in for the emulator (a process in its own session that arms the
lifeline) keeps writing into its scratch folder from a thread of its own and
from a child that ignores SIGTERM, as MiniStack does while it serves a request
and as a Lambda runtime does when it writes its bytecode. Once the write end
closes, nothing of that group may run and the folder must be gone, and stay
gone: removed only after the last writer ended.

The stand-ins shorten the SIGTERM grace (:data:`harness.lifeline.TERM_GRACE`) to
a fraction of a second: their children ignore SIGTERM, so the grace still runs
out and the kill that follows is what ends them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from harness import lifeline, procs

#: The stand-ins' SIGTERM grace (the product's is 3 s): long enough for a child to end on SIGTERM if it would.
GRACE = 0.2

#: The child: ignores SIGTERM and writes into the folder until killed.
WRITER = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
folder, i = sys.argv[1], 0
while True:
    i += 1
    try:
        os.makedirs(os.path.join(folder, "runtime"), exist_ok=True)
        open(os.path.join(folder, "runtime", "%d.pyc" % i), "w").close()
    except OSError:
        pass
"""

#: The stand-in emulator: arms the lifeline, starts the writer and writes itself (mkdir with parents, as
#: the runtime sandbox does for its interpreter shims).
EMULATOR = f"""
import os, pathlib, subprocess, sys, threading
from harness import lifeline
lifeline.TERM_GRACE = {GRACE!r}
lifeline.watch()
folder = pathlib.Path(os.environ[lifeline.SCRATCH_ENV])
subprocess.Popen([sys.executable, "-c", sys.argv[1], str(folder)])

def write():
    i = 0
    while True:
        i += 1
        try:
            (folder / "shims").mkdir(parents=True, exist_ok=True)
            (folder / "shims" / str(i)).write_text("x")
        except OSError:
            pass

threading.Thread(target=write, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""


def _on_lifeline(argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    """``argv`` in a session of its own with the read end of a lifeline (``env`` added); its stdout is read."""
    read_end, write_end = lifeline.pipe()
    try:
        proc = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            argv,
            env={**os.environ, **env, lifeline.LIFELINE_ENV: str(read_end)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
            pass_fds=[read_end],
        )
    finally:
        os.close(read_end)
    return proc, write_end


def _start(scratch: Path) -> tuple[subprocess.Popen[str], int]:
    proc, write_end = _on_lifeline([sys.executable, "-c", EMULATOR, WRITER], {lifeline.SCRATCH_ENV: str(scratch)})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc, write_end


def test_closing_the_lifeline_ends_the_group_then_removes_the_scratch_folder(tmp_path: Path) -> None:
    scratch = tmp_path / "emulator-tmp" / "1234-x"
    scratch.mkdir(parents=True)
    proc, write_end = _start(scratch)
    ident = procs.identity(proc.pid)
    deadline = time.monotonic() + 10  # hang guard: both writers are running and writing
    while len(procs.group_members(ident)) < 2 or not (scratch / "runtime").exists():
        assert time.monotonic() < deadline, "the stand-in never started writing"
        time.sleep(0.02)
    try:
        os.close(write_end)  # the owner is gone
        proc.wait(30)  # hang guard
        deadline = time.monotonic() + 30  # hang guard: the remover ends the group, then removes the folder
        while scratch.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not procs.group_members(ident)
        assert not scratch.exists(), sorted(p.name for p in scratch.rglob("*"))[:10]
        time.sleep(0.5)  # nothing is left to write it again
        assert not scratch.exists(), sorted(p.name for p in scratch.rglob("*"))[:10]
    finally:
        procs.end_group(ident)


def test_end_group_kills_members_that_ignore_sigterm_and_skips_other_groups(tmp_path: Path) -> None:
    leader = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-c", WRITER, str(tmp_path / "a")], start_new_session=True
    )
    other = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", WRITER, str(tmp_path / "b")], start_new_session=True
    )
    try:
        ident = procs.identity(leader.pid)
        assert procs.end_group(ident) == []
        assert leader.wait(10) == -9
        assert other.poll() is None
    finally:
        for p in (leader, other):
            if p.poll() is None:
                p.kill()
                p.wait(10)


#: The command: a shell that starts a child ignoring SIGTERM, then waits. The shell ends on SIGTERM at once.
COMMAND = [
    "sh",
    "-c",
    f"{sys.executable} -c 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print(1, flush=True); time.sleep(300)' & wait",
]


#: The supervisor (:func:`harness.lifeline.supervised`) with the stand-ins' grace.
SUPERVISOR = (
    f"import sys; from harness import lifeline; lifeline.TERM_GRACE = {GRACE!r}; sys.exit(lifeline.main(sys.argv[1:]))"
)


def _supervise(argv: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], int]:
    """``argv`` under the supervisor in a session of its own, as the harness runs a command; its stdout is read."""
    return _on_lifeline([sys.executable, "-c", SUPERVISOR, *argv], env or {})


def test_the_supervisor_ends_what_its_command_started_even_when_the_command_ends_first() -> None:
    """The command's own process ends first (SIGTERM); the supervisor must not exit before the group is stopped."""
    assert lifeline.supervised(COMMAND) == [sys.executable, "-I", "-S", lifeline.__file__, *COMMAND]
    proc, write_end = _supervise(COMMAND)
    ident = procs.identity(proc.pid)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "1"  # the grandchild runs
    try:
        os.close(write_end)  # the owner is gone
        proc.wait(30)  # hang guard
        deadline = time.monotonic() + 30  # hang guard: the grandchild ignores SIGTERM for 300 s
        while procs.group_members(ident) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not procs.group_members(ident)
    finally:
        procs.end_group(ident)


#: A leader that ignores SIGTERM and starts a writer (in its group) that ignores it too.
LEADER = f"""
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c", {WRITER!r}, sys.argv[1]])
time.sleep(300)
"""


def test_stop_tree_without_grace_kills_at_once_and_returns_when_nothing_writes_any_more(tmp_path: Path) -> None:
    leader = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-c", LEADER, str(tmp_path)], start_new_session=True
    )
    ident = procs.identity(leader.pid)
    try:
        deadline = time.monotonic() + 30  # hang guard: the writer starts writing
        while not (tmp_path / "runtime").is_dir() and time.monotonic() < deadline:
            time.sleep(0.02)
        killed = procs.stop_tree(leader.pid, grace=0)
        assert leader.pid in killed and len(killed) == 2, killed  # neither ends on SIGTERM: both killed
        assert procs.group_members(ident) == []
        written = sorted((tmp_path / "runtime").iterdir())
        time.sleep(0.3)
        assert sorted((tmp_path / "runtime").iterdir()) == written  # nothing of it writes any more
    finally:
        procs.end_group(ident)
        leader.wait(10)


#: A command that says whether it was told the supervisor's folder, then waits to be stopped.
TOLD = f"import os, time; print({lifeline.SCRATCH_ENV!r} in os.environ, flush=True); time.sleep(300)"


def test_the_supervisor_removes_the_commands_temporary_folder_once_its_owner_is_gone(tmp_path: Path) -> None:
    """After a SIGKILL of the harness, what the deploy command left in its TMPDIR goes with its group."""
    tmp = tmp_path / "harness-command-x"
    (tmp / "left-by-the-tool").mkdir(parents=True)
    proc, write_end = _supervise([sys.executable, "-c", TOLD], {"TMPDIR": str(tmp), lifeline.SCRATCH_ENV: str(tmp)})
    ident = procs.identity(proc.pid)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "False"  # the folder is not its to remove
        os.close(write_end)  # the owner is gone
        proc.wait(30)  # hang guard
        deadline = time.monotonic() + 30  # hang guard: the remover ends the group, then removes the folder
        while tmp.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not tmp.exists() and not procs.group_members(ident)
    finally:
        procs.end_group(ident)


def test_the_supervisor_as_the_harness_starts_it_ends_its_command_s_group() -> None:
    """``supervised`` runs this file by an isolated interpreter without ``site``: its own environment
    (``supervisor_env``) gives it the imports its end needs (psutil, the harness), and the command none of it."""
    argv = ["sh", "-c", 'echo "$HARNESS_LIFELINE_PATH|$HARNESS_LIFELINE_FD"; sleep 300 & wait']
    proc, write_end = _on_lifeline(lifeline.supervised(argv), lifeline.supervisor_env())
    ident = procs.identity(proc.pid)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "|"  # neither reaches the command
    os.close(write_end)  # the owner is gone
    proc.wait(30)  # hang guard
    deadline = time.monotonic() + 30
    while procs.group_members(ident) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not procs.group_members(ident)
