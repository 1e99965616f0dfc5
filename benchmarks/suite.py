"""The harness's own test suite: ``make test-fast`` each round, ``make test`` once.

Both run as a developer runs them (the Makefile goals, their default worker
count), with ``--durations=15`` so a slow run says which tests took its time;
the report quotes the load average when ``make test`` started, because the
e2e tier's time follows the machine's load closely.
"""

from __future__ import annotations

import re
from typing import Any

_SLOW = re.compile(r"^\s*([\d.]+)s (call|setup|teardown)\s+(\S+)", re.M)


def fast(bench: Any, k: int) -> None:
    from benchmarks.runner import clean_env

    r = bench._run(f"make-test-fast-{k}", ["make", "test-fast"], clean_env(), timeout=900)
    if r.ok:
        bench.res.add("suite.fast", r.wall)
        bench.res.add("suite.fast_cpu", r.cpu)


def whole(bench: Any) -> None:
    from benchmarks.runner import clean_env

    r = bench._run("make-test", ["make", "test", "PYTEST_ARGS=--durations=15"], clean_env(), timeout=3600)
    bench.res.add("suite.load", r.load[0])
    if r.ok:
        bench.res.add("suite.test", r.wall)
        bench.res.add("suite.test_cpu", r.cpu)
    slow = [(float(s), when, nodeid) for s, when, nodeid in _SLOW.findall(r.text())]
    bench.res.extra["suite_slowest"] = sorted(slow, reverse=True)[:15]
