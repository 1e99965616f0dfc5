"""Runs that meet at one branch stack: concurrent sessions, shards, unchanged re-runs."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest
from e2e_support import HARNESS_CLI, Emulator, ProjectFactory, Result, Runner, clean_env, emulators_in, stacks_named

from harness import procs
from harness.naming import stage_from_branch
from harness.targets.local import LEASES_DIR

pytestmark = pytest.mark.e2e

STACK = f"mini-{stage_from_branch('feature/E2E-smoke')}"

SLOW_TESTS = """
import time

def test_uses_the_table(stack):
    ddb = stack.client("dynamodb")
    for _ in range(15):
        ddb.scan(TableName=stack.outputs["TableName"], Limit=1)
        time.sleep(0.2)
"""


def shard_tests(record: Path) -> str:
    return "\n".join(
        f"""
def test_{i}(stack, request):
    with open({str(record)!r}, "a") as f:
        f.write(request.node.nodeid + "\\n")
"""
        for i in range(8)
    )


def endpoint(emu: Emulator, **extra: str) -> dict[str, str]:
    return {"HARNESS_TARGET": "endpoint", "HARNESS_ENDPOINT_URL": emu.url, **extra}


def together(*jobs) -> list[Result]:
    results: list[Result | None] = [None] * len(jobs)

    def go(i: int) -> None:
        results[i] = jobs[i]()

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for r in results if r is not None]


def test_two_concurrent_sessions_share_one_stack(make_project: ProjectFactory, run: Runner, emulator: Emulator) -> None:
    first = make_project(tests={"test_slow.py": SLOW_TESTS}, name="push1")
    second = make_project(tests={"test_slow.py": SLOW_TESTS}, name="push2")
    env = endpoint(emulator)
    results = together(
        lambda: run(first, "tests/integration", env=env), lambda: run(second, "tests/integration", env=env)
    )
    for res in results:
        assert res.returncode == 0, res.output
        assert "IN_PROGRESS" not in res.output.replace("_IN_PROGRESS state", "")
    joined = "\n".join(r.output for r in results)
    assert joined.count("branchstack: deploying") == 1, joined
    assert joined.count("teardown: deleting") == 1, joined
    assert "still used by other runs" in joined
    live = [s for s in stacks_named(emulator, STACK) if s[1] != "DELETE_COMPLETE"]
    assert live == [] and stacks_named(emulator, STACK), stacks_named(emulator, STACK)


def test_shards_run_every_test_once_with_one_deploy_and_one_teardown(
    make_project: ProjectFactory, run: Runner, emulator: Emulator, tmp_path: Path
) -> None:
    records = [tmp_path / "shard1.txt", tmp_path / "shard2.txt"]
    projects = [make_project(tests={"test_many.py": shard_tests(r)}, name=f"shard{i}") for i, r in enumerate(records)]
    env = endpoint(emulator, HARNESS_SHARD_GROUP="ci-1234")
    results = together(
        lambda: run(projects[0], "tests/integration", "--shard", "1/2", env=env),
        lambda: run(projects[1], "tests/integration", "--shard", "2/2", env=env),
    )
    for res in results:
        assert res.returncode == 0, res.output
    ran = [set(r.read_text().split()) for r in records]
    assert ran[0] and ran[1] and not (ran[0] & ran[1])
    assert {n.split("::")[1] for n in ran[0] | ran[1]} == {f"test_{i}" for i in range(8)}
    joined = "\n".join(r.output for r in results)
    assert joined.count("branchstack: deploying") == 1, joined
    assert joined.count("teardown: deleting") == 1, joined


def test_unchanged_rerun_skips_the_deploy_and_redeploy_forces_it(
    make_project: ProjectFactory, run: Runner, emulator: Emulator
) -> None:
    project = make_project()
    env = endpoint(emulator)
    try:
        first = run(project, "tests/integration", "--keep-stack", env=env)
        assert first.returncode == 0 and first.lines("branchstack: deploying"), first.output
        again = run(project, "tests/integration", "--keep-stack", env=env)
        assert again.returncode == 0, again.output
        assert again.lines("deploy skipped"), again.output
        assert not again.lines("branchstack: deploying"), again.output
        forced = run(project, "tests/integration", "--keep-stack", "--redeploy", env=env)
        assert forced.returncode == 0 and forced.lines("branchstack: deploying"), forced.output
    finally:
        gone = run(project, argv=[HARNESS_CLI, "destroy", "--target", "endpoint", "--endpoint-url", emulator.url])
    assert gone.returncode == 0, gone.output
    assert [s for s in stacks_named(emulator, STACK) if s[1] != "DELETE_COMPLETE"] == []


WAITS_TEST = """
import os
import pathlib
import time


