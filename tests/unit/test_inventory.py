"""``harness ls`` / ``harness gc`` / ``harness doctor`` against moto (no emulator, no network).

The gc tests seed two dozen stacks covering every rule (expired, fresh, untagged,
protected, live branch, deleted branch, in progress, malformed expiry, another
project's stack, a detached HEAD) and assert the exact set deleted.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from harness import cli, inventory, tags
from harness.branch import GitError
from harness.errors import TeardownError
from harness.inventory import DELETE, SKIP, StackRecord

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
REGION = "us-east-1"
APP = "shop"

QUEUE = json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}})
TOPIC = json.dumps({"Resources": {"T": {"Type": "AWS::SNS::Topic"}}})

#: Branches on the (fake) remote.
REMOTE = ("main", "prod", "feature/live-1", "feature/live-2", "feature/live-3", "feature/live-4", "feature/üx y")


def _tags(
    branch: str,
    stage: str,
    *,
    created: dt.timedelta,
    ttl: dt.timedelta = dt.timedelta(hours=24),
    commit: str = "0123456789abcdef0123456789abcdef01234567",
    expires: str | None = "auto",
    managed: str | None = tags.MANAGER,
) -> dict[str, str]:
    born = NOW - created
    t = {
        tags.BRANCH: tags.safe_value(branch),
        tags.STAGE: stage,
        tags.COMMIT: commit,
        tags.RUN_ID: f"run-{stage}",
        tags.CREATED_AT: tags.iso(born),
    }
    if managed is not None:
        t[tags.MANAGED_BY] = managed
    if expires == "auto":
        t[tags.EXPIRES_AT] = tags.iso(born + ttl)
    elif expires is not None:
        t[tags.EXPIRES_AT] = expires
    return t


H = dt.timedelta(hours=1)

#: name -> tags (None: no tags at all). The expected fate is in the name's group below.
SEED: dict[str, dict[str, str] | None] = {
    # expired, branch alive or not: deleted
    "shop-exp-1": _tags("feature/live-1", "exp-1", created=30 * H),
    "shop-exp-2": _tags("feature/old-2", "exp-2", created=3 * 24 * H),
    "shop-exp-3": _tags("feature/live-2", "exp-3", created=2 * H, ttl=H),
    # expired and its branch is gone: deleted, both reasons
    "shop-both": _tags("feature/both", "both", created=48 * H),
    # fresh, branch alive: kept quietly
    "shop-live-1": _tags("feature/live-1", "live-1", created=2 * H),
    "shop-live-2": _tags("feature/live-2", "live-2", created=5 * H),
    "shop-live-3": _tags("feature/live-3", "live-3", created=10 * H),
    "shop-live-4": _tags("feature/live-4", "live-4", created=23 * H),
    # a branch with characters the tag could not hold: tagged feature/_x_y, alive on the remote
    "shop-unicode": _tags("feature/üx y", "unicode", created=3 * H),
    # fresh, branch deleted from the remote: deleted
    "shop-gone-1": _tags("feature/gone-1", "gone-1", created=3 * H),
    "shop-gone-2": _tags("feature/gone-2", "gone-2", created=20 * H),
    # branch gone, but created minutes ago (maybe not pushed yet): kept, reported
    "shop-new": _tags("feature/not-pushed", "new", created=dt.timedelta(minutes=10)),
    # branch gone, but another project's stack (not named shop-<stage>): kept
    "billing-gone": _tags("feature/billing-x", "gone-b", created=5 * H),
    # a detached-HEAD run: branch is the short sha of its commit; only expiry counts
    "shop-0123456": _tags("0123456", "0123456", created=3 * H),
    # malformed / missing expires-at: never expired, reported; an orphan is still collected
    "shop-badtime": _tags("feature/live-3", "badtime", created=40 * H, expires="tomorrow-ish"),
    "shop-badtime-gone": _tags("feature/gone-3", "badtime-gone", created=40 * H, expires="2026-13-45T99:00:00Z"),
    "shop-noexpiry": _tags("feature/live-4", "noexpiry", created=40 * H, expires=None),
    # protected stages, expired and (prod) branch gone: never
    "shop-main": _tags("main", "main", created=100 * H),
    "shop-prod": _tags("prod", "prod", created=100 * H),
    "shop-master": _tags("master", "master", created=100 * H),
    # a managed stack we will report as UPDATE_IN_PROGRESS (moto completes at once): skipped
    "shop-busy": _tags("feature/gone-busy", "busy", created=50 * H),
    # not managed: never listed by ls, never in the plan
    "legacy-api": None,
    "legacy-db": _tags("feature/old", "old", created=100 * H, managed=None),
    "shop-impostor": _tags("feature/old", "impostor", created=100 * H, managed="someone-else"),
}

DELETED = {"shop-exp-1", "shop-exp-2", "shop-exp-3", "shop-both", "shop-gone-1", "shop-gone-2", "shop-badtime-gone"}
EXPIRED_ONLY = {"shop-exp-1", "shop-exp-2", "shop-exp-3", "shop-both"}
UNMANAGED = {"legacy-api", "legacy-db", "shop-impostor"}
IN_PROGRESS = "shop-busy"


def _ls_remote(branches: Sequence[str]) -> str:
    return "".join(f"{i:040x}\trefs/heads/{b}\n" for i, b in enumerate(branches, 1)) + f"{9:040x}\tHEAD\n"


class FakeGit:
    """Stands in for git: records argv, answers ls-remote (or fails)."""

    def __init__(self, branches: Sequence[str] = REMOTE, *, fail: bool = False) -> None:
        self.branches = branches
        self.fail = fail
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> str:
        self.calls.append(list(argv))
        if self.fail:
            raise GitError("fatal: 'origin' does not appear to be a git repository")
        return _ls_remote(self.branches)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(__import__("os").environ):
        if key.startswith(("HARNESS_", "AWS_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    (tmp_path / "pyproject.toml").write_text(f'[tool.harness]\napp = "{APP}"\ndeploy-command = ["git", "status"]\n')
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def cfn(project: Path) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("cloudformation", region_name=REGION)
        for i, (name, t) in enumerate(SEED.items()):
            kwargs: dict[str, Any] = {"StackName": name, "TemplateBody": QUEUE if i % 2 else TOPIC}
            if t is not None:
                kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in t.items()]
            client.create_stack(**kwargs)
        yield client


@pytest.fixture
def busy(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto finishes every operation at once: report one stack as mid-update, as AWS would."""
    real = inventory.list_stacks

    def listing(cfn: Any) -> list[StackRecord]:
        return [
            StackRecord(r.name, r.stack_id, "UPDATE_IN_PROGRESS", r.tags, r.creation_time)
            if r.name == IN_PROGRESS
            else r
            for r in real(cfn)
        ]

    monkeypatch.setattr(inventory, "list_stacks", listing)


