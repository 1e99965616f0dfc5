"""The whole branch-stack lifecycle, end to end: real pytest runs in a throw-away
project, a real deploy command (``aws cloudformation deploy`` in the first test; its
steps through boto3, ``cfn_deploy.py``, in the others), real MiniStack
subprocesses. Each test checks what a user sees (the ``branchstack:`` lines,
the exit code) and what is left afterwards (processes, stacks, resources).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from e2e_support import (
    BRANCH,
    BROKEN_TEMPLATE,
    DEFAULT_TEST,
    HARNESS_CLI,
    MINIMAL_TEMPLATE,
    PYTEST_ALL_PLUGINS,
    TARGET_RE,
    Emulator,
    ProjectFactory,
    Runner,
    clean_env,
    deploy_argv,
    emulator_process,
    emulators_in,
    no_traceback,
    processes_on,
    stacks_named,
    wait_gone,
)

from harness import procs
from harness.emulator import PINNED_VERSION
from harness.lease import TABLE as LEASE_TABLE
from harness.naming import stage_from_branch
from reliability.support import endpoint_env

pytestmark = pytest.mark.e2e

STAGE = stage_from_branch(BRANCH)
STACK = f"mini-{STAGE}"
INTEGRATION = "tests/integration"


def the_emulator(result_output: str) -> tuple[int, int]:
    found = emulators_in(result_output)
    assert len(found) == 1, f"expected one 'target: ... MiniStack ... pid N' line:\n{result_output}"
    return found[0]


def assert_nothing_of_stack_left(emu: Emulator, name: str) -> None:
    live = [(n, s) for n, s in stacks_named(emu, name) if s != "DELETE_COMPLETE"]
    assert live == [], f"stacks of the run still live in the emulator: {live}"
    functions = [f["FunctionName"] for f in emu.client("lambda").list_functions()["Functions"]]
    assert [f for f in functions if name in f] == [], functions
    tables = emu.client("dynamodb").list_tables()["TableNames"]
    assert [t for t in tables if name in t] == [], tables
    roles = [r["RoleName"] for r in emu.client("iam").list_roles()["Roles"]]
    assert [r for r in roles if name in r] == [], roles


# --------------------------------------------------------------------------- 1


#: A stack session's tests run with the GIL handed between threads every 0.5 ms (Role.quick_handoffs).
HANDOFFS_TEST = """
import sys


def test_the_gil_is_handed_over_quickly(stack):
    assert sys.getswitchinterval() == 0.0005
"""


def test_full_lifecycle_on_the_local_emulator(make_project: ProjectFactory, run: Runner) -> None:
    project = make_project(
        deploy_command=deploy_argv(MINIMAL_TEMPLATE, cli=True),  # the AWS CLI itself
        tests={"test_it.py": DEFAULT_TEST, "test_handoffs.py": HANDOFFS_TEST},
    )
    res = run(project, argv=[*PYTEST_ALL_PLUGINS, INTEGRATION])  # beside every pytest plugin of this environment
    out = res.output

    assert res.returncode == 0, out
    assert STAGE.startswith("feature-e2e-smok"), STAGE
    assert f"branchstack: stage {STAGE!r} from branch {BRANCH!r} (git) -> stack {STACK}" in out
    assert f"MiniStack {PINNED_VERSION} pid" in out
    assert len(res.lines(f"branchstack: deploying {STACK} with: aws cloudformation deploy")) == 1, out
    assert res.lines(f"branchstack: deployed {STACK} in"), out
    assert "CREATE_COMPLETE" in res.lines(f"branchstack: deployed {STACK}")[0]
    assert "3 passed" in out
    teardown = res.lines("branchstack: teardown:")
    assert teardown and "verified gone" in teardown[-1] and "0 left)" in teardown[-1], out
    assert "LEFT BEHIND" not in out
    assert res.lines("branchstack: emulator stopped"), out
    no_traceback(out)

    pid, port = the_emulator(out)
    assert wait_gone(pid, port, project), (
        f"emulator pid {pid} (port {port}) or one of its processes is still running: {processes_on(port, project)}"
    )
    assert scratch_gone(project / "harness-report"), "the emulator's scratch folder or record outlived its remover"


def scratch_gone(report: Path) -> bool:
    """The stopped emulator's scratch folder (extracted Lambda code) and its record go, by its detached remover."""
    deadline = time.monotonic() + 60  # hang guard: the remover runs after the run has ended
    while time.monotonic() < deadline:
        if not any((report / "emulator-tmp").iterdir()) and not list((report / "emulators").glob("*.json")):
            return True
        time.sleep(0.1)
    return False