def test_holds_the_stack(stack):
    pathlib.Path(os.environ["E2E_MARKER"]).write_text("running")
    time.sleep(60)
"""


def test_next_run_cleans_up_after_a_killed_run_at_once(
    make_project: ProjectFactory, run: Runner, emulator: Emulator, tmp_path: Path
) -> None:
    # SIGKILL (a developer's kill -9, an OOM kill) runs no cleanup at all; the
    # next run on the same machine must see the dead holder by its pid and
    # tear the stack down itself, without waiting out the lease expiry.
    marker = tmp_path / "test-is-running"
    killed = make_project(tests={"test_wait.py": WAITS_TEST}, name="killed")
    env = endpoint(emulator)
    proc = subprocess.Popen(  # noqa: S603 - argv list
        run.pytest_argv("tests/integration"),
        cwd=killed,
        env=clean_env({**env, "E2E_MARKER": str(marker)}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the killed run never reached its test"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            procs.stop_tree(proc.pid)
    assert [s for s in stacks_named(emulator, STACK) if s[1] == "CREATE_COMPLETE"], "the kill left no stack to find"

    nxt = run(make_project(name="next"), "tests/integration", env=env)
    out = nxt.output
    assert nxt.returncode == 0, out
    assert nxt.lines("lease: dead holders dropped:") and "has ended" in out, out
    assert not nxt.lines("lease: waiting"), out
    assert nxt.lines("teardown: deleting"), out
    live = [s for s in stacks_named(emulator, STACK) if s[1] != "DELETE_COMPLETE"]
    assert live == [], live


def test_two_sessions_on_a_kept_emulator_share_one_stack_through_its_lease_files(
    make_project: ProjectFactory, run: Runner
) -> None:
    """The embedded emulator's leases are files in its scratch folder: one deploy, one teardown, no lease table."""
    first = make_project(tests={"test_slow.py": SLOW_TESTS}, name="local1")
    second = make_project(tests={"test_slow.py": SLOW_TESTS}, name="local2")
    env = {"HARNESS_REPORT_DIR": str(first / "harness-report")}  # both attach to the emulator `harness up` keeps
    up = run(first, argv=[HARNESS_CLI, "up"], env=env)
    assert up.returncode == 0, up.output
    try:
        (pid, _), *_ = emulators_in(up.output)
        scratch = Path(psutil.Process(pid).environ()["TMPDIR"])
        results = together(
            lambda: run(first, "tests/integration", env=env), lambda: run(second, "tests/integration", env=env)
        )
        for res in results:
            assert res.returncode == 0, res.output
            assert res.lines("attached to kept MiniStack"), res.output
        joined = "\n".join(r.output for r in results)
        assert joined.count("branchstack: deploying") == 1, joined
        assert joined.count("teardown: deleting") == 1, joined
        assert "still used by other runs" in joined
        assert (scratch / LEASES_DIR).is_dir() and not (scratch / LEASES_DIR / f"{STACK}.json").exists()
        emu = Emulator(pid, emulators_in(up.output)[0][1], Path())
        assert emu.client("dynamodb").list_tables()["TableNames"] == []  # no lease table on the emulator
    finally:
        run(first, argv=[HARNESS_CLI, "down"], env=env)
