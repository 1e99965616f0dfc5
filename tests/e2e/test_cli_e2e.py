"""The ``harness`` command end to end: ls / gc / doctor against a real MiniStack, up / down.

The gc test seeds two dozen stacks straight through the emulator's
CloudFormation API (tiny SQS/SNS templates, the harness's tags), gives the
project a real git remote (a bare repository under ``tmp_path``) holding
some of the branches, and runs the console script as a subprocess.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import (
    HARNESS_CLI,
    REGION,
    Emulator,
    ProjectFactory,
    Runner,
    emulator_process,
    git,
    no_traceback,
    wait_gone,
)

from harness import tags

pytestmark = pytest.mark.e2e

QUEUE = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})
TOPIC = json.dumps({"Resources": {"T": {"Type": "AWS::SNS::Topic"}}})
# MiniStack keeps a stack with an unsignalled wait condition in CREATE_IN_PROGRESS.
WAITING = json.dumps(
    {
        "Resources": {
            "H": {"Type": "AWS::CloudFormation::WaitConditionHandle"},
            "W": {
                "Type": "AWS::CloudFormation::WaitCondition",
                "Properties": {"Handle": {"Ref": "H"}, "Timeout": "3600"},
            },
        }
    }
)

H = dt.timedelta(hours=1)
ALIVE = ["feature/live-1", "feature/live-2", "feature/live-3", "prod"]


def _tags(branch: str, stage: str, age: dt.timedelta, *, ttl: dt.timedelta = 24 * H, **over: str | None) -> list[dict]:
    born = dt.datetime.now(dt.UTC) - age
    t: dict[str, str | None] = {
        tags.MANAGED_BY: tags.MANAGER,
        tags.BRANCH: branch,
        tags.STAGE: stage,
        tags.COMMIT: "89abcdef0123456789abcdef0123456789abcdef",
        tags.RUN_ID: f"e2e-{stage}",
        tags.CREATED_AT: tags.iso(born),
        tags.EXPIRES_AT: tags.iso(born + ttl),
        **over,
    }
    return [{"Key": k, "Value": v} for k, v in t.items() if v is not None]


# name -> (template, tags or None)
SEED: dict[str, tuple[str, list[dict] | None]] = {
    **{f"mini-exp-{i}": (TOPIC, _tags("feature/live-1", f"exp-{i}", 30 * H)) for i in range(1, 5)},
    **{f"mini-gone-{i}": (QUEUE, _tags(f"feature/gone-{i}", f"gone-{i}", 3 * H)) for i in range(1, 4)},
    "mini-both": (QUEUE, _tags("feature/both", "both", 50 * H)),
    "mini-badtime-gone": (TOPIC, _tags("feature/gone-x", "badtime-gone", 5 * H, **{tags.EXPIRES_AT: "garbage"})),
    **{f"mini-live-{i}": (TOPIC, _tags(f"feature/live-{i}", f"live-{i}", i * H)) for i in range(1, 4)},
    "mini-badtime": (QUEUE, _tags("feature/live-2", "badtime", 40 * H, **{tags.EXPIRES_AT: "soon"})),
    "mini-new": (QUEUE, _tags("feature/unpushed", "new", dt.timedelta(minutes=5))),
    "other-app-gone": (QUEUE, _tags("feature/elsewhere", "elsewhere", 5 * H)),
    "mini-main": (TOPIC, _tags("main", "main", 100 * H)),
    "mini-prod": (TOPIC, _tags("prod", "prod", 100 * H)),
    "mini-busy": (WAITING, _tags("feature/gone-busy", "busy", 100 * H)),
    "legacy-one": (QUEUE, None),
    "legacy-two": (TOPIC, _tags("feature/old", "old", 100 * H, **{tags.MANAGED_BY: None})),
    "mini-impostor": (TOPIC, _tags("feature/old", "impostor", 100 * H, **{tags.MANAGED_BY: "not-us"})),
}
DELETED = {
    "mini-exp-1",
    "mini-exp-2",
    "mini-exp-3",
    "mini-gone-1",
    "mini-gone-2",
    "mini-gone-3",
    "mini-both",
    "mini-badtime-gone",
}
UNMANAGED = {"legacy-one", "legacy-two", "mini-impostor"}
HELD = "mini-exp-4"  # expired, but a run holds its lease


def add_remote(project: Path, branches: list[str]) -> Path:
    """A bare repository as the project's ``origin``, holding ``branches``."""
    remote = project.parent / f"{project.name}-origin.git"
    git(project.parent, "init", "-q", "--bare", str(remote))
    git(project, "remote", "add", "origin", str(remote))
    for b in branches:
        git(project, "branch", b)
    git(project, "push", "-q", "origin", *branches)
    return remote


def seed(emu: Emulator) -> None:
    cfn = emu.client("cloudformation")
    for name, (template, t) in SEED.items():
        cfn.create_stack(StackName=name, TemplateBody=template, **({"Tags": t} if t else {}))