def live_names(cfn: Any) -> set[str]:
    return {s["StackName"] for s in cfn.describe_stacks()["Stacks"] if s["StackStatus"] != "DELETE_COMPLETE"}


def run_cli(
    capsys: pytest.CaptureFixture[str], *args: str, git: Callable[[Sequence[str]], str] | None = None
) -> tuple[int, str]:
    code = cli.main(list(args), now=lambda: NOW, git=git or FakeGit())
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def table_rows(output: str) -> dict[str, str]:
    """First word of each table line -> the whole line."""
    lines = [line for line in output.splitlines() if line.strip() and not line.startswith(("harness:", "-"))]
    return {line.split()[0]: line for line in lines}


AWS = ("--target", "aws", "--region", REGION)


# --------------------------------------------------------------------------- gc through the CLI


def test_seed_has_at_least_twenty_stacks(cfn: Any) -> None:
    assert len(SEED) >= 20
    assert live_names(cfn) == set(SEED)


def test_gc_dry_run_deletes_nothing_and_explains_every_decision(
    cfn: Any, busy: None, capsys: pytest.CaptureFixture[str]
) -> None:
    git = FakeGit()
    code, out = run_cli(capsys, "gc", *AWS, git=git)
    assert code == 0, out
    assert live_names(cfn) == set(SEED)
    assert git.calls == [["git", "-C", str(Path.cwd().resolve()), "ls-remote", "--heads", "--", "origin"]]

    rows = table_rows(out)
    for name in DELETED:
        assert rows[name].endswith("would delete"), rows[name]
    assert "expired 6h ago" in rows["shop-exp-1"]
    assert "branch 'feature/gone-1' no longer on origin" in rows["shop-gone-1"]
    assert "expired" in rows["shop-both"] and "no longer on origin" in rows["shop-both"]
    assert (
        "malformed harness:expires-at" in rows["shop-badtime-gone"]
        and "no longer on origin" in rows["shop-badtime-gone"]
    )
    for name in ("shop-main", "shop-prod", "shop-master"):
        assert "protected" in rows[name] and rows[name].endswith("skip"), rows[name]
    assert "UPDATE_IN_PROGRESS: an operation is in progress" in rows[IN_PROGRESS]
    assert rows[IN_PROGRESS].endswith("skip")
    assert "harness:expires-at 'tomorrow-ish' (not treated as expired)" in rows["shop-badtime"] and rows[
        "shop-badtime"
    ].endswith("keep")
    assert "no harness:expires-at tag (not treated as expired)" in rows["shop-noexpiry"]
    assert "only 10m old" in rows["shop-new"] and rows["shop-new"].endswith("keep")
    # Quietly kept and untouchable stacks are not in the table.
    for name in {"shop-live-1", "shop-unicode", "billing-gone", "shop-0123456", *UNMANAGED}:
        assert name not in rows, out
    assert "24 stack(s), 21 managed, 3 without the harness tags (never touched), 1 of other projects" in out
    assert "dry run: 7 stack(s) would be deleted, 4 skipped, 10 kept" in out
    assert "--yes" in out


