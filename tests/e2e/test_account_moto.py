"""The real-account path (``--target aws``) against moto's server (see account_support.py).

Real ``pytest`` and ``harness`` subprocesses, the project's own deploy and
destroy commands (scripts calling CloudFormation through boto3), plain
``boto3`` in the tests: the harness cannot
tell moto from an account. Each test names the defect of the aws path it
guards.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from account_support import (
    HOME_ACCOUNT,
    OTHER_ACCOUNT,
    OTHER_REGION,
    ROLE_ARN,
    SANDBOX_REGION,
    TEMPLATE,
    Account,
    account_project,
    start_account,
)
from e2e_support import HARNESS_CLI, Runner, no_traceback

from harness import tags
from reliability.proxy import FaultProxy, Policy

pytestmark = pytest.mark.e2e

STAGE = "feature-account-2d6f8bd"  # stage_from_branch("feature/account")
STACK = f"acct-{STAGE}"
ASSUMED = f"arn:aws:sts::{HOME_ACCOUNT}:assumed-role/ci-deployer/branchstack-harness"


@pytest.fixture
def account(tmp_path: Path) -> Iterator[Account]:
    yield from start_account(tmp_path / "account")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return account_project(tmp_path / "project")


def by_role(account: Account) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for record in account.identities():
        out.setdefault(record["who"], []).append(record)
    return out


def test_role_deploy_tests_traces_and_destroy_run_as_one_identity(account: Account, project: Path, run: Runner) -> None:
    """Defects 2 and 6 (and 5 through moto's own 500 for DetectStackDrift): the role is who runs everything."""
    env = account.env({"AWS_PROFILE": "base"})  # a competing profile the CLI would otherwise prefer
    r = run(project, "tests/integration", "--target", "aws", "--role-arn", ROLE_ARN, env=env)
    assert r.returncode == 0, r.output
    no_traceback(r.output)
    assert (
        f"target: AWS account {HOME_ACCOUNT} as {ASSUMED} (role {ROLE_ARN} assumed with the default credential chain"
        in r.output
    )
    seen = by_role(account)
    for who in ("deploy", "test", "destroy"):
        [record] = seen[who]
        assert record["arn"] == ASSUMED, (who, record)
        assert record["profile"] is None and record["key"].startswith("ASIA") and record["expiration"], record
    # No region was set anywhere: the harness used us-east-1 and forced nothing onto the deploy.
    assert "in us-east-1 (fallback: no region set)" in r.output
    assert seen["deploy"][0]["region"] is None and seen["deploy"][0]["default_region"] is None
    # moto answers DetectStackDrift with a 500 that is not XML: named, never fatal.
    [drift] = r.lines("drift detection not available")
    assert "cloudformation:DetectStackDrift failed for " + ASSUMED in drift
    assert "the endpoint's answer is not an AWS response" in drift
    # The test called DynamoDB only: its own segment is its trace, in X-Ray, without waiting.
    assert "traces: 1 of 1 collected" in r.output
    [entry] = json.loads((project / "harness-report" / "traces" / "index.json").read_text())
    xray = account.client("xray").batch_get_traces(TraceIds=[entry["trace_id"]])["Traces"]
    assert [t["Id"] for t in xray] == [entry["trace_id"]]
    assert "verified gone (2 resources checked, 0 left)" in r.output
    assert account.stacks() == {}


def test_xdist_workers_assume_the_role_themselves_so_their_keys_refresh(
    account: Account, project: Path, run: Runner
) -> None:
    """A worker's plain boto3 clients had the keys the controller exported at spawn, ending with the role's session.

    Each worker now assumes the role itself, from the credentials the run started with (here the
    default chain's environment keys), and refreshes its own environment between tests as the
    controller does (the refresh itself: tests/unit/test_aws_target.py). Its keys are its own.
    """
    env = account.env({"AWS_PROFILE": "base"})
    r = run(project, "tests/integration", "-n", "2", "--target", "aws", "--role-arn", ROLE_ARN, env=env)
    assert r.returncode == 0, r.output
    no_traceback(r.output)
    seen = by_role(account)
    [deploy], [test] = seen["deploy"], seen["test"]
    assert test["arn"] == deploy["arn"] == ASSUMED, (test, deploy)
    assert test["key"].startswith("ASIA") and test["expiration"], test
    assert test["key"] != deploy["key"]  # assumed by the worker, not inherited from the controller
    assert test["profile"] is None  # the competing profile is still out
    assert account.stacks() == {}


def test_a_profile_beside_environment_keys_deploys_in_the_profile_account(
    account: Account, project: Path, run: Runner
) -> None:
    """Defect 1 (and 9, the profile's region): the deploy ran with the environment's keys in another account."""
    r = run(
        project,
        "tests/integration",
        "--target",
        "aws",
        "--aws-profile",
        "other",
        "--allowed-accounts",
        OTHER_ACCOUNT,
        env=account.env(),
    )
    assert r.returncode == 0, r.output
    assert f"target: AWS account {OTHER_ACCOUNT} as " in r.output
    assert f"in {OTHER_REGION} (profile other)" in r.output
    seen = by_role(account)
    for who in ("deploy", "test", "destroy"):
        [record] = seen[who]
        assert record["account"] == OTHER_ACCOUNT and record["profile"] is None, (who, record)
        assert record["region"] == OTHER_REGION, (who, record)
    assert account.stacks() == {}
    assert account.stacks(region=OTHER_REGION, account=OTHER_ACCOUNT) == {}


def test_region_comes_from_the_environment_and_harness_destroy_removes_the_kept_stack(
    account: Account, project: Path, run: Runner
) -> None:
    """Defect 9: the stack went to us-east-1 whatever AWS_DEFAULT_REGION said."""
    env = account.env({"AWS_DEFAULT_REGION": OTHER_REGION})
    r = run(project, "tests/integration", "--target", "aws", "--keep-stack", env=env)
    assert r.returncode == 0, r.output
    assert f"in {OTHER_REGION} (AWS_DEFAULT_REGION)" in r.output
    assert account.stacks(region=OTHER_REGION) == {STACK: "CREATE_COMPLETE"}
    assert account.stacks() == {}
    assert f"harness destroy --target aws --region {OTHER_REGION}" in r.output
    d = run(project, argv=[HARNESS_CLI, "destroy", "--target", "aws"], env=env)
    assert d.returncode == 0, d.output
    assert account.stacks(region=OTHER_REGION) == {}
    [destroy] = by_role(account)["destroy"]
    assert destroy["region"] == OTHER_REGION and destroy["account"] == HOME_ACCOUNT


def _lease(account: Account, stack: str, *, expires: float, region: str = "us-east-1") -> None:
    """A lease item as another run writes it: one user on another machine, until ``expires``."""
    state = {
        "version": 3,
        "phase": "ready",
        "owner": None,
        "owner_expires": 0.0,
        "owner_proc": None,
        "fingerprint": "f",
        "users": {"other-run": {"holder": "ci-box pid 4242", "expires": expires, "proc": None}},
        "shards": None,
    }
    account.client("dynamodb", region=region).put_item(
        TableName="harness-leases",
        Item={"stack": {"S": stack}, "state": {"S": json.dumps(state)}, "version": {"N": "3"}},
    )


def _lease_item(account: Account, stack: str) -> dict[str, Any] | None:
    return account.client("dynamodb").get_item(TableName="harness-leases", Key={"stack": {"S": stack}}).get("Item")


def test_harness_destroy_respects_a_live_lease_and_clears_a_stale_one(
    account: Account, project: Path, run: Runner
) -> None:
    """Defect 8: destroy deleted a stack a live run was using, and left its "ready" lease item behind."""
    env = account.env()
    r = run(project, "tests/integration", "--target", "aws", "--keep-stack", env=env)
    assert r.returncode == 0, r.output
    _lease(account, STACK, expires=time.time() + 3600)
    d = run(project, argv=[HARNESS_CLI, "destroy", "--target", "aws"], env=env)
    assert d.returncode == 1, d.output
    assert f"stack {STACK} is in use: 1 run(s) hold its lease: other-run (ci-box pid 4242)" in d.output
    assert account.stacks() == {STACK: "CREATE_COMPLETE"}, d.output
    _lease(account, STACK, expires=time.time() - 60)  # that run stopped renewing: it is gone
    d = run(project, argv=[HARNESS_CLI, "destroy", "--target", "aws"], env=env)
    assert d.returncode == 0, d.output
    assert account.stacks() == {}
    assert _lease_item(account, STACK) is None


def _managed_tags(stage: str, *, expired: bool) -> list[dict[str, str]]:
    created = dt.datetime.now(dt.UTC) - dt.timedelta(hours=30 if expired else 1)
    t = tags.StackTags(
        branch=f"feature/{stage}",
        stage=stage,
        commit="abc1234",
        run_id="old-run",
        created_at=created,
        ttl_hours=24,
    )
    return t.as_cfn()


def test_gc_collects_an_expired_review_in_progress_stack_and_respects_leases(
    account: Account, project: Path, run: Runner
) -> None:
    """Defects 7 and 8: a never-executed change set's stack was never collected; gc ignored stale lease items."""
    cfn = account.client("cloudformation")
    cfn.create_change_set(
        StackName="acct-killed-deploy",
        ChangeSetName="never-executed",
        ChangeSetType="CREATE",
        TemplateBody=TEMPLATE,
        Tags=_managed_tags("killed-deploy", expired=True),
    )
    for name in ("acct-in-use", "acct-left-over"):
        cfn.create_stack(StackName=name, TemplateBody=TEMPLATE, Tags=_managed_tags(name[5:], expired=True))
    assert account.stacks()["acct-killed-deploy"] == "REVIEW_IN_PROGRESS"
    account.client("dynamodb").create_table(
        TableName="harness-leases",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "stack", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "stack", "KeyType": "HASH"}],
    )
    _lease(account, "acct-in-use", expires=time.time() + 3600)
    _lease(account, "acct-left-over", expires=time.time() - 600)
    g = run(project, argv=[HARNESS_CLI, "gc", "--target", "aws", "--yes"], env=account.env())
    assert g.returncode == 0, g.output
    no_traceback(g.output)
    assert account.stacks() == {"acct-in-use": "CREATE_COMPLETE"}
    assert _lease_item(account, "acct-left-over") is None
    assert _lease_item(account, "acct-in-use") is not None
    assert "its change set was never executed" in g.output


