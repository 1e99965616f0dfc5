"""Thread helpers: SIGINT and SIGTERM reach the main thread only."""

from __future__ import annotations

import signal
import threading

from harness import procs


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
