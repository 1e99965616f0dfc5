"""The branch stack as a set: every CloudFormation stack one deploy made for this app and stage.

A SAM app's deploy makes one stack; a CDK app's ``cdk deploy --all`` makes
several, joined by cross-stack exports; either may add nested stacks. The
harness finds them all by the tags it handed the deploy
(``HARNESS_STACK_TAGS``, which CloudFormation copies onto nested stacks too)::

    describe_stacks (every page) -> managed + same stage + same app
      -> drop nested stacks (they belong to their root) -> dependencies
      (list_exports/list_imports, and cdk.out/manifest.json when present)
      -> members in creation order

Teardown walks that order backwards: an importer before its exporter. The
emulator refuses a wrong-order delete at once (``ValidationError ... is
imported by``); AWS accepts it and ends in ``DELETE_FAILED``: both are
retried once the importer is gone, and whatever still fails is reported.
"""

from __future__ import annotations

import graphlib
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.exceptions

from harness import tags
from harness.deploy import failure_events
from harness.errors import DeployError, TeardownError

STACK_TYPE = "AWS::CloudFormation::Stack"
GONE = {"DELETE_COMPLETE"}
#: CloudFormation's words for "an export of this stack is still imported".
IN_USE = ("is imported by", "in use by")


@dataclass(frozen=True)
class Member:
    """One top-level stack of the set."""

    name: str
    stack_id: str
    status: str
    outputs: dict[str, str]
    tags: dict[str, str]
    exports: tuple[str, ...] = ()

    def description(self) -> dict[str, Any]:
        """The fields of its ``DescribeStacks`` entry the teardown reads (name, id, tags)."""
        return {
            "StackName": self.name,
            "StackId": self.stack_id,
            "StackStatus": self.status,
            "Tags": [{"Key": k, "Value": v} for k, v in self.tags.items()],
        }


@dataclass(frozen=True)
class StackSet:
    """The members in creation order, and who imports from whom."""

    members: tuple[Member, ...]
    #: stack name -> names of the stacks it depends on (imports from)
    depends_on: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.members]

    def get(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)

    def deletion_order(self) -> list[str]:
        """Importers before exporters: the creation order, reversed."""
        return list(reversed(self.names))

    def outputs_by_stack(self) -> dict[str, dict[str, str]]:
        return {m.name: dict(m.outputs) for m in self.members}


def creation_order(names: Iterable[str], depends_on: Mapping[str, Iterable[str]]) -> list[str]:
    """A stable topological order (dependencies first); names without edges keep their sorted order."""
    names = sorted(names)
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for n in names:
        sorter.add(n, *sorted(d for d in depends_on.get(n, ()) if d in names and d != n))
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise DeployError(
            f"the stacks {', '.join(exc.args[1])} import from each other in a cycle",
            hint="CloudFormation cannot delete such a set in any order; break the cycle in the app",
        ) from None
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    return order


# -- discovery ------------------------------------------------------------------


def belongs(stack_tags: Mapping[str, str], *, app: str, stage: str, name: str, primary: str) -> bool:
    """A stack of this app and stage: managed, same stage tag, same app tag (or, untagged by app, the primary)."""
    if not tags.is_managed(dict(stack_tags)) or stack_tags.get(tags.STAGE) != stage:
        return False
    stack_app = stack_tags.get(tags.APP)
    return stack_app == app if stack_app is not None else name == primary


def find_members(cfn: Any, *, app: str, stage: str, primary: str) -> list[dict[str, Any]]:
    """Every live top-level stack carrying this app's and stage's harness tags (all pages)."""
    found: list[dict[str, Any]] = []
    for page in cfn.get_paginator("describe_stacks").paginate():
        for desc in page.get("Stacks", []):
            if desc.get("StackStatus") in GONE or desc.get("ParentId") or desc.get("RootId"):
                continue  # nested stacks are part of their root's resources
            if belongs(tags.tag_dict(desc), app=app, stage=stage, name=desc["StackName"], primary=primary):
                found.append(dict(desc))
    return _without_nested(cfn, found)


