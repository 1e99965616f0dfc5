"""Child processes: start in their own process group, stop every descendant by pid.

Nothing here kills by name. A child is started with ``start_new_session`` so
its descendants (the emulator's Lambda runtimes, a deploy's ``aws`` calls)
share its process group; stopping walks the tree with psutil first, because a
descendant may have left the group.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log_path: Path,
    cwd: Path | None = None,
    append: bool = False,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start ``argv`` (no shell) in a new session, stdout+stderr to ``log_path``; ``pass_fds`` stay open in it."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab" if append else "wb") as log, main_signals_unblocked():
        return subprocess.Popen(  # noqa: S603 - argv list, never a shell
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )


def environ_of(p: psutil.Process) -> dict[str, str] | None:
    """A live process's environment (None for a zombie, a process gone, or one not ours to read)."""
    try:
        if p.status() == psutil.STATUS_ZOMBIE:
            return None
        return p.environ()
    except psutil.Error:
        return None


def descendants(pid: int) -> list[psutil.Process]:
    """Every live descendant of ``pid`` (empty if it is gone)."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def stop_tree(pid: int, *, timeout: float = 5.0, grace: float | None = None) -> list[int]:
    """SIGTERM ``pid`` and all its descendants, SIGKILL what is left after ``grace`` (default: ``timeout``).

    Returns the pids that had to be killed. Safe to call on a dead pid. Returns
    once nothing of the group ``pid`` leads runs any more (a child it started
    while being stopped included), so what they wrote can be removed after;
    ``timeout`` bounds each wait. A zombie counts as gone: a killed process
    whose parent died with it waits for init to reap it, and can do nothing more.
    """
    try:
        procs = [psutil.Process(pid), *descendants(pid)]
        group = identity(pid)
    except psutil.NoSuchProcess:
        # The leader is gone (killed hard); its group may still hold
        # children such as Lambda runtimes. The group id is the leader's pid
        # because every child here is started with start_new_session.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        return []
    with contextlib.suppress(ProcessLookupError, PermissionError):
        # The group first: it also reaches children that are still forking.
        os.killpg(pid, signal.SIGTERM)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    alive = _wait_gone(procs, timeout if grace is None else grace)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    _wait_gone(alive, timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError, OSError):
        # Reap our own child so it does not linger as a zombie.
        os.waitpid(pid, os.WNOHANG)
    end_group(group, timeout=timeout)
    return [p.pid for p in alive]


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs (a zombie does not)."""
    try:
        return _running(psutil.Process(pid))
    except psutil.Error:
        return False