def test_denied_traces_and_an_unreadable_drift_answer_are_messages_and_the_run_passes(
    account: Account, project: Path, run: Runner
) -> None:
    """Defects 4 and 5: a denied BatchGetTraces ended a green run with a traceback and exit 1;
    an endpoint answering DetectStackDrift with a page that is not XML stopped it (INTERNALERROR)."""

    def forced(req: Any) -> str | None:
        if req.path.startswith("/Traces"):
            return "denied"
        return "html-200" if req.op == "DetectStackDrift" else None

    upstream = int(account.url.rsplit(":", 1)[1])
    with FaultProxy(upstream, Policy(rate=0.0, forced=forced), random.Random(1)) as proxy:
        env = account.env({"AWS_ENDPOINT_URL": proxy.url})
        r = run(project, "tests/integration", "--target", "aws", "--role-arn", ROLE_ARN, env=env)
        print(sorted({(q.op, q.path, q.protocol, q.fault) for q in proxy.stats.records}))
    print(r.output)
    assert r.returncode == 0, r.output
    no_traceback(r.output)
    assert "INTERNALERROR" not in r.output
    [drift] = r.lines("drift detection not available")
    assert f"cloudformation:DetectStackDrift failed for {ASSUMED}" in drift
    assert "the endpoint's answer is not an AWS response" in drift
    [denied] = r.lines("traces could not be read")
    assert f"xray:BatchGetTraces was denied to {ASSUMED}" in denied
    assert "the identity needs the permission xray:BatchGetTraces" in denied
    assert "1 passed" in r.output and "verified gone" in r.output
    assert account.stacks() == {}


