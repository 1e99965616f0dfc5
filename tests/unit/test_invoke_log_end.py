"""The drain of a sandboxed Python worker's log: up to the mark of the invocation it answers."""

from __future__ import annotations

import inspect
import os
import queue
import threading

import pytest

from harness.emulator.invoke_log_end import drain_to_mark

MARK = "harness-invocation-end-0123"


def _queued(*lines: str) -> queue.Queue[str]:
    q: queue.Queue[str] = queue.Queue()
    for line in lines:
        q.put(line)
    return q


def test_the_lines_before_the_invocation_s_mark_and_none_after() -> None:
    q = _queued("START", "out 1", f"{MARK} r1", "out 2", f"{MARK} r2")
    assert drain_to_mark(q, MARK, "r1", 1.0) == "START\nout 1"
    assert drain_to_mark(q, MARK, "r2", 1.0) == "out 2"
    assert q.empty()


def test_a_mark_whose_drain_gave_up_is_passed_over() -> None:
    q = _queued("late of r1", f"{MARK} r1", "out 2", f"{MARK} r2")
    assert drain_to_mark(q, MARK, "r2", 1.0) == "late of r1\nout 2"


def test_output_left_without_a_newline_is_a_line_of_its_own() -> None:
    q = _queued(f"partial{MARK} r1")
    assert drain_to_mark(q, MARK, "r1", 1.0) == "partial"


def test_it_waits_for_the_mark_and_gives_up_at_the_ceiling() -> None:
    q = _queued("out 1")
    later = threading.Timer(0.05, lambda: (q.put("out 2"), q.put(f"{MARK} r1")))
    later.start()
    assert drain_to_mark(q, MARK, "r1", 5.0) == "out 1\nout 2"
    later.join()
    assert drain_to_mark(_queued("out"), MARK, "r9", 0.01) == "out"  # no mark: what came, by the ceiling


def test_without_the_runtime_sandbox_it_leaves_the_drain_as_shipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """``HARNESS_EMULATOR_ADAPTATIONS_OFF=lambda-runtime-sandbox``: no worker writes the mark, so nothing waits
    for one (and the emulator still starts)."""
    from ministack.core import lambda_runtime as lr

    from harness.emulator import invoke_log_end

    shipped = (lr.Worker.invoke, lr.Worker._drain_stderr_bounded)
    monkeypatch.setattr(lr, "_detect_runtime_binary", inspect.unwrap(lr._detect_runtime_binary))
    monkeypatch.delenv(invoke_log_end.MARK_ENV, raising=False)
    invoke_log_end.apply()
    assert (lr.Worker.invoke, lr.Worker._drain_stderr_bounded) == shipped
    assert invoke_log_end.MARK_ENV not in os.environ