# --------------------------------------------------------------------------- 2


def test_nothing_left_inside_the_emulator(make_project: ProjectFactory, run: Runner, emulator: Emulator) -> None:
    project = make_project()
    res = run(project, INTEGRATION, env=endpoint_env(emulator))

    assert res.returncode == 0, res.output
    assert f"target: endpoint {emulator.url}" in res.output
    assert res.lines(f"branchstack: deployed {STACK}"), res.output
    assert "2 passed" in res.output
    assert res.lines("0 left)"), res.output
    # The endpoint target is someone else's emulator: the harness leaves it running.
    assert emulator_process(emulator.pid, emulator.port) is not None, "the harness stopped an emulator it does not own"
    # The run's stack did live in this emulator (it lists deleted stacks too).
    assert stacks_named(emulator, STACK), "the run's stack never reached the fixture's emulator"
    assert_nothing_of_stack_left(emulator, STACK)


# --------------------------------------------------------------------------- 3


def test_keep_stack_is_reused_then_destroyed(make_project: ProjectFactory, run: Runner) -> None:
    project = make_project()
    pid = port = None
    destroyed = False
    try:
        first = run(project, INTEGRATION, "--keep-stack")
        assert first.returncode == 0, first.output
        pid, port = the_emulator(first.output)
        assert first.lines(f"branchstack: keeping stack {STACK}"), first.output
        assert "Remove it with: harness destroy" in first.output
        assert not first.lines("emulator stopped"), first.output
        assert not first.lines("teardown: deleting"), first.output
        assert emulator_process(pid, port, project) is not None, f"the kept emulator pid {pid} is not running"

        second = run(project, INTEGRATION, "--keep-stack")
        assert second.returncode == 0, second.output
        assert second.lines(f"attached to kept MiniStack {PINNED_VERSION} pid {pid} on"), second.output
        # Same inputs: the kept stack is reused without a deploy (fingerprint unchanged).
        assert second.lines(f"branchstack: deploy skipped: {STACK} is"), second.output
        assert "2 passed" in second.output
        assert second.lines(f"branchstack: keeping stack {STACK}"), second.output
        assert emulator_process(pid, port, project) is not None

        destroy = run(project, argv=[HARNESS_CLI, "destroy"])
        assert destroy.returncode == 0, destroy.output
        assert f"harness: teardown: deleting {STACK}" in destroy.output
        assert "0 left)" in destroy.output
        assert "harness: emulator stopped" in destroy.output
        no_traceback(destroy.output)
        assert wait_gone(pid, port, project), f"emulator pid {pid} still running: {processes_on(port, project)}"
        assert not (project / "harness-report" / "emulator.json").exists()
        destroyed = True
    finally:
        if not destroyed:
            run(project, argv=[HARNESS_CLI, "destroy"])
        if pid is not None and port is not None and emulator_process(pid, port, project) is not None:
            procs.stop_tree(pid)


def test_a_failed_deploy_ends_a_run_of_test_packages_with_exit_code_1_and_its_reason(
    make_project: ProjectFactory, run: Runner
) -> None:
    """SAM's layout: tests/__init__.py and tests/integration/__init__.py. The stack is awaited inside pytest's
    collection of the package, where a plain ``pytest.exit`` became a collection error ("found no collectors",
    exit code 4, a usage error)."""
    project = make_project(deploy_command=["sh", "-c", "echo 'template has a broken resource' >&2; exit 3"])
    (project / "tests" / "__init__.py").write_text("")
    (project / "tests" / "integration" / "__init__.py").write_text("")
    res = run(project, INTEGRATION)
    out = res.output

    assert res.returncode == 1, out
    assert "template has a broken resource" in out
    assert "DeployError" in out.splitlines()[-1], out
    assert "found no collectors" not in out and "ERROR " not in out, out
    no_traceback(out)


# --------------------------------------------------------------------------- 4