def test_the_account_guard_refuses_before_anything_is_deployed(account: Account, project: Path, run: Runner) -> None:
    r = run(project, "tests/integration", "--target", "aws", "--allowed-accounts", "999999999999", env=account.env())
    assert r.returncode == 1, r.output
    no_traceback(r.output)
    assert f"the credentials are for account {HOME_ACCOUNT}" in r.output
    assert "not in allowed-accounts (999999999999)" in r.output
    assert account.identities() == [] and account.stacks() == {}


def test_a_protected_branch_is_refused_on_an_account(account: Account, tmp_path: Path, run: Runner) -> None:
    project = account_project(tmp_path / "main-project", branch="main")
    r = run(project, "tests/integration", "--target", "aws", env=account.env({"HARNESS_BRANCH": "main"}))
    assert r.returncode == 1, r.output
    assert "stage 'main'" in r.output and "is protected" in r.output
    assert account.identities() == [] and account.stacks() == {}


def test_the_sandbox_profile_region_and_identity(account: Account, project: Path, run: Runner) -> None:
    """A profile with keys of its own and a region: the run uses both, not the environment's keys."""
    r = run(project, "tests/integration", "--target", "aws", "--aws-profile", "sandbox", env=account.env())
    assert r.returncode == 0, r.output
    assert f"in {SANDBOX_REGION} (profile sandbox)" in r.output
    for record in account.identities():
        assert record["key"] == "AKIAPROFILEBASEKEY01" and record["region"] == SANDBOX_REGION, record


