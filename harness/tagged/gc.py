"""``harness ls`` / ``harness gc`` for tagged deployments: what the CLI calls beside its stack listing.

The stacks' plan and the tagged deployments' plan are one :class:`GcPlan`
(same rules, one table); carrying it out splits it: stacks go through
:func:`harness.inventory.execute`, tagged deployments through
:func:`harness.tagged.inventory.collect`, one after the other.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from harness import command_env, deploy
from harness.errors import TeardownError
from harness.inventory import DELETE, GcDecision, GcPlan, GcResult, InUse, StackRecord
from harness.plan import expand_argv
from harness.procs import tail
from harness.settings import Settings
from harness.stack import TargetInfo
from harness.tagged import inventory as tagged_inv
from harness.tagged.deployment import partition
from harness.tagged.discover import ClientFor
from harness.targets import Target


def deployments(client_for: ClientFor, info: TargetInfo, stacks: list[StackRecord]) -> list[tagged_inv.TaggedRecord]:
    region = info["region"]
    return tagged_inv.list_deployments(
        client_for, region=region, stacks=stacks, partition=partition(region), on_aws=info["kind"] == "aws"
    )


def split(plan: GcPlan) -> tuple[GcPlan, list[GcDecision]]:
    """(the plan of the stacks only, the tagged deployments to delete)."""
    stacks = replace(plan, decisions=[d for d in plan.decisions if not tagged_inv.is_tagged(d.record)])
    todo = [d for d in plan.decisions if d.action == DELETE and tagged_inv.is_tagged(d.record)]
    return stacks, todo


def destroyer(s: Settings, target: Target, info: TargetInfo) -> Callable[[tagged_inv.TaggedRecord], None]:
    """Runs the project's destroy command for one of its tagged deployments (stage and name in the env)."""
    assert s.destroy_command

    def destroy(r: tagged_inv.TaggedRecord) -> None:
        assert s.destroy_command
        extra = command_env.destroy_vars(stage=r.stage or "", stack_name=r.name, stack_id=None)
        env = deploy.deploy_env(os.environ, target.env(), extra)
        log = s.report_dir / f"gc-destroy-{r.name}.log"
        res = deploy.run_command(
            expand_argv(s.destroy_command, {**env, "AWS_REGION": info["region"]}),
            env=env,
            cwd=s.root,
            log_path=log,
            timeout=float(s.deploy_timeout),
        )
        if res.returncode != 0:
            raise TeardownError(f"exited {res.returncode}; log {log}:\n{tail(log, 5)}")

    return destroy


def collect_all(
    todo: list[GcDecision],
    client_for: ClientFor,
    info: TargetInfo,
    *,
    destroy: Callable[[tagged_inv.TaggedRecord], None] | None,
    ours: Callable[[StackRecord], bool],
    in_use: InUse | None,
    clear: Callable[[StackRecord], Any] | None,
) -> list[GcResult]:
    """Collect each tagged deployment the plan deletes (the project's own through its destroy command)."""
    region = info["region"]
    return [
        tagged_inv.collect(
            client_for,
            d,
            region=region,
            destroy=destroy if ours(d.record) else None,
            in_use=in_use,
            clear=clear,
            partition=partition(region),
            on_aws=info["kind"] == "aws",
        )
        for d in todo
    ]
