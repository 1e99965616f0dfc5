"""What the harness left in a target: list its stacks, and collect the forgotten ones.

``harness ls`` and ``harness gc`` are thin shells around this module:

* :func:`list_stacks` reads every live stack of a target (tags included);
* :func:`plan_gc` decides, stack by stack, whether it may be deleted, and why;
* :func:`execute` deletes what the plan allows and reports every result.

The rules of :func:`plan_gc`, safest first:

* a stack without ``harness:managed-by=branchstack`` is never touched (it is
  not even in the plan);
* a protected stage (``protected-stages``, compared with
  :func:`harness.naming.is_protected` on the stage tag and on the stage of
  the branch tag) is never deleted, expired or not;
* a stack in a ``*_IN_PROGRESS`` state is skipped (someone is using it),
  except ``REVIEW_IN_PROGRESS``: a change set created and never executed
  (a deploy killed half-way), where no operation runs; it is judged like
  any other stack;
* a nested stack is never listed on its own: it carries its parent's tags,
  and goes with its parent;
* a stack whose lease (:mod:`harness.lease`) lists a live run is skipped, and
  so is one whose lease cannot be read;
* otherwise it is deleted if its ``harness:expires-at`` is in the past, or if
  its branch no longer exists on the remote (only for stacks of this project,
  i.e. named as this project names the stage, older than the orphan grace,
  and not from a detached HEAD). A malformed or missing ``expires-at`` never
  counts as expired; it is reported.

Time (``now``) and the remote's branches are parameters, so all of it is
testable without a clock or a network.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness import procs, tags
from harness.branch import GitRunner, run_git
from harness.deploy import stack_status
from harness.errors import HarnessError
from harness.naming import is_protected, stage_from_branch

__all__ = [
    "DELETE",
    "KEEP",
    "SKIP",
    "TABLE_FORMAT",
    "GcDecision",
    "GcPlan",
    "GcResult",
    "StackRecord",
    "execute",
    "lease_holders",
    "list_stacks",
    "ls_rows",
    "parse_time",
    "plan_gc",
    "plan_rows",
    "remote_branches",
    "result_rows",
]

#: One table style for every ``harness`` command.
TABLE_FORMAT = "simple"

DELETE = "delete"
SKIP = "skip"
KEEP = "keep"

REVIEW = "REVIEW_IN_PROGRESS"

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_SHORT_SHA = re.compile(r"[0-9a-f]{7,40}")
_HEADS = "refs/heads/"


def parse_time(raw: str | None) -> dt.datetime | None:
    """A tag time (``2026-01-02T03:04:05Z``) as an aware UTC datetime, or None if absent or malformed."""
    if not raw:
        return None
    try:
        return dt.datetime.strptime(raw, _TIME_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _printable(value: str) -> str:
    """Tag values of stacks the harness did not make are arbitrary: keep control characters off the terminal."""
    return "".join(c if c.isprintable() else "?" for c in value)


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class StackRecord:
    """One live stack of the target, as ``describe_stacks`` reports it."""

    name: str
    stack_id: str
    status: str
    tags: dict[str, str] = field(default_factory=dict)
    creation_time: dt.datetime | None = None

    @classmethod
    def from_description(cls, desc: dict[str, Any]) -> StackRecord:
        created = desc.get("CreationTime")
        if isinstance(created, dt.datetime) and created.tzinfo is None:
            created = created.replace(tzinfo=dt.UTC)
        return cls(
            name=desc["StackName"],
            stack_id=desc.get("StackId") or desc["StackName"],
            status=desc.get("StackStatus", "?"),
            tags=tags.tag_dict(desc),
            creation_time=created if isinstance(created, dt.datetime) else None,
        )

    @property
    def managed(self) -> bool:
        return tags.is_managed(self.tags)

    @property
    def branch(self) -> str | None:
        return self.tags.get(tags.BRANCH)

    @property
    def stage(self) -> str | None:
        return self.tags.get(tags.STAGE)

    @property
    def in_progress(self) -> bool:
        """An operation is running on it. REVIEW_IN_PROGRESS is a change set nobody executed: nothing runs."""
        return self.status.endswith("_IN_PROGRESS") and self.status != REVIEW

    @property
    def created_at(self) -> dt.datetime | None:
        """The first deploy of the stack (its tag; a reused stack keeps it), else CloudFormation's creation time."""
        return parse_time(self.tags.get(tags.CREATED_AT)) or self.creation_time

    @property
    def expires_at(self) -> dt.datetime | None:
        return parse_time(self.tags.get(tags.EXPIRES_AT))

    @property
    def expiry_problem(self) -> str | None:
        """Why the expiry of a managed stack cannot be read, or None if it can."""
        raw = self.tags.get(tags.EXPIRES_AT)
        if raw is None:
            return f"no {tags.EXPIRES_AT} tag"
        if parse_time(raw) is None:
            return f"malformed {tags.EXPIRES_AT} {_printable(raw)!r}"
        return None

    @property
    def detached_head(self) -> bool:
        """A run on a detached HEAD is tagged with the short sha as its branch: it has no branch to lose."""
        branch, commit = self.branch or "", self.tags.get(tags.COMMIT, "")
        return bool(_SHORT_SHA.fullmatch(branch)) and commit.startswith(branch)