def hold(emu: Emulator, stack: str) -> None:
    """A run holding ``stack``'s lease, as a live run does (stopped renewing only now)."""
    from harness.lease import Lease

    lease = Lease(emu.client("dynamodb"), stack, "e2e-holder", fingerprint="f")
    lease.ensure_table()
    lease.acquire(wait=0)
    lease._stop_heartbeat()
    lease.deployed()


def release_busy(emu: Emulator) -> None:
    """Signal the wait condition: an emulator with a stack still waiting takes seconds to stop."""
    with contextlib.suppress(Exception):
        emu.client("cloudformation").signal_resource(
            StackName="mini-busy", LogicalResourceId="W", UniqueId="done", Status="SUCCESS"
        )


def live(emu: Emulator) -> dict[str, str]:
    out = {}
    for page in emu.client("cloudformation").get_paginator("describe_stacks").paginate():
        out.update({s["StackName"]: s["StackStatus"] for s in page["Stacks"] if s["StackStatus"] != "DELETE_COMPLETE"})
    return out


@pytest.fixture
def seeded(emulator: Emulator) -> Iterator[Emulator]:
    seed(emulator)
    try:
        yield emulator
    finally:
        release_busy(emulator)


def rows(output: str) -> dict[str, str]:
    lines = [x for x in output.splitlines() if x.strip() and not x.startswith(("harness:", "-"))]
    return {x.split()[0]: x for x in lines}


def test_gc_and_ls_against_an_emulator(seeded: Emulator, make_project: ProjectFactory, run: Runner) -> None:
    emulator = seeded
    assert len(SEED) >= 20
    project = make_project()
    add_remote(project, ALIVE)
    hold(emulator, HELD)
    before = live(emulator)
    assert set(before) == set(SEED)
    assert before["mini-busy"] == "CREATE_IN_PROGRESS"
    target = ["--target", "endpoint", "--endpoint-url", emulator.url]

    dry = run(project, argv=[HARNESS_CLI, "gc", *target])
    assert dry.returncode == 0, dry.output
    no_traceback(dry.output)
    assert live(emulator) == before, "a dry run deleted something"
    plan = rows(dry.output)
    for name in DELETED:
        assert plan[name].endswith("would delete"), dry.output
    assert "no longer on origin" in plan["mini-gone-1"]
    assert "expired" in plan["mini-exp-1"]
    assert "malformed harness:expires-at 'garbage'" in plan["mini-badtime-gone"]
    assert plan["mini-main"].endswith("skip") and "protected stage 'main'" in plan["mini-main"]
    assert plan["mini-prod"].endswith("skip")
    assert plan["mini-busy"].endswith("skip") and "CREATE_IN_PROGRESS" in plan["mini-busy"]
    assert plan[HELD].endswith("skip") and "in use: 1 run(s) hold its lease: e2e-holder" in plan[HELD]
    assert plan["mini-new"].endswith("keep") and plan["mini-badtime"].endswith("keep")
    assert not UNMANAGED & set(plan)
    assert f"dry run: {len(DELETED)} stack(s) would be deleted, 4 skipped" in dry.output

    done = run(project, argv=[HARNESS_CLI, "gc", *target, "--yes"])
    assert done.returncode == 0, done.output
    no_traceback(done.output)
    after = live(emulator)
    assert set(after) == set(SEED) - DELETED, done.output
    assert after["mini-busy"] == "CREATE_IN_PROGRESS"
    results = rows(done.output)
    for name in DELETED:
        assert results[name].endswith("deleted"), done.output
    assert f"{len(DELETED)} deleted, 0 failed" in done.output

    listing = run(project, argv=[HARNESS_CLI, "ls", *target])
    assert listing.returncode == 0, listing.output
    no_traceback(listing.output)
    listed = rows(listing.output)
    remaining = set(SEED) - DELETED - UNMANAGED
    assert remaining <= set(listed) and not (DELETED | UNMANAGED) & set(listed), listing.output
    assert "feature/live-2" in listed["mini-live-2"] and re.search(r" in 2[12]h", listed["mini-live-2"])
    assert "invalid: soon" in listed["mini-badtime"]
    assert f"{len(remaining)} managed stack(s) in endpoint {emulator.url}" in listing.output
    assert "3 stack(s) without the harness tags not shown" in listing.output

    everything = run(project, argv=[HARNESS_CLI, "ls", *target, "--all"])
    for name in UNMANAGED:
        assert "(unmanaged)" in rows(everything.output)[name], everything.output