def _running(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_gone(procs: Sequence[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until none of ``procs`` runs (zombies count as gone; a child of ours is reaped); what still runs."""
    deadline = time.monotonic() + timeout
    while True:
        for p in procs:  # reap what is ours, so it is not left as a zombie
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(p.pid, os.WNOHANG)
        alive = [p for p in procs if _running(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.01)


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file (empty if missing)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def listening_sockets(pids: Sequence[int]) -> list[tuple[int, str, int]]:
    """(pid, address, port) of every TCP/UDP socket the given pids listen on."""
    out: list[tuple[int, str, int]] = []
    for pid in pids:
        try:
            conns = psutil.Process(pid).net_connections(kind="inet")
        except psutil.Error:
            continue
        for c in conns:
            if c.laddr and (c.status == psutil.CONN_LISTEN or c.type == socket.SOCK_DGRAM):
                out.append((pid, c.laddr.ip, c.laddr.port))
    return out


# --------------------------------------------------------------------------- identity across runs


@functools.cache
def _machine() -> str:
    """This kernel boot and pid namespace on this host: where a pid means the same process (read once)."""
    parts = [socket.gethostname()]
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
        parts.append(os.readlink("/proc/self/ns/pid"))  # containers on one kernel differ here
    except OSError:
        parts.append(f"boot {psutil.boot_time():.0f}")
    return "|".join(parts)


def _started(pid: int) -> float:
    """When ``pid`` started: clock ticks since boot from /proc (exact), else psutil's wall-clock time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            raise psutil.NoSuchProcess(pid) from None
        return round(psutil.Process(pid).create_time(), 2)
    except OSError:
        return round(psutil.Process(pid).create_time(), 2)
    return float(stat.rsplit(")", 1)[1].split()[19])  # field 22, after "pid (comm)"


def identity(pid: int | None = None) -> dict[str, object]:
    """A process as another process may check it later: machine, pid and start time (pids are reused)."""
    pid = os.getpid() if pid is None else pid
    return {"machine": _machine(), "pid": pid, "started": _started(pid)}


def identity_alive(ident: Mapping[str, object] | None) -> bool | None:
    """True/False when ``ident`` is a process of this machine that is alive/gone; None when it cannot be told.

    None (another host, container or boot, or a malformed record) means: rely on
    something else, such as a lease expiry. A pid that now belongs to a younger
    process counts as gone.
    """
    if not ident or ident.get("machine") != _machine():
        return None
    pid, started = ident.get("pid"), ident.get("started")
    if not isinstance(pid, int) or not isinstance(started, int | float):
        return None
    try:
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(_started(pid) - float(started)) < 0.5
    except psutil.NoSuchProcess:
        return False
    except (psutil.Error, OSError, ValueError, IndexError):
        return None


def group_members(ident: Mapping[str, object]) -> list[psutil.Process]:
    """Live processes still in the process group that ``ident`` led, started no earlier than it.

    Children of a process started with ``start_new_session`` share its group
    (its pid) and outlive a SIGKILL of their parent; the start time keeps a
    reused group id from matching anybody else's processes.
    """
    pgid, started = ident.get("pid"), ident.get("started")
    if ident.get("machine") != _machine() or not isinstance(pgid, int) or not isinstance(started, int | float):
        return []
    found = []
    for p in psutil.process_iter():
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue  # ended, only not reaped yet (its parent was killed)
            if os.getpgid(p.pid) == pgid and _started(p.pid) >= float(started):
                found.append(p)
        except (psutil.Error, OSError, ValueError, IndexError):
            continue
    return found


def end_group(ident: Mapping[str, object], *, timeout: float = 10.0) -> list[psutil.Process]:
    """SIGKILL every live member of the process group ``ident`` led until none is left.

    Returns what was still running after ``timeout`` (empty when the group is
    gone). A member that forks while the group is being killed has its child
    caught by the next round; each process is killed by pid after checking its
    group and start time (:func:`group_members`), never by group id alone, so a
    reused id never reaches anybody else. A zombie counts as gone: it can do
    nothing more.
    """
    deadline = time.monotonic() + timeout
    while True:
        left = group_members(ident)
        if not left or time.monotonic() > deadline:
            return left
        for p in left:
            with contextlib.suppress(psutil.Error):
                p.kill()
        time.sleep(0.02)


# --------------------------------------------------------------------------- threads and signals

_MAIN_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def stop_signals_handled_by(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """Inside the block, SIGINT and SIGTERM go to ``handler`` (main thread only); then the previous handlers."""
    previous = {sig: signal.signal(sig, handler) for sig in _MAIN_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def block_main_signals() -> None:
    """Block SIGINT and SIGTERM in the calling (non-main) thread; see :func:`start_thread`."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        signal.pthread_sigmask(signal.SIG_BLOCK, _MAIN_SIGNALS)


def start_thread(target: Callable[[], None], name: str) -> threading.Thread:
    """Start a daemon thread that never receives SIGINT or SIGTERM.

    The kernel hands a process-directed signal to any thread that does not
    block it, often one sleeping in a read. CPython before 3.13 then only sets
    a flag that the main thread may not look at for a long time: a Ctrl-C
    during a deploy could go unnoticed. With the signals blocked here (the new
    thread inherits the mask it is started with), they reach the main thread.
    """
    thread = threading.Thread(target=target, name=name, daemon=True)
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, _MAIN_SIGNALS)
    except (AttributeError, OSError, ValueError):  # not POSIX
        thread.start()
        return thread
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return thread


@contextlib.contextmanager
def main_signals_unblocked() -> Iterator[None]:
    """Inside the block, this thread does not block SIGINT and SIGTERM (a thread of :func:`start_thread` does).

    A child inherits the signal mask of the thread that starts it, through exec:
    a command started from such a thread would never see a SIGTERM (a stop
    would wait out its whole grace and kill it) nor a Ctrl-C. Start children
    inside this block.
    """
    try:
        previous = signal.pthread_sigmask(signal.SIG_UNBLOCK, _MAIN_SIGNALS)
    except (AttributeError, OSError, ValueError):  # not POSIX
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def signals_held(out: Callable[[str], None], into: list[int] | None = None) -> Iterator[list[int]]:
    """Let a teardown that has started finish: Ctrl-C and SIGTERM are held until it ends.

    A signal that lands half-way through a delete would leave the stack
    behind; the teardown takes seconds, and a SIGKILL still ends everything.
    Yields the list of signals held (``into``, if given), so the caller can
    still end the run as interrupted (a non-zero exit) once the teardown is done.
    """
    pending: list[int] = into if into is not None else []
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return

    def hold(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if not pending:
            out(
                f"{name} received: the teardown finishes first, then the run ends "
                "as interrupted (further signals are held too; SIGKILL abandons it)"
            )
        else:
            out(f"{name} received again: held until the teardown ends")
        pending.append(signum)

    with stop_signals_handled_by(hold):
        yield pending
