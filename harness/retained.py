"""What a template keeps when its stack is deleted, and removing it afterwards.

A branch copy is not production. ``DeletionPolicy: Retain`` protects
production's data, and SAM retains every ``AWS::Serverless::LayerVersion``
unless told otherwise (its transform writes ``DeletionPolicy: Retain``); on
an ephemeral stack each run would leave them behind. So, around the delete:

1. :func:`find` reads, before the delete, the resources the *processed*
   template (after the SAM transform) retains: ``DeletionPolicy`` ``Retain``
   or ``RetainExceptOnCreate`` (a delete after a successful create keeps
   those too), with their physical ids from the stack's resources.
2. :class:`Records` writes them to the harness's table in the target (the
   lease table: one item per deleted stack, key ``retained#<stack id>``, never
   a stack name since those cannot hold ``#``), with the stack's tags, before
   the delete: a run that dies right after it still leaves what ``harness gc``
   needs.
3. After the stack is gone, :func:`remove` deletes them (``retained = delete``,
   the default) and the record is dropped; ``retained = keep`` leaves them
   and the record.

An update does the same to what it removes or replaces: a retained resource
the new template drops (a SAM layer's content changed: a new layer version, a
new logical id) or replaces under ``UpdateReplacePolicy: Retain`` leaves the
stack and stays in the account, which CloudFormation reports as a
``DELETE_SKIPPED`` event with its physical id. After a deploy that updated a
stack, :func:`skipped_by_update` reads those events and :func:`after_update`
deletes them (``retained = delete``) or records them (``retained = keep``, or a
delete that failed) under a key of their own, ``retained#<stack id>#update#<run id>``.

``harness gc`` reads the records (:meth:`Records.load`) and collects a record
like a stack, by the tags it carries (expired, or its branch gone), deleting
its resources; a resource that a live stack of the same name lists again (a
named log group re-created by a later deploy) is left alone.

Types without a deleter here are named, never silently kept.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from harness import templates
from harness.leaks import _GONE_CODES, PROBES

ClientFor = Callable[[str], Any]
TemplateOf = Callable[[str], Mapping[str, Any]]

DELETE = "delete"
KEEP = "keep"
RETAINING_POLICIES = ("Retain", "RetainExceptOnCreate")
RECORD_PREFIX = "retained#"


@dataclass(frozen=True)
class Retained:
    logical: str
    type: str
    physical: str

    @property
    def label(self) -> str:
        return f"{self.logical} ({self.type}) {self.physical}"

    def names(self, leftover: str) -> bool:
        """Whether a leak-check leftover (``key (type) physical id``) is this resource, whatever its key.

        In a stack set a logical id two members share is keyed ``stack:Logical``.
        """
        return leftover.endswith(f" ({self.type}) {self.physical}")

    def as_json(self) -> list[str]:
        return [self.logical, self.type, self.physical]


# --------------------------------------------------------------------------- reading the template


def retaining(template: Mapping[str, Any]) -> dict[str, str]:
    """Logical id -> type of every resource the template keeps when its stack is deleted."""
    out: dict[str, str] = {}
    for logical, res in (template.get("Resources") or {}).items():
        if isinstance(res, Mapping) and res.get("DeletionPolicy") in RETAINING_POLICIES:
            out[str(logical)] = str(res.get("Type", "?"))
    return out


def find(
    cfn: Any,
    stack_id: str,
    physical: Mapping[str, str],
    types: Mapping[str, str],
    template_of: TemplateOf | None = None,
) -> list[Retained]:
    """The resources the stack's template retains, with their physical ids (those that have one).

    ``template_of`` hands the processed template when the run already read it (one read per run).
    """
    found = retaining(template_of(stack_id) if template_of is not None else templates.read(cfn, stack_id))
    return [
        Retained(logical, types.get(logical, rtype), physical[logical])
        for logical, rtype in sorted(found.items())
        if physical.get(logical)
    ]


# --------------------------------------------------------------------------- deleting


def _empty_bucket(s3: Any, bucket: str) -> None:
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        keys = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in [*(page.get("Versions") or []), *(page.get("DeleteMarkers") or [])]
        ]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    s3.delete_bucket(Bucket=bucket)


def _layer_version(c: Any, arn: str) -> None:
    # By name: AWS also takes the layer's ARN, but MiniStack 1.5.33 silently ignores a delete by ARN.
    layer, _, version = arn.rpartition(":")
    c.delete_layer_version(LayerName=layer.rpartition(":layer:")[2] or layer, VersionNumber=int(version))


def _function_version(c: Any, arn: str) -> None:
    # A published version (the Serverless Framework retains them); gone already when its function is.
    name, _, version = arn.rpartition(":")
    c.delete_function(FunctionName=name, Qualifier=version)


def _role(iam: Any, name: str) -> None:
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
        for p in page["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=name, PolicyArn=p["PolicyArn"])
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
        for policy in page["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
    iam.delete_role(RoleName=name)


#: type -> (client, delete(client, physical id)).
DELETERS: dict[str, tuple[str, Callable[[Any, str], object]]] = {
    "AWS::Logs::LogGroup": ("logs", lambda c, p: c.delete_log_group(logGroupName=p)),
    "AWS::Lambda::LayerVersion": ("lambda", _layer_version),
    "AWS::Lambda::Function": ("lambda", lambda c, p: c.delete_function(FunctionName=p)),
    "AWS::Lambda::Version": ("lambda", _function_version),
    "AWS::S3::Bucket": ("s3", _empty_bucket),
    "AWS::DynamoDB::Table": ("dynamodb", lambda c, p: c.delete_table(TableName=p)),
    "AWS::SQS::Queue": ("sqs", lambda c, p: c.delete_queue(QueueUrl=p)),
    "AWS::SNS::Topic": ("sns", lambda c, p: c.delete_topic(TopicArn=p)),
    "AWS::Kinesis::Stream": ("kinesis", lambda c, p: c.delete_stream(StreamName=p, EnforceConsumerDeletion=True)),
    "AWS::SSM::Parameter": ("ssm", lambda c, p: c.delete_parameter(Name=p)),
    "AWS::SecretsManager::Secret": (
        "secretsmanager",
        lambda c, p: c.delete_secret(SecretId=p, ForceDeleteWithoutRecovery=True),
    ),
    "AWS::ECR::Repository": ("ecr", lambda c, p: c.delete_repository(repositoryName=p, force=True)),
    "AWS::IAM::Role": ("iam", _role),
}


@dataclass
class Removal:
    """What :func:`remove` did, resource by resource."""

    deleted: list[Retained]
    failed: list[tuple[Retained, str]]

    @property
    def left(self) -> list[Retained]:
        return [r for r, _why in self.failed]


def _gone(exc: botocore.exceptions.ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in _GONE_CODES or "not found" in str(exc).lower()


def remove(client_for: ClientFor, items: Iterable[Retained]) -> Removal:
    """Delete every item and check it is gone; one failure never stops the others."""
    out = Removal([], [])
    for r in items:
        entry = DELETERS.get(r.type)
        if entry is None:
            out.failed.append((r, f"the harness cannot delete {r.type}; remove it by hand"))
            continue
        service, delete = entry
        try:
            delete(client_for(service), r.physical)
        except botocore.exceptions.ClientError as exc:
            if not _gone(exc):
                out.failed.append((r, f"could not be deleted: {exc}"))
                continue
        probe = PROBES.get(r.type)
        try:
            still = probe is not None and probe[1](client_for(probe[0]), r.physical)
        except botocore.exceptions.ClientError as exc:
            out.failed.append((r, f"deleted, but could not be checked: {exc}"))
            continue
        if still:
            out.failed.append((r, "still there after its delete"))
        else:
            out.deleted.append(r)
    return out


# --------------------------------------------------------------------------- records for harness gc


@dataclass(frozen=True)
class Record:
    """The retained resources of one deleted stack, as ``harness gc`` finds them."""

    stack_name: str
    stack_id: str
    tags: dict[str, str]
    resources: list[Retained]
    recorded_at: str
    #: Empty for what the stack's delete kept; ``#update#<run id>`` for what an update of the live stack kept.
    suffix: str = ""

    @property
    def key(self) -> str:
        return RECORD_PREFIX + self.stack_id + self.suffix


class Records:
    """Retained-resource records in the lease table (``harness.lease.TABLE``)."""

    def __init__(self, ddb: Any, now: Callable[[], dt.datetime] | None = None) -> None:
        from harness.lease import TABLE

        self.ddb = ddb
        self.table = TABLE
        self.now = now or (lambda: dt.datetime.now(dt.UTC))

    def put(
        self, stack_name: str, stack_id: str, tags: Mapping[str, str], items: list[Retained], suffix: str = ""
    ) -> Record:
        stamp = self.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        record = Record(stack_name, stack_id, dict(tags), list(items), stamp, suffix)
        item = {
            "stack": {"S": record.key},
            "kind": {"S": "retained"},
            "stack_name": {"S": stack_name},
            "stack_id": {"S": stack_id},
            "tags": {"S": json.dumps(record.tags, sort_keys=True)},
            "resources": {"S": json.dumps([r.as_json() for r in items])},
            "recorded_at": {"S": record.recorded_at},
        }
        if suffix:
            item["suffix"] = {"S": suffix}
        try:
            self.ddb.put_item(TableName=self.table, Item=item)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            from harness.lease import ensure_table

            ensure_table(self.ddb)  # `harness destroy` of a stack no run has leased here
            self.ddb.put_item(TableName=self.table, Item=item)
        return record

    def drop(self, record: Record) -> None:
        self.ddb.delete_item(TableName=self.table, Key={"stack": {"S": record.key}})

    def load(self) -> list[Record]:
        """Every record (none when the table does not exist)."""
        out: list[Record] = []
        try:
            pages = self.ddb.get_paginator("scan").paginate(
                TableName=self.table,
                FilterExpression="begins_with(#k, :p)",
                ExpressionAttributeNames={"#k": "stack"},
                ExpressionAttributeValues={":p": {"S": RECORD_PREFIX}},
                ConsistentRead=True,
            )
            for page in pages:
                out.extend(_record(item) for item in page.get("Items") or [])
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return []
            raise
        return sorted(out, key=lambda r: (r.stack_name, r.recorded_at))


def _record(item: Mapping[str, Any]) -> Record:
    return Record(
        stack_name=item["stack_name"]["S"],
        stack_id=item["stack_id"]["S"],
        tags=json.loads(item["tags"]["S"]),
        resources=[Retained(*r) for r in json.loads(item["resources"]["S"])],
        recorded_at=item.get("recorded_at", {}).get("S", ""),
        suffix=item.get("suffix", {}).get("S", ""),
    )


# --------------------------------------------------------------------------- around a teardown


@dataclass
class Outcome:
    """Retained resources after a teardown: deleted by the harness, kept, or left despite trying."""

    deleted: list[str]
    kept: list[str]
    left: list[str]
    notes: list[str]

    def lines(self, *, mode: str, local: bool) -> list[str]:
        """What the teardown prints about them (the failures go to the LEFT BEHIND list instead)."""
        out = [f"teardown: {note}" for note in self.notes]
        if self.deleted:
            out.append(
                "teardown: retained by the template, deleted by the harness:"
                + "".join(f"\n  {x}" for x in self.deleted)
            )
        if self.kept:
            after = (
                "they go with the emulator when it stops"
                if local
                else "`harness gc --yes` removes them once the stack has expired or its branch is gone"
            )
            out.append(
                f"teardown: retained by the template, left in place (retained = {mode}; {after}):"
                + "".join(f"\n  {x}" for x in self.kept)
            )
        return out


class AroundDelete:
    """Find what the template retains before the stack's delete; delete or keep it afterwards."""

    def __init__(
        self,
        client_for: ClientFor,
        *,
        mode: str = DELETE,
        records: Records | None = None,
        template_of: TemplateOf | None = None,
    ) -> None:
        self.client_for = client_for
        self.mode = mode
        self.records = records
        self.template_of = template_of
        self.items: list[Retained] = []
        self.record: Record | None = None
        self.notes: list[str] = []

    def before(self, desc: Mapping[str, Any], physical: Mapping[str, str], types: Mapping[str, str]) -> None:
        """Read and record the retained resources of the stack ``desc`` describes. Never raises."""
        from harness import tags

        try:
            self.items = find(self.client_for("cloudformation"), desc["StackId"], physical, types, self.template_of)
        except Exception as exc:  # noqa: BLE001 - the delete goes on; a retained resource then shows as left
            self.notes.append(f"could not read which resources the template retains ({exc})")
            return
        if not self.items or self.records is None:
            return
        try:
            self.record = self.records.put(desc["StackName"], desc["StackId"], tags.tag_dict(dict(desc)), self.items)
        except Exception as exc:  # noqa: BLE001
            self.notes.append(f"could not record the retained resources for `harness gc` ({exc})")

    def after(self, leftovers: list[str]) -> tuple[list[str], Outcome]:
        """Leftovers that are not retained resources, and what became of the retained ones."""
        others = [x for x in leftovers if not any(r.names(x) for r in self.items)]
        present = [r for r in self.items if r.type not in PROBES or any(r.names(x) for x in leftovers)]
        outcome = Outcome([], [], [], list(self.notes))
        if self.mode == KEEP:
            outcome.kept = [r.label for r in present]
            return others, outcome
        removal = remove(self.client_for, present)
        outcome.deleted = [r.label for r in removal.deleted]
        outcome.left = [f"{r.label}: retained by the template; {why}" for r, why in removal.failed]
        self._update_record(removal)
        return others, outcome

    def _update_record(self, removal: Removal) -> None:
        if self.records is None or self.record is None:
            return
        try:
            if removal.left:
                r = self.record
                self.record = self.records.put(r.stack_name, r.stack_id, r.tags, removal.left, r.suffix)
            else:
                self.records.drop(self.record)
        except Exception as exc:  # noqa: BLE001
            self.notes.append(f"could not update the record of retained resources ({exc})")


