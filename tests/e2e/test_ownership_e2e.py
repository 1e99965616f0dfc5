"""Nothing outlives its run, whatever ends it; a kept stack belongs to whoever kept it.

* ``kill -9`` of pytest (during the tests, during the deploy): every process of
  that run (the emulator, its Lambda runtimes, the deploy command) is gone soon
  after, checked by pid; the next run says what it cleaned up.
* ``harness up`` + ``harness deploy`` + a plain ``pytest``: the run uses the
  kept emulator and stack and leaves both as it found them; ``harness destroy``
  removes them.
* ``eval "$(harness deploy)"`` in a shell exports the stack's variables.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from e2e_support import (
    BRANCH,
    HARNESS_CLI,
    PYTEST,
    PYTHON,
    ProjectFactory,
    Runner,
    clean_env,
    emulators_in,
    no_traceback,
)

from harness import procs
from harness.naming import stage_from_branch

pytestmark = pytest.mark.e2e

STACK = f"mini-{stage_from_branch(BRANCH)}"
#: What the issue promises: within 5 s of the kill, nothing of the run is left.
GONE_WITHIN = 5.0

SLOW_TEST = """
import pathlib, time

def test_calls_then_waits(stack):
    resp = stack.client("lambda").invoke(FunctionName=stack.outputs["FunctionName"], Payload=b"{}")
    assert "FunctionError" not in resp
    pathlib.Path("in-test").write_text("x")
    time.sleep(120)
