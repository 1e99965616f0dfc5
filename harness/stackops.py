"""One run's operations on its target: clients, waits, reading the stack, tagging, deleting.

The deploy and the teardown both use them; they know the settings, the plan
and the started target, nothing of how the run is orchestrated.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from harness import command_env, deploy, procs, stackset, tags, templates
from harness.errors import TeardownError
from harness.plan import Plan, expand_argv
from harness.settings import Settings
from harness.stack import StackInfo, TargetInfo, boto3_session, make_client
from harness.targets import Target

Out = Callable[[str], None]


def waiter_config(target: str) -> dict[str, float]:
    """How often and how long to poll CloudFormation: an emulator answers fast, AWS slowly.

    botocore's waiters poll once at once, then every ``Delay`` seconds: on an
    emulator a stack is usually done within a few hundred milliseconds, so a
    one-second pause would mostly be spent after it was done.
    """
    if target != "aws":
        return {"Delay": 0.2, "MaxAttempts": 3000}  # 10 minutes
    return {"Delay": 10, "MaxAttempts": 360}


@dataclass
class StackOps:
    """CloudFormation on the run's target, for the plan's stack."""

    settings: Settings
    plan: Plan
    target: Target
    target_info: TargetInfo
    env: Mapping[str, str]
    run_dir: Path
    out: Out
    session: boto3.Session | None = None
    #: (name, stack id) of every stack of the set, as the last describe found them (deploy order)
    members: list[tuple[str, str]] = field(default_factory=list)
    _templates: dict[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _making: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    def client(self, service: str, config: Any = None) -> Any:
        """The run's client of ``service``: one per service (calls on a client are thread-safe), made once.

        Clients are made one at a time, whatever the thread (a boto3 session is
        not thread-safe); a ``config`` of its own gets a fresh client each time.
        """
        with self._making:
            if self.session is None:
                own = getattr(self.target, "session", None)  # aws: the run's refreshable credentials
                self.session = own() if own is not None else boto3_session(self.target_info)
            if config is not None:
                return make_client(self.session, self.target_info, service, config=config)
            if service not in self._clients:
                self._clients[service] = make_client(self.session, self.target_info, service)
            return self._clients[service]

    def adopt(self, target: TargetInfo, clients: Mapping[str, Any]) -> None:
        """Use ``clients`` (made for ``target``, e.g. the ones the tests use) for the services not made yet.

        A client is bound to its target and carries its own credentials: one of
        another target is left alone. Calls on a client are thread-safe, so the
        run's operations and its tests may share one.
        """
        if target != self.target_info:
            return
        with self._making:
            for service, client in clients.items():
                self._clients.setdefault(service, client)

    def warm(self, services: Iterable[str]) -> None:
        """Make the clients of ``services`` now (on a thread while the run waits anyway), not when first used."""
        for service in services:
            self.client(service)

    def template(self, stack_id: str) -> Mapping[str, Any]:
        """The stack's processed template, read once per run: the fidelity warnings and the teardown share it."""
        if stack_id not in self._templates:
            self._templates[stack_id] = templates.read(self.client("cloudformation"), stack_id)
        return self._templates[stack_id]

    def waiter(self) -> dict[str, float]:
        return waiter_config(self.settings.target)

    def read_set(self, cfn: Any) -> stackset.StackSet:
        """Every stack of this app and stage, by the harness's tags (one for a one-stack app)."""
        p = self.plan
        manifest = stackset.manifest_path(self.settings.root)
        return stackset.discover(cfn, app=p.app, stage=p.stage, primary=p.stack_name, manifest=manifest)

    def describe(self, cfn: Any, desc: dict[str, Any]) -> StackInfo:
        """The stack as tests see it: outputs, physical ids (nested stacks' too), tags; across the set."""
        p = self.plan
        sset = self.read_set(cfn)
        self.members = [(m.name, m.stack_id) for m in sset.members] or [(p.stack_name, desc["StackId"])]
        if not stackset.is_single(sset, p.stack_name):
            fields = stackset.set_fields(cfn, sset)
            self.out(stackset.describe_line(sset, fields))
            return StackInfo(  # type: ignore[typeddict-item]
                name=p.stack_name,
                stage=p.stage,
                branch=p.branch.branch,
                tags=tags.tag_dict(desc),
                target=self.target_info,
                **fields,
            )
        physical, types = stackset.read_resources_deep(cfn, p.stack_name)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in desc.get("Outputs") or []}
        self.out(f"stack {p.stack_name}: {len(physical)} resources, outputs: {', '.join(sorted(outputs)) or '(none)'}")
        return StackInfo(
            name=p.stack_name,
            stage=p.stage,
            branch=p.branch.branch,
            outputs=outputs,
            resources=physical,
            resource_types=types,
            tags=tags.tag_dict(desc),
            target=self.target_info,
        )

    def tag(self, cfn: Any, desc: dict[str, Any], stack_tags: tags.StackTags) -> None:
        """Add the harness's tags to a stack whose deploy command did not pass them."""
        params = [{"ParameterKey": x["ParameterKey"], "UsePreviousValue": True} for x in desc.get("Parameters") or []]
        merged = tags.merged(tags.tag_dict(desc), stack_tags.as_dict(), stack=desc["StackName"])
        cfn.update_stack(
            StackName=desc["StackId"],
            UsePreviousTemplate=True,
            Parameters=params,
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
            Tags=[{"Key": k, "Value": v} for k, v in merged.items()],
            ClientRequestToken=f"harness-tag-{uuid.uuid4().hex}",
        )
        cfn.get_waiter("stack_update_complete").wait(StackName=desc["StackId"], WaiterConfig=self.waiter())

    def delete(self, stack: str) -> None:
        """The destroy command if one is configured, then always CloudFormation's delete, waited for."""
        w = self.waiter()
        if self.settings.destroy_command:
            self._run_destroy_command(stack)
        # Always finish through CloudFormation: a destroy command that
        # returned early must not leave the stack half-deleted unnoticed.
        deploy.delete_stack(self.client("cloudformation"), stack, delay=w["Delay"], max_attempts=int(w["MaxAttempts"]))

    def destroy_stage(self) -> None:
        """Run the destroy command for the plan's stage (a deploy without a stack: nothing to wait for)."""
        self._run_destroy_command(self.plan.stack_name)

    def _run_destroy_command(self, stack: str) -> None:
        """The team's destroy command, given the stack's name (``STACK_NAME``) whether ``stack`` is its name or id."""
        assert self.settings.destroy_command
        desc = deploy.stack_status(self.client("cloudformation"), stack)
        names = command_env.destroy_vars(
            stage=self.plan.stage,
            stack_name=desc["StackName"] if desc else command_env.stack_name_of(stack),
            stack_id=desc["StackId"] if desc else None,
        )
        env = deploy.deploy_env(self.env, self.target.env(), names)
        res = deploy.run_command(
            expand_argv(
                self.settings.destroy_command,
                {**env, "HARNESS_STACK_TAGS": "", "AWS_REGION": self.target_info["region"]},
            ),
            env=env,
            cwd=self.settings.root,
            log_path=self.run_dir / "teardown.log",
            timeout=float(self.settings.deploy_timeout),
        )
        if res.returncode != 0:
            raise TeardownError(
                f"the destroy command exited {res.returncode}; log {res.log_path}:\n" + procs.tail(res.log_path, 10)
            )