# --------------------------------------------------------------------------- after an update

UPDATE_SUFFIX = "#update#"


def skipped_by_update(cfn: Any, stack: str, since: dt.datetime) -> list[Retained]:
    """What updates of ``stack`` since ``since`` took out of it and kept (``DELETE_SKIPPED`` events), oldest first."""
    from harness.deploy import events_since

    found: dict[str, Retained] = {}
    for ev in events_since(cfn, stack, since):
        physical = ev.get("PhysicalResourceId") or ""
        if ev.get("ResourceStatus") != "DELETE_SKIPPED" or not physical:
            continue
        if ev.get("ResourceType") == "AWS::CloudFormation::Stack":
            continue
        found.setdefault(physical, Retained(ev.get("LogicalResourceId", "?"), ev.get("ResourceType", "?"), physical))
    return list(reversed(found.values()))


def after_update(
    client_for: ClientFor,
    items: list[Retained],
    *,
    mode: str,
    records: Records,
    stack: Mapping[str, Any],
    run_id: str,
) -> list[str]:
    """Delete (or, for ``keep``, record) what an update of ``stack`` kept out of it; the lines saying so.

    What cannot be deleted is recorded for ``harness gc`` and named. Never raises.
    """
    from harness import tags

    if not items:
        return []
    lines: list[str] = []
    keep: list[Retained] = list(items)
    if mode != KEEP:
        removal = remove(client_for, items)
        if removal.deleted:
            lines.append(
                "retained by the update, deleted by the harness:" + "".join(f"\n  {r.label}" for r in removal.deleted)
            )
        keep = removal.left
        lines += [f"retained by the update and not deleted: {r.label}: {why}" for r, why in removal.failed]
    if not keep:
        return lines
    where = "`harness gc --yes` removes them once the stack has expired or its branch is gone"
    try:
        records.put(stack["StackName"], stack["StackId"], tags.tag_dict(dict(stack)), keep, UPDATE_SUFFIX + run_id)
    except Exception as exc:  # noqa: BLE001 - the deploy succeeded; say what is left and where
        where = f"not recorded for `harness gc` ({exc}): remove them by hand"
    if mode == KEEP:
        lines.append(
            f"retained by the update, left in place (retained = keep; {where}):"
            + "".join(f"\n  {r.label}" for r in keep)
        )
    else:
        lines.append(f"{where}: " + ", ".join(r.label for r in keep))
    return lines


