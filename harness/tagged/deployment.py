"""The deploy job for deploys without CloudFormation (Terraform, Pulumi, scripts): found by tags.

::

    resources of this app and stage already there? unchanged fingerprint: skip
      -> run the deploy command ($HARNESS_STACK_TAGS, $HARNESS_STACK_TAGS_JSON)
      -> find what carries the tags (tagging API + per-service listings)
      -> none: the command does not apply the tags; say how
      -> outputs from outputs-command -> describe as a StackInfo

The run's plan (stage, stack name, lease, fingerprint, shards, protected
stages) is the same as for a stack; the stack name names the deployment.
"""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Callable

from harness import command_env, deploy, procs, tags
from harness.deployment import Deployed, created_at, run_deploy_command
from harness.errors import DeployError
from harness.plan import expand_argv
from harness.stack import StackInfo
from harness.stackops import StackOps
from harness.tagged import outputs as outputs_mod
from harness.tagged.discover import TaggedResource, find, wanted_tags

#: ``TaggedResource.kind`` -> the CloudFormation type tests and reports already know.
CFN_TYPES = {
    "lambda:function": "AWS::Lambda::Function",
    "dynamodb:table": "AWS::DynamoDB::Table",
    "s3": "AWS::S3::Bucket",
    "sqs": "AWS::SQS::Queue",
    "sns": "AWS::SNS::Topic",
    "iam:role": "AWS::IAM::Role",
    "apigateway:restapis": "AWS::ApiGateway::RestApi",
    "logs:log-group": "AWS::Logs::LogGroup",
    "events:event-bus": "AWS::Events::EventBus",
    "states:stateMachine": "AWS::StepFunctions::StateMachine",
    "kinesis:stream": "AWS::Kinesis::Stream",
}

HOW_TO_TAG = (
    "apply $HARNESS_STACK_TAGS (Key=Value words) or $HARNESS_STACK_TAGS_JSON (an object) to every resource: "
    "Terraform's AWS provider default_tags, Pulumi's default tags, or --tags on each AWS CLI call; the README's "
    '"Terraform, Pulumi and other deploy tools" shows each'
)


def name_of(r: TaggedResource) -> str:
    """The name a test uses for the resource (function, table, queue, topic ARN, role, bucket, API id, group)."""
    arn = r.arn
    if r.kind in ("sns", "events:event-bus"):
        return arn if r.kind == "sns" else arn.rsplit("/", 1)[-1]
    if r.kind == "logs:log-group":
        return arn.split(":log-group:", 1)[1]
    if r.kind == "lambda:function":
        return arn.split(":function:", 1)[1].split(":", 1)[0]
    if r.kind in ("sqs", "s3"):
        return arn.rsplit(":", 1)[-1]
    return arn.rsplit("/", 1)[-1]


def resources_fields(found: list[TaggedResource]) -> tuple[dict[str, str], dict[str, str]]:
    """``resources`` (name -> physical id) and ``resource_types`` (name -> type) for a StackInfo."""
    physical: dict[str, str] = {}
    types: dict[str, str] = {}
    for r in found:
        name = name_of(r)
        key = name if name not in physical else r.arn
        physical[key] = name if r.kind != "sns" else r.arn
        types[key] = CFN_TYPES.get(r.kind, r.kind)
    return physical, types


def find_resources(ops: StackOps) -> list[TaggedResource]:
    """Every resource carrying the run's managed-by, app and stage tags."""
    p, region = ops.plan, ops.target_info["region"]
    wanted = wanted_tags(app=p.app, stage=p.stage)
    return find(ops.client, wanted, region=region, partition=partition(region), on_aws=ops.target_info["kind"] == "aws")


