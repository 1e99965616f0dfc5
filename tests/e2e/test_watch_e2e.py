"""``pytest --watch`` on the emulator: a change to a function's code redeploys it and re-runs the tests; a change
to a test re-runs them without a deploy; Ctrl-C ends the watch with its emulator (and the stack on it); a SIGKILL
of the watch leaves nothing running either."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from e2e_support import HARNESS_CLI, MINIMAL_TEMPLATE, PYTEST, ProjectFactory, clean_env, deploy_argv, git

from harness import procs

pytestmark = pytest.mark.e2e

TEST = """
import json


def test_echo(stack):
    resp = stack.client("lambda").invoke(FunctionName=stack.outputs["FunctionName"], Payload=b'{"n": 1}')
    assert json.loads(resp["Payload"].read()) == {"echo": {"n": 1}}
"""


class Watch:
    """``pytest --watch`` in its own process group (as a terminal runs it), its output read as it comes."""

    def __init__(self, project: Path, *args: str) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(  # noqa: S603 - argv list
            [*PYTEST, "--watch", *args],
            cwd=project,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Ctrl-C must reach it as in a terminal, even where this test's own SIGINT is ignored.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while len(re.findall(pattern, self.text())) < count:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no {count} x {pattern!r} in the watch's output:\n{self.text()}", pytrace=False)
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            procs.stop_tree(self.proc.pid)
        self._reader.join(timeout=10)


@pytest.fixture
def project(make_project: ProjectFactory) -> Path:
    root = make_project(tests={"test_echo.py": TEST}, deploy_command=deploy_argv(Path("template.yaml")))
    shutil.copy(MINIMAL_TEMPLATE, root / "template.yaml")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "the template in the project")
    return root


@pytest.fixture
def watch(project: Path) -> Iterator[list[Watch]]:
    started: list[Watch] = []
    yield started
    for w in started:
        w.stop()


def _emulator_pid(project: Path) -> int:
    return int(json.loads((project / "harness-report" / "emulator.json").read_text())["pid"])


def _gone(pid: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not procs.pid_alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_a_change_redeploys_and_reruns_and_ctrl_c_ends_the_watch_and_its_emulator(
    project: Path, watch: list[Watch]
) -> None:
    w = Watch(project, "tests/integration", "--stack", "on")
    watch.append(w)
    w.wait_for(r"watching .* for changes")
    assert "1 passed" in w.text()
    emulator = _emulator_pid(project)
    runs = [line for line in w.lines if "attached to kept MiniStack" in line]
    assert runs and f"pid {emulator}" in runs[0], w.text()
    assert "kept by `pytest --watch`" in runs[0]
    assert re.search(r"keeping stack mini-\S+ for the watch's next run", w.text()), w.text()
    assert "the watch's emulator left running for its next run" in w.text()

    # The function's code changes: the stack is redeployed, and the run fails on the new answer.
    template = project / "template.yaml"
    template.write_text(template.read_text().replace('return {"echo": event}', 'return {"echo": event, "v": 2}'))
    w.wait_for(r"run ended in .*: exit code 1 \(tests failed\)")
    second = w.text().split("changed: template.yaml: running", 1)[1]
    assert re.search(r"deployed mini-\S+ in .*UPDATE_COMPLETE", second), second
    assert "'v': 2" in second

    # The test changes to match: re-run on the same stack, no deploy.
    test = project / "tests" / "integration" / "test_echo.py"
    test.write_text(test.read_text().replace('{"echo": {"n": 1}}', '{"echo": {"n": 1}, "v": 2}'))
    w.wait_for(r"run ended in .*: exit code 0 \(ok\)", count=2)
    third = w.text().split("changed: tests/integration/test_echo.py: running", 1)[1]
    assert "deploy skipped" in third and "1 passed" in third, third
    assert "is kept by" not in w.text()  # each run keeps the stack for the next: no line about it
    w.wait_for(r"watching .* for changes", count=3)
    assert w.text().count(": running") == 3, w.text()  # the runs' own writes (report, traces) start none

    os.killpg(w.proc.pid, signal.SIGINT)  # Ctrl-C in the terminal: the whole process group
    assert w.proc.wait(timeout=60) == 0, w.text()
    w.stop()
    assert "stopped watching" in w.text()
    assert "emulator stopped" in w.text()
    assert _gone(emulator), f"the watch's emulator {emulator} still runs"
    assert not (project / "harness-report" / "emulator.json").exists()
    assert not [p for p in psutil.process_iter() if _in_group(p, w.proc.pid)]


def test_a_killed_watch_leaves_nothing_running(project: Path, watch: list[Watch]) -> None:
    w = Watch(project, "tests/integration", "--stack", "on")
    watch.append(w)
    w.wait_for(r"watching .* for changes")
    emulator = _emulator_pid(project)
    group = [p.pid for p in psutil.process_iter() if _in_group(p, w.proc.pid)]
    assert len(group) >= 2, group  # the watch and its fork server

    os.kill(w.proc.pid, signal.SIGKILL)
    w.proc.wait(timeout=10)
    assert _gone(emulator), f"the killed watch's emulator {emulator} still runs"
    for pid in group:
        assert _gone(pid), f"process {pid} of the killed watch still runs"


def _in_group(p: psutil.Process, pgid: int) -> bool:
    try:
        return os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, ProcessLookupError):
        return False


def test_on_an_emulator_kept_by_harness_up_the_watch_leaves_it_running_as_found(
    project: Path, watch: list[Watch]
) -> None:
    env = clean_env()
    up = subprocess.run([HARNESS_CLI, "up"], cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stderr
    kept = _emulator_pid(project)
    try:
        w = Watch(project, "tests/integration", "--stack", "on")
        watch.append(w)
        w.wait_for(r"watching .* for changes")
        assert "1 passed" in w.text()
        assert f"attached to kept MiniStack 1.5.33 pid {kept}" in w.text()
        os.killpg(w.proc.pid, signal.SIGINT)
        assert w.proc.wait(timeout=60) == 0, w.text()
        w.stop()
        assert "the kept emulator is left running as found" in w.text()
        assert procs.pid_alive(kept) and _emulator_pid(project) == kept
    finally:
        subprocess.run([HARNESS_CLI, "down"], cwd=project, env=env, capture_output=True, timeout=120)
    assert _gone(kept)
