"""Every member of a stack set gets what one stack gets: fidelity warnings, retained-resource handling.

Against moto's CloudFormation (no emulator): a two-stack set, each stack with a
log group its template retains; the run's template of each stack is read once
and shared by the fidelity check and the teardown. The emulator end to end is
``tests/e2e/test_stacksets_e2e.py::test_every_stack_of_a_set_is_warned_about_and_its_retained_resources_deleted``.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from harness import fidelity, retained, tags
from harness.branch import BranchInfo
from harness.deployment import Deployed
from harness.plan import Plan
from harness.stackops import StackOps
from harness.teardown import Teardown, TeardownReport

STAGE = "feature-x"
DATA, API = f"orders-data-{STAGE}", f"orders-api-{STAGE}"


def _template(group: str) -> str:
    return json.dumps(
        {
            "Resources": {
                "Audit": {
                    "Type": "AWS::Logs::LogGroup",
                    "DeletionPolicy": "Retain",
                    "Properties": {"LogGroupName": group},
                },
                "Queue": {"Type": "AWS::SQS::Queue"},
            }
        }
    )


def _ops(session: Any, tmp_path: Path, lines: list[str], *, mode: str = retained.DELETE) -> StackOps:
    settings: Any = SimpleNamespace(
        target="endpoint", retained=mode, destroy_command=None, keep_stack=False, root=tmp_path
    )
    plan = Plan(BranchInfo("feature/x", "test"), STAGE, API, "orders", "run1")
    target: Any = SimpleNamespace(session=lambda: session)
    info: Any = {"endpoint_url": None, "region": "us-east-1"}
    return StackOps(settings, plan, target, info, {}, tmp_path, lines.append)


def _deploy_set(session: Any) -> dict[str, Any]:
    cfn = session.client("cloudformation")
    stack_tags = {tags.MANAGED_BY: tags.MANAGER, tags.STAGE: STAGE, tags.APP: "orders", tags.RUN_ID: "run1"}
    for name in (DATA, API):
        cfn.create_stack(
            StackName=name,
            TemplateBody=_template(f"/audit/{name}"),
            Tags=[{"Key": k, "Value": v} for k, v in stack_tags.items()],
        )
    return cfn.describe_stacks(StackName=API)["Stacks"][0]


def _count_get_template(session: Any) -> list[str]:
    calls: list[str] = []
    session.events.register(
        "before-parameter-build.cloudformation.GetTemplate", lambda params, **_: calls.append(params["StackName"])
    )
    return calls


def _log_groups(session: Any) -> list[str]:
    return [
        g["logGroupName"] for g in session.client("logs").describe_log_groups(logGroupNamePrefix="/audit/")["logGroups"]
    ]


def test_each_members_retained_resources_are_deleted_and_each_template_read_once(session: Any, tmp_path: Path) -> None:
    desc = _deploy_set(session)
    lines: list[str] = []
    ops = _ops(session, tmp_path, lines)
    got_template = _count_get_template(session)
    cfn = ops.client("cloudformation")
    info = ops.describe(cfn, desc)
    assert [name for name, _ in ops.members] == info["stacks"] == [API, DATA]  # no exports: by name
    assert fidelity.check_set(cfn, ops.members, ops.template) == []
    assert sorted(_log_groups(session)) == [f"/audit/{API}", f"/audit/{DATA}"]

    report = TeardownReport()
    Teardown(ops, Deployed(), info=info, lease=None, lease_held=False, force=False).run(report)

    assert report.deleted and not report.errors and not report.leftovers, (report, lines)
    assert sorted(got_template) == sorted(sid for _, sid in ops.members)  # once per member, for both jobs
    assert _log_groups(session) == []  # the data stack's too, not only the primary's
    assert sorted(report.retained_deleted) == [
        f"Audit (AWS::Logs::LogGroup) /audit/{API}",
        f"Audit (AWS::Logs::LogGroup) /audit/{DATA}",
    ]
    block = next(line for line in lines if "retained by the template, deleted by the harness" in line)
    assert f"/audit/{DATA}" in block and f"/audit/{API}" in block  # one block for the set
    assert "LEFT BEHIND" not in "\n".join(lines)
    assert any(line.startswith(f"teardown: {DATA}, {API} deleted in") for line in lines), lines
    records = retained.Records(session.client("dynamodb")).load()
    assert records == []  # recorded before the delete, dropped once deleted


def test_keep_names_every_members_retained_resources_and_records_each_for_gc(session: Any, tmp_path: Path) -> None:
    desc = _deploy_set(session)
    lines: list[str] = []
    ops = _ops(session, tmp_path, lines, mode=retained.KEEP)
    info = ops.describe(ops.client("cloudformation"), desc)
    report = TeardownReport()
    Teardown(ops, Deployed(), info=info, lease=None, lease_held=False, force=False).run(report)

    assert report.deleted and not report.leftovers, (report, lines)
    assert len(report.retained_kept) == 2 and sorted(_log_groups(session)) == [f"/audit/{API}", f"/audit/{DATA}"]
    assert any(line.endswith("0 left; 2 retained by the template kept)") for line in lines), lines
    records = retained.Records(session.client("dynamodb")).load()
    assert sorted(r.stack_name for r in records) == [API, DATA]  # `harness gc` finds both
