"""Start the branch stack on a thread, so the deploy overlaps what the session does meanwhile.

::

    session start: EarlyStart(lifecycle) -> a thread runs Lifecycle.start_steps
      (plan, target, fingerprint and lease, deploy command, checks)
    main thread: wait_launched() -> collects the scenario files, ...
      -> wait_described() where the stack is first needed (a test module, the test loop)
      -> collects the test modules, builds what the tests use, ... -> wait() before the first test

The main thread first waits until the deploy command's process has started
(or the start has ended): the steps before it are the process's own Python
work, which would only share the interpreter lock with collection and start
the command later; collection goes on beside the command instead. Once the
stack is deployed and read back, the checks after the deploy (drift,
fidelity, runtimes: calls to the target, interpreters started) run while the
main thread goes on with what needs the stack; it waits for them, their lines
and their verdict, before the first test.

Only the steps run on the thread. Everything else stays on the main thread,
as in a synchronous :meth:`Lifecycle.start`:

* the lines the steps write are held and written by the main thread (while
  it waits, and whenever it writes a line of its own), so they never cut
  into pytest's own output;
* a failure of the steps is reported and cleaned up by ``wait()`` through
  :meth:`Lifecycle.start_failed` (the teardown holds signals, which only the
  main thread can do);
* a signal reaches the main thread only: ``stop()`` sets the lifecycle's
  ``cancel`` event, and the steps end as a Ctrl-C would have ended them (the
  deploy command's process tree is stopped, then the teardown runs).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from harness import procs

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from harness.errors import EmulatorDied
    from harness.lifecycle import Lifecycle
    from harness.settings import Settings
    from harness.stack import StackInfo
    from harness.targets import Target

#: How long a stopped start may take to notice its cancel event before the clean-up goes on without it
#: (a call to a dead emulator can retry for a minute; the teardown says what it could not remove).
STOP_WAIT_SECONDS = 30.0


def begin_target(
    settings: Settings,
    run_dir: Path,
    *,
    on_death: Callable[[EmulatorDied], None] | None,
    extra_env: Mapping[str, str],
) -> Target | None:
    """The embedded emulator, launched before the lifecycle (and boto3, ~0.3 s) is imported: it boots meanwhile.

    Only the local target has anything to launch. Its launch path imports no
    AWS SDK (tests/unit/test_early_start.py keeps it so). A failure here is left
    for the start to meet again, where a start's failures are reported.
    """
    if settings.target != "local":
        return None
    from harness.targets.local import LocalTarget

    target = LocalTarget(settings, run_dir, on_death=on_death, extra_env=extra_env)
    try:
        target.begin()
    except Exception:  # noqa: BLE001 - the start's target.start() begins again and raises it there
        pass
    return target


class Relay:
    """A lifecycle's ``out`` while its start runs on a thread: other threads' lines wait for the main thread."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write
        self.holding = False
        self._pending: queue.SimpleQueue[str] = queue.SimpleQueue()

    def __call__(self, line: str) -> None:
        if self.holding and threading.current_thread() is not threading.main_thread():
            self._pending.put(line)
            return
        self.flush()
        self.write(line)

    def flush(self) -> None:
        """Write the held lines, in order."""
        while True:
            try:
                line = self._pending.get_nowait()
            except queue.Empty:
                return
            self.write(line)


class EarlyStart:
    """One lifecycle's start, running on a thread from construction until :meth:`wait` returns or raises."""

    def __init__(self, lifecycle: Lifecycle, relay: Relay) -> None:
        self.lifecycle = lifecycle
        self.relay = relay
        relay.holding = True
        self._done = threading.Event()
        self._result: StackInfo | None = None
        self._error: BaseException | None = None
        self._thread = procs.start_thread(self._run, "harness-stack-start")

    def _run(self) -> None:
        try:
            self._result = self.lifecycle.start_steps()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread by wait()
            self._error = exc
        finally:
            self._done.set()
            self.lifecycle.launched.set()  # nothing more to wait for before the command

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, poll: float = 0.05) -> StackInfo:
        """Main thread: write the start's lines as they come, until it ends; then its result, or its failure
        reported and cleaned up and raised (as :meth:`Lifecycle.start` would). A signal meanwhile stops it."""
        try:
            while not self._done.wait(poll):
                self.relay.flush()
                if self._abandoned():
                    raise KeyboardInterrupt("the emulator died while the stack's start was stopping")
        except BaseException as exc:  # Ctrl-C, SIGTERM, the emulator watcher: stop the steps, then clean up
            self.stop()
            self._release()
            self.lifecycle.start_failed(exc)  # cleans up; the signal's exception goes on as it came
            raise
        self._release()
        if self._error is None:
            assert self._result is not None
            return self._result
        err = self.lifecycle.start_failed(self._error)
        if err is self._error:
            raise err
        raise err from None

    def wait_described(self, poll: float = 0.05) -> StackInfo:
        """Main thread: write the start's lines until the stack is deployed and read back; its description.

        The checks after the deploy may still run: :meth:`wait` waits for them (their lines, their verdict).
        A start that ended before (failed, or stopped by a signal meanwhile) is reported and cleaned up as
        in :meth:`wait`.
        """
        described = self.lifecycle.described
        self._relay_until(lambda: described.wait(poll) or self._done.is_set())
        if not described.is_set():  # the start ended without a stack
            return self.wait()
        self.relay.flush()
        info = self.lifecycle.info
        assert info is not None
        return info

    def wait_launched(self, poll: float = 0.05) -> None:
        """Main thread: write the start's lines until its deploy command has started, or the start has ended.

        A signal meanwhile stops the start and cleans up, as in :meth:`wait`, and is raised;
        the start is then over (:attr:`done`). A failed start is left for :meth:`wait` to report.
        """
        self._relay_until(lambda: self.lifecycle.launched.wait(poll))
        self.relay.flush()

    def _relay_until(self, reached: Callable[[], bool]) -> None:
        """Main thread: write the start's lines until ``reached()`` (which waits a poll's time).

        A signal meanwhile (Ctrl-C, SIGTERM, the emulator watcher) stops the steps, cleans up and is raised.
        """
        try:
            while not reached():
                self.relay.flush()
        except BaseException as exc:
            self.stop()
            self._release()
            self.lifecycle.start_failed(exc)
            raise

    def stop(self) -> None:
        """Make the steps end as on Ctrl-C, and wait (bounded) until they have."""
        self.lifecycle.cancel.set()
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while not self._done.wait(0.05):
            self.relay.flush()
            if self.lifecycle.target is not None and self.lifecycle.target.died is not None:
                return  # the emulator is gone: nothing the steps still do can matter
            if time.monotonic() > deadline:
                self.relay("the stack's start did not stop in time; cleaning up without it")
                return

    def _abandoned(self) -> bool:
        """Stopped, and the emulator is gone: what the steps still do (a check's call retried against the dead
        endpoint) cannot matter, so nothing waits for it (as in :meth:`stop`)."""
        target = self.lifecycle.target
        return self.lifecycle.cancel.is_set() and target is not None and target.died is not None

    def _release(self) -> None:
        self.relay.holding = False
        self.relay.flush()