def test_a_run_outlives_its_role_session_and_every_harness_call_is_in_the_policy(
    account: Account, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defect 3: the role was assumed once; past its session the lease, the traces and the teardown failed.

    In process, so the clock can move: a 900 s session (AWS's shortest), and the clock of the
    run and of the account moved past each refresh window. Every AWS call the harness itself makes (the
    deploy and destroy commands are subprocesses, not counted) is recorded through botocore
    and checked against harness/aws_policy.json.
    """
    import botocore.client
    import moto.sts.models

    from harness import aws_errors, cli
    from harness.lifecycle import Lifecycle
    from harness.settings import resolve
    from harness.targets import aws_credentials
    from harness.traces.aws_source import XRayApiSource
    from harness.traces.run import collect

    for var in [k for k in os.environ if k.startswith(("AWS_", "HARNESS_"))]:
        monkeypatch.delenv(var)
    for k, v in account.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(project)
    account.client("cloudformation").create_stack(  # for gc to collect, below
        StackName="acct-expired", TemplateBody=TEMPLATE, Tags=_managed_tags("expired", expired=True)
    )
    now = [dt.datetime.now(dt.UTC)]
    monkeypatch.setattr(aws_credentials, "CLOCK", lambda: now[0])
    monkeypatch.setattr(aws_credentials, "ROLE_SESSION_SECONDS", 900)
    # The account's clock is the run's: the server runs in this process.
    monkeypatch.setattr(moto.sts.models, "utcnow", lambda: now[0].replace(tzinfo=None))
    calls: set[str] = set()
    original = botocore.client.BaseClient._make_api_call

    def recorded(self: Any, operation: str, params: Any) -> Any:
        signing = self.meta.service_model.signing_name
        calls.add(aws_errors.IRREGULAR.get(operation) or f"{signing}:{operation}")
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recorded)

    lines: list[str] = []
    settings = resolve({"target": "aws", "role_arn": ROLE_ARN}, os.environ, project)
    lc = Lifecycle(settings, out=lines.append)
    lc.start()
    creds = lc.target.credentials  # type: ignore[union-attr]
    first = creds.env()["AWS_ACCESS_KEY_ID"]
    now[0] += dt.timedelta(seconds=650)  # into the refresh-ahead window
    assert lc.lease is not None
    lc.lease.renew()  # the heartbeat's call: with the refreshed keys
    second = creds.env()["AWS_ACCESS_KEY_ID"]
    tid = "1-6b0dd000-000000000000000000000001"
    client = {"name": "t", "id": "d" * 16, "trace_id": tid, "start_time": time.time() - 1, "end_time": time.time()}
    rec: Any = {"nodeid": "t::t", "trace_id": tid, "outcome": "passed", "client": client}
    report = collect([rec], XRayApiSource(lc.client("xray")), tmp_path / "traces", within=5)
    assert report.problems == [] and list(report.traces) == [tid]
    now[0] += dt.timedelta(seconds=650)
    torn = lc.close()
    assert torn.deleted and not torn.leftovers and not torn.errors, torn
    [deploy], [destroy] = by_role(account)["deploy"], by_role(account)["destroy"]
    assert deploy["key"] == first and destroy["key"] not in (first, second) and second != first
    assert creds.assumed >= 3 and deploy["arn"] == destroy["arn"] == ASSUMED
    # harness ls / gc (with an expired stack to delete) / destroy as well
    assert cli.main(["ls", "--target", "aws", "--role-arn", ROLE_ARN]) == 0
    assert cli.main(["gc", "--target", "aws", "--role-arn", ROLE_ARN, "--yes"]) == 0
    assert cli.main(["destroy", "--target", "aws", "--role-arn", ROLE_ARN]) == 0
    assert account.stacks() == {}
    allowed = set(aws_errors.policy_actions())
    assert {"cloudformation:DeleteStack", "dynamodb:PutItem", "xray:PutTraceSegments", "xray:BatchGetTraces"} <= calls
    # sts:AssumeRole is the caller's permission on the role (README), not the role's.
    assert calls - {"sts:AssumeRole"} <= allowed, sorted(calls - allowed)