"""

SLOW_DEPLOY = """
import os, subprocess, sys, time, pathlib
pathlib.Path("in-deploy").write_text("x")
time.sleep(120)
sys.exit(subprocess.call(sys.argv[1:]))
"""


def _start(project: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = project / "pytest.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - argv list
            [*PYTEST, "tests/integration", *args],
            cwd=project,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, log


def _wait_for(path: Path, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout  # hang guard
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            procs.stop_tree(proc.pid)
            pytest.fail(f"the run never reached {path.name}:\n{log.read_text()}", pytrace=False)
        time.sleep(0.1)


def _identities(pid: int) -> list[tuple[int, float, str]]:
    """(pid, start time, command) of ``pid`` and every descendant, to check them by pid later."""
    found = []
    for p in [psutil.Process(pid), *procs.descendants(pid)]:
        try:
            found.append((p.pid, p.create_time(), " ".join(p.cmdline())[:120]))
        except psutil.Error:
            continue
    return found


def _still_running(idents: list[tuple[int, float, str]]) -> list[str]:
    left = []
    for pid, created, cmd in idents:
        try:
            p = psutil.Process(pid)
            if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                left.append(f"pid {pid}: {cmd}")
        except psutil.Error:
            continue
    return left


def _kill_and_check(proc: subprocess.Popen[bytes], log: Path, *, expect_deploy: bool) -> list[tuple[int, float, str]]:
    idents = _identities(proc.pid)
    commands = " ".join(cmd for _, _, cmd in idents)
    assert "harness.emulator.launch" in commands, idents
    if expect_deploy:
        assert "harness/lifeline.py" in commands, idents
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    deadline = time.monotonic() + GONE_WITHIN
    left = _still_running(idents)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = _still_running(idents)
    assert not left, f"{len(left)} process(es) of the killed run still running {GONE_WITHIN:.0f}s later:\n" + "\n".join(
        left
    )
    return idents


def test_kill_9_during_the_tests_leaves_no_process(make_project: ProjectFactory, run: Runner) -> None:
    project = make_project(tests={"test_slow.py": SLOW_TEST})
    proc, log = _start(project)
    _wait_for(project / "in-test", proc, log)
    idents = _kill_and_check(proc, log, expect_deploy=False)
    assert len(idents) >= 3, f"expected pytest, the emulator and a Lambda runtime: {idents}"
    scratch = project / "harness-report" / "emulator-tmp"
    deadline = time.monotonic() + 10  # hang guard: the emulator removes its scratch folder as it ends
    while any(scratch.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(scratch.iterdir()), list(scratch.iterdir())


def test_kill_9_during_the_deploy_leaves_no_process(make_project: ProjectFactory, run: Runner) -> None:
    project = make_project()
    (project / "slow_deploy.py").write_text(SLOW_DEPLOY)
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace('deploy-command = ["', f'deploy-command = ["{PYTHON}", "slow_deploy.py", "', 1))
    proc, log = _start(project)
    _wait_for(project / "in-deploy", proc, log)
    _kill_and_check(proc, log, expect_deploy=True)


def test_a_plain_run_leaves_a_kept_emulator_and_stack_as_found(make_project: ProjectFactory, run: Runner) -> None:
    project = make_project()
    up = run(project, argv=[HARNESS_CLI, "up"])
    assert up.returncode == 0, up.output
    (pid, port), *_ = emulators_in(up.output)
    try:
        deploy = subprocess.run(  # noqa: S603 - stdout alone, as `eval "$(harness deploy)"` reads it
            [HARNESS_CLI, "deploy"], cwd=project, env=clean_env(), capture_output=True, text=True, timeout=300
        )
        assert deploy.returncode == 0, deploy.stdout + deploy.stderr
        assert all(line.startswith(("#", "export ")) for line in deploy.stdout.splitlines()), deploy.stdout
        assert f"export AWS_SAM_STACK_NAME={STACK}" in deploy.stdout
        assert "deploying" in deploy.stderr

        plain = run(project, "tests/integration")
        assert plain.returncode == 0, plain.output
        no_traceback(plain.output)
        assert plain.lines("attached to kept MiniStack") and plain.lines("kept by `harness up`"), plain.output
        assert plain.lines(f"stack {STACK} is kept by `harness deploy`"), plain.output
        assert plain.lines(f"leaving stack {STACK} as found"), plain.output
        assert plain.lines("kept emulator left running, as found"), plain.output
        assert not plain.lines("teardown: deleting"), plain.output

        ls = subprocess.run(  # noqa: S603
            [HARNESS_CLI, "ls"], cwd=project, env=clean_env(), capture_output=True, text=True, timeout=120
        )
        assert ls.returncode == 0 and STACK in ls.stdout, ls.stdout + ls.stderr
        assert psutil.pid_exists(pid)

        destroy = run(project, argv=[HARNESS_CLI, "destroy"])
        assert destroy.returncode == 0, destroy.output
        assert f"teardown: deleting {STACK}" in destroy.output and "emulator stopped" in destroy.output
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        again = run(project, argv=[HARNESS_CLI, "destroy"])
        assert again.returncode == 0 and "nothing to destroy" in again.output, again.output
    finally:
        run(project, argv=[HARNESS_CLI, "down"])


def test_eval_harness_deploy_exports_the_stack(make_project: ProjectFactory, run: Runner) -> None:
    project = make_project()
    script = (
        'eval "$("$HARNESS" deploy)" && echo "name=$AWS_SAM_STACK_NAME endpoint=$AWS_ENDPOINT_URL" && '
        'aws --endpoint-url "$AWS_ENDPOINT_URL" cloudformation describe-stacks --stack-name "$AWS_SAM_STACK_NAME" '
        "--query 'Stacks[0].StackStatus' --output text"
    )
    env = clean_env({"HARNESS": HARNESS_CLI})
    try:
        shell = subprocess.run(  # noqa: S603 - a fixed script; the shell is what is under test
            ["/bin/sh", "-c", script], cwd=project, env=env, capture_output=True, text=True, timeout=300
        )
        assert shell.returncode == 0, shell.stdout + shell.stderr
        assert f"name={STACK} endpoint=http://127.0.0.1:" in shell.stdout, shell.stdout
        assert "CREATE_COMPLETE" in shell.stdout, shell.stdout + shell.stderr
    finally:
        destroy = run(project, argv=[HARNESS_CLI, "destroy"])
        assert destroy.returncode == 0, destroy.output


def _trace_shape(project: Path) -> dict[str, tuple[int, int, bool]]:
    index = json.loads((project / "harness-report" / "traces" / "index.json").read_text())
    return {t["nodeid"]: (t["calls"], len(t["cold_starts"]), t["complete"]) for t in index}


def test_traces_are_whole_on_an_emulator_started_by_harness_up(make_project: ProjectFactory, run: Runner) -> None:
    project = make_project()
    fresh = run(project, "tests/integration")
    assert fresh.returncode == 0, fresh.output
    expected = _trace_shape(project)
    assert any(calls for calls, _, _ in expected.values()), expected
    up = run(project, argv=[HARNESS_CLI, "up"])
    assert up.returncode == 0, up.output
    try:
        state = json.loads((project / "harness-report" / "emulator.json").read_text())
        assert state["xray_address"], state
        attached = run(project, "tests/integration")
        assert attached.returncode == 0 and attached.lines("attached to kept"), attached.output
        assert _trace_shape(project) == expected, attached.output
    finally:
        run(project, argv=[HARNESS_CLI, "down"])


def test_harness_down_stops_an_emulator_nobody_owns(make_project: ProjectFactory, run: Runner) -> None:
    project = make_project()
    up = run(project, argv=[HARNESS_CLI, "up"])
    assert up.returncode == 0, up.output
    (pid, port), *_ = emulators_in(up.output)
    # The state file that owned it is gone (deleted by hand, a cleaned report folder).
    (project / "harness-report" / "emulator.json").unlink()
    down = run(project, argv=[HARNESS_CLI, "down"])
    assert down.returncode == 0, down.output
    assert f"stopped an orphaned emulator (MiniStack pid {pid}, port {port}; it was kept, but the state file" in (
        down.output
    )
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not list((project / "harness-report" / "emulator-tmp").iterdir())
    again = run(project, argv=[HARNESS_CLI, "down"])
    assert again.returncode == 0 and "nothing to stop" in again.output, again.output


def test_gc_stops_what_a_sigkilled_emulator_left(make_project: ProjectFactory, run: Runner) -> None:
    project = make_project()
    try:
        deploy = run(project, argv=[HARNESS_CLI, "deploy"])
        assert deploy.returncode == 0, deploy.output
        (pid, _port), *_ = emulators_in(deploy.output)
        exports = dict(
            line.removeprefix("export ").split("=", 1)
            for line in deploy.output.splitlines()
            if line.startswith("export ")
        )
        import boto3

        client = boto3.client(
            "lambda",
            endpoint_url=exports["AWS_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        function = [f["FunctionName"] for f in client.list_functions()["Functions"]][0]
        client.invoke(FunctionName=function, Payload=b"{}")
        runtimes = _identities(pid)[1:]
        assert runtimes, "no Lambda runtime process to leave behind"
        os.kill(pid, signal.SIGKILL)  # the emulator alone, as the OOM killer would
        time.sleep(1)
        survivors = _still_running(runtimes)
        gc = run(project, argv=[HARNESS_CLI, "gc"])
        assert gc.returncode == 0, gc.output
        if survivors:
            assert f"left by the dead emulator pid {pid}" in gc.output, gc.output
        assert not _still_running(runtimes), _still_running(runtimes)
        assert "removed the orphaned emulator's scratch folder" in gc.output, gc.output
    finally:
        run(project, argv=[HARNESS_CLI, "destroy"])
