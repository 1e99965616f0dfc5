"""CPU per test of the harness's own suite: ``make test PYTEST_ARGS="-p benchmarks.testcpu"``.

Each test's CPU is its process's own (user + system) plus that of the child
processes it started and waited for (inner pytest runs, emulators, deploy
commands, Lambda runtimes), taken around the whole protocol (setup, call,
teardown; a module fixture's cost falls on the test that set it up). Every
process of the run (controller and xdist workers) appends one JSON line per
test to ``$HARNESS_TESTCPU`` (default ``testcpu.jsonl``); ``python -m
benchmarks.testcpu FILE`` prints the tables per file and per test.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Generator
from typing import Any

import pytest


def _cpu() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, Any, Any]:
    own0, kids0 = _cpu()
    wall0 = time.monotonic()
    try:
        return (yield)
    finally:
        own1, kids1 = _cpu()
        row = {
            "test": item.nodeid,
            "wall": round(time.monotonic() - wall0, 3),
            "own": round(own1 - own0, 3),
            "children": round(kids1 - kids0, 3),
            "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
        }
        with open(os.environ.get("HARNESS_TESTCPU", "testcpu.jsonl"), "a") as out:
            out.write(json.dumps(row) + "\n")


def report(path: str, top: int = 25) -> str:
    rows = [json.loads(line) for line in open(path)]
    files: Counter[str] = Counter()
    walls: Counter[str] = Counter()
    for r in rows:
        files[r["test"].split("::")[0]] += r["own"] + r["children"]
        walls[r["test"].split("::")[0]] += r["wall"]
    total = sum(files.values())
    lines = [
        f"{len(rows)} tests, CPU {total:.1f} s (tests' own + their children's), wall {sum(walls.values()):.1f} s",
        "",
    ]
    lines += ["| file | CPU s | wall s |", "|---|--:|--:|"]
    lines += [f"| `{f}` | {c:.1f} | {walls[f]:.1f} |" for f, c in files.most_common(top)]
    lines += ["", "| test | CPU s | wall s |", "|---|--:|--:|"]
    by_test = sorted(rows, key=lambda r: -(r["own"] + r["children"]))[:top]
    lines += [f"| `{r['test']}` | {r['own'] + r['children']:.1f} | {r['wall']:.1f} |" for r in by_test]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 25))