class TaggedDeployer:
    """Deploys the plan's resources with the team's command (or skips an unchanged deploy); reads them by tags."""

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

    def find(self) -> list[TaggedResource]:
        return find_resources(self.ops)

    def run(self, *, owner: bool = True) -> StackInfo:
        """Deploy (or skip) and describe; ``owner`` is False when another run deploys it."""
        self.deployed.kind = "tagged"
        before = self.find()
        if before and self._unchanged(before) and not (self.ops.settings.redeploy and owner):
            return self._skip(before)
        if not owner and before:
            return self.describe(before)
        self.deployed.created_by_us = not before
        if not self.ops.settings.deploy_command:
            raise DeployError(
                "no deploy command is configured",
                hint='set deploy-command in [tool.harness], e.g. deploy-command = ["make", "deploy"]',
            )
        result = run_deploy_command(self.ops, self._stack_tags(before), self.echo)
        self.check_target()
        found = self.find()
        name = self.ops.plan.stack_name
        if result.returncode != 0:
            raise DeployError(
                f"the deploy of {name} failed: {result.argv[0]} exited {result.returncode}; "
                f"{len(found)} resource(s) carry its tags (the teardown removes them)"
                + f"\n  last lines of {result.log_path}:\n"
                + "\n".join(f"    {line}" for line in procs.tail(result.log_path, 15).splitlines()),
                hint="fix the deploy command or its configuration named above",
            )
        if not found:
            raise DeployError(
                f"the deploy command of {name} exited 0, but no resource carries the harness's tags "
                f"({tags.MANAGED_BY}={tags.MANAGER}, {tags.APP}={tags.safe_value(self.ops.plan.app)}, "
                f"{tags.STAGE}={self.ops.plan.stage}): the harness cannot verify or tear down what it made",
                hint=HOW_TO_TAG,
            )
        self.deployed.seconds = result.seconds
        self.ops.out(f"deployed {name} in {result.seconds:.1f}s: {len(found)} tagged resource(s)")
        return self.describe(found)

    def _unchanged(self, before: list[TaggedResource]) -> bool:
        return bool(self.fingerprint) and all(r.tags.get(tags.FINGERPRINT) == self.fingerprint for r in before)

    def _skip(self, before: list[TaggedResource]) -> StackInfo:
        self.deployed.skipped = True
        self.deployed.seconds = 0.0
        self.ops.out(
            f"deploy skipped: {len(before)} resource(s) of {self.ops.plan.stack_name} carry the tags and its inputs "
            f"are unchanged ({self.fingerprint_files} files and the deploy command, fingerprint {self.fingerprint}); "
            "--redeploy forces a deploy"
        )
        return self.describe(before)

    def _stack_tags(self, before: list[TaggedResource]) -> tags.StackTags:
        p = self.ops.plan
        first = min((created_at({"Tags": _tag_list(r.tags)}) for r in before), default=None, key=_sort_key)
        return tags.StackTags(
            branch=p.branch.branch,
            stage=p.stage,
            commit=p.branch.commit,
            run_id=p.run_id,
            created_at=first or dt.datetime.now(dt.UTC),
            ttl_hours=float(self.ops.settings.stack_ttl_hours),
            fingerprint=self.fingerprint,
            app=p.app,
            deployment=p.stack_name,
        )

    def describe(self, found: list[TaggedResource]) -> StackInfo:
        """The deployment as tests see it: outputs (outputs-command), resources by name, the tags."""
        p = self.ops.plan
        self.deployed.kind = "tagged"
        outs = self._outputs()
        physical, types = resources_fields(found)
        newest = max(found, key=lambda r: r.tags.get(tags.CREATED_AT, ""), default=None)
        hidden = f" ({len(outs.sensitive)} sensitive, never shown)" if outs.sensitive else ""
        self.ops.out(
            f"tagged deployment {p.stack_name}: {len(found)} resources, outputs: "
            f"{', '.join(sorted(outs.values)) or '(none)'}{hidden}"
        )
        info = StackInfo(
            name=p.stack_name,
            stage=p.stage,
            branch=p.branch.branch,
            outputs=outs.values,
            resources=physical,
            resource_types=types,
            tags=dict(newest.tags) if newest else {},
            target=self.ops.target_info,
        )
        info["kind"] = "tagged"
        if outs.sensitive:
            info["sensitive_outputs"] = sorted(outs.sensitive)
        return info

    def _outputs(self) -> outputs_mod.DeployOutputs:
        s = self.ops.settings
        if not s.outputs_command:
            return outputs_mod.DeployOutputs()
        env = _command_env(self.ops)
        argv = expand_argv(s.outputs_command, {**env, "AWS_REGION": self.ops.target_info["region"]})
        self.ops.out(f"reading the outputs with: {shlex.join(s.outputs_command)}")
        return outputs_mod.run(
            argv, env=env, cwd=s.root, log_path=self.ops.run_dir / "outputs.log", timeout=float(s.deploy_timeout)
        )


def _command_env(ops: StackOps) -> dict[str, str]:
    """The outputs command's environment: the destroy command's (stage and name, no tags)."""
    p = ops.plan
    extra = command_env.destroy_vars(stage=p.stage, stack_name=p.stack_name, stack_id=None)
    return deploy.deploy_env(ops.env, ops.target.env(), extra)


def _tag_list(t: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in t.items()]


def _sort_key(when: dt.datetime | None) -> dt.datetime:
    return when or dt.datetime.max.replace(tzinfo=dt.UTC)


def partition(region: str) -> str:
    """The ARN partition of a region."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


__all__ = ["CFN_TYPES", "TaggedDeployer", "find_resources", "name_of", "partition", "resources_fields"]
