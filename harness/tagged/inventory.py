"""Tagged deployments in ``harness ls`` and ``harness gc``: resources grouped by app and stage.

Every resource carrying ``harness:managed-by`` and a stage that no CloudFormation stack
accounts for (no ``aws:cloudformation:stack-name`` tag, and no managed stack
of the same app and stage) belongs to a tagged deployment, one per app and
stage. Each is a :class:`TaggedRecord`, a :class:`~harness.inventory.StackRecord`
so that :func:`harness.inventory.plan_gc` judges it by the same rules as a
stack: protected stages, leases (under the deployment's name), expiry,
branches gone from the remote.

Collecting one (:func:`collect`) looks again first (gone? now in use?), then
runs the project's ``destroy-command`` for that stage when the deployment is
this project's, then deletes what still carries the tags with the harness's
deleters, and names what it could not delete.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from harness import tags
from harness.inventory import GcDecision, GcResult, InUse, StackRecord, parse_time
from harness.tagged import deleters
from harness.tagged.discover import ClientFor, TaggedResource, find, wanted_tags

STATUS = "TAGGED"
CFN_STACK_TAG = "aws:cloudformation:stack-name"


@dataclass(frozen=True)
class TaggedRecord(StackRecord):
    """A tagged deployment: the resources of one app and stage, judged like a stack."""

    resources: tuple[TaggedResource, ...] = field(default=(), compare=False)

    @property
    def app(self) -> str | None:
        return self.tags.get(tags.APP)


def is_tagged(record: StackRecord) -> bool:
    return isinstance(record, TaggedRecord)


def _newest_tags(group: list[TaggedResource]) -> dict[str, str]:
    """The tags of the most recently deployed resource (a redeploy moves expires-at on)."""
    return dict(max(group, key=lambda r: r.tags.get(tags.EXPIRES_AT, "")).tags)


def deployment_name(t: dict[str, str]) -> str:
    """The deployment's name: the stack name its run used (tag), else app-stage."""
    return t.get(tags.DEPLOYMENT) or f"{t.get(tags.APP, '?')}-{t.get(tags.STAGE, '?')}"


def list_deployments(
    client_for: ClientFor, *, region: str, stacks: Iterable[StackRecord], partition: str = "aws", on_aws: bool = False
) -> list[TaggedRecord]:
    """Every tagged deployment of the target (managed resources no stack accounts for), sorted by name."""
    stacked = {(r.tags.get(tags.APP), r.stage) for r in stacks if r.managed}
    groups: dict[tuple[str | None, str | None], list[TaggedResource]] = {}
    for r in find(client_for, wanted_tags(), region=region, partition=partition, on_aws=on_aws):
        if r.stage is None or CFN_STACK_TAG in r.tags or (r.app, r.stage) in stacked:
            continue  # no stage: the harness's own (its lease table); a stack's: listed as the stack
        groups.setdefault((r.app, r.stage), []).append(r)
    records = []
    for group in groups.values():
        t = _newest_tags(group)
        n = len(group)
        created = min((parse_time(r.tags.get(tags.CREATED_AT)) for r in group), default=None, key=_when)
        name = deployment_name(t)
        records.append(
            TaggedRecord(
                name=name,
                stack_id=f"tagged:{name}",
                status=f"{STATUS} ({n} resource{'s' if n != 1 else ''})",
                tags=t,
                creation_time=created,
                resources=tuple(group),
            )
        )
    return sorted(records, key=lambda r: r.name)


def _when(t: dt.datetime | None) -> dt.datetime:
    return t or dt.datetime.max.replace(tzinfo=dt.UTC)


def ls_lines(records: list[TaggedRecord]) -> list[str]:
    """Under ``harness ls``'s table: each tagged deployment's resources, by ARN."""
    return [
        f"tagged deployment {r.name} ({r.app or '?'}/{r.stage or '?'}): " + ", ".join(x.arn for x in r.resources)
        for r in records
    ]


#: Runs the project's destroy command for one tagged deployment; raises on failure.
Destroy = Callable[[TaggedRecord], None]


def collect(
    client_for: ClientFor,
    d: GcDecision,
    *,
    region: str,
    destroy: Destroy | None,
    in_use: InUse | None,
    clear: Callable[[StackRecord], object] | None = None,
    partition: str = "aws",
    on_aws: bool = False,
) -> GcResult:
    """Delete one tagged deployment the plan marks: destroy command (if this project's), then deleters."""
    r = d.record
    assert isinstance(r, TaggedRecord)
    wanted = wanted_tags(app=r.app, stage=r.stage)

    def now_there() -> list[TaggedResource]:
        return find(client_for, wanted, region=region, partition=partition, on_aws=on_aws)

    try:
        current = now_there()
    except Exception as exc:  # noqa: BLE001 - one deployment's failure is reported with the others
        return GcResult(d, False, f"could not list it: {exc}")
    if not current:
        return GcResult(d, True, "already gone")
    if in_use is not None:
        try:
            who = in_use(r)
        except Exception as exc:  # noqa: BLE001
            return GcResult(d, True, f"skipped: cannot read its lease ({type(exc).__name__}: {exc})")
        if who:
            return GcResult(d, True, f"skipped: in use: {who}")
    notes = []
    if destroy is not None:
        try:
            destroy(r)
            notes.append("destroy command ran")
        except Exception as exc:  # noqa: BLE001 - the deleters below still run
            notes.append(f"destroy command failed ({exc})")
        current = now_there()
    deleted, failed, unknown = deleters.delete_all(client_for, current)
    if deleted:
        notes.append(f"deleted by the harness: {', '.join(deleted)}")
    remaining = now_there()
    if remaining or failed or unknown:
        names = [*failed, *unknown, *(x.arn for x in remaining if x.arn not in " ".join([*failed, *unknown]))]
        return GcResult(d, False, "; ".join([*notes, "left: " + ", ".join(names)]))
    if clear is not None:
        try:
            clear(r)
        except Exception as exc:  # noqa: BLE001 - the resources are gone; say what is left of its lease
            notes.append(f"its lease item could not be removed: {type(exc).__name__}: {exc}")
    return GcResult(d, True, "deleted" + (f" ({'; '.join(notes)})" if notes else ""))