# --------------------------------------------------------------------------- harness gc


def recording_delete(records: Records, client_for: ClientFor) -> Callable[..., None]:
    """A stack delete for ``harness gc`` that first records what the template retains (then collected with the records)."""
    from harness.deploy import delete_stack, read_resources, stack_status

    def delete(cfn: Any, stack_id: str, *, delay: float, max_attempts: int) -> None:
        desc = stack_status(cfn, stack_id)
        if desc is not None:
            physical, types = read_resources(cfn, stack_id)
            AroundDelete(client_for, mode=KEEP, records=records).before(desc, physical, types)
        delete_stack(cfn, stack_id, delay=delay, max_attempts=max_attempts)

    return delete


def plan_records(records: Iterable[Record], **plan_gc_args: Any) -> list[tuple[Record, Any]]:
    """``(record, inventory.Decision)`` for every record gc has something to say about, by the stack's own rules.

    A record is judged as its stack would be (protected stage, expired, branch
    gone), from the tags the stack had; there is no lease to ask, its stack is gone.
    """
    from harness import inventory

    pairs = [
        (r, inventory.StackRecord(name=r.stack_name, stack_id=r.stack_id, status="DELETE_COMPLETE", tags=r.tags))
        for r in records
    ]
    of = {id(pseudo): r for r, pseudo in pairs}  # a stack may have several records (its delete's, its updates')
    plan = inventory.plan_gc([pseudo for _r, pseudo in pairs], in_use=None, **plan_gc_args)
    return [(of[id(d.record)], d) for d in plan.decisions]


