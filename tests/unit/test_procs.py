"""Thread helpers: SIGINT and SIGTERM reach the main thread only."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from harness import deploy, procs

T = TypeVar("T")


def _mask_in_new_thread(start) -> set[int]:  # type: ignore[no-untyped-def]
    seen: set[int] = set()
    done = threading.Event()

    def probe() -> None:
        seen.update(signal.pthread_sigmask(signal.SIG_BLOCK, []))
        done.set()

    start(probe)
    assert done.wait(5)
    return seen


def test_harness_threads_block_sigint_and_sigterm_so_the_main_thread_gets_them() -> None:
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    blocked = _mask_in_new_thread(lambda fn: procs.start_thread(fn, "probe"))
    assert {signal.SIGINT, signal.SIGTERM} <= blocked
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before  # the caller's mask is unchanged


def test_a_plain_thread_would_take_them_negative_control() -> None:
    blocked = _mask_in_new_thread(lambda fn: threading.Thread(target=fn, daemon=True).start())
    assert signal.SIGINT not in blocked and signal.SIGTERM not in blocked


def test_pool_threads_can_block_them_too() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, initializer=procs.block_main_signals) as pool:
        blocked = pool.submit(lambda: set(signal.pthread_sigmask(signal.SIG_BLOCK, []))).result()
    assert {signal.SIGINT, signal.SIGTERM} <= blocked


#: A child that prints the signals it starts with blocked, then waits to be stopped.
_CHILD = (
    "import signal, sys, time; "
    "print(sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])), flush=True); time.sleep(60)"
)


def _from_a_harness_thread(start: Callable[[], T]) -> T:
    got: list[T] = []
    procs.start_thread(lambda: got.append(start()), "starter").join(30)  # a hang guard
    assert got, "the thread did not start its child"
    return got[0]


def test_a_child_started_from_a_harness_thread_sees_sigterm_and_sigint(tmp_path: Path) -> None:
    """The emulator and the deploy command start on harness threads; a stop's SIGTERM must reach them."""
    log = tmp_path / "child.log"
    child = _from_a_harness_thread(lambda: procs.spawn([sys.executable, "-c", _CHILD], env=os.environ, log_path=log))
    try:
        deadline = time.monotonic() + 30  # a hang guard: the child has printed its mask
        while not log.read_text().strip() and time.monotonic() < deadline:
            time.sleep(0.01)
        blocked = set(json.loads(log.read_text()))
        assert not blocked & {signal.SIGINT, signal.SIGTERM}, blocked
        assert procs.stop_tree(child.pid, grace=30) == []  # it ended on SIGTERM: nothing had to be killed
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(10)


def test_a_deploy_command_started_from_a_harness_thread_sees_them_too(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", _CHILD.replace("time.sleep(60)", "pass")]
    out = tmp_path / "deploy.log"
    _from_a_harness_thread(lambda: deploy.run_command(argv, env=os.environ, cwd=tmp_path, log_path=out, timeout=60))
    blocked = set(json.loads(out.read_text().strip()))
    assert not blocked & {signal.SIGINT, signal.SIGTERM}, blocked
    assert {signal.SIGINT, signal.SIGTERM} <= _mask_in_new_thread(lambda fn: procs.start_thread(fn, "probe"))
