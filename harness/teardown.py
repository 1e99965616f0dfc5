"""The teardown job: release the lease, keep or delete the stack, then prove nothing is left.

::

    lease released (others still use it? leave it) -> gone already? done
      -> unmanaged? leave it -> keep-stack? say how to remove it
      -> delete (destroy command, then CloudFormation) -> stack and every resource probed

Every leftover and error goes into one :class:`TeardownReport`, reported at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from harness import leaks, ownership, retained, stackset, tags
from harness.aws_errors import AWS_ERRORS, explain
from harness.deploy import stack_status
from harness.deployment import Deployed
from harness.errors import HarnessError, TeardownError
from harness.lease import Lease
from harness.stack import StackInfo
from harness.stackops import StackOps
from harness.urls import redact


@dataclass
class TeardownReport:
    deleted: bool = False
    kept: bool = False
    shared: bool = False  # left to other runs still using it
    leftovers: list[str] = field(default_factory=list)
    checked: int = 0
    errors: list[str] = field(default_factory=list)
    retained_deleted: list[str] = field(default_factory=list)  # retained by the template, deleted by the harness
    retained_kept: list[str] = field(default_factory=list)  # retained by the template, left (retained = keep)

    def raise_for_leftovers(self) -> None:
        """Raise one TeardownError naming every error, and how many leftovers the teardown listed, if any."""
        if self.leftovers or [e for e in self.errors if "emulator died" not in e]:
            listed = [f"{len(self.leftovers)} left behind (listed above)"] if self.leftovers else []
            raise TeardownError(
                "teardown left things behind:" + "".join(f"\n  {x}" for x in [*self.errors, *listed]),
                hint="a stack: `harness destroy`, or `harness gc --yes` once it has expired; resources retained "
                "by the template: `harness gc --yes`; anything else: remove it by hand",
            )


class Teardown:
    """The teardown job: release the lease, keep or delete the stack, prove nothing is left.

    ``lease`` is the run's lease while it still holds it; ``force`` deletes a
    stack even with ``keep-stack`` (``harness destroy``).
    """

    def __init__(
        self,
        ops: StackOps,
        deployed: Deployed,
        *,
        info: StackInfo | None,
        lease: Lease | None,
        lease_held: bool,
        force: bool,
        keeper: str | None = None,
        not_seen: Callable[[], set[str] | None] | None = None,
    ) -> None:
        self.keeper = keeper  # who keeps the stack with --keep-stack (named to later runs)
        #: waits for the leak probe's first look (``leaks.not_seen``, taken before the teardown) and returns
        #: the resources it did not see; None where there was none: every resource is then probed as before
        self.not_seen = not_seen
        self.ops = ops
        self.deployed = deployed
        self.info = info
        self.lease = lease
        self.lease_held = lease_held
        self.force = force
        self.seconds: float | None = None

    def run(self, report: TeardownReport) -> None:
        p = self.ops.plan
        cfn = self.ops.client("cloudformation")
        try:
            desc = stack_status(cfn, self.deployed.stack_id or p.stack_name)
        except Exception as exc:  # noqa: BLE001 - report, never mask the original failure
            report.errors.append(f"could not read stack {p.stack_name}: {explain_error(exc, self.ops)}")
            return
        gone_already = desc is None or desc["StackStatus"] == "DELETE_COMPLETE"
        unusable = bool(desc) and desc["StackStatus"] in {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED"}  # type: ignore[index]
        kept_by_other = bool(self.lease is not None and self.lease.kept_by) and not self.force
        keep = (self.ops.settings.keep_stack or kept_by_other) and not unusable and not self.force
        keep = keep and not gone_already
        if self.lease is not None and self.lease_held and not self._release_lease(report, keep=keep):
            return
        sset = self._read_set(cfn, report)
        if not stackset.is_single(sset, p.stack_name) and not keep:
            self._delete_set(cfn, sset, report)
            return
        if gone_already:
            if self.lease is not None:
                self.lease.torn_down()
            return
        assert desc is not None
        if not (tags.is_managed(tags.tag_dict(desc)) or self.deployed.created_by_us):
            report.errors.append(f"stack {p.stack_name} is not managed by the harness; left alone")
            return
        if keep and kept_by_other and not self.ops.settings.keep_stack:
            assert self.lease is not None and self.lease.kept_by is not None
            report.kept = True
            self.ops.out(f"leaving stack {p.stack_name} as found: {ownership.kept_by_words(self.lease.kept_by)}")
            return
        if keep:
            self._keep(report)
            return
        self._delete(cfn, desc, report)

    def _read_set(self, cfn: Any, report: TeardownReport) -> stackset.StackSet:
        """The app's stacks now (by tags); on a read error, the one named stack as before."""
        try:
            return self.ops.read_set(cfn)
        except Exception as exc:  # noqa: BLE001 - report, and fall back to the one named stack
            p = self.ops.plan
            report.errors.append(f"could not list the stacks of {p.app} {p.stage}: {exc}")
            return stackset.StackSet(())

    def _delete_set(self, cfn: Any, sset: stackset.StackSet, report: TeardownReport) -> None:
        """Every stack of the set, importers first; then every resource of each verified gone.

        What each member's template retains is read and recorded before any delete, and deleted
        (or kept) once its stack is gone, as for one stack.
        """
        started = time.monotonic()
        w = self.ops.waiter()
        p = self.ops.plan
        self._sweep_listeners(sset.names or [p.stack_name], report)
        per_member = self._set_resources(cfn, sset, report)
        arounds = [(m.name, self._retained_around_delete(m.description(), ph, ty)) for m, ph, ty in per_member]
        if self.ops.settings.destroy_command and sset.get(p.stack_name):
            try:
                self.ops.delete(p.stack_name)  # the team's destroy command first, as for one stack
            except HarnessError as exc:
                report.errors.append(exc.render())
        done = stackset.tear_down(
            cfn,
            sset,
            client_for=self.ops.client,
            delay=w["Delay"],
            max_attempts=int(w["MaxAttempts"]),
            out=self.ops.out,
            per_member=per_member,
        )
        self.seconds = time.monotonic() - started
        report.deleted = not done.errors
        if report.deleted and self.lease is not None:
            self.lease.torn_down()
        report.errors.extend(done.errors)
        # A member not deleted keeps its resources, retained ones too.
        gone = [around for name, around in arounds if name in done.deleted]
        report.leftovers.extend(self._retained_after(gone, done.leftovers, report))
        report.checked = done.checked
        if report.leftovers or report.errors:
            self.ops.out("teardown: LEFT BEHIND:\n" + "\n".join(f"  {x}" for x in [*report.errors, *report.leftovers]))
        else:
            kept = f"; {len(report.retained_kept)} retained by the template kept" if report.retained_kept else ""
            self.ops.out(
                f"teardown: {', '.join(sset.deletion_order())} deleted in {self.seconds:.1f}s; "
                + stackset.leak_line(done.checked, done.unchecked, extra=kept)
            )

    def _set_resources(self, cfn: Any, sset: stackset.StackSet, report: TeardownReport) -> stackset.MemberResources:
        """Each member's resources before the delete (their physical ids are what the leak check probes)."""
        try:
            return stackset.member_resources(cfn, sset)
        except Exception as exc:  # noqa: BLE001 - report; the delete still goes on
            report.errors.append(f"could not read the resources of the stack set: {explain_error(exc, self.ops)}")
            return [(m, {}, {}) for m in sset.members]

    def _retained_after(
        self, arounds: list[retained.AroundDelete], leftovers: list[str], report: TeardownReport
    ) -> list[str]:
        """Delete (or keep) what the deleted stacks' templates retained, and say so in one block.

        Returns the leftovers that are not retained resources, plus the retained ones that could not be deleted.
        """
        said = retained.Outcome([], [], [], [])
        for around in arounds:
            others, outcome = around.after(leftovers)
            leftovers = [*others, *outcome.left]
            for mine, theirs in (
                (said.deleted, outcome.deleted),
                (said.kept, outcome.kept),
                (said.notes, outcome.notes),
            ):
                mine.extend(theirs)
        report.retained_deleted.extend(said.deleted)
        report.retained_kept.extend(said.kept)
        s = self.ops.settings
        for line in said.lines(mode=s.retained, local=s.target == "local"):
            self.ops.out(line)
        return leftovers

    def _release_lease(self, report: TeardownReport, *, keep: bool) -> bool:
        """Give the lease back; False when the stack must be left (to other runs, or to `harness gc`)."""
        assert self.lease is not None
        name = self.ops.plan.stack_name
        try:
            last = self.lease.release(
                keep=keep, by=self.keeper if self.ops.settings.keep_stack else None, force=self.force
            )
        except Exception as exc:  # noqa: BLE001
            report.errors.append(
                f"the lease of {name} could not be released ({explain_error(exc, self.ops)}); the stack is left for "
                "`harness gc` rather than risk deleting it under another run"
            )
            return False
        if not last and not keep:
            report.shared = True
            self.ops.out(f"teardown: {name} is still used by other runs or shards; the last one deletes it")
            return False
        return True

    def _keep(self, report: TeardownReport) -> None:
        report.kept = True
        s = self.ops.settings
        how = "harness destroy"
        if s.target == "endpoint":
            how += f" --target endpoint --endpoint-url {redact(s.endpoint_url)}"
        elif s.target == "aws":
            how += f" --target aws --region {self.ops.target_info['region']}"
        if self.keeper == ownership.WATCH_KEEPER:
            self.ops.out(f"keeping stack {self.ops.plan.stack_name} for the watch's next run")
            return
        self.ops.out(
            f"keeping stack {self.ops.plan.stack_name} (--keep-stack); the next run reuses it. Remove it with: {how}"
        )

    def _delete(self, cfn: Any, desc: dict[str, Any], report: TeardownReport) -> None:
        name = self.ops.plan.stack_name
        self.ops.out(f"teardown: deleting {name}")
        started = time.monotonic()
        physical, types = (self.info["resources"], self.info["resource_types"]) if self.info else ({}, {})
        if not physical:
            try:
                physical, types = stackset.read_resources_deep(cfn, desc["StackId"])
            except Exception:  # noqa: BLE001
                physical, types = {}, {}
        around = self._retained_around_delete(desc, physical, types)
        self._sweep_listeners([name], report)
        unseen = (self.not_seen() if self.not_seen is not None else None) or set()  # the look ends before the delete
        try:
            self.ops.delete(desc["StackId"])
            report.deleted = True
            if self.lease is not None:
                self.lease.torn_down()
        except HarnessError as exc:
            report.errors.append(exc.render())
        except Exception as exc:  # noqa: BLE001
            report.errors.append(f"deleting {name} failed: {explain_error(exc, self.ops)}")
        self.seconds = time.monotonic() - started
        self._check_leftovers(cfn, physical, types, report, around, unseen)

    def _sweep_listeners(self, stacks: list[str], report: TeardownReport) -> None:
        """Listeners of the stack that a stopped process left (each process removes its own): removed, or named."""
        from harness.events import sweep

        try:
            found, problems = sweep.sweep(self.ops.client, stacks)
        except Exception as exc:  # noqa: BLE001 - said; the stack's delete must still run
            # Not an error of the run: most runs made no listener, and a target without the
            # tagging API (or a role without tag:GetResources) must not fail every teardown.
            self.ops.out(
                f"teardown: could not look for listeners a stopped process left on {', '.join(stacks)} "
                f"({explain_error(exc, self.ops)}); `harness gc` looks again"
            )
            return
        if found:
            self.ops.out(
                f"teardown: {len(found)} listener resource(s) a stopped process left: "
                + ", ".join(f.describe() for f in found)
                + ("" if problems else "; removed")
            )
        report.leftovers.extend(problems)

    def _retained_around_delete(
        self, desc: dict[str, Any], physical: dict[str, str], types: dict[str, str]
    ) -> retained.AroundDelete:
        """Read and record what the template retains, before the stack's delete (never raises)."""
        around = retained.AroundDelete(
            self.ops.client,
            mode=self.ops.settings.retained,
            records=retained.Records(self.ops.client("dynamodb")),
            template_of=self.ops.template,
        )
        around.before(desc, physical, types)
        return around

    def _check_leftovers(
        self,
        cfn: Any,
        physical: dict[str, str],
        types: dict[str, str],
        report: TeardownReport,
        around: retained.AroundDelete,
        unseen: Collection[str] = (),
    ) -> None:
        """Prove the stack and each of its resources is gone; list every leftover at once.

        What the template retains is deleted (or kept) only once its stack is gone. A resource its probe did
        not see before the delete (``unseen``) is not probed: its absence would prove nothing; it is named.
        """
        name = self.ops.plan.stack_name
        gone = stack_status(cfn, name) is None
        if not gone:
            report.leftovers.append(f"stack {name}")
        settle = leaks.SETTLE_SECONDS if self.ops.settings.target == "aws" else 0.0  # AWS deletes settle
        listing = self.ops.settings.target == "local"  # the embedded emulator lists what it reads
        unproven = sorted(k for k in physical if k in unseen)
        physical = {k: v for k, v in physical.items() if k not in unseen}
        probe = leaks.probe(self.ops.client, physical, types, settle=settle, listing=listing)
        retained_ids = {r.logical for r in around.items}  # the template keeps those on purpose
        mine = {k: v for k, v in physical.items() if k not in retained_ids}
        recreated = leaks.recreated_log_groups(self.ops.client, probe, mine, types) if probe.leftovers else []
        if recreated:
            self.ops.out(
                "teardown: deleted log group(s) a function still running during the delete wrote again: "
                + ", ".join(recreated)
            )
            probe = leaks.probe(self.ops.client, physical, types, settle=settle, listing=listing)
        report.checked = probe.checked
        if gone:
            report.leftovers.extend(self._retained_after([around], probe.leftovers, report))
        else:
            report.leftovers.extend(probe.leftovers)
        if report.leftovers:
            self.ops.out("teardown: LEFT BEHIND:\n" + "\n".join(f"  {x}" for x in report.leftovers))
        else:
            kept = f"; {len(report.retained_kept)} retained by the template kept" if report.retained_kept else ""
            self.ops.out(
                f"teardown: {name} deleted in {self.seconds:.1f}s; "
                + stackset.leak_line(probe.checked, probe.unchecked, extra=kept)
                + (
                    "; not seen by their probe before the delete, so not proven gone: "
                    + ", ".join(f"{k} ({types.get(k, '?')})" for k in unproven)
                    if unproven
                    else ""
                )
            )


def explain_error(exc: BaseException, ops: StackOps) -> str:
    """An AWS error in words (call, identity, permission); anything else as it is."""
    if isinstance(exc, AWS_ERRORS):
        return explain(exc, identity=getattr(ops.target, "identity", None))
    return str(exc)
