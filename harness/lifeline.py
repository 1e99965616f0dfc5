"""Lifelines: the emulator and the deploy command live exactly as long as the run that owns them.

The harness starts the emulator with the read end of a pipe (its file
descriptor in ``HARNESS_LIFELINE_FD``) and keeps the write end. The kernel
closes the write end when the owning process ends, however it ends (SIGKILL
included); the emulator then reads end-of-file, stops every process it
started (Lambda runtimes: its descendants and its process group), removes its
scratch folder (``HARNESS_EMULATOR_SCRATCH``: the extracted Lambda code) once
nothing of its group runs any more (a short-lived remover in a session of its
own does that last step) and exits. No timer, no polling of the owner's pid.

Handing the emulator over (``--keep-stack``, ``harness up``): the owner writes
:data:`KEEP` on the pipe before it lets go; the emulator then stops watching,
and from there its state file owns it (``harness down`` / ``harness destroy``).

The deploy (or destroy) command is not ours to change, so it runs under a
small supervisor, ``python -I -S .../harness/lifeline.py ARGV...``, that watches the
lifeline the same way and ends the command's whole process group with it,
then removes the command's temporary folder (its ``TMPDIR``, see
``harness.deploy.run_command``).

Why a pipe and not ``PR_SET_PDEATHSIG``: the parent-death signal fires when
the *thread* that forked the child ends, not the process, so an emulator
started from a helper thread would die with that thread; and a kept emulator
must outlive its starter, which a pipe expresses with one message.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

LIFELINE_ENV = "HARNESS_LIFELINE_FD"
SCRATCH_ENV = "HARNESS_EMULATOR_SCRATCH"
#: In the deploy command's supervisor's environment: the import path it runs with (see :func:`supervised`).
PATH_ENV = "HARNESS_LIFELINE_PATH"
KEEP = b"keep\n"
#: Seconds the descendants get to end on SIGTERM before they are killed (a Lambda runtime busy in its
#: handler ignores it); a stand-in that proves the escalation may shorten it.
TERM_GRACE = 3.0


def watch(environ: dict[str, str] | None = None) -> threading.Thread | None:
    """In the emulator process: start the thread that ends it when its owner is gone."""
    env = os.environ if environ is None else environ
    raw = env.pop(LIFELINE_ENV, "")  # the Lambda runtimes must not inherit it
    if not raw.isdigit():
        return None
    fd = int(raw)
    scratch = env.get(SCRATCH_ENV)
    thread = threading.Thread(target=_wait, args=(fd, scratch), name="harness-lifeline", daemon=True)
    thread.start()
    return thread


def _wait(fd: int, scratch: str | None) -> None:
    received = b""
    while True:
        try:
            chunk = os.read(fd, 64)
        except InterruptedError:
            continue
        except OSError:
            chunk = b""
        if not chunk:
            break
        received += chunk
        if KEEP in received:
            os.close(fd)  # handed over: the state file owns this emulator now
            return
    end_everything(scratch)


def end_everything(scratch: str | None) -> None:
    """Stop every descendant and the process group, remove the scratch folder once the group is gone, exit."""
    import shutil

    import psutil

    me = psutil.Process()
    children = me.children(recursive=True)
    for p in children:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(children, timeout=TERM_GRACE)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    leader = os.getpgrp() == os.getpid()  # a group this process leads (started in its own session)
    try:
        if scratch and leader:
            _remove_when_gone(scratch)
        elif scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    finally:
        try:
            if leader:
                os.killpg(os.getpid(), signal.SIGKILL)  # anything still forking, and this process last
        finally:
            os._exit(0)


def _remove_when_gone(scratch: str) -> None:
    """Hand the scratch folder to a remover that outlives this process group by as long as it takes to end it.

    Removing it from here would race with this process's other threads (a
    request still being served extracts Lambda code into it) and with the
    runtimes (a respawned one writes its bytecode there): a folder removed too
    early is written again. The remover, in a session of its own, kills what is
    left of the group, waits until no member runs, removes the folder and ends.
    """
    import json
    import shutil

    from harness import procs

    ident = json.dumps(procs.identity())
    try:
        subprocess.Popen(  # noqa: S603 - this interpreter and fixed arguments
            [sys.executable, "-c", _REMOVER, ident, scratch],
            stdin=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,
        )
    except OSError:  # no process to spare: remove it now, the next sweep removes what comes back
        shutil.rmtree(scratch, ignore_errors=True)


_REMOVER = "import sys; from harness.lifeline import remove_when_gone; remove_when_gone(sys.argv[1], sys.argv[2])"


def remove_when_gone(ident_json: str, scratch: str, timeout: float = 30.0) -> None:
    """In the remover: end the process group ``ident_json`` led, then remove ``scratch`` (whatever is left)."""
    import json
    import shutil

    from harness import procs

    procs.end_group(json.loads(ident_json), timeout=timeout)
    shutil.rmtree(scratch, ignore_errors=True)


def pipe() -> tuple[int, int]:
    """(read end for the child, write end the owner keeps); neither is inherited by other children."""
    return os.pipe()


def supervised(argv: Sequence[str]) -> list[str]:
    """``argv`` run under the lifeline supervisor (the child then needs ``HARNESS_LIFELINE_FD`` and
    :func:`supervisor_env`). This file run as a script by an isolated interpreter without ``site``: it starts in
    a third of the time ``python -m harness.lifeline`` takes (about 30 ms against 65 here), which every deploy
    and destroy command waited for."""
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), *argv]


def supervisor_env() -> dict[str, str]:
    """What the supervisor's environment needs besides the command's: this process's import path (what
    ``site`` would have found, and the harness's own folder), for the imports of its rare paths."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return {PATH_ENV: os.pathsep.join([here, *(p for p in sys.path if p)])}


def main(argv: Sequence[str]) -> int:
    """The supervisor: run ``argv`` in this process group, end the group when the lifeline closes.

    The command's own process can end first (stopped by the watcher, or by a
    broken pipe as its owner dies) while what it started still runs. So when
    the lifeline has closed, this process does not return with the command's
    code: it waits for the watcher, which stops the whole group and this
    process last.
    """
    raw = os.environ.get(LIFELINE_ENV, "")
    watcher = watch()
    os.environ.pop(SCRATCH_ENV, None)  # the command's temporary folder is removed by this process, not named to it
    try:
        child = subprocess.Popen(list(argv))  # noqa: S603 - the harness's argv list, never a shell
    except FileNotFoundError:
        print(f"harness: the command {argv[0]!r} was not found", file=sys.stderr)
        return 127
    except PermissionError:
        print(f"harness: the command {argv[0]!r} is not executable", file=sys.stderr)
        return 126
    while True:
        try:
            code = child.wait()
            break
        except KeyboardInterrupt:
            continue
    if watcher is not None and raw.isdigit() and _closed(int(raw)):
        watcher.join()  # it ends with os._exit once the group is stopped
    return code


def _closed(fd: int) -> bool:
    """The lifeline's writer is gone: its end-of-file is readable (it stays so, whoever reads it)."""
    try:
        readable, _, _ = select.select([fd], [], [], 0)
    except (OSError, ValueError):
        return False
    return bool(readable)


if __name__ == "__main__":
    sys.path[:0] = [p for p in os.environ.pop(PATH_ENV, "").split(os.pathsep) if p]
    sys.exit(main(sys.argv[1:]))
