"""Stored behaviour against this run's: the differences, one line each, per scenario.

``DynamoDB GetItem OrdersTable: 1 -> 2`` (a count changed), ``new: DynamoDB Scan
OrdersTable (1)``, ``removed: DynamoDB PutItem AuditTable (consumer AuditFunction)``,
``new error: DynamoDB PutItem OrdersTable (error)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.behaviour.derive import Apart, Behaviour

#: Scenario states, in the order the reports list them.
CHANGED, NEW, SAME, UNCHECKED = "changed", "new", "unchanged", "not compared"


@dataclass
class Outcome:
    """One scenario's comparison."""

    nodeid: str
    state: str
    changes: list[str] = field(default_factory=list)
    why: str = ""  # for NEW / UNCHECKED: the reason
    behaviour: Behaviour = field(default_factory=dict)
    apart: Apart = field(default_factory=Apart)


def _label(section: str, key: str) -> str:
    if section == "test":
        return f"test: {key}"
    if section == "invocations":
        return f"invocations of {key}"
    return key


def _counts(section: str, old: Mapping[str, int], new: Mapping[str, int]) -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if a is None:
            out.append(f"new: {_label(section, key)} ({b})")
        elif b is None:
            out.append(f"removed: {_label(section, key)} (was {a})")
        else:
            out.append(f"{_label(section, key)}: {a} -> {b}")
    return out


def _errors(old: Mapping[str, list[str]], new: Mapping[str, list[str]]) -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        was, now = set(old.get(key, ())), set(new.get(key, ()))
        out += [f"new error: {key} ({k})" for k in sorted(now - was)]
        out += [f"error gone: {key} ({k})" for k in sorted(was - now)]
    return out


def _consumers(old: Mapping[str, list[str]], new: Mapping[str, list[str]]) -> list[str]:
    out = []
    for fn in sorted(set(old) | set(new)):
        if fn not in new:
            out.append(f"removed: consumer {fn} (no longer reached)")
            continue
        if fn not in old:
            out.append(f"new: consumer {fn} ({', '.join(new[fn]) or 'no calls'})")
            continue
        was, now = set(old[fn]), set(new[fn])
        out += [f"new: {call} (consumer {fn})" for call in sorted(now - was)]
        out += [f"removed: {call} (consumer {fn})" for call in sorted(was - now)]
    return out


def differences(old: Behaviour, new: Behaviour) -> list[str]:
    """Every difference between two behaviours of one scenario (empty: the same)."""
    out: list[str] = []
    for section in ("invocations", "calls", "test"):
        out += _counts(section, old.get(section) or {}, new.get(section) or {})
    out += _errors(old.get("errors") or {}, new.get("errors") or {})
    out += _consumers(old.get("consumers") or {}, new.get("consumers") or {})
    return out


def compare(nodeid: str, stored: Mapping[str, Any] | None, behaviour: Behaviour, apart: Apart) -> Outcome:
    if stored is None:
        return Outcome(nodeid, NEW, why="not in the snapshot", behaviour=behaviour, apart=apart)
    changes = differences(dict(stored), behaviour)
    return Outcome(nodeid, CHANGED if changes else SAME, changes, behaviour=behaviour, apart=apart)