def test_gc_without_a_remote_only_collects_expired(seeded: Emulator, make_project: ProjectFactory, run: Runner) -> None:
    emulator = seeded
    project = make_project()  # no origin
    done = run(project, argv=[HARNESS_CLI, "gc", "--target", "endpoint", "--endpoint-url", emulator.url, "--yes"])
    assert done.returncode == 0, done.output
    assert "warning: cannot read the branches of 'origin'" in done.output
    expired = {"mini-exp-1", "mini-exp-2", "mini-exp-3", "mini-exp-4", "mini-both"}
    assert set(live(emulator)) == set(SEED) - expired


def test_doctor_passes_against_the_emulator_endpoint(
    emulator: Emulator, make_project: ProjectFactory, run: Runner
) -> None:
    project = make_project()
    result = run(project, argv=[HARNESS_CLI, "doctor", "--target", "endpoint", "--endpoint-url", emulator.url])
    assert result.returncode == 0, result.output
    no_traceback(result.output)
    checks = rows(result.output)
    for check in ("settings", "target", "credentials", "deploy", "branch", "report"):
        assert " pass " in checks[check], result.output
    assert "account 000000000000" in checks["credentials"]
    assert "-> stack mini-feature-e2e-smok-" in checks["branch"]
    assert "doctor: all checks passed" in result.output


def test_doctor_fails_on_an_unreachable_endpoint(make_project: ProjectFactory, run: Runner) -> None:
    from harness import procs

    project = make_project()
    url = f"http://127.0.0.1:{procs.free_port()}"
    result = run(project, argv=[HARNESS_CLI, "doctor", "--target", "endpoint", "--endpoint-url", url])
    assert result.returncode == 1, result.output
    checks = rows(result.output)
    assert " FAIL " in checks["target"] and "not reachable" in checks["target"]
    assert " skip " in checks["credentials"]
    assert "doctor: 1 check(s) failed: target" in result.output


def test_doctor_on_the_local_target_starts_and_stops_an_emulator(make_project: ProjectFactory, run: Runner) -> None:
    project = make_project()
    result = run(project, argv=[HARNESS_CLI, "doctor"])
    assert result.returncode == 0, result.output
    checks = rows(result.output)
    assert " pass " in checks["emulator"] and "ministack 1.5.33 installed" in checks["emulator"]
    m = re.search(r"MiniStack \S+ pid (\d+) on http://127\.0\.0\.1:(\d+)", checks["target"])
    assert m, result.output
    assert wait_gone(int(m.group(1)), int(m.group(2)), project), "doctor left its emulator running"


_EXPORT = re.compile(r"^export (\w+)=(\S+)$", re.M)


def _health(url: str) -> int:
    with urllib.request.urlopen(url + "/_ministack/health", timeout=5) as resp:  # noqa: S310 - loopback
        return int(resp.status)


def _up(project: Path, run: Runner) -> tuple[int, int, str]:
    up = run(project, argv=[HARNESS_CLI, "up"])
    assert up.returncode == 0, up.output
    no_traceback(up.output)
    [(pid, port)] = up.emulators
    exports = dict(_EXPORT.findall(up.output))
    url = exports["AWS_ENDPOINT_URL"]
    assert url == f"http://127.0.0.1:{port}"
    assert exports["AWS_ACCESS_KEY_ID"] == "test" and exports["AWS_REGION"] == REGION
    assert _health(url) == 200
    assert emulator_process(pid, port, project) is not None
    return pid, port, url


def test_up_keeps_an_emulator_until_down(make_project: ProjectFactory, run: Runner) -> None:
    project = make_project()
    pid, port, url = _up(project, run)

    # ls on the local target attaches to the kept emulator and leaves it running.
    listing = run(project, argv=[HARNESS_CLI, "ls"])
    assert listing.returncode == 0, listing.output
    assert f"0 managed stack(s) in the kept emulator on {url} (pid {pid})" in listing.output
    again = run(project, argv=[HARNESS_CLI, "up"])
    assert again.returncode == 0, again.output
    assert again.emulators == [(pid, port)] and "attached to kept" in again.output
    assert _health(url) == 200

    down = run(project, argv=[HARNESS_CLI, "down"])
    assert down.returncode == 0, down.output
    no_traceback(down.output)
    assert f"harness: emulator stopped (pid {pid})" in down.output
    assert wait_gone(pid, port, project), "the kept emulator is still running"

    down = run(project, argv=[HARNESS_CLI, "down"])
    assert down.returncode == 0 and "no kept emulator is running" in down.output
    nothing = run(project, argv=[HARNESS_CLI, "ls"])
    assert nothing.returncode == 0 and "no kept emulator is running" in nothing.output


def test_destroy_stops_an_emulator_kept_by_up(make_project: ProjectFactory, run: Runner) -> None:
    project = make_project()
    pid, port, _url = _up(project, run)
    destroy = run(project, argv=[HARNESS_CLI, "destroy"])
    assert destroy.returncode == 0, destroy.output
    no_traceback(destroy.output)
    assert "harness: emulator stopped" in destroy.output
    assert wait_gone(pid, port, project), "the kept emulator is still running"