def test_gc_yes_deletes_exactly_the_expired_and_orphaned_managed_stacks(
    cfn: Any, busy: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_cli(capsys, "gc", *AWS, "--yes")
    assert code == 0, out
    assert live_names(cfn) == set(SEED) - DELETED
    rows = table_rows(out)
    for name in DELETED:
        assert rows[name].endswith("deleted"), out
    assert "7 deleted, 0 failed" in out

    # Nothing is left to do: a second run deletes nothing more.
    code, out = run_cli(capsys, "gc", *AWS, "--yes")
    assert code == 0, out
    assert "nothing to delete" in out
    assert live_names(cfn) == set(SEED) - DELETED


def test_gc_without_the_remote_only_collects_expired_stacks(
    cfn: Any, busy: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_cli(capsys, "gc", *AWS, "--yes", git=FakeGit(fail=True))
    assert code == 0, out
    assert (
        "warning: cannot read the branches of 'origin' (fatal: 'origin' does not appear to be a git repository)" in out
    )
    assert "orphan detection skipped, only expiry counts" in out
    assert live_names(cfn) == set(SEED) - EXPIRED_ONLY


def test_gc_treats_a_remote_without_branches_as_unreadable(
    cfn: Any, busy: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_cli(capsys, "gc", *AWS, "--yes", git=FakeGit(branches=()))
    assert code == 0, out
    assert "'origin' lists no branches: orphan detection skipped" in out
    assert live_names(cfn) == set(SEED) - EXPIRED_ONLY


def test_gc_reports_every_failed_delete_and_exits_1(
    cfn: Any, busy: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.deploy

    real = harness.deploy.delete_stack

    def flaky(client: Any, stack: str, **kw: Any) -> None:
        if ":stack/shop-gone-1/" in stack or ":stack/shop-exp-2/" in stack:
            raise TeardownError("stack was not deleted (status DELETE_FAILED)\n  Q: bucket not empty")
        real(client, stack, **kw)

    monkeypatch.setattr(harness.deploy, "delete_stack", flaky)
    code, out = run_cli(capsys, "gc", *AWS, "--yes")
    assert code == 1, out
    rows = table_rows(out)
    assert "FAILED: stack was not deleted (status DELETE_FAILED)" in rows["shop-gone-1"]
    assert "FAILED" in rows["shop-exp-2"]
    assert "5 deleted, 2 failed" in out
    # The other deletes still happened.
    assert live_names(cfn) == set(SEED) - DELETED | {"shop-gone-1", "shop-exp-2"}


def test_gc_orphan_grace_can_be_changed(cfn: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "gc", *AWS, "--orphan-grace", "0")
    assert code == 0, out
    assert table_rows(out)["shop-new"].endswith("would delete")
    code, out = run_cli(capsys, "gc", *AWS, "--orphan-grace", "4")
    assert table_rows(out)["shop-gone-1"].endswith("keep")  # 3h old
    assert table_rows(out)["shop-gone-2"].endswith("would delete")  # 20h old


def test_gc_protected_stages_come_from_the_settings(cfn: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "gc", *AWS, "--protected-stages", "exp-1,gone-1")
    assert code == 0, out
    rows = table_rows(out)
    assert "protected stage 'exp-1'" in rows["shop-exp-1"] and rows["shop-exp-1"].endswith("skip")
    assert rows["shop-gone-1"].endswith("skip")
    # main is no longer protected by this setting: it is expired, so it would go.
    assert rows["shop-main"].endswith("would delete")


def _hold(stack: str, run: str, at: dt.datetime, *, deployed: bool = True) -> None:
    """Take ``stack``'s lease as ``run`` at time ``at`` (its entry expires 90s later)."""
    from harness.lease import Lease

    lease = Lease(boto3.client("dynamodb", region_name=REGION), stack, run, fingerprint="f", clock=at.timestamp)
    lease.ensure_table()
    lease.acquire(wait=0)
    lease._stop_heartbeat()
    if deployed:
        lease.deployed()


def test_gc_leaves_stacks_whose_lease_is_held(cfn: Any, busy: None, capsys: pytest.CaptureFixture[str]) -> None:
    _hold("shop-exp-1", "run-live", NOW - dt.timedelta(seconds=30))  # still renewing
    _hold("shop-exp-3", "run-deployer", NOW - dt.timedelta(seconds=30), deployed=False)
    _hold("shop-gone-1", "run-dead", NOW - H)  # stopped renewing an hour ago
    code, out = run_cli(capsys, "gc", *AWS, "--yes")
    assert code == 0, out
    rows = table_rows(out)
    assert "in use: 1 run(s) hold its lease: run-live (" in rows["shop-exp-1"], out
    assert rows["shop-exp-1"].endswith("skip") and "expired 6h ago" in rows["shop-exp-1"]
    assert "in use: run run-deployer is deploying it (lease)" in rows["shop-exp-3"], out
    assert live_names(cfn) == set(SEED) - DELETED | {"shop-exp-1", "shop-exp-3"}


def test_plan_skips_a_stack_whose_lease_cannot_be_read() -> None:
    def broken(r: StackRecord) -> str | None:
        raise RuntimeError("AccessDenied on harness-leases")

    [d] = inventory.plan_gc(
        [record("shop-a", created=50 * H)], now=NOW, protected_stages=(), remote=None, in_use=broken
    ).decisions
    assert d.action == SKIP and "cannot read its lease (RuntimeError: AccessDenied on harness-leases)" in d.reason


def test_held_leases_are_read_when_asked_once_each_and_unreadable_ones_count_as_held() -> None:
    from harness.events import sweep

    reads: list[str] = []

    def in_use(r: StackRecord) -> str | None:
        reads.append(r.name)
        if r.name == "shop-broken":
            raise RuntimeError("AccessDenied on harness-leases")
        return "run-1 (pid 7)" if r.name == "shop-held" else None

    records = [record(name, created=H) for name in ("shop-held", "shop-free", "shop-broken", "shop-quiet")]
    held = inventory.HeldLeases(records, in_use)
    assert len(held) == 4 and not reads  # nothing read up front

    def found(stack: str) -> sweep.Found:
        return sweep.Found(arn=f"arn:aws:sqs:{REGION}:1:listener-{stack}", tags={sweep.LISTENER_OF: stack})

    listener = [found("shop-held"), found("shop-free")]
    gone = found("shop-gone")
    assert sweep.orphans([*listener, gone], held) == [listener[1], gone]
    assert held["shop-broken"] is True and held["shop-held"] is True
    assert sorted(reads) == ["shop-broken", "shop-free", "shop-held"]  # shop-quiet has no listener: never read


# --------------------------------------------------------------------------- ls


def test_ls_lists_managed_stacks_only(cfn: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "ls", *AWS)
    assert code == 0, out
    rows = table_rows(out)
    header = out.splitlines()[0].split()
    assert header == ["stack", "branch", "stage", "status", "age", "expires", "run", "id", "commit"]
    assert set(SEED) - UNMANAGED <= set(rows)
    assert not UNMANAGED & set(rows)
    assert rows["shop-exp-1"].split() == [
        "shop-exp-1", "feature/live-1", "exp-1", "CREATE_COMPLETE", "1d", "6h", "6h", "ago", "run-exp-1", "0123456",
    ]  # fmt: skip
    assert "in 21h" in rows["shop-gone-1"]
    assert "invalid: tomorrow-ish" in rows["shop-badtime"]
    assert "feature/_x_y" in rows["shop-unicode"]
    assert "21 managed stack(s) in AWS account 123456789012" in out
    assert "3 stack(s) without the harness tags not shown (--all lists them)" in out


def test_ls_all_marks_unmanaged_stacks(cfn: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "ls", *AWS, "--all")
    assert code == 0, out
    rows = table_rows(out)
    for name in UNMANAGED:
        assert "(unmanaged)" in rows[name], rows[name]
    assert "21 managed stack(s)" in out and "3 unmanaged" in out


def test_ls_and_gc_on_a_local_target_without_a_kept_emulator(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("ls", "gc"):
        code, out = run_cli(capsys, command, "--target", "local")
        assert code == 0, out
        assert "no kept emulator is running" in out
        assert "harness up" in out


# --------------------------------------------------------------------------- the plan, on fakes


def record(name: str, status: str = "CREATE_COMPLETE", **kw: Any) -> StackRecord:
    t = _tags(kw.pop("branch", "feature/x"), kw.pop("stage", name.removeprefix("shop-")), **kw)
    return StackRecord(name=name, stack_id=f"arn:aws:cloudformation:{REGION}:1:stack/{name}/1", status=status, tags=t)


@pytest.mark.parametrize(
    "status",
    [
        "CREATE_IN_PROGRESS",
        "UPDATE_IN_PROGRESS",
        "UPDATE_ROLLBACK_IN_PROGRESS",
        "DELETE_IN_PROGRESS",
    ],
)
def test_plan_skips_stacks_in_progress(status: str) -> None:
    plan = inventory.plan_gc(
        [record("shop-a", status, created=50 * H)], now=NOW, protected_stages=("main",), remote=set()
    )
    [d] = plan.decisions
    assert d.action == SKIP and status in d.reason


@pytest.mark.parametrize("stage", ["main", "prod", "production", "master"])
def test_plan_never_collects_protected_stages(stage: str) -> None:
    r = record(f"shop-{stage}", branch=stage, stage=stage, created=500 * H)
    plan = inventory.plan_gc(
        [r], now=NOW, protected_stages=("Main", "refs/heads/prod", "production", "master"), remote={"other"}
    )
    [d] = plan.decisions
    assert d.action == SKIP and "protected" in d.reason


def test_plan_protects_a_stack_without_a_stage_tag() -> None:
    r = record("shop-x", created=500 * H)
    r.tags.pop(tags.STAGE)
    [d] = inventory.plan_gc([r], now=NOW, protected_stages=("main",), remote=None).decisions
    assert d.action == SKIP and "cannot tell whether it is protected" in d.reason


def test_plan_decisions_on_fakes() -> None:
    records = [
        record("shop-old", created=25 * H),
        record("shop-fresh", created=2 * H, branch="feature/alive"),
        record("shop-orphan", created=2 * H, branch="feature/dead"),
        StackRecord("untagged", "id", "CREATE_COMPLETE", {}),
    ]
    plan = inventory.plan_gc(
        records, now=NOW, protected_stages=("main",), remote={"feature/alive"}, ours=lambda r: True
    )
    actions = {d.record.name: d.action for d in plan.decisions}
    assert actions == {"shop-old": DELETE, "shop-orphan": DELETE}
    assert plan.unmanaged == 1 and plan.quietly_kept == 1
    no_remote = inventory.plan_gc(records, now=NOW, protected_stages=("main",), remote=None)
    assert [d.record.name for d in no_remote.to_delete] == ["shop-old"]


def test_expiry_is_compared_with_the_injected_time() -> None:
    r = record("shop-a", created=2 * H)  # expires in 22h
    plan = lambda now: inventory.plan_gc([r], now=now, protected_stages=(), remote=None)  # noqa: E731
    assert not plan(NOW).to_delete
    assert plan(NOW + 23 * H).to_delete[0].reason == "expired 1h ago"


def test_remote_branches_parses_ls_remote() -> None:
    git = FakeGit(["main", "feature/a", "refs-like/x"])
    assert inventory.remote_branches(Path("/repo"), "upstream", git) == {"main", "feature/a", "refs-like/x"}
    assert git.calls == [["git", "-C", "/repo", "ls-remote", "--heads", "--", "upstream"]]


class FakeCfn:
    """describe_stacks by id answers from a dict (the re-check before each delete)."""

    def __init__(self, stacks: dict[str, dict[str, Any]]) -> None:
        self.stacks = stacks

    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        if StackName not in self.stacks:
            import botocore.exceptions

            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "ValidationError", "Message": f"Stack with id {StackName} does not exist"}},
                "DescribeStacks",
            )
        return {"Stacks": [self.stacks[StackName]]}


def test_execute_looks_again_before_deleting() -> None:
    recs = [record(f"shop-{i}", created=50 * H) for i in range(4)]
    plan = inventory.plan_gc(recs, now=NOW, protected_stages=(), remote=None)
    assert len(plan.to_delete) == 4

    def desc(r: StackRecord, status: str, t: dict[str, str]) -> dict[str, Any]:
        return {
            "StackName": r.name,
            "StackId": r.stack_id,
            "StackStatus": status,
            "Tags": [{"Key": k, "Value": v} for k, v in t.items()],
        }

    fake = FakeCfn(
        {
            recs[0].stack_id: desc(recs[0], "CREATE_COMPLETE", recs[0].tags),
            recs[1].stack_id: desc(recs[1], "UPDATE_IN_PROGRESS", recs[1].tags),  # someone started an update
            recs[2].stack_id: desc(recs[2], "UPDATE_COMPLETE", {}),  # tags removed meanwhile
            # recs[3] is gone already
        }
    )
    deleted: list[str] = []

    def delete(cfn: Any, stack: str, *, delay: float, max_attempts: int) -> None:
        deleted.append(stack)

    results = inventory.execute(fake, plan, delay=0, max_attempts=1, delete=delete)
    assert deleted == [recs[0].stack_id]
    assert [(r.ok, r.detail) for r in results] == [
        (True, "deleted"),
        (True, "skipped: now UPDATE_IN_PROGRESS"),
        (True, "skipped: no longer tagged as managed"),
        (True, "already gone"),
    ]


def test_table_cells_cannot_carry_terminal_escapes() -> None:
    r = StackRecord("evil", "id", "CREATE_COMPLETE", {tags.MANAGED_BY: tags.MANAGER, tags.BRANCH: "x\x1b[2Jy"})
    [row] = inventory.ls_rows([r], NOW)
    assert "\x1b" not in "".join(row) and "x?[2Jy" in row


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5, "5s"), (61, "1m"), (3600, "1h"), (3660 + 3600, "2h 1m"), (86400, "1d"), (86400 * 3 + 7200, "3d 2h")],
)
def test_spans(seconds: int, text: str) -> None:
    assert inventory._span(seconds) == text
    assert inventory._relative(NOW + dt.timedelta(seconds=seconds), NOW) == f"in {text}"
    assert inventory._relative(NOW - dt.timedelta(seconds=seconds), NOW) == f"{text} ago"


