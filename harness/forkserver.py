"""A warm process that forks one child per run: a run starts with its imports already made.

::

    owner (any threads)  --"run"-->  server (one thread; imported what a run needs)
                         <--"started PID"--    |  os.fork()
                         <--"ended CODE"---    +--> child: run() -> os._exit(code)

``pytest --watch`` re-runs the session after every change. A fresh process
would pay the interpreter, pytest, its plugins and the AWS SDK again, about
0.7 s before the deploy command could start; a child forked from a process that
has imported them starts at once, and imports the project's own modules (test
modules, conftests) afresh, as a new process would.

The server is forked before its owner starts any thread and never starts one,
so every fork it makes is of a one-thread process (forking a process with
threads can leave the child holding a lock no thread will release). Its owner
may start threads after the server is forked (the file watcher, the emulator's
watch).

Nothing outlives the owner: the server reads end-of-file on its request pipe
when the owner ends, however it ends, and exits; a child still running ends its
run as usual (its emulator, owned by the owner's lifeline, has gone with the
owner, which the run reports).
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any

#: The exit code of a child whose run raised instead of returning one (pytest's "internal error").
CRASHED = 3
#: What stops a run (Ctrl-C, a stop): the child's to handle, never the server's.
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


class ForkServer:
    """Fork the server now; :meth:`run` asks it for one child and waits for the child's exit code."""

    def __init__(self, warm: Callable[[], None], run: Callable[[], int]) -> None:
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the server
            os.close(req_w)
            os.close(rep_r)
            code = 0
            try:
                _serve(req_r, rep_w, warm, run)
            except BaseException:  # noqa: BLE001 - it must never return into its owner's stack
                traceback.print_exc()
                code = CRASHED
            finally:
                _flush()
                os._exit(code)
        os.close(req_r)
        os.close(rep_w)
        self.pid = pid
        self._requests = req_w
        self._replies = os.fdopen(rep_r, "rb", buffering=0)
        self._pending = b""
        self._running = False
        #: the child running now (None between runs), for forwarding a stop signal
        self.child: int | None = None

    def run(self) -> int:
        """Fork a child that runs ``run()``; its exit code (negative: the signal that ended it).

        A signal that interrupts the wait (Ctrl-C) propagates; :meth:`wait` then waits for the child again.
        """
        os.write(self._requests, b"run\n")
        self._running = True
        code = self.wait()
        assert code is not None
        return code

    def wait(self) -> int | None:
        """Wait for the run asked for (if any) to end; its child's exit code, None if no run was asked for."""
        if not self._running:
            return None
        if self.child is None:
            self.child = int(self._reply().removeprefix("started "))
        code = int(self._reply().removeprefix("ended "))
        self.child, self._running = None, False
        return code

    def signal_child(self, signum: int) -> None:
        if self.child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.child, signum)

    def close(self) -> None:
        """End the server (after the child it runs, if any) and reap it."""
        with contextlib.suppress(OSError):
            os.close(self._requests)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        self._replies.close()

    def _reply(self) -> str:
        # Read into self._pending: a signal may interrupt the wait halfway through a line.
        while b"\n" not in self._pending:
            chunk = self._replies.read(64)
            if not chunk:
                raise RuntimeError(f"the fork server (pid {self.pid}) ended unexpectedly")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode()


def _serve(requests: int, replies: int, warm: Callable[[], None], run: Callable[[], int]) -> None:
    # Ctrl-C (and a SIGTERM to the process group) reaches every process of the group: the child and the
    # owner handle it; the server goes on until its owner closes the pipe.
    handlers = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}  # restored in each child
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(Exception):  # a failed import fails again in the run, where it is reported
        warm()
    # What the server holds now lives as long as it does: moved out of the collector's reach, a child's
    # collections (pytest makes several at its end) walk only what the child made, and touch no page the
    # child shares with the server (the gc module's own advice for a process that forks without exec).
    gc.collect()
    gc.freeze()
    with os.fdopen(requests, "rb", buffering=0) as source:
        while True:
            request = b""
            while not request.endswith(b"\n"):
                chunk = source.read(1)
                if not chunk:
                    return  # the owner is gone, or done
                request += chunk
            # Held from before the fork until the child has its handlers back: the owner may signal the child as
            # soon as it is named, and a signal the child received while it still ignored it (the server's
            # disposition) would be lost; held, it waits for the child's own handler.
            signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            child = os.fork()
            if child == 0:
                os.close(requests)
                os.close(replies)
                _child(run, handlers)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # the server's own: ignored, discarded
            os.write(replies, f"started {child}\n".encode())
            _, status = os.waitpid(child, 0)
            os.write(replies, f"ended {os.waitstatus_to_exitcode(status)}\n".encode())


def _child(run: Callable[[], int], handlers: dict[signal.Signals, Any]) -> None:
    for sig, handler in handlers.items():
        signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # one sent meanwhile is delivered now
    code = CRASHED
    try:
        code = int(run())
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - reported; the server goes on
        traceback.print_exc()
    finally:
        _flush()
        os._exit(code)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