def list_stacks(cfn: Any) -> list[StackRecord]:
    """Every live top-level stack of the target (deleted and nested ones excluded), sorted by name.

    A nested stack carries its parent's tags; deleting it on its own would
    break its parent, so it is only ever deleted with it.
    """
    records: list[StackRecord] = []
    for page in cfn.get_paginator("describe_stacks").paginate():
        for desc in page.get("Stacks") or []:
            if desc.get("StackStatus") == "DELETE_COMPLETE" or desc.get("ParentId") or desc.get("RootId"):
                continue
            records.append(StackRecord.from_description(desc))
    return sorted(records, key=lambda r: (r.name, r.stack_id))


def remote_branches(root: Path, remote: str = "origin", run: GitRunner = run_git) -> set[str]:
    """Branch names on ``remote`` (``git ls-remote --heads``, an argv list, never a shell).

    Raises whatever ``run`` raises when git fails (``GitError``, ``OSError``...).
    """
    out = run(["git", "-C", str(root), "ls-remote", "--heads", "--", remote])
    names: set[str] = set()
    for line in out.splitlines():
        _sha, _, ref = line.partition("\t")
        if ref.startswith(_HEADS):
            names.add(ref[len(_HEADS) :])
    return names


# --------------------------------------------------------------------------- the plan

#: Who holds a stack right now (None: nobody); see :func:`lease_holders`.
InUse = Callable[[StackRecord], str | None]


@dataclass(frozen=True)
class GcDecision:
    record: StackRecord
    action: str  # DELETE | SKIP | KEEP
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


@dataclass
class GcPlan:
    decisions: list[GcDecision]
    warnings: list[str] = field(default_factory=list)
    unmanaged: int = 0
    #: Managed stacks kept without anything to say (fresh, branch alive).
    quietly_kept: int = 0
    #: Managed stacks of other projects (named otherwise): only their expiry counts.
    foreign: int = 0

    @property
    def to_delete(self) -> list[GcDecision]:
        return [d for d in self.decisions if d.action == DELETE]