def test_broken_template_fails_with_the_cloudformation_reason(
    make_project: ProjectFactory, run: Runner, emulator: Emulator
) -> None:
    project = make_project()
    command = (
        shlex.join(["aws", "cloudformation", "deploy", "--template-file", str(BROKEN_TEMPLATE)])
        + " --stack-name {stack_name} --tags {tags}"
    )
    res = run(project, INTEGRATION, env=endpoint_env(emulator, HARNESS_DEPLOY_COMMAND=command))
    out = res.output

    assert res.returncode == 1, out
    assert "BrokenQueue (AWS::SQS::Queue): CREATE_FAILED" in out
    reason = [line for line in out.splitlines() if "BrokenQueue (AWS::SQS::Queue): CREATE_FAILED" in line]
    assert "VisibilityTimeout" in reason[0], out
    assert f"the deploy of {STACK} failed" in out
    assert "passed" not in out.splitlines()[-1], out
    no_traceback(out)

    assert_nothing_of_stack_left(emulator, STACK)
    # Only the harness's own lease table (shared by every run on the target) remains.
    assert emulator.client("dynamodb").list_tables()["TableNames"] in ([], [LEASE_TABLE])
    assert emulator.client("sqs").list_queues().get("QueueUrls", []) == []


def test_a_deploy_that_ignores_the_stack_name_is_named_and_its_stack_deleted(
    make_project: ProjectFactory, run: Runner, emulator: Emulator
) -> None:
    project = make_project()
    fixed = "mini-hard-coded"
    command = shlex.join([fixed if w == "{stack_name}" else w for w in deploy_argv(MINIMAL_TEMPLATE)])
    assert fixed in command and "{tags}" in command
    res = run(project, INTEGRATION, env=endpoint_env(emulator, HARNESS_DEPLOY_COMMAND=command))
    out = res.output

    assert res.returncode == 1, out
    assert f"the deploy command created no stack named {STACK}, but it did create {fixed}" in out, out
    assert "it ignores STACK_NAME" in out and res.lines(f"teardown: deleting {fixed}"), out
    no_traceback(out)
    assert_nothing_of_stack_left(emulator, fixed)
    assert_nothing_of_stack_left(emulator, STACK)


# --------------------------------------------------------------------------- 5

KILLED_TEST = """
import os
import time


def test_keeps_calling(stack):
    # A Lambda runtime process now runs beside the emulator: it must go too.
    stack.client("lambda").invoke(FunctionName=stack.outputs["FunctionName"], Payload=b"{}")
    ddb = stack.client("dynamodb")
    table = stack.outputs["TableName"]
    open(os.environ["E2E_MARKER"], "w").close()
    deadline = time.monotonic() + 60
    i = 0
    while time.monotonic() < deadline:
        ddb.put_item(TableName=table, Item={"pk": {"S": str(i)}})
        i += 1
"""


#: Runs argv with SIGINT ignored, as a job put in the background by a non-interactive shell inherits it.
SIGINT_IGNORED = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); os.execv(sys.argv[1], sys.argv[1:])",
]


