"""The branch-stack lifecycle, as a plain object the plugin and the CLI drive.

::

    plan (branch -> stage -> stack name, guards) -> start target -> deploy
      -> read outputs/resources -> [tests] -> teardown (unless kept)
      -> verify nothing left -> stop target

``close()`` is idempotent and safe after any failure: whatever was started is
stopped, whatever this run created is deleted, and every leftover is reported
at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shlex
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from harness import deploy as deploying
from harness import drift, fidelity, fingerprint, leaks, procs, tags
from harness.branch import BranchInfo, detect
from harness.errors import ConfigError, DeployError, EmulatorDied, GuardError, HarnessError, TeardownError
from harness.lease import Lease
from harness.naming import is_protected, pr_stage, stack_name, stage_from_branch
from harness.settings import Settings, default_app
from harness.stack import CLIENT_CONFIG, StackInfo, TargetInfo, boto3_session
from harness.targets import Target, make_target
from harness.urls import redact

Out = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """What this run will deploy, derived before anything is started."""

    branch: BranchInfo
    stage: str
    stack_name: str
    app: str
    run_id: str


@dataclass
class Timings:
    emulator: float | None = None
    deploy: float | None = None
    teardown: float | None = None


@dataclass
class TeardownReport:
    deleted: bool = False
    kept: bool = False
    shared: bool = False  # left to other runs still using it
    leftovers: list[str] = field(default_factory=list)
    checked: int = 0
    errors: list[str] = field(default_factory=list)


def _created_at(desc: Mapping[str, Any] | None) -> dt.datetime | None:
    """The original creation time of a reused stack, from its tag."""
    if not desc:
        return None
    raw = tags.tag_dict(dict(desc)).get(tags.CREATED_AT)
    try:
        return dt.datetime.strptime(raw or "", "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


@contextlib.contextmanager
def signals_held(out: Out, into: list[int] | None = None) -> Iterator[list[int]]:
    """Let a teardown that has started finish: Ctrl-C and SIGTERM are held until it ends.

    A signal that lands half-way through a delete would leave the stack
    behind; the teardown takes seconds, and a SIGKILL still ends everything.
    Yields the list of signals held (``into``, if given), so the caller can
    still end the run as interrupted (a non-zero exit) once the teardown is done.
    """
    pending: list[int] = into if into is not None else []
    if threading.current_thread() is not threading.main_thread():
        yield pending
        return

    def hold(signum: int, frame: Any) -> None:
        if not pending:
            out(
                f"{signal.Signals(signum).name} received: the teardown finishes first, then the run ends "
                "as interrupted (further signals are held too; SIGKILL abandons it)"
            )
        pending.append(signum)

    with procs.stop_signals_handled_by(hold):
        yield pending


def make_plan(settings: Settings, env: Mapping[str, str], *, pr_stages: bool = False) -> Plan:
    """Name the stage and stack for this branch; refuse protected stages."""
    branch = detect(env, settings.root)
    stage = pr_stage(branch.pr_number) if (pr_stages and branch.pr_number) else stage_from_branch(branch.branch)
    app = settings.app or default_app(settings.root)
    name = stack_name(settings.stack_name_pattern, app, stage)
    # The embedded emulator is private to this run: no production stack can
    # live there, so the guard protects shared targets (aws, endpoint) only.
    if is_protected(stage, settings.protected_stages) and settings.target != "local":
        raise GuardError(
            f"stage {stage!r} (branch {branch.branch!r} from {branch.source}) is protected: "
            f"the harness never deploys over or tears down {', '.join(settings.protected_stages)}",
            hint="run on a feature branch, or set HARNESS_BRANCH to a throwaway name",
        )
    return Plan(branch=branch, stage=stage, stack_name=name, app=app, run_id=uuid.uuid4().hex[:12])


def expand_argv(argv: tuple[str, ...] | list[str], values: Mapping[str, str]) -> list[str]:
    """Fill ``{stack_name}``, ``{stage}`` and ``{region}`` in argv words; ``{tags}`` alone becomes the tag words.

    Plain token replacement, not ``str.format``: other braces in the command
    stay as written. The values are harness-made (sanitized), and the words
    are never joined into a shell string.
    """
    tokens = {
        "{stack_name}": values.get("HARNESS_STACK_NAME", ""),
        "{stage}": values.get("HARNESS_STAGE", values.get("STAGE", "")),
        "{region}": values.get("AWS_REGION", ""),
    }
    out: list[str] = []
    for word in argv:
        if word == "{tags}":
            out.extend(values.get("HARNESS_STACK_TAGS", "").split())
            continue
        for token, value in tokens.items():
            word = word.replace(token, value)
        out.append(word)
    return out


def resolve_shard(settings: Settings, env: Mapping[str, str]) -> tuple[tuple[int, int] | None, str | None]:
    """This run's shard (i, n) and the id shared by its sibling shards, from settings or CI variables."""
    shard = settings.shard
    total = env.get("CIRCLE_NODE_TOTAL", "")
    if shard is None and total.isdigit() and int(total) > 1 and env.get("CIRCLE_NODE_INDEX", "").isdigit():
        shard = (int(env["CIRCLE_NODE_INDEX"]) + 1, int(total))
    if shard is None or shard[1] == 1:
        return None, None
    group = settings.shard_group or env.get("CIRCLE_WORKFLOW_ID")
    if not group and env.get("GITHUB_RUN_ID"):
        group = f"{env['GITHUB_RUN_ID']}-{env.get('GITHUB_RUN_ATTEMPT', '1')}"
    if not group:
        raise ConfigError(
            f"shard {shard[0]}/{shard[1]} needs the id its sibling shards share",
            hint="set --shard-group (or HARNESS_SHARD_GROUP) to the CI run's id; on CircleCI and GitHub "
            "Actions it is read from CIRCLE_WORKFLOW_ID / GITHUB_RUN_ID",
        )
    return shard, group