def _span(seconds: float) -> str:
    s = int(abs(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        h, m = divmod(s // 60, 60)
        return f"{h}h {m}m" if m else f"{h}h"
    d, h = divmod(s // 3600, 24)
    return f"{d}d {h}h" if h else f"{d}d"


def _relative(when: dt.datetime, now: dt.datetime) -> str:
    delta = (when - now).total_seconds()
    return f"in {_span(delta)}" if delta >= 0 else f"{_span(delta)} ago"


def _protected(record: StackRecord, protected_stages: Sequence[str]) -> str | None:
    stage = record.stage
    if stage is not None and is_protected(stage, protected_stages):
        return f"protected stage {stage!r}"
    branch = record.branch
    if branch is not None:
        try:
            derived = stage_from_branch(branch)
        except HarnessError:
            derived = None
        if derived is not None and is_protected(derived, protected_stages):
            return f"protected branch {_printable(branch)!r}"
    if stage is None:
        return f"no {tags.STAGE} tag: cannot tell whether it is protected"
    return None


def plan_gc(
    records: Iterable[StackRecord],
    *,
    now: dt.datetime,
    protected_stages: Sequence[str],
    remote: set[str] | None,
    remote_name: str = "origin",
    ours: Callable[[StackRecord], bool] | None = None,
    orphan_grace: dt.timedelta = dt.timedelta(hours=1),
    in_use: InUse | None = None,
) -> GcPlan:
    """Decide, for every managed stack, whether ``harness gc`` deletes it and why.

    ``remote`` is the set of branch names on the remote, or None when it could
    not be read (orphan detection is then off; expiry still counts).
    ``ours(record)`` says whether a stack belongs to this project (its name is
    the one this project gives its stage); only those can be orphans, since
    another project's branches are not on this remote. ``in_use(record)``
    names the runs holding a stack that would be deleted (None if none; it
    may raise, which skips the stack too), see :func:`lease_holders`.
    """
    plan = GcPlan(decisions=[])
    remote_safe = {tags.safe_value(b) for b in remote} if remote is not None else None
    for r in records:
        if not r.managed:
            plan.unmanaged += 1
            continue
        notes: list[str] = []
        problem = r.expiry_problem
        if problem is not None:
            notes.append(f"{problem} (not treated as expired)")
        guard = _protected(r, protected_stages)
        if guard is not None:
            plan.decisions.append(GcDecision(r, SKIP, (f"{guard}: never collected", *notes)))
            continue
        if r.in_progress:
            plan.decisions.append(GcDecision(r, SKIP, (f"{r.status}: an operation is in progress", *notes)))
            continue
        reasons: list[str] = []
        expires = r.expires_at
        if expires is not None and expires < now:
            reasons.append(f"expired {_relative(expires, now)}")
        if reasons and r.status == REVIEW:
            reasons.append("its change set was never executed")
        kind, text = _orphan(r, remote_safe, remote_name, ours, now, orphan_grace)
        if kind == "orphan":
            reasons.append(text)
        elif kind == "note":
            notes.append(text)
        elif kind == "foreign":
            plan.foreign += 1
        busy = _holders(in_use, r) if reasons else None
        if busy is not None:
            plan.decisions.append(GcDecision(r, SKIP, (busy, *reasons, *notes)))
        elif reasons:
            plan.decisions.append(GcDecision(r, DELETE, (*reasons, *notes)))
        elif notes:
            plan.decisions.append(GcDecision(r, KEEP, tuple(notes)))
        else:
            plan.quietly_kept += 1
    return plan


def _holders(in_use: InUse | None, r: StackRecord) -> str | None:
    if in_use is None:
        return None
    try:
        who = in_use(r)
    except Exception as exc:  # noqa: BLE001 - unreadable lease: leave the stack alone
        return f"cannot read its lease ({type(exc).__name__}: {exc})"
    return f"in use: {who}" if who else None


def lease_holders(ddb: Any, now: Callable[[], dt.datetime]) -> InUse:
    """``in_use`` for :func:`plan_gc`: who holds a stack's lease right now (read only).

    No lease table means no run holds anything. Other read errors propagate
    (and skip the stack).
    """
    from harness.lease import read_state

    def holders(r: StackRecord) -> str | None:
        state = read_state(ddb, r.name)
        if state is None:
            return None
        state.prune(now().timestamp())
        return state.held_by()

    return holders


class HeldLeases(Mapping[str, bool]):
    """Each live stack's name -> whether a run holds its lease, read when first asked (by ``in_use``).

    ``harness gc`` asks only about the stacks that have listeners: one lease read each, not one per stack of
    the account. A lease that cannot be read counts as held (what it guards may be in use).
    """

    def __init__(self, records: Iterable[StackRecord], in_use: InUse) -> None:
        self._records = {r.name: r for r in records}
        self._in_use = in_use
        self._held: dict[str, bool] = {}

    def __getitem__(self, name: str) -> bool:
        if name not in self._held:
            record = self._records[name]  # KeyError: no such live stack
            self._held[name] = _holders(self._in_use, record) is not None  # in use, or its lease unreadable
        return self._held[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)


def _orphan(
    r: StackRecord,
    remote_safe: set[str] | None,
    remote_name: str,
    ours: Callable[[StackRecord], bool] | None,
    now: dt.datetime,
    grace: dt.timedelta,
) -> tuple[str | None, str]:
    """``("orphan", reason)`` if the stack's branch is gone, ``("note", why)`` if that
    cannot be judged, ``("foreign", "")`` for another project's stack, ``(None, "")`` otherwise."""
    if remote_safe is None:
        return None, ""
    if ours is not None and not ours(r):
        return "foreign", ""  # its branches live on another project's remote
    branch = r.branch
    if branch is None:
        return "note", f"no {tags.BRANCH} tag: branch not checked"
    if tags.safe_value(branch) in remote_safe or branch in remote_safe:
        return None, ""
    if r.detached_head:
        return None, ""  # a detached-HEAD run has no branch to lose: only its expiry counts
    created = r.created_at
    if created is not None and now - created < grace:
        age = _span((now - created).total_seconds())
        return "note", f"branch {_printable(branch)!r} is not on {remote_name}, but the stack is only {age} old"
    return "orphan", f"branch {_printable(branch)!r} no longer on {remote_name}"


# --------------------------------------------------------------------------- deleting


@dataclass(frozen=True)
class GcResult:
    decision: GcDecision
    ok: bool
    detail: str


DeleteFn = Callable[..., None]


#: Removes a deleted stack's lease item unless a live run holds it (returns who does); see lease.clear_unheld.
ClearLease = Callable[[StackRecord], str | None]


def lease_clearer(ddb: Any, now: Callable[[], dt.datetime]) -> ClearLease:
    from harness.lease import clear_unheld

    return lambda r: clear_unheld(ddb, r.name, now().timestamp())


def _delete_one(
    cfn: Any,
    d: GcDecision,
    delete: DeleteFn,
    delay: float,
    max_attempts: int,
    in_use: InUse | None,
    clear: ClearLease | None = None,
) -> GcResult:
    r = d.record
    # The plan may be minutes old: look again, by id, so a stack that was
    # re-tagged, started an operation or replaced meanwhile is left alone.
    try:
        now_desc = stack_status(cfn, r.stack_id)
    except Exception as exc:  # noqa: BLE001 - one stack's failure is reported with the others
        return GcResult(d, False, f"could not read it: {exc}")
    if now_desc is None or now_desc.get("StackStatus") == "DELETE_COMPLETE":
        return GcResult(d, True, "already gone")
    current = StackRecord.from_description(now_desc)
    if not current.managed:
        return GcResult(d, True, "skipped: no longer tagged as managed")
    if current.in_progress:
        return GcResult(d, True, f"skipped: now {current.status}")
    busy = _holders(in_use, current)
    if busy is not None:
        return GcResult(d, True, f"skipped: {busy}")
    try:
        delete(cfn, r.stack_id, delay=delay, max_attempts=max_attempts)
    except HarnessError as exc:
        return GcResult(d, False, exc.message)
    except Exception as exc:  # noqa: BLE001
        return GcResult(d, False, f"{type(exc).__name__}: {exc}")
    if clear is not None:
        try:
            clear(r)
        except Exception as exc:  # noqa: BLE001 - the stack is gone; say what is left of its lease
            return GcResult(d, True, f"deleted (its lease item could not be removed: {type(exc).__name__}: {exc})")
    return GcResult(d, True, "deleted")


def execute(
    cfn: Any,
    plan: GcPlan,
    *,
    delay: float,
    max_attempts: int,
    workers: int = 8,
    delete: DeleteFn | None = None,
    in_use: InUse | None = None,
    units: list[list[GcDecision]] | None = None,
    clear: ClearLease | None = None,
) -> list[GcResult]:
    """Delete every stack the plan marks for deletion, a few at a time; every result, in plan order."""
    if delete is None:
        from harness.deploy import delete_stack

        delete = delete_stack
    todo = plan.to_delete
    if not todo:
        return []

    def one(d: GcDecision) -> GcResult:
        return _delete_one(cfn, d, delete, delay, max_attempts, in_use, clear)

    # A unit is a stack, or a stack set whose members go one after the other, importers first.
    units = units if units is not None else [[d] for d in todo]
    with ThreadPoolExecutor(
        max_workers=max(1, min(workers, len(units))),
        thread_name_prefix="harness-gc",
        initializer=procs.block_main_signals,
    ) as pool:
        futures = [(unit, pool.submit(_run_unit, unit, one)) for unit in units]
        done = {d.record.stack_id: r for unit, f in futures for d, r in zip(unit, f.result(), strict=True)}
    return [done[d.record.stack_id] for d in todo]


def _run_unit(unit: list[GcDecision], delete_one: Callable[[GcDecision], GcResult]) -> list[GcResult]:
    """Delete a unit's stacks in order; one refused while another still imports its export goes again last."""
    from harness.stackset import IN_USE

    results = [delete_one(d) for d in unit]
    for i, r in enumerate(results):
        if not r.ok and any(w in r.detail for w in IN_USE):
            again = delete_one(unit[i])
            results[i] = replace(again, detail=f"{again.detail} (after its importer)") if again.ok else again
    return results


# --------------------------------------------------------------------------- tables

LS_HEADERS = ("stack", "branch", "stage", "status", "age", "expires", "run id", "commit")
PLAN_HEADERS = ("stack", "status", "reason", "action")
RESULT_HEADERS = ("stack", "result")

_ACTION_TEXT = {DELETE: "would delete", SKIP: "skip", KEEP: "keep"}


def ls_rows(records: Iterable[StackRecord], now: dt.datetime, *, include_unmanaged: bool = False) -> list[list[str]]:
    rows: list[list[str]] = []
    for r in records:
        if not r.managed and not include_unmanaged:
            continue
        created = r.created_at
        age = _span(max(0.0, (now - created).total_seconds())) if created is not None else "-"
        if not r.managed:
            rows.append([r.name, "(unmanaged)", "-", r.status, age, "-", "-", "-"])
            continue
        expires_raw = r.tags.get(tags.EXPIRES_AT)
        expires_at = r.expires_at
        if expires_at is not None:
            expires = _relative(expires_at, now)
        elif expires_raw is None:
            expires = "-"
        else:
            expires = f"invalid: {expires_raw}"
        commit = r.tags.get(tags.COMMIT, "-")
        rows.append(
            [
                r.name,
                r.branch or "-",
                r.stage or "-",
                r.status,
                age,
                expires,
                r.tags.get(tags.RUN_ID, "-"),
                commit[:7] if _SHORT_SHA.match(commit) else commit,
            ]
        )
    return [[_printable(c) for c in row] for row in rows]


def plan_rows(plan: GcPlan, *, dry_run: bool = True) -> list[list[str]]:
    rows = []
    for d in plan.decisions:
        action = _ACTION_TEXT[d.action] if dry_run or d.action != DELETE else "delete"
        rows.append([d.record.name, d.record.status, d.reason, action])
    return [[_printable(c) for c in row] for row in rows]


def result_rows(results: Iterable[GcResult]) -> list[list[str]]:
    rows = []
    for res in results:
        outcome = res.detail if res.ok else f"FAILED: {res.detail}"
        rows.append([res.decision.record.name, outcome])
    return [[_printable(c) for c in row] for row in rows]