def _without_nested(cfn: Any, descs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop stacks that another one holds as a nested-stack resource.

    AWS marks a nested stack with ``ParentId``; MiniStack 1.5.33 does not, but
    lists it as the ``AWS::CloudFormation::Stack`` resource of its parent.
    """
    if len(descs) < 2:
        return descs
    nested: set[str] = set()
    for desc in descs:
        try:
            for page in cfn.get_paginator("list_stack_resources").paginate(StackName=desc["StackId"]):
                nested.update(
                    r["PhysicalResourceId"]
                    for r in page["StackResourceSummaries"]
                    if r["ResourceType"] == STACK_TYPE and r.get("PhysicalResourceId")
                )
        except botocore.exceptions.ClientError:
            continue  # deleted meanwhile
    return [d for d in descs if d["StackId"] not in nested]


def export_edges(cfn: Any, stack_ids: Mapping[str, str]) -> tuple[dict[str, set[str]], dict[str, list[str]]]:
    """(importer -> exporters, exporter -> export names) among the given stacks (name -> id), every page."""
    by_id = {sid: name for name, sid in stack_ids.items()}
    depends: dict[str, set[str]] = {name: set() for name in stack_ids}
    exported: dict[str, list[str]] = {name: [] for name in stack_ids}
    for page in cfn.get_paginator("list_exports").paginate():
        for export in page.get("Exports", []):
            exporter = by_id.get(export.get("ExportingStackId", ""))
            if exporter is None:
                continue
            exported[exporter].append(export["Name"])
            for importer in _importers(cfn, export["Name"]):
                if importer in depends and importer != exporter:
                    depends[importer].add(exporter)
    return depends, exported


def _importers(cfn: Any, export_name: str) -> list[str]:
    names: list[str] = []
    try:
        for page in cfn.get_paginator("list_imports").paginate(ExportName=export_name):
            names.extend(page.get("Imports", []))
    except botocore.exceptions.ClientError as exc:
        if "not imported" not in str(exc):  # AWS: "Export 'x' is not imported by any stack."
            raise
    return names


def manifest_edges(manifest: Path, names: Iterable[str]) -> dict[str, set[str]]:
    """Stack dependencies from a CDK cloud assembly (``cdk.out/manifest.json``), for the given stacks."""
    try:
        artifacts = json.loads(manifest.read_text()).get("artifacts", {})
    except (OSError, ValueError):
        return {}
    stack_of: dict[str, str] = {}
    for art_id, art in artifacts.items():
        if art.get("type") == "aws:cloudformation:stack":
            stack_of[art_id] = (art.get("properties") or {}).get("stackName") or art_id
    wanted = set(names)
    edges: dict[str, set[str]] = {}
    for art_id, stack in stack_of.items():
        if stack in wanted:
            deps = {stack_of[d] for d in artifacts[art_id].get("dependencies", []) if d in stack_of}
            edges[stack] = deps & wanted
    return edges


def discover(cfn: Any, *, app: str, stage: str, primary: str, manifest: Path | None = None) -> StackSet:
    """The set as it stands now: members (top-level only) in creation order."""
    descs = find_members(cfn, app=app, stage=stage, primary=primary)
    ids = {d["StackName"]: d["StackId"] for d in descs}
    depends, exported = export_edges(cfn, ids) if len(ids) > 1 else ({}, {})
    if manifest is not None and manifest.is_file():
        for stack, deps in manifest_edges(manifest, ids).items():
            depends.setdefault(stack, set()).update(deps)
    order = creation_order(ids, depends)
    by_name = {d["StackName"]: d for d in descs}
    members = tuple(
        Member(
            name=n,
            stack_id=by_name[n]["StackId"],
            status=by_name[n]["StackStatus"],
            outputs={o["OutputKey"]: o["OutputValue"] for o in by_name[n].get("Outputs") or []},
            tags=tags.tag_dict(by_name[n]),
            exports=tuple(sorted(exported.get(n, ()))),
        )
        for n in order
    )
    return StackSet(members, {n: frozenset(depends.get(n, ())) for n in order})


def created_by_run(stack_set: StackSet, run_id: str) -> list[str]:
    """Members this run's deploy created or updated (they carry its run id)."""
    return [m.name for m in stack_set.members if m.tags.get(tags.RUN_ID) == run_id]


def misnamed_error(expected: str, created: list[str], stage: str, log: Path) -> DeployError:
    """The deploy made stacks with this run's tags, none of them named as expected."""
    hint = f"pass the name to the deploy, e.g. `--stack-name $STACK_NAME` (here {expected})"
    staged = [n for n in created if stage in n]
    if staged:  # the names follow the stage: perhaps one of them is the primary
        pattern = staged[-1].replace(stage, "{stage}")
        hint += f'; or, if these names are meant, name the primary one: stack-name-pattern = "{pattern}"'
    return DeployError(
        f"the deploy command created no stack named {expected}, but it did create {', '.join(created)} "
        f"(tagged with this run's id): it ignores STACK_NAME. The harness deletes what it created "
        f"(deploy log {log}).",
        hint=hint,
    )


# -- outputs --------------------------------------------------------------------


def merge_outputs(by_stack: Mapping[str, Mapping[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(outputs every key of which one stack defines, key -> stacks for keys several define)."""
    owners: dict[str, list[str]] = {}
    for stack, outputs in by_stack.items():
        for key in outputs:
            owners.setdefault(key, []).append(stack)
    merged = {k: by_stack[s[0]][k] for k, s in owners.items() if len(s) == 1}
    return merged, {k: s for k, s in owners.items() if len(s) > 1}


# -- teardown -------------------------------------------------------------------

Out = Callable[[str], None]


def _in_use(text: str) -> bool:
    return any(words in text for words in IN_USE)


@dataclass
class DeleteResult:
    deleted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)


def delete_set(
    cfn: Any,
    order: list[tuple[str, str]],
    *,
    delay: float,
    max_attempts: int,
    out: Out = lambda _: None,
) -> DeleteResult:
    """Delete ``(name, stack id)`` pairs in the given order (importers first).

    A stack refused because another still imports its export (a
    ValidationError at once on the emulator; DELETE_FAILED on AWS) waits for a
    later round; the rounds stop when one deletes nothing. Every stack that
    could not be deleted is reported with CloudFormation's reasons.
    """
    result = DeleteResult()
    pending = list(order)
    reasons: dict[str, str] = {}
    while pending:
        blocked: list[tuple[str, str]] = []
        for name, stack_id in pending:
            why = _delete_one(cfn, stack_id, delay=delay, max_attempts=max_attempts)
            if why is None:
                result.deleted.append(name)
            elif _in_use(why):
                blocked.append((name, stack_id))
                reasons[name] = why
            else:
                result.errors.append(f"stack {name} was not deleted: {why}")
        if len(blocked) == len(pending):
            result.errors.extend(f"stack {n} was not deleted: {reasons[n]}" for n, _ in blocked)
            break
        for name, _ in blocked:
            if name not in result.retried:
                result.retried.append(name)
                out(f"teardown: {name} is still imported by another stack of the set; retrying after it")
        pending = blocked
    return result


def _delete_one(cfn: Any, stack_id: str, *, delay: float, max_attempts: int) -> str | None:
    """Delete one stack and wait; None when gone, else CloudFormation's reason."""
    try:
        status = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]
    except botocore.exceptions.ClientError as exc:
        return None if "does not exist" in str(exc) else str(exc)
    if status in GONE:
        return None
    try:
        cfn.delete_stack(StackName=stack_id, ClientRequestToken=f"harness-delete-{uuid.uuid4().hex}")
    except botocore.exceptions.ClientError as exc:
        return exc.response.get("Error", {}).get("Message") or str(exc)
    try:
        cfn.get_waiter("stack_delete_complete").wait(
            StackName=stack_id, WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts}
        )
    except botocore.exceptions.WaiterError as exc:
        status = ((exc.last_response or {}).get("Stacks") or [{}])[0].get("StackStatus", "unknown")
        found = failure_events(cfn, stack_id, limit=5)
        return f"status {status}" + ("".join(f"\n    {r}" for r in found) if found else "")
    return None


def raise_for(result: DeleteResult) -> None:
    if result.errors:
        raise TeardownError(
            "the stack set was not fully deleted:" + "".join(f"\n  {e}" for e in result.errors),
            hint="release or empty the resources named above, then run `harness destroy` again",
        )


# -- resources, nested stacks included --------------------------------------------


def read_resources_deep(cfn: Any, stack: str, prefix: str = "") -> tuple[dict[str, str], dict[str, str]]:
    """Physical ids and types of a stack and its nested stacks, keyed ``Nested/Logical`` below the root."""
    physical: dict[str, str] = {}
    types: dict[str, str] = {}
    nested: list[tuple[str, str]] = []
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack):
        for r in page["StackResourceSummaries"]:
            key = prefix + r["LogicalResourceId"]
            types[key] = r["ResourceType"]
            if r.get("PhysicalResourceId"):
                physical[key] = r["PhysicalResourceId"]
                if r["ResourceType"] == STACK_TYPE:
                    nested.append((r["PhysicalResourceId"], key + "/"))
    for stack_id, sub in nested:
        try:
            p, t = read_resources_deep(cfn, stack_id, sub)
        except botocore.exceptions.ClientError:
            continue  # already gone: its own resources went with it
        physical.update(p)
        types.update(t)
    return physical, types


MemberResources = list[tuple[Member, dict[str, str], dict[str, str]]]


def member_resources(cfn: Any, stack_set: StackSet) -> MemberResources:
    """Each member with its physical ids and types (nested stacks included), keyed by logical id within it."""
    return [(m, *read_resources_deep(cfn, m.stack_id)) for m in stack_set.members]


def set_resources(
    cfn: Any, stack_set: StackSet, per_member: MemberResources | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """Every resource of every member, nested stacks included (``per_member``: already read).

    Keyed by logical id; a logical id that several members use is keyed
    ``stack:LogicalId`` for each of them.
    """
    per_stack = per_member if per_member is not None else member_resources(cfn, stack_set)
    seen: dict[str, int] = {}
    for _member, _physical, types in per_stack:
        for key in types:
            seen[key] = seen.get(key, 0) + 1
    physical: dict[str, str] = {}
    types_out: dict[str, str] = {}
    for member, p, t in per_stack:
        for key, rtype in t.items():
            out_key = f"{member.name}:{key}" if seen[key] > 1 else key
            types_out[out_key] = rtype
            if key in p:
                physical[out_key] = p[key]
    return physical, types_out


# -- what the lifecycle reads off a set ------------------------------------------------

COMPLETE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}


def unhealthy(stack_set: StackSet) -> list[str]:
    """Members not in a complete state, as ``name (STATUS)``."""
    return [f"{m.name} ({m.status})" for m in stack_set.members if m.status not in COMPLETE]


def failure_lines(cfn: Any, stack_set: StackSet, since: Any = None) -> list[str]:
    """CloudFormation's failure events of every unhealthy member, each named."""
    lines: list[str] = []
    for m in stack_set.members:
        if m.status not in COMPLETE:
            lines.extend(f"{m.name}: {r}" for r in failure_events(cfn, m.stack_id, since))
    return lines


def set_fields(cfn: Any, stack_set: StackSet) -> dict[str, Any]:
    """The set's part of ``StackInfo``: merged outputs, outputs per stack, shared keys, every resource."""
    by_stack = stack_set.outputs_by_stack()
    merged, shared = merge_outputs(by_stack)
    physical, types = set_resources(cfn, stack_set)
    return {
        "outputs": merged,
        "resources": physical,
        "resource_types": types,
        "stacks": stack_set.names,
        "stack_outputs": by_stack,
        "shared_outputs": shared,
    }


def describe_line(stack_set: StackSet, fields: Mapping[str, Any]) -> str:
    """``stacks (in deploy order): a, b; 14 resources, outputs: ...`` for the run's log and header."""
    outputs = ", ".join(sorted([*fields["outputs"], *fields["shared_outputs"]])) or "(none)"
    return (
        f"stack set of {len(stack_set.members)} (in deploy order): {', '.join(stack_set.names)}; "
        f"{len(fields['resources'])} resources, outputs: {outputs}"
    )


def leak_line(checked: int, unchecked: list[str], extra: str = "") -> str:
    """``verified gone (5 of 7 resources checked, 0 left); not checkable: T1, T2`` (types, once each).

    ``extra`` goes inside the parentheses, after ``0 left`` (e.g. what the template retains).
    """
    if not unchecked:
        return f"verified gone ({checked} resources checked, 0 left{extra})"
    kinds = sorted({u.rsplit("(", 1)[-1].rstrip(")") for u in unchecked})
    return (
        f"verified gone ({checked} of {checked + len(unchecked)} resources checked, 0 left{extra}); "
        f"not checkable: {', '.join(kinds)}"
    )


# -- the lifecycle's calls ----------------------------------------------------------------


def manifest_path(root: Path) -> Path | None:
    """The CDK cloud assembly's manifest of the project (``cdk.out/`` at the root or one folder down)."""
    for found in [root / "cdk.out" / "manifest.json", *sorted(root.glob("*/cdk.out/manifest.json"))]:
        if found.is_file():
            return found
    return None


def is_single(stack_set: StackSet, primary: str) -> bool:
    """A one-stack app (or nothing found): the lifecycle behaves exactly as for one stack."""
    return not stack_set.members or stack_set.names == [primary]


def check_misnamed(stack_set: StackSet, *, primary: str, run_id: str, stage: str, log: Path) -> None:
    """After a deploy that left no stack named ``primary``: say plainly if it made others."""
    created = created_by_run(stack_set, run_id)
    if created and stack_set.get(primary) is None:
        raise misnamed_error(primary, created, stage, log)


@dataclass
class SetTeardown:
    deleted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    checked: int = 0
    unchecked: list[str] = field(default_factory=list)


def tear_down(
    cfn: Any,
    stack_set: StackSet,
    *,
    client_for: Callable[[str], Any],
    delay: float,
    max_attempts: int,
    out: Out,
    per_member: MemberResources | None = None,
) -> SetTeardown:
    """Delete every member, importers first; then probe every resource every member had (nested too).

    ``per_member``: the members' resources when the caller read them before (see :func:`member_resources`).
    """
    from harness import leaks

    physical, types = set_resources(cfn, stack_set, per_member)
    order = stack_set.deletion_order()
    if len(order) == 1:
        out(f"teardown: deleting {order[0]}")
    else:
        out(f"teardown: deleting {len(order)} stacks, importers first: {', then '.join(order)}")
    ids = {m.name: m.stack_id for m in stack_set.members}
    result = delete_set(cfn, [(n, ids[n]) for n in order], delay=delay, max_attempts=max_attempts, out=out)
    report = SetTeardown(deleted=result.deleted, errors=result.errors)
    failed = " ".join(result.errors)
    for name in order:
        if f"stack {name} " not in failed and _delete_one_status(cfn, ids[name]) not in GONE:
            report.leftovers.append(f"stack {name}")
    probe = leaks.probe(client_for, physical, types)
    report.leftovers.extend(probe.leftovers)
    report.checked, report.unchecked = probe.checked, probe.unchecked
    return report


def _delete_one_status(cfn: Any, stack_id: str) -> str:
    try:
        return str(cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"])
    except botocore.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return "DELETE_COMPLETE"
        raise
