"""The opt-in latency check: durations are not behaviour, but a call that became several times slower is news.

Each run with ``behaviour_latency = RATIO`` keeps, per scenario and call (the
keys of the behaviour: ``DynamoDB GetItem OrdersTable``, ``Lambda
GetOrderFunction``, ``test: API Gateway POST /orders``), the median of that
call's durations in this run, in ``<report dir>/behaviour-latency.json`` (the
last ``KEEP`` runs; not committed: it is this machine's). A call is reported
when its median now exceeds RATIO times the median of its medians over the
previous runs, by more than ``FLOOR_MS``, and only once ``MIN_RUNS`` earlier
runs exist. Reported, never gated: measured on a loaded 2-core machine, a call's median
varies 2x from run to run (the median key; 6x at the 90th percentile), so a
ratio of 3 with the 50 ms floor flagged none of 134 calls in serial runs and
5 to 21 in runs under ``-n 2`` (README, "Behaviour snapshots"). Cold starts
are left out of the function durations.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path

from harness.behaviour.compare import Outcome

FILE = "behaviour-latency.json"
KEEP = 10
MIN_RUNS = 3
FLOOR_MS = 50.0


def medians(outcomes: Sequence[Outcome]) -> dict[str, dict[str, float]]:
    return {
        o.nodeid: {k: round(statistics.median(v), 3) for k, v in sorted(o.apart.durations.items()) if v}
        for o in outcomes
        if o.apart.durations
    }


def check(path: Path, outcomes: Sequence[Outcome], ratio: float) -> list[str]:
    """Lines for the calls that slowed down past ``ratio``; this run joins the history."""
    try:
        runs = json.loads(path.read_text(encoding="utf-8")).get("runs", [])
    except (FileNotFoundError, ValueError, AttributeError):
        runs = []
    now = medians(outcomes)
    lines: list[str] = []
    for nodeid, keys in now.items():
        for key, median in keys.items():
            past = [r[nodeid][key] for r in runs if isinstance(r, dict) and key in r.get(nodeid, {})]
            if len(past) < MIN_RUNS:
                continue
            base = statistics.median(past)
            if median > ratio * base and median - base > FLOOR_MS:
                lines.append(
                    f"slower: {nodeid}: {key}: median {base:.1f} ms -> {median:.1f} ms "
                    f"({median / base if base else float('inf'):.1f}x, over {len(past)} runs)"
                )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"runs": [*runs, now][-KEEP:]}, indent=1, sort_keys=True), encoding="utf-8")
    head = f"latency (ratio {ratio:g}, {len(runs)} earlier run{'s' if len(runs) != 1 else ''}): "
    if len(runs) < MIN_RUNS:
        return [head + f"collecting a baseline ({MIN_RUNS} runs needed) -> {path}"]
    return [head + (f"{len(lines)} call(s) slower" if lines else "no call slower"), *(f"  {x}" for x in lines)]
