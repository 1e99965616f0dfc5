"""The controller's whole SIGINT/SIGTERM policy, in one object.

* SIGTERM (how CI cancels a job) unwinds the session like Ctrl-C, so the stack
  is torn down and the emulator stopped before the follow-up SIGKILL.
* Only the first Ctrl-C or SIGTERM raises; each later one prints a line and is
  held (a burst of Ctrl-C ends in exit 2, without a traceback).
* SIGINT raises KeyboardInterrupt even where it was inherited as ignored (the
  emulator watcher ends a session whose emulator died through SIGINT).
* From the first ``pytest_sessionfinish`` to the last, both are held: the
  teardown runs to its end and the run then ends as interrupted (exit code 2).
  Optional steps inside (trace collection) may still be cut short at once.
* After the teardown a signal only sets the exit code; at the very end every
  handler is given back as the session found it.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

Out = Callable[..., None]


def _say_late(line: str) -> None:
    print(f"branchstack: {line}", file=sys.stderr, flush=True)


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class SignalPolicy:
    """Registered as a plugin by the controller; ``interrupted_by`` names the signals a teardown held."""

    def __init__(self, out: Out, interrupted_by: Callable[[], list[int] | None] = lambda: None) -> None:
        self.out = out
        self.interrupted_by = interrupted_by  # the lifecycle's held signals, None when nothing was deployed
        self.held: list[int] = []
        self._late: dict[int, Any] = {}
        self._sigint_original: Any = None
        self._original: dict[int, Any] = {}  # the handlers install_stop_signals replaced
        self._config: pytest.Config | None = None
        self.received: list[int] = []  # every stop signal this session saw

    # -- from configure ----------------------------------------------------------
    def install_stop_signals(self, config: pytest.Config, dying: Callable[[], bool] = lambda: False) -> None:
        """Ctrl-C and SIGTERM: the first stops the run (KeyboardInterrupt), every later one is held.

        pytest runs no finalizers on SIGTERM by itself; raising KeyboardInterrupt
        makes it unwind like Ctrl-C, so the stack is torn down and the emulator
        stopped before a follow-up SIGKILL. A second KeyboardInterrupt, raised
        while pytest handles the first (a burst of Ctrl-C), would escape pytest
        with chained tracebacks and end the process by the signal, the teardown
        cut short: every later signal only prints a line. ``dying``: the emulator
        died, and its watcher ends the session through SIGINT (reported elsewhere).
        """
        if not _on_main_thread():
            return
        self._config = config

        def on_stop(signum: int, frame: Any) -> None:
            self.received.append(signum)
            name = signal.Signals(signum).name
            if dying():
                raise KeyboardInterrupt(name)
            if len(self.received) == 1:
                self._say_now(
                    f"{name} received: stopping the run; the teardown runs to its end "
                    "(further signals are held; SIGKILL abandons it)"
                )
                raise KeyboardInterrupt(name)
            self._say_now(f"{name} received again: held, the run is already stopping")

        for sig in (signal.SIGINT, signal.SIGTERM):
            current = signal.getsignal(sig)
            if current in (signal.SIG_DFL, signal.SIG_IGN, None) or current is signal.default_int_handler:
                self._original[sig] = signal.signal(sig, on_stop)  # else someone else owns it: left alone

    def _say_now(self, line: str) -> None:
        """A line from a signal handler: reaches the terminal also while a test's output is captured."""
        capman = self._config.pluginmanager.get_plugin("capturemanager") if self._config is not None else None
        with capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext():
            self.out(line, yellow=True)

    def ensure_sigint(self) -> None:
        """Make SIGINT raise KeyboardInterrupt for this session even where it was inherited as ignored.

        A job started in the background by a non-interactive shell (``make
        integration &``, some CI runners) inherits SIGINT ignored; Python then
        never raises KeyboardInterrupt, and the harness's emulator watcher, which
        ends the session through SIGINT, could not stop a run whose emulator died.
        """
        if not _on_main_thread():
            return
        current = signal.getsignal(signal.SIGINT)
        if current in (signal.SIG_IGN, signal.SIG_DFL, None):
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self._sigint_original = current  # put back by restore(), at the very end

    # -- while finishing -----------------------------------------------------------
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Iterator[None]:
        """Ctrl-C or SIGTERM during pytest_sessionfinish must not cut the teardown short.

        pytest does not catch a KeyboardInterrupt raised from a sessionfinish hook:
        it escapes past pytest_unconfigure, so nothing after it would run.
        """
        if self.interrupted_by() is None:
            return (yield)
        from harness.procs import signals_held  # psutil: loaded only when a run deploys

        try:
            with signals_held(lambda line: self.out(line, yellow=True), into=self.held):
                try:
                    return (yield)
                finally:
                    signals = self.held + (self.interrupted_by() or [])
                    if signals:
                        names = ", ".join(dict.fromkeys(signal.Signals(n).name for n in signals))
                        self.out(f"interrupted ({names}) while finishing: the teardown ran to its end", red=True)
                        if session.exitstatus == pytest.ExitCode.OK:
                            session.exitstatus = pytest.ExitCode.INTERRUPTED
        finally:
            self.after_teardown(session)

    @contextlib.contextmanager
    def interruptible(self, what: str) -> Iterator[bool]:
        """Inside the finish guard: let a signal cut an optional step (trace collection) short at once.

        Yields False (skip the step) when a signal is already held.
        """
        held = self.held
        if held or not _on_main_thread():
            yield not held
            return

        def stop(signum: int, frame: Any) -> None:
            held.append(signum)
            raise KeyboardInterrupt

        from harness.procs import stop_signals_handled_by

        try:
            with stop_signals_handled_by(stop):
                yield True
        except KeyboardInterrupt:
            self.out(f"{what} interrupted; going on to the teardown", yellow=True)

    def after_teardown(self, session: pytest.Session) -> None:
        """From here to the end of pytest there is nothing left to clean up: a signal only sets the exit code.

        Raising KeyboardInterrupt now would escape pytest with a traceback and
        end the process by the signal, after the work is done.
        """
        if not _on_main_thread():
            return

        def late(signum: int, frame: Any) -> None:
            _say_late(f"{signal.Signals(signum).name} received after the teardown: the run ends as interrupted")
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.INTERRUPTED

        self._late = {sig: signal.signal(sig, late) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore(self) -> None:
        """Give the signals back as the session found them (a cleanup, run after pytest's own)."""
        for sig, handler in self._late.items():
            signal.signal(sig, handler)
        self._late = {}
        if self._sigint_original is not None:
            signal.signal(signal.SIGINT, self._sigint_original)
            self._sigint_original = None
        if not self.received:
            for sig, handler in self._original.items():
                signal.signal(sig, handler)
        else:
            # This process is ending as interrupted: a signal of the same burst landing now,
            # after pytest's last cleanup, must not end it by the signal (exit -15, -2) instead.
            # Ignored, not handled: at shutdown Python resets every signal that has a Python
            # handler to SIG_DFL (_PySignal_Fini), and leaves an ignored one ignored.
            for sig in self._original:
                signal.signal(sig, signal.SIG_IGN)
        self._original = {}
