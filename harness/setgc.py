"""``harness gc`` and ``harness ls`` treat the stacks of one app and stage as one unit.

A CDK app's branch copy is several stacks with the same ``harness:app`` and
``harness:stage`` tags; its lease is held under the primary stack's name.
So, after the per-stack plan:

* a set with a member to delete deletes every member (the ones the plan
  kept quietly too: a stack not named by the project's pattern only has its
  expiry checked, but it goes with its set);
* a set with a member skipped (in use, in progress, protected) is skipped
  whole: a delete must never take the data stack from under a run that holds
  the api stack's lease;
* a set is deleted importers first (its exports and imports read just
  before), its members one after the other; sets and single stacks still go a
  few at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from harness import stackset, tags
from harness.inventory import DELETE, SKIP, GcDecision, GcPlan, StackRecord

SetKey = tuple[str, str]


def set_key(record: StackRecord) -> SetKey | None:
    """(app, stage) of a managed stack that carries both tags, else None (a stack of its own)."""
    app, stage = record.tags.get(tags.APP), record.tags.get(tags.STAGE)
    return (app, stage) if record.managed and app and stage else None


def unite(plan: GcPlan, records: Iterable[StackRecord]) -> GcPlan:
    """The plan with every set decided as one: deleted whole, or skipped whole."""
    members: dict[SetKey, list[StackRecord]] = {}
    for r in records:
        key = set_key(r)
        if key is not None:
            members.setdefault(key, []).append(r)
    decided = {d.record.stack_id: d for d in plan.decisions}
    for key, group in members.items():
        if len(group) < 2:
            continue
        mine = [decided[r.stack_id] for r in group if r.stack_id in decided]
        skipped = [d for d in mine if d.action == SKIP]
        if skipped:
            why = f"its set {key[0]}/{key[1]} is skipped ({skipped[0].record.name}: {skipped[0].reasons[0]})"
            for d in mine:
                if d.action == DELETE:
                    decided[d.record.stack_id] = replace(d, action=SKIP, reasons=(why, *d.reasons))
        elif any(d.action == DELETE for d in mine):
            lead = next(d for d in mine if d.action == DELETE)
            why = f"with its set {key[0]}/{key[1]} ({lead.record.name}: {lead.reasons[0]})"
            for r in group:
                d = decided.get(r.stack_id)
                if d is None:
                    plan.quietly_kept -= 1
                    decided[r.stack_id] = GcDecision(r, DELETE, (why,))
                elif d.action != DELETE:
                    decided[r.stack_id] = replace(d, action=DELETE, reasons=(why, *d.reasons))
    plan.decisions = sorted(decided.values(), key=lambda d: (d.record.name, d.record.stack_id))
    return plan


def groups(cfn: Any, todo: list[GcDecision]) -> list[list[GcDecision]]:
    """The decisions to carry out, one list per unit: a set's members importers first, else one stack."""
    sets: dict[SetKey, list[GcDecision]] = {}
    units: list[list[GcDecision]] = []
    for d in todo:
        key = set_key(d.record)
        if key is None:
            units.append([d])
        else:
            sets.setdefault(key, []).append(d)
    for group in sets.values():
        if len(group) == 1:
            units.append(group)
            continue
        ids = {d.record.name: d.record.stack_id for d in group}
        depends, _ = stackset.export_edges(cfn, ids)
        order = list(reversed(stackset.creation_order(ids, depends)))
        by_name = {d.record.name: d for d in group}
        units.append([by_name[n] for n in order])
    return units


def set_lines(records: Iterable[StackRecord]) -> list[str]:
    """For ``harness ls``: each app/stage of several stacks, its members (one unit for gc and leases)."""
    members: dict[SetKey, list[str]] = {}
    for r in records:
        key = set_key(r)
        if key is not None:
            members.setdefault(key, []).append(r.name)
    return [
        f"stack set {app}/{stage} ({len(names)} stacks, one unit for gc and leases): {', '.join(sorted(names))}"
        for (app, stage), names in sorted(members.items())
        if len(names) > 1
    ]