def in_shard(nodeid: str, shard: tuple[int, int]) -> bool:
    """Deterministic split: the same test always lands in the same shard, whatever the machine."""
    import zlib

    return zlib.crc32(nodeid.encode()) % shard[1] == shard[0] - 1


def exported_env(info: StackInfo) -> dict[str, str]:
    """Variables that let tests written for a deployed SAM stack run unchanged."""
    target = info["target"]
    env = {
        "AWS_SAM_STACK_NAME": info["name"],
        "HARNESS_STACK_NAME": info["name"],
        "HARNESS_STAGE": info["stage"],
        "AWS_REGION": target["region"],
        "AWS_DEFAULT_REGION": target["region"],
    }
    if target["endpoint_url"]:
        env["AWS_ENDPOINT_URL"] = target["endpoint_url"]
    if target["access_key_id"] and target["kind"] != "aws":
        env["AWS_ACCESS_KEY_ID"] = target["access_key_id"]
        env["AWS_SECRET_ACCESS_KEY"] = target["secret_access_key"] or ""
    return env


class Lifecycle:
    """One run's branch stack: start, deploy, describe, tear down."""

    def __init__(
        self,
        settings: Settings,
        *,
        out: Out = print,
        env: Mapping[str, str] | None = None,
        on_emulator_death: Callable[[EmulatorDied], None] | None = None,
        echo_deploy: bool = True,
        target_env: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.target_env = dict(target_env or {})
        self.env = dict(os.environ if env is None else env)
        self.out = out
        self.on_emulator_death = on_emulator_death
        self.echo_deploy = echo_deploy
        self.run_dir = settings.report_dir
        self.plan: Plan | None = None
        self.target: Target | None = None
        self.target_info: TargetInfo | None = None
        self.info: StackInfo | None = None
        self.timings = Timings()
        self.teardown_report: TeardownReport | None = None
        self._created_by_us = False
        self._stack_id: str | None = None
        self._closed = False
        self.interrupted_by: list[int] = []  # signals held while tearing down
        self._force_delete = False
        self.lease: Lease | None = None
        self._lease_held = False
        self.fingerprint: str | None = None
        self.fingerprint_files = 0
        self.deploy_skipped = False
        self.drift: tuple[str, list[str]] | None = None
        self.shard: tuple[tuple[int, int] | None, str | None] = (None, None)
        self._session: boto3.Session | None = None

    # -- clients ---------------------------------------------------------
    def client(self, service: str) -> Any:
        assert self.target_info is not None
        if self._session is None:
            self._session = boto3_session(self.target_info)
        return self._session.client(service, endpoint_url=self.target_info["endpoint_url"], config=CLIENT_CONFIG)

    # -- start -----------------------------------------------------------
    def start(self) -> StackInfo:
        """Plan, start the target, take the lease, deploy (or skip), read the stack. Cleans up on failure."""
        try:
            self.plan = make_plan(self.settings, self.env)
            p = self.plan
            self.out(f"stage {p.stage!r} from branch {p.branch.branch!r} ({p.branch.source}) -> stack {p.stack_name}")
            started = time.monotonic()
            self.target = make_target(
                self.settings, self.run_dir, on_death=self.on_emulator_death, extra_env=self.target_env
            )
            self.target_info = self.target.start()
            self.timings.emulator = time.monotonic() - started
            self.out(f"target: {self.target.describe()}")
            self.fingerprint, files = fingerprint.compute(
                self.settings.root,
                self.settings.fingerprint_paths,
                extra=[
                    shlex.join(self.settings.deploy_command or ()),
                    p.stack_name,
                    self.settings.region,
                    self.settings.target,
                ],
            )
            self.fingerprint_files = files
            owner = self._acquire_lease()
            self.info = self._deploy(owner=owner)
            if owner and self.lease is not None:
                self.lease.deployed()
            self._report_drift()
            self._report_fidelity()
            return self.info
        except HarnessError as exc:
            # Say what failed before the cleanup it causes.
            self.out(exc.render())
            exc.reported = True  # type: ignore[attr-defined]
            self._deploy_failed()
            self.close(failed=True)
            raise
        except BaseException:
            self._deploy_failed()
            self.close(failed=True)
            raise

    def _report_drift(self) -> None:
        """Report resources changed outside CloudFormation (reported, never fatal)."""
        if not self.settings.drift_check or self.plan is None:
            return
        summary, drifted = drift.detect(self.client("cloudformation"), self.plan.stack_name)
        self.drift = (summary, drifted)
        self.out(summary + "".join(f"\n  {line}" for line in drifted))

    def _report_fidelity(self) -> None:
        """Name the template's features the embedded emulator does not reproduce (before the tests run)."""
        if self.settings.target == "local" and self.plan is not None:
            block = fidelity.report(fidelity.check_stack(self.client("cloudformation"), self.plan.stack_name))
            if block:
                self.out(block)

    def _acquire_lease(self) -> bool:
        """Join the stack's lease; True if this run is the one to deploy."""
        assert self.plan is not None
        shard, group = self.shard
        self.lease = Lease(
            self.client("dynamodb"),
            self.plan.stack_name,
            self.plan.run_id,
            fingerprint=self.fingerprint,
            shard=shard,
            group=group,
            out=self.out,
        )
        self.lease.ensure_table()
        decision = self.lease.acquire(wait=float(self.settings.lease_wait), force_deploy=self.settings.redeploy)
        if self.settings.redeploy and not decision.deploy:
            self.out("lease: --redeploy ignored: other runs are using the stack right now")
        self._lease_held = True
        if decision.note:
            self.out(f"lease: {decision.note}")
        if decision.waited >= 1:
            self.out(f"lease: waited {decision.waited:.1f}s for another run")
        return decision.deploy

    def _deploy_failed(self) -> None:
        if self.lease is not None and self._lease_held and not self._emulator_dead():
            try:
                self.lease.deploy_failed()
            except Exception:  # noqa: BLE001 - the teardown below still runs
                pass

    def _deploy(self, *, owner: bool = True) -> StackInfo:
        assert self.plan is not None and self.target is not None
        p, s = self.plan, self.settings
        cfn = self.client("cloudformation")
        before = deploying.stack_status(cfn, p.stack_name)
        if (
            owner
            and before is not None
            and before["StackStatus"] == "ROLLBACK_COMPLETE"
            and tags.is_managed(tags.tag_dict(before))
        ):
            # A create that failed earlier can only be deleted, never updated.
            self.out(f"deleting {p.stack_name}: left in ROLLBACK_COMPLETE by an earlier failed create")
            self._delete(p.stack_name)
            before = None
        if before is not None and not tags.is_managed(tags.tag_dict(before)):
            raise GuardError(
                f"stack {p.stack_name} exists and is not managed by the harness "
                f"(no {tags.MANAGED_BY} tag); refusing to deploy over it or delete it",
                hint="choose another stack-name-pattern or app, or remove that stack yourself",
            )
        if before is not None and before["StackStatus"] in deploying.COMPLETE:
            t = tags.tag_dict(before)
            unchanged = t.get(tags.FINGERPRINT) == self.fingerprint
            if unchanged and not (s.redeploy and owner):
                self._stack_id = before["StackId"]
                self.deploy_skipped = True
                self.timings.deploy = 0.0
                self.out(
                    f"deploy skipped: {p.stack_name} is {before['StackStatus']} and its inputs are unchanged "
                    f"({self.fingerprint_files} files and the deploy command, fingerprint {self.fingerprint}); "
                    "--redeploy forces a deploy"
                )
                return self._describe(cfn, before)
            self.out(
                f"reusing stack {p.stack_name} ({before['StackStatus']}, deployed by run "
                f"{t.get(tags.RUN_ID, '?')}; created {t.get(tags.CREATED_AT, '?')}): "
                + ("--redeploy" if unchanged else "its inputs changed")
            )
        self._created_by_us = before is None
        if not s.deploy_command:
            raise DeployError(
                "no deploy command is configured",
                hint='set deploy-command in [tool.harness], e.g. deploy-command = ["make", "deploy"]',
            )
        stack_tags = tags.StackTags(
            branch=p.branch.branch,
            stage=p.stage,
            commit=p.branch.commit,
            run_id=p.run_id,
            created_at=_created_at(before) or dt.datetime.now(dt.UTC),
            ttl_hours=float(s.stack_ttl_hours),
            fingerprint=self.fingerprint,
        )
        extra = {
            "STAGE": p.stage,
            "STACK_NAME": p.stack_name,
            "HARNESS_STAGE": p.stage,
            "HARNESS_STACK_NAME": p.stack_name,
            "HARNESS_RUN_ID": p.run_id,
            "HARNESS_STACK_TAGS": stack_tags.as_cli(),
        }
        env = deploying.deploy_env(self.env, self.target.env(), extra)
        log = self.run_dir / "deploy.log"
        log.unlink(missing_ok=True)
        argv = expand_argv(s.deploy_command, env)
        self.out(f"deploying {p.stack_name} with: {shlex.join(s.deploy_command)} (log {log})")
        since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
        echo = self._echo if self.echo_deploy else None
        result = deploying.run_command(
            argv, env=env, cwd=s.root, log_path=log, timeout=float(s.deploy_timeout), echo=echo
        )
        self._check_target()
        desc = deploying.stack_status(cfn, p.stack_name)
        if desc is not None:
            self._stack_id = desc["StackId"]
            self._created_by_us = self._created_by_us or tags.is_managed(tags.tag_dict(desc))
        if result.returncode != 0 or desc is None or desc["StackStatus"] not in deploying.COMPLETE:
            reasons = deploying.failure_events(cfn, self._stack_id or p.stack_name, since) if desc else []
            status = desc["StackStatus"] if desc else "no stack was created"
            raise DeployError(
                f"the deploy of {p.stack_name} failed: {argv[0]} exited {result.returncode}, "
                f"stack status: {status}"
                + ("\n  CloudFormation events:" + "".join(f"\n    {r}" for r in reasons) if reasons else "")
                + f"\n  last lines of {log}:\n"
                + "\n".join(f"    {line}" for line in procs.tail(log, 15).splitlines()),
                hint="fix the template or command named above; the failed stack is deleted by the harness",
            )
        if not tags.is_managed(tags.tag_dict(desc)):
            self.out(
                f"the deploy command did not pass $HARNESS_STACK_TAGS to --tags; tagging {p.stack_name} "
                "with an update (add the tags to the command to save this step)"
            )
            self._tag(cfn, desc, stack_tags)
            desc = deploying.stack_status(cfn, p.stack_name) or desc
        self.timings.deploy = result.seconds
        self.out(f"deployed {p.stack_name} in {result.seconds:.1f}s: {desc['StackStatus']}")
        return self._describe(cfn, desc)

    def _describe(self, cfn: Any, desc: dict[str, Any]) -> StackInfo:
        """The stack as tests see it: outputs, physical ids, tags."""
        assert self.plan is not None and self.target_info is not None
        p = self.plan
        physical, types = deploying.read_resources(cfn, p.stack_name)
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

    def _echo(self, line: str) -> None:
        # Progress bars redraw with carriage returns: show the final state only.
        line = line.rsplit("\r", 1)[-1].rstrip()
        if line:
            self.out(f"  | {line}")

    def _tag(self, cfn: Any, desc: dict[str, Any], stack_tags: tags.StackTags) -> None:
        params = [{"ParameterKey": x["ParameterKey"], "UsePreviousValue": True} for x in desc.get("Parameters") or []]
        cfn.update_stack(
            StackName=desc["StackId"],
            UsePreviousTemplate=True,
            Parameters=params,
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
            Tags=[*({"Key": k, "Value": v} for k, v in tags.tag_dict(desc).items()), *stack_tags.as_cfn()],
            ClientRequestToken=f"harness-tag-{uuid.uuid4().hex}",
        )
        cfn.get_waiter("stack_update_complete").wait(StackName=desc["StackId"], WaiterConfig=self._waiter())

    def _waiter(self) -> dict[str, float]:
        local = self.settings.target != "aws"
        return {"Delay": 1 if local else 10, "MaxAttempts": 600 if local else 360}

    def _check_target(self) -> None:
        if self.target is not None:
            self.target.check()

    def _delete(self, stack: str) -> None:
        w = self._waiter()
        if self.settings.destroy_command:
            assert self.plan is not None and self.target is not None
            env = deploying.deploy_env(
                self.env,
                self.target.env(),
                {"STAGE": self.plan.stage, "STACK_NAME": stack, "HARNESS_STACK_NAME": stack},
            )
            res = deploying.run_command(
                expand_argv(self.settings.destroy_command, {**env, "HARNESS_STACK_TAGS": ""}),
                env=env,
                cwd=self.settings.root,
                log_path=self.run_dir / "teardown.log",
                timeout=float(self.settings.deploy_timeout),
            )
            if res.returncode != 0:
                raise TeardownError(
                    f"the destroy command exited {res.returncode}; log {res.log_path}:\n" + procs.tail(res.log_path, 10)
                )
        from harness.teardown import delete_stack

        # Always finish through CloudFormation: a destroy command that
        # returned early must not leave the stack half-deleted unnoticed.
        delete_stack(self.client("cloudformation"), stack, delay=w["Delay"], max_attempts=int(w["MaxAttempts"]))

    def destroy(self) -> TeardownReport:
        """Remove this branch's stack (``harness destroy``), kept or not, and a kept emulator."""
        self.plan = make_plan(self.settings, self.env)
        self.target = make_target(self.settings, self.run_dir, attach_only=True)
        self.target_info = self.target.start()
        self._force_delete = True
        desc = deploying.stack_status(self.client("cloudformation"), self.plan.stack_name)
        if desc is None:
            self.out(f"stack {self.plan.stack_name} does not exist")
        elif not tags.is_managed(tags.tag_dict(desc)):
            self.close()
            raise GuardError(
                f"stack {self.plan.stack_name} is not managed by the harness (no {tags.MANAGED_BY} tag); "
                "refusing to delete it"
            )
        return self.close()

    # -- close -----------------------------------------------------------
    def close(self, *, failed: bool = False) -> TeardownReport:
        """Tear down (unless kept), verify, stop the target. Idempotent."""
        if self._closed:
            return self.teardown_report or TeardownReport()
        self._closed = True
        report = TeardownReport()
        self.teardown_report = report
        try:
            with signals_held(self.out, into=self.interrupted_by):
                self._teardown(report, failed=failed)
        finally:
            if self.target is not None:
                keep = report.kept and not self._emulator_dead()
                self.target.stop(keep=keep)
                if not keep and self.settings.target == "local":
                    self.out(
                        "emulator stopped" if not self._emulator_dead() else "emulator's remaining processes stopped"
                    )
        return report

    def _emulator_dead(self) -> bool:
        died = getattr(self.target, "died", None)
        return died is not None

    def _teardown(self, report: TeardownReport, *, failed: bool) -> None:
        p = self.plan
        if p is None or self.target is None or self.target_info is None:
            return
        if self._emulator_dead():
            report.errors.append("the emulator died; its state (and the stack) went with it")
            return
        cfn = self.client("cloudformation")
        try:
            desc = deploying.stack_status(cfn, self._stack_id or p.stack_name)
        except Exception as exc:  # noqa: BLE001 - report, never mask the original failure
            report.errors.append(f"could not read stack {p.stack_name}: {exc}")
            return
        gone_already = desc is None or desc["StackStatus"] == "DELETE_COMPLETE"
        unusable = bool(desc) and desc["StackStatus"] in {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED"}  # type: ignore[index]
        keep = self.settings.keep_stack and not unusable and not self._force_delete and not gone_already
        if self.lease is not None and self._lease_held:
            self._lease_held = False
            try:
                last = self.lease.release(keep=keep)
            except Exception as exc:  # noqa: BLE001
                report.errors.append(
                    f"the lease of {p.stack_name} could not be released ({exc}); the stack is left for "
                    "`harness gc` rather than risk deleting it under another run"
                )
                return
            if not last and not keep:
                report.shared = True
                self.out(f"teardown: {p.stack_name} is still used by other runs or shards; the last one deletes it")
                return
        if gone_already:
            if self.lease is not None:
                self.lease.torn_down()
            return
        assert desc is not None
        if not (tags.is_managed(tags.tag_dict(desc)) or self._created_by_us):
            report.errors.append(f"stack {p.stack_name} is not managed by the harness; left alone")
            return
        if keep:
            report.kept = True
            how = "harness destroy"
            if self.settings.target == "endpoint":
                how += f" --target endpoint --endpoint-url {redact(self.settings.endpoint_url)}"
            elif self.settings.target == "aws":
                how += " --target aws" + (f" --region {self.settings.region}")
            self.out(f"keeping stack {p.stack_name} (--keep-stack); the next run reuses it. Remove it with: {how}")
            return
        self.out(f"teardown: deleting {p.stack_name}")
        started = time.monotonic()
        physical, types = (self.info["resources"], self.info["resource_types"]) if self.info else ({}, {})
        if not physical:
            try:
                physical, types = deploying.read_resources(cfn, desc["StackId"])
            except Exception:  # noqa: BLE001
                physical, types = {}, {}
        try:
            self._delete(desc["StackId"])
            report.deleted = True
            if self.lease is not None:
                self.lease.torn_down()
        except HarnessError as exc:
            report.errors.append(exc.render())
        except Exception as exc:  # noqa: BLE001
            report.errors.append(f"deleting {p.stack_name} failed: {exc}")
        self.timings.teardown = time.monotonic() - started
        gone = deploying.stack_status(cfn, p.stack_name) is None
        if not gone:
            report.leftovers.append(f"stack {p.stack_name}")
        probe = leaks.probe(self.client, physical, types)
        report.leftovers.extend(probe.leftovers)
        report.checked = probe.checked
        if report.leftovers:
            self.out("teardown: LEFT BEHIND:\n" + "\n".join(f"  {x}" for x in report.leftovers))
        else:
            self.out(
                f"teardown: {p.stack_name} deleted in {self.timings.teardown:.1f}s; verified gone "
                f"({probe.checked} resources checked, 0 left)"
            )

    def raise_for_teardown(self) -> None:
        """Raise one TeardownError listing every leftover and error, if any."""
        r = self.teardown_report
        if r and (r.leftovers or [e for e in r.errors if "emulator died" not in e]):
            raise TeardownError(
                "teardown left things behind:" + "".join(f"\n  {x}" for x in [*r.errors, *r.leftovers]),
                hint="run `harness gc --yes` or remove them by hand",
            )


def report_dir_for(settings: Settings) -> Path:
    return settings.report_dir