def _live_physical_ids(cfn: Any, stack_name: str) -> set[str]:
    """Physical ids a live stack of that name lists now (a later deploy may have re-created a named resource)."""
    from harness.deploy import read_resources, stack_status

    desc = stack_status(cfn, stack_name)
    if desc is None or desc.get("StackStatus") == "DELETE_COMPLETE":
        return set()
    physical, _types = read_resources(cfn, desc["StackId"])
    return set(physical.values())


def collect(record: Record, store: Records, client_for: ClientFor) -> tuple[bool, str]:
    """Delete a record's resources (never one a live stack lists again); drop the record when none is left."""
    try:
        live = _live_physical_ids(client_for("cloudformation"), record.stack_name)
    except Exception as exc:  # noqa: BLE001 - cannot tell: touch nothing
        return False, f"could not read the live stack {record.stack_name}: {exc}"
    mine = [r for r in record.resources if r.physical not in live]
    removal = remove(client_for, mine)
    if removal.left:
        store.put(record.stack_name, record.stack_id, record.tags, removal.left, record.suffix)
        reasons = "; ".join(f"{r.label}: {why}" for r, why in removal.failed)
        return False, f"{len(removal.deleted)} deleted, {len(removal.left)} not: {reasons}"
    store.drop(record)
    spared = len(record.resources) - len(mine)
    return True, f"{len(removal.deleted)} deleted" + (
        f", {spared} now part of a live stack left alone" if spared else ""
    )


RECORD_HEADERS = ("deleted stack", "retained resources", "reason", "action")


def record_rows(decisions: Iterable[tuple[Record, Any]], *, dry_run: bool) -> list[list[str]]:
    from harness import inventory

    text = {inventory.DELETE: "would delete" if dry_run else "delete", inventory.SKIP: "skip", inventory.KEEP: "keep"}
    return [
        [rec.stack_name, "\n".join(r.label for r in rec.resources), d.reason, text[d.action]] for rec, d in decisions
    ]
