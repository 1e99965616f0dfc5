"""The committed snapshot: one JSON file per test file, beside it under ``__snapshots__/``.

``scenarios/orders.yaml`` -> ``scenarios/__snapshots__/orders.yaml.behaviour.json``::

    {
      "scenarios": {
        "create then read an order": {"calls": {"DynamoDB GetItem OrdersTable": 1, ...}, ...}
      },
      "version": 1
    }

Keys sorted, two-space indent, one key a line: a change of behaviour is a
readable diff in the pull request. An update rewrites the entries of the tests
that ran, drops entries of tests that no longer exist (not collected from a
file that was), and deletes the files of test files that are gone. Writers
hold a lock on the file, so shards and parallel runs on one machine merge.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from harness.behaviour.derive import Behaviour
from harness.errors import ConfigError

VERSION = 1
FOLDER = "__snapshots__"
SUFFIX = ".behaviour.json"


def split(nodeid: str) -> tuple[str, str]:
    """``scenarios/orders.yaml::create an order`` -> (``scenarios/orders.yaml``, ``create an order``)."""
    path, _, name = nodeid.partition("::")
    return path, name


def path_for(root: Path, test_file: str) -> Path:
    rel = Path(test_file)
    return root / rel.parent / FOLDER / (rel.name + SUFFIX)


def _read(path: Path) -> dict[str, Behaviour]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise ConfigError(
            f"behaviour snapshot {path} is not valid JSON: {exc}",
            hint="fix the file (a merge conflict?) or delete it and run with --behaviour-update",
        ) from None
    scenarios = data.get("scenarios") if isinstance(data, dict) else None
    if not isinstance(scenarios, dict):
        raise ConfigError(
            f"behaviour snapshot {path} has no 'scenarios' object",
            hint="delete it and run with --behaviour-update",
        )
    return scenarios


def load(root: Path, nodeids: Iterable[str]) -> dict[str, Behaviour] | None:
    """The stored behaviour of every test of these tests' files, by node id; None when no file exists."""
    files = sorted({split(n)[0] for n in nodeids})
    found: dict[str, Behaviour] = {}
    any_file = False
    for test_file in files:
        path = path_for(root, test_file)
        any_file = any_file or path.exists()
        found.update({f"{test_file}::{name}": b for name, b in _read(path).items()})
    return found if any_file else None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    with contextlib.suppress(OSError):
        path.with_name(path.name + ".lock").unlink()


def dumps(scenarios: Mapping[str, Behaviour]) -> str:
    return json.dumps({"scenarios": dict(scenarios), "version": VERSION}, indent=2, sort_keys=True) + "\n"


def update(root: Path, results: Mapping[str, Behaviour], collected: Iterable[str] | None) -> list[str]:
    """Write ``results`` into the snapshot files; prune what no longer exists. Returns one line per change."""
    lines: list[str] = []
    known = set(collected) if collected is not None else None
    by_file: dict[str, dict[str, Behaviour]] = {}
    for nodeid, behaviour in results.items():
        test_file, name = split(nodeid)
        by_file.setdefault(test_file, {})[name] = behaviour
    for test_file in sorted(by_file | {split(n)[0]: {} for n in known or ()}):
        path = path_for(root, test_file)
        with _locked(path):
            stored = _read(path)
            merged = {**stored, **by_file.get(test_file, {})}
            if known is not None:
                gone = sorted(n for n in merged if f"{test_file}::{n}" not in known)
                for name in gone:
                    del merged[name]
                lines += [f"pruned {test_file}::{name} (no longer collected)" for name in gone]
            added = sorted(set(by_file.get(test_file, {})) - set(stored))
            changed = sorted(n for n, b in by_file.get(test_file, {}).items() if n in stored and stored[n] != b)
            lines += [f"added {test_file}::{n}" for n in added] + [f"updated {test_file}::{n}" for n in changed]
            if merged or path.exists():
                _write(path, merged)
    lines += _delete_orphans(root, by_file)
    return lines


def _write(path: Path, scenarios: Mapping[str, Behaviour]) -> None:
    text = dumps(scenarios)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _delete_orphans(root: Path, by_file: Mapping[str, Any]) -> list[str]:
    """Delete snapshot files beside the updated ones whose test file is gone."""
    lines = []
    folders = {path_for(root, f).parent for f in by_file}
    for folder in sorted(folders):
        for snap in sorted(folder.glob("*" + SUFFIX)):
            test_file = folder.parent / snap.name[: -len(SUFFIX)]
            if not test_file.exists():
                snap.unlink()
                lines.append(f"deleted {snap.relative_to(root)} ({test_file.relative_to(root)} is gone)")
    return lines
