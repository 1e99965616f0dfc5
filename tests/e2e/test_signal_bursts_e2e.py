"""A burst of Ctrl-C (SIGINT to the process group, as a terminal sends it) during the tests.

Whatever the count (2 to 5) and spacing (10 ms to 500 ms): exit 2, one line per
signal, no traceback, the teardown completed and the stack gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from e2e_support import BRANCH, PYTEST, ProjectFactory, Runner, clean_env, emulators_in, no_traceback, wait_gone

from harness import procs
from harness.naming import stage_from_branch

pytestmark = pytest.mark.e2e

STACK = f"mini-{stage_from_branch(BRANCH)}"

WAITING_TEST = """
import pathlib, time

def test_waits(stack):
    pathlib.Path("in-test").write_text("x")
    time.sleep(120)
"""


def _burst(project: Path, signals: list[int], spacing: float) -> tuple[int, str]:
    log = project / "pytest.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - argv list
            [*PYTEST, "tests/integration"],
            cwd=project,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120  # hang guard
        while not (project / "in-test").exists():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        for i, sig in enumerate(signals):
            if i:
                time.sleep(spacing)
            os.killpg(proc.pid, sig)  # the whole group, as a terminal's Ctrl-C
        code = proc.wait(120)  # hang guard
    finally:
        if proc.poll() is None:
            procs.stop_tree(proc.pid)
    return code, log.read_text()


@pytest.mark.parametrize("spacing", [0.01, 0.1, 0.5], ids=["10ms", "100ms", "500ms"])
@pytest.mark.parametrize("count", [2, 3, 5])
def test_a_burst_of_sigints_ends_in_exit_2_without_a_traceback(
    make_project: ProjectFactory, run: Runner, count: int, spacing: float
) -> None:
    project = make_project(tests={"test_wait.py": WAITING_TEST})
    code, out = _burst(project, [signal.SIGINT] * count, spacing)
    assert code == 2, out
    no_traceback(out)
    assert "verified gone" in out, out
    # One line per signal the process saw: the first stops the run, each further one says it is held
    # (or, once the teardown has ended, that the run ends as interrupted). Signals that land while the
    # same one is still pending are merged, by the kernel and by Python's handler alike: at 10 ms some
    # of a burst may arrive as one; after pytest's last cleanup they are ignored.
    lines = [line for line in out.splitlines() if "SIGINT received" in line]
    assert 1 <= len(lines) <= count, out
    assert "stopping the run" in lines[0], lines
    assert all("held" in line or "after the teardown" in line for line in lines[1:]), lines
    (pid, port), *_ = emulators_in(out)
    assert wait_gone(pid, port, project)


def test_sigterm_then_sigints_end_in_exit_2(make_project: ProjectFactory, run: Runner) -> None:
    project = make_project(tests={"test_wait.py": WAITING_TEST})
    code, out = _burst(project, [signal.SIGTERM, signal.SIGINT, signal.SIGTERM, signal.SIGINT], 0.05)
    assert code == 2, out
    no_traceback(out)
    assert "verified gone" in out, out
    lines = [line for line in out.splitlines() if " received" in line and "SIG" in line]
    assert 1 <= len(lines) <= 4 and "SIGTERM received: stopping the run" in lines[0], out