# --------------------------------------------------------------------------- doctor


def test_doctor_passes_on_a_healthy_aws_target(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_BRANCH", "feature/doctor")
    with mock_aws():
        code, out = run_cli(capsys, "doctor", *AWS)
    assert code == 0, out
    rows = table_rows(out)
    for check in ("settings", "target", "credentials", "deploy", "branch", "report"):
        assert " pass " in rows[check], rows[check]
    assert "account 123456789012" in rows["credentials"]
    assert "git status (git -> " in rows["deploy"]
    assert "'feature/doctor' (env HARNESS_BRANCH) -> stage feature-doctor-" in rows["branch"]
    assert "-> stack shop-feature-doctor-" in rows["branch"]
    assert "doctor: all checks passed" in out


def test_doctor_reports_every_failure(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HARNESS_BRANCH", "main")
    (project / "pyproject.toml").write_text(
        f'[tool.harness]\napp = "{APP}"\ndeploy-command = ["no-such-deployer-xyz", "go"]\nreport-dir = "a-file"\n'
    )
    (project / "a-file").write_text("not a folder")
    with mock_aws():
        code, out = run_cli(capsys, "doctor", *AWS)
    assert code == 1, out
    rows = table_rows(out)
    assert " FAIL " in rows["deploy"] and "'no-such-deployer-xyz' not found on PATH" in rows["deploy"]
    assert " FAIL " in rows["branch"] and "protected" in rows["branch"]
    assert " FAIL " in rows["report"] and "exists and is not a folder" in rows["report"]
    assert " pass " in rows["credentials"]
    assert "doctor: 3 check(s) failed: deploy command, branch, report dir" in out


def test_doctor_reports_bad_settings(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "pyproject.toml").write_text('[tool.harness]\ntarget = "moon"\n')
    code, out = run_cli(capsys, "doctor")
    assert code == 1, out
    rows = table_rows(out)
    assert " FAIL " in rows["settings"] and "moon" in rows["settings"]
    assert " skip " in rows["target"]


def test_up_refuses_other_targets(cfn: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "up", *AWS)
    assert code == 1
    assert "`harness up` starts the embedded emulator, but the target is 'aws'" in out


def test_down_without_a_kept_emulator(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_cli(capsys, "down")
    assert code == 0
    assert "no kept emulator is running" in out
