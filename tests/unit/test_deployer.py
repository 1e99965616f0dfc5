"""The deploy job against moto's CloudFormation: what it does with a branch stack an earlier run left behind."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness import deploy, tags
from harness.branch import BranchInfo
from harness.deployment import Deployed, Deployer
from harness.errors import DeployError
from harness.plan import Plan
from harness.settings import resolve
from harness.stackops import StackOps

STACK = "app-feature-x"
TEMPLATE = json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}})


def _deployer(
    session: Any, tmp_path: Path, lines: list[str], command: list[str], *, started_empty: bool = False
) -> Deployer:
    settings = resolve(
        {"target": "endpoint", "endpoint_url": "http://127.0.0.1:9", "deploy_command": command}, {}, tmp_path
    )
    plan = Plan(BranchInfo("feature/x", "test"), "feature-x", STACK, "app", "run1")
    target: Any = SimpleNamespace(session=lambda: session, env=lambda: {}, started_empty=started_empty)
    info: Any = {"endpoint_url": None, "region": "us-east-1"}
    ops = StackOps(settings, plan, target, info, {}, tmp_path, lines.append)
    return Deployer(ops, Deployed(), fingerprint="f", fingerprint_files=1, check_target=lambda: None, echo=None)


def test_a_branch_stack_left_in_review_in_progress_is_deleted_first_and_said(session: Any, tmp_path: Path) -> None:
    """An earlier deploy killed after creating its change set: a plain create-stack would fail on it."""
    cfn = session.client("cloudformation")
    managed = [{"Key": tags.MANAGED_BY, "Value": tags.MANAGER}, {"Key": tags.STAGE, "Value": "feature-x"}]
    cfn.create_change_set(
        StackName=STACK, ChangeSetName="killed", ChangeSetType="CREATE", TemplateBody=TEMPLATE, Tags=managed
    )
    assert deploy.stack_status(cfn, STACK)["StackStatus"] == "REVIEW_IN_PROGRESS"  # type: ignore[index]
    lines: list[str] = []
    job = _deployer(session, tmp_path, lines, ["true"])  # a command that deploys nothing: only the clearing counts
    with pytest.raises(DeployError, match="no stack was created"):
        job.run()
    assert (
        f"deleting {STACK}: left in REVIEW_IN_PROGRESS by an earlier deploy that created a change set and "
        "never executed it"
    ) in lines, lines
    assert lines.index(next(x for x in lines if x.startswith("deleting "))) < lines.index(
        next(x for x in lines if x.startswith("deploying "))
    )
    assert deploy.stack_status(cfn, STACK) is None


def test_an_unmanaged_stack_in_review_in_progress_is_refused_not_deleted(session: Any, tmp_path: Path) -> None:
    cfn = session.client("cloudformation")
    cfn.create_change_set(StackName=STACK, ChangeSetName="theirs", ChangeSetType="CREATE", TemplateBody=TEMPLATE)
    with pytest.raises(Exception, match="not managed by the harness"):
        _deployer(session, tmp_path, [], ["true"]).run()
    assert deploy.stack_status(cfn, STACK)["StackStatus"] == "REVIEW_IN_PROGRESS"  # type: ignore[index]


def test_on_an_emulator_this_run_launched_the_command_is_the_first_call(session: Any, tmp_path: Path) -> None:
    """Nothing can be on a new emulator: the deploy does not ask CloudFormation about the stack first."""
    seen: list[str] = []  # CloudFormation calls and the job's lines, in order
    session.events.register("before-call.cloudformation.*", lambda model, **_: seen.append(model.name))
    for empty in (True, False):
        seen.clear()
        with pytest.raises(DeployError, match="no stack was created"):  # the command deploys nothing
            _deployer(session, tmp_path, seen, ["true"], started_empty=empty).run()
        launch = next(i for i, x in enumerate(seen) if x.startswith("deploying "))
        assert seen[:launch] == ([] if empty else ["DescribeStacks"]), seen
        assert "DescribeStacks" in seen[launch:], seen  # the stack is read after the command either way
    job = _deployer(session, tmp_path, seen, ["true"], started_empty=True)
    for _ in range(2):
        seen.clear()
        with pytest.raises(DeployError):
            job.run()
    assert seen[0] == "DescribeStacks", seen  # only its first deploy assumes the emulator empty
