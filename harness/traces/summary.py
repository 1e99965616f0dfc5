"""The end-of-run terminal table: one row per test and its trace."""

from __future__ import annotations

from tabulate import tabulate

from harness.traces.model import Trace
from harness.traces.run import INDEX, CollectReport

HEADERS = ("scenario", "result", "duration", "trace id", "invocations", "cold starts", "DynamoDB calls", "slowest span")


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def row(nodeid: str, outcome: str, trace: Trace | None, trace_id: str) -> tuple[str, ...]:
    if trace is None:
        return (nodeid, outcome, "-", trace_id, "-", "-", "-", "(trace missing)")
    calls = [s for s in trace.walk() if s.kind == "call"]
    slowest = max(calls, key=lambda s: s.duration or 0.0, default=None)
    return (
        nodeid,
        outcome,
        _ms(trace.duration),
        trace_id,
        str(len(trace.functions())),
        str(len(trace.cold_starts())),
        str(len(trace.calls("DynamoDB"))),
        f"{slowest.describe()}" if slowest is not None else "-",
    )


def summary_table(report: CollectReport, *, limit: int = 200) -> str:
    """A tabulate table of every test's trace (the slowest ``limit`` rows if there are more)."""
    rows = [row(r["nodeid"], r["outcome"], report.traces.get(r["trace_id"]), r["trace_id"]) for r in report.records]
    more = len(rows) - limit
    text = tabulate(rows[:limit], headers=HEADERS, tablefmt="simple")
    return text + (f"\n... and {more} more in {report.out_dir / INDEX}" if more > 0 else "")
