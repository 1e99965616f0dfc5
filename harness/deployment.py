"""The deploy job: reuse or skip an unchanged stack, else run the team's deploy command and check its result.

::

    existing stack? -> ROLLBACK_COMPLETE or REVIEW_IN_PROGRESS: delete it; unmanaged: refuse
      -> healthy and unchanged (same fingerprint): skip, describe it
      -> run the deploy command (tags in $HARNESS_STACK_TAGS) -> check the stack
      -> tag it if the command did not -> describe it

What it learns that the teardown needs (stack id, whether this run created
the stack) goes into :class:`Deployed`.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness import command_env, deploy, procs, stackset, tags
from harness.errors import DeployError, GuardError, NoStackCreated
from harness.plan import expand_argv
from harness.stack import StackInfo
from harness.stackops import StackOps

#: States a branch stack can be left in that a deploy cannot build on; the deploy deletes it first (as
#: `harness gc` would) and says why. A failed create can only be deleted, never updated; a stack whose
#: change set was never executed (a deploy killed half-way) makes a plain ``create-stack`` fail.
LEFT_BY = {
    "ROLLBACK_COMPLETE": "an earlier failed create",
    "REVIEW_IN_PROGRESS": "an earlier deploy that created a change set and never executed it",
}


@dataclass
class Deployed:
    """What the deploy left for the teardown and the reports."""

    stack_id: str | None = None
    created_by_us: bool = False
    skipped: bool = False
    seconds: float | None = None
    kind: str = "cloudformation"  # what the deploy left: "cloudformation" stacks or "tagged" resources


def created_at(desc: Mapping[str, Any] | None) -> dt.datetime | None:
    """The original creation time of a reused stack, from its tag."""
    if not desc:
        return None
    raw = tags.tag_dict(dict(desc)).get(tags.CREATED_AT)
    try:
        return dt.datetime.strptime(raw or "", "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


class Deployer:
    """Deploys the plan's stack on a started target (or reuses it)."""

    def __init__(
        self,
        ops: StackOps,
        deployed: Deployed,
        *,
        fingerprint: str | None,
        fingerprint_files: int,
        check_target: Callable[[], None],
        echo: Callable[[str], None] | None,
    ) -> None:
        self.ops = ops
        self.deployed = deployed
        self.fingerprint = fingerprint
        self.fingerprint_files = fingerprint_files
        self.check_target = check_target
        self.echo = echo

    def run(self, *, owner: bool = True) -> StackInfo:
        """Deploy (or skip) and describe the stack; ``owner`` is False when another run deploys it."""
        cfn = self.ops.client("cloudformation")
        # An emulator this run just launched holds no stack: asking would only make the first request
        # (the emulator's slowest, see harness.emulator.launch.warm_first_request) before the command.
        # Only its first deploy may assume so.
        empty, self.ops.target.started_empty = self.ops.target.started_empty, False
        before = None if empty else self._existing(cfn, owner=owner)
        if before is not None and before["StackStatus"] in deploy.COMPLETE:
            unchanged = tags.tag_dict(before).get(tags.FINGERPRINT) == self.fingerprint
            sick = stackset.unhealthy(self.ops.read_set(cfn)) if unchanged else []
            if sick:
                self.ops.out(
                    f"deploying although the inputs are unchanged: not every stack is healthy: {', '.join(sick)}"
                )
            if unchanged and not sick and not (self.ops.settings.redeploy and owner):
                return self._skip(cfn, before)
            t = tags.tag_dict(before)
            self.ops.out(
                f"reusing stack {self.ops.plan.stack_name} ({before['StackStatus']}, deployed by run "
                f"{t.get(tags.RUN_ID, '?')}; created {t.get(tags.CREATED_AT, '?')}): "
                + ("--redeploy" if unchanged else "its inputs changed")
            )
        self.deployed.created_by_us = before is None
        if not self.ops.settings.deploy_command:
            raise DeployError(
                "no deploy command is configured",
                hint='set deploy-command in [tool.harness], e.g. deploy-command = ["make", "deploy"]',
            )
        stack_tags = self._stack_tags(before)
        since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
        desc = self._run_command(cfn, stack_tags, since)
        if not tags.is_managed(tags.tag_dict(desc)):
            self.ops.out(
                f"the deploy command did not pass $HARNESS_STACK_TAGS to --tags; tagging {self.ops.plan.stack_name} "
                "with an update (add the tags to the command to save this step)"
            )
            self.ops.tag(cfn, desc, stack_tags)
            desc = deploy.stack_status(cfn, self.ops.plan.stack_name) or desc
        self.ops.out(f"deployed {self.ops.plan.stack_name} in {self.deployed.seconds:.1f}s: {desc['StackStatus']}")
        info = self.ops.describe(cfn, desc)
        if before is not None:  # a create takes nothing out
            self._retained_by_update(cfn, since, desc, info)
        return info

    def _retained_by_update(self, cfn: Any, since: dt.datetime, desc: dict[str, Any], info: StackInfo) -> None:
        """What the update took out of the stacks but kept (a SAM layer's old version): deleted, or recorded for gc."""
        from harness import retained

        live = set(info.get("resources", {}).values())
        for name, stack_id in self.ops.members:
            try:
                items = [r for r in retained.skipped_by_update(cfn, stack_id, since) if r.physical not in live]
            except Exception as exc:  # noqa: BLE001 - the deploy succeeded; the teardown's leak check still runs
                self.ops.out(f"could not read what the update of {name} kept out of it ({exc})")
                continue
            if not items:
                continue
            for line in retained.after_update(
                self.ops.client,
                items,
                mode=self.ops.settings.retained,
                records=retained.Records(self.ops.client("dynamodb")),
                stack={**desc, "StackName": name, "StackId": stack_id},  # a set's members share the harness's tags
                run_id=self.ops.plan.run_id,
            ):
                self.ops.out(f"{name}: {line}" if len(self.ops.members) > 1 else line)

    def _existing(self, cfn: Any, *, owner: bool) -> dict[str, Any] | None:
        """The stack as it is before the deploy; a failed create is deleted, an unmanaged stack refused."""
        name = self.ops.plan.stack_name
        before = deploy.stack_status(cfn, name)
        left_by = LEFT_BY.get(before["StackStatus"]) if before is not None else None
        if owner and before is not None and left_by and tags.is_managed(tags.tag_dict(before)):
            self.ops.out(f"deleting {name}: left in {before['StackStatus']} by {left_by}")
            self.ops.delete(name)
            before = None
        if before is not None and not tags.is_managed(tags.tag_dict(before)):
            raise GuardError(
                f"stack {name} exists and is not managed by the harness "
                f"(no {tags.MANAGED_BY} tag); refusing to deploy over it or delete it",
                hint="choose another stack-name-pattern or app, or remove that stack yourself",
            )
        return before

    def _skip(self, cfn: Any, before: dict[str, Any]) -> StackInfo:
        self.deployed.stack_id = before["StackId"]
        self.deployed.skipped = True
        self.deployed.seconds = 0.0
        self.ops.out(
            f"deploy skipped: {self.ops.plan.stack_name} is {before['StackStatus']} and its inputs are unchanged "
            f"({self.fingerprint_files} files and the deploy command, fingerprint {self.fingerprint}); "
            "--redeploy forces a deploy"
        )
        return self.ops.describe(cfn, before)

    def _stack_tags(self, before: dict[str, Any] | None) -> tags.StackTags:
        p = self.ops.plan
        return tags.StackTags(
            branch=p.branch.branch,
            stage=p.stage,
            commit=p.branch.commit,
            run_id=p.run_id,
            created_at=created_at(before) or dt.datetime.now(dt.UTC),
            ttl_hours=float(self.ops.settings.stack_ttl_hours),
            fingerprint=self.fingerprint,
            app=p.app,
        )

    def _other_stacks_failures(self, cfn: Any, since: dt.datetime) -> list[str]:
        """CloudFormation's reasons from the other stacks of the app's set that failed, each named."""
        primary = self.ops.plan.stack_name
        try:
            lines = stackset.failure_lines(cfn, self.ops.read_set(cfn), since)
        except Exception:  # noqa: BLE001 - the primary's own reasons are still reported
            return []
        return [line for line in lines if not line.startswith(f"{primary}: ")]

    def _run_command(self, cfn: Any, stack_tags: tags.StackTags, since: dt.datetime) -> dict[str, Any]:
        """Run the deploy command; the stack's description once it is complete, else a DeployError."""
        p = self.ops.plan
        result = run_deploy_command(self.ops, stack_tags, self.echo)
        argv, log = result.argv, result.log_path
        self.check_target()
        desc = deploy.stack_status(cfn, p.stack_name)
        if desc is None and result.returncode == 0:  # it ignored STACK_NAME: say so; the teardown deletes what it made
            stackset.check_misnamed(
                self.ops.read_set(cfn), primary=p.stack_name, run_id=p.run_id, stage=p.stage, log=log
            )
        if desc is not None:
            self.deployed.stack_id = desc["StackId"]
            self.deployed.created_by_us = self.deployed.created_by_us or tags.is_managed(tags.tag_dict(desc))
        self.deployed.seconds = result.seconds
        if result.returncode != 0 or desc is None or desc["StackStatus"] not in deploy.COMPLETE:
            reasons = deploy.failure_events(cfn, self.deployed.stack_id or p.stack_name, since) if desc else []
            reasons += self._other_stacks_failures(cfn, since)
            status = desc["StackStatus"] if desc else "no stack was created"
            failure = NoStackCreated if desc is None and result.returncode == 0 else DeployError
            raise failure(
                f"the deploy of {p.stack_name} failed: {argv[0]} exited {result.returncode}, "
                f"stack status: {status}"
                + ("\n  CloudFormation events:" + "".join(f"\n    {r}" for r in reasons) if reasons else "")
                + f"\n  last lines of {log}:\n"
                + "\n".join(f"    {line}" for line in procs.tail(log, 15).splitlines()),
                hint="fix the template or command named above; the failed stack is deleted by the harness",
            )
        return desc


def run_deploy_command(
    ops: StackOps, stack_tags: tags.StackTags, echo: Callable[[str], None] | None
) -> deploy.CommandResult:
    """Run the team's deploy command with the stage, stack name and tags in its environment (log: deploy.log)."""
    p, s = ops.plan, ops.settings
    assert s.deploy_command
    extra = command_env.deploy_vars(
        stage=p.stage,
        stack_name=p.stack_name,
        run_id=p.run_id,
        stack_tags=stack_tags.as_cli(),
        stack_tags_json=json.dumps(stack_tags.as_dict()),
    )
    env = deploy.deploy_env(ops.env, ops.target.env(), extra)
    log = ops.run_dir / "deploy.log"
    log.unlink(missing_ok=True)
    argv = expand_argv(s.deploy_command, {**env, "AWS_REGION": ops.target_info["region"]})
    ops.out(f"deploying {p.stack_name} with: {shlex.join(s.deploy_command)} (log {log})")
    return deploy.run_command(argv, env=env, cwd=s.root, log_path=log, timeout=float(s.deploy_timeout), echo=echo)