@pytest.mark.parametrize("sigint", ["default", "inherited-ignored"])
def test_emulator_killed_mid_session_ends_the_session(
    make_project: ProjectFactory, run: Runner, tmp_path: Path, record_property: pytest.RecordProperty, sigint: str
) -> None:
    project = make_project(tests={"test_killed.py": KILLED_TEST})
    marker = tmp_path / "test-is-running"
    proc = subprocess.Popen(  # noqa: S603 - argv list
        (SIGINT_IGNORED if sigint == "inherited-ignored" else []) + run.pytest_argv(INTEGRATION),
        cwd=project,
        env=clean_env({"E2E_MARKER": str(marker)}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    lines: list[str] = []
    started = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace")
            lines.append(line)
            if TARGET_RE.search(line):
                started.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    pid = port = None
    try:
        assert started.wait(60), "no 'target: started ... pid N' line:\n" + "".join(lines)
        pid, port = the_emulator("".join(lines))
        run.seen.append((pid, port, project))  # stopped by the fixture if anything goes wrong
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, "the session ended before the test ran:\n" + "".join(lines)
            assert time.monotonic() < deadline, "the project test never started:\n" + "".join(lines)
            time.sleep(0.05)
        time.sleep(0.3)  # let it get into its DynamoDB calls
        before = processes_on(port, project)
        assert len(before) >= 2, f"expected the emulator and a Lambda runtime process: {before}"
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("hang guard: the session did not end within 60s of the emulator's death:\n" + "".join(lines))
        seconds = time.monotonic() - killed_at
        t.join(10)
    finally:
        if proc.poll() is None:
            procs.stop_tree(proc.pid)
            proc.wait(10)
    out = "".join(lines)
    record_property("seconds_from_emulator_kill_to_exit", round(seconds, 2))
    print(f"session ended {seconds:.2f}s after the emulator was killed (exit code {code})")

    assert code != 0, out
    log = project / "harness-report" / "emulator.log"
    died = [line for line in out.splitlines() if "the emulator" in line and "died" in line]
    assert died, out
    assert any(str(log) in line for line in died), out
    assert f"pid {pid}" in died[0]
    # The watcher stopped the run itself (through SIGINT), rather than the test
    # failing slowly on a dead endpoint after botocore's retries.
    assert "branchstack: session stopped early: the emulator process is gone" in out, out
    assert "passed" not in out.splitlines()[-1], out
    assert wait_gone(pid, port, project), f"processes of the dead emulator remain: {processes_on(port, project)}"


KILL_AFTER_DEPLOY_CONFTEST = """
import os
import signal
import time

import pytest

from harness.pytest.role import role_of


@pytest.hookimpl(wrapper=True)
def pytest_sessionstart(session):
    result = yield  # the harness's stack is starting, beside the session
    role = role_of(session.config)
    role.stack_ready()  # deployed now, as the first test module's collection would have waited for it
    os.kill(role.lifecycle.target.pid, signal.SIGKILL)
    time.sleep(60)  # still inside pytest_sessionstart when the harness notices
    return result
"""


def test_emulator_death_between_deploy_and_collection_is_reported(make_project: ProjectFactory, run: Runner) -> None:
    # An interrupt inside pytest_sessionstart makes pytest skip
    # pytest_sessionfinish; the death must still be named and fail the run.
    project = make_project(tests={"conftest.py": KILL_AFTER_DEPLOY_CONFTEST})
    started = time.monotonic()
    res = run(project, INTEGRATION)
    out = res.output

    assert time.monotonic() - started < 50, out
    assert res.returncode == 1, out
    died = [line for line in out.splitlines() if "the emulator" in line and "died" in line]
    assert len(died) == 1, out
    assert str(project / "harness-report" / "emulator.log") in died[0], out
    pid, port = the_emulator(out)
    assert wait_gone(pid, port, project), f"processes of the dead emulator remain: {processes_on(port, project)}"


SIGNAL_AT_FINISH_CONFTEST = """
import os
import signal

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    # Lands before the harness's trace report and teardown, like a Ctrl-C
    # or a CI cancellation right after the last test.
    os.kill(os.getpid(), signal.{sig})
"""


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_as_the_session_finishes_still_tears_down_and_exits_interrupted(
    make_project: ProjectFactory, run: Runner, sig: str
) -> None:
    project = make_project(
        tests={"conftest.py": SIGNAL_AT_FINISH_CONFTEST.replace("{sig}", sig), "test_it.py": DEFAULT_TEST}
    )
    res = run(project, INTEGRATION)
    out = res.output

    assert res.returncode == 2, out  # pytest's "interrupted", not a pass and not a death by signal
    assert res.lines(f"branchstack: {sig} received: the teardown finishes first"), out
    assert res.lines(f"branchstack: interrupted ({sig}) while finishing: the teardown ran to its end"), out
    assert res.lines(f"teardown: {STACK} deleted in"), out
    assert "verified gone" in out, out
    no_traceback(out)
    pid, port = the_emulator(out)
    assert wait_gone(pid, port, project), f"emulator processes remain: {processes_on(port, project)}"


SIGNAL_AT_UNCONFIGURE_CONFTEST = """
import os
import signal


def pytest_unconfigure(config):
    os.kill(os.getpid(), signal.SIGTERM)  # after the teardown: a late CI cancellation
"""


def test_a_signal_after_the_teardown_only_sets_the_exit_code(make_project: ProjectFactory, run: Runner) -> None:
    project = make_project(tests={"conftest.py": SIGNAL_AT_UNCONFIGURE_CONFTEST, "test_it.py": DEFAULT_TEST})
    res = run(project, INTEGRATION)
    out = res.output

    assert res.returncode == 2, out  # interrupted, yet not killed by the signal (-15) or a stray KeyboardInterrupt
    assert res.lines(f"teardown: {STACK} deleted in"), out
    no_traceback(out)


# --------------------------------------------------------------------------- 6


def test_missing_deploy_command_is_named_and_the_emulator_stopped(make_project: ProjectFactory, run: Runner) -> None:
    project = make_project()
    res = run(project, INTEGRATION, env={"HARNESS_DEPLOY_COMMAND": "no-such-deploy-tool x"})
    out = res.output

    assert res.returncode == 1, out
    assert "the command 'no-such-deploy-tool' was not found" in out
    assert "hint: install it, or fix deploy-command" in out
    assert res.lines("branchstack: emulator stopped"), out
    no_traceback(out)
    pid, port = the_emulator(out)
    assert wait_gone(pid, port, project), f"emulator processes remain: {processes_on(port, project)}"


# --------------------------------------------------------------------------- 7


def test_protected_stage_on_a_shared_target_is_refused(
    make_project: ProjectFactory, run: Runner, emulator: Emulator
) -> None:
    project = make_project(branch="main")
    res = run(project, INTEGRATION, env=endpoint_env(emulator))
    out = res.output

    assert res.returncode != 0, out
    assert "stage 'main'" in out and "is protected" in out, out
    assert not res.lines("branchstack: deploying"), out
    assert "passed" not in out.splitlines()[-1], out
    no_traceback(out)
    stacks = emulator.client("cloudformation").list_stacks()["StackSummaries"]
    assert stacks == [], stacks
    assert emulator.client("dynamodb").list_tables()["TableNames"] == []


# --------------------------------------------------------------------------- 8


def test_xdist_deploys_once_and_tears_down_once(make_project: ProjectFactory, run: Runner) -> None:
    project = make_project(tests={"test_it.py": DEFAULT_TEST, "test_handoffs.py": HANDOFFS_TEST})
    res = run(project, INTEGRATION, "-n", "2")
    out = res.output

    assert res.returncode == 0, out
    assert "3 passed" in out
    assert len(res.lines("branchstack: deploying ")) == 1, out
    assert len(res.lines("branchstack: deployed ")) == 1, out
    assert len(res.lines("branchstack: teardown: deleting")) == 1, out
    assert len(res.lines("verified gone")) == 1, out
    assert len(res.lines("branchstack: emulator stopped")) == 1, out
    # Every harness line starts a line of its own, also after xdist's "[100%]".
    assert all(line.startswith("branchstack") for line in res.lines("branchstack: ")), res.lines("branchstack: ")
    assert res.lines("branchstack: traces: "), out
    no_traceback(out)
    pid, port = the_emulator(out)
    assert wait_gone(pid, port, project), processes_on(port, project)


def test_an_interrupt_while_the_emulator_boots_leaves_no_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.targets import local

    spawned: list[subprocess.Popen[bytes]] = []
    real_spawn = procs.spawn

    def spawn_and_record(*args, **kwargs):  # type: ignore[no-untyped-def]
        spawned.append(real_spawn(*args, **kwargs))
        return spawned[-1]

    def interrupted(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(procs, "spawn", spawn_and_record)
    monkeypatch.setattr(local, "wait_healthy", interrupted)
    try:
        with pytest.raises(KeyboardInterrupt):
            local.launch(tmp_path, region="us-east-1")
        assert len(spawned) == 1
        assert spawned[0].wait(10) is not None  # stopped (and reaped), not left booting
    finally:
        for proc in spawned:
            if proc.poll() is None:
                procs.stop_tree(proc.pid)


# The deploy runs beside collection: a Ctrl-C while pytest collects stops it as a Ctrl-C during it always did.
SLOW_DEPLOY = """
import pathlib, subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
pathlib.Path("deploy.pids").write_text(f"{__import__('os').getpid()} {child.pid}")
child.wait()
"""

SIGINT_IN_COLLECTION_CONFTEST = """
import os
import signal
import time
from pathlib import Path

import pytest

PIDS = Path(__file__).resolve().parents[2] / "deploy.pids"


@pytest.hookimpl(tryfirst=True)
def pytest_collectstart(collector):
    if not isinstance(collector, pytest.Module):
        return
    deadline = time.monotonic() + 120  # hang guard
    while not PIDS.exists() and time.monotonic() < deadline:  # the deploy command is running
        time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while this module is being collected
    time.sleep(30)
"""


def test_a_ctrl_c_during_collection_stops_the_deploy_beside_it(make_project: ProjectFactory, run: Runner) -> None:
    project = make_project(
        tests={"conftest.py": SIGINT_IN_COLLECTION_CONFTEST, "test_it.py": DEFAULT_TEST},
        deploy_command=[sys.executable, "slow_deploy.py"],
    )
    (project / "slow_deploy.py").write_text(SLOW_DEPLOY)
    res = run(project, INTEGRATION)
    out = res.output

    assert res.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "SIGINT received: stopping the run" in out, out
    assert "branchstack: deploying mini-" in out, out
    assert "branchstack: deployed " not in out, out
    for pid in map(int, (project / "deploy.pids").read_text().split()):  # the command and its child: stopped
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, (pid, out)
    assert "emulator stopped" in out, out
    no_traceback(out)
    pid, port = the_emulator(out)
    assert wait_gone(pid, port, project), processes_on(port, project)
