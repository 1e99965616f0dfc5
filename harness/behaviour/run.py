"""One run's behaviour check: derive each scenario's behaviour, compare it with the snapshot, report, update.

``check`` is what the plugin calls once the traces are collected. It never
raises for a trace it cannot read: such a scenario is "not compared", with the
reason. With ``mode = gate``, every changed scenario is returned in
``BehaviourReport.gated`` for the caller to fail (the run and its JUnit case).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.behaviour import render, snapshot
from harness.behaviour.compare import CHANGED, NEW, UNCHECKED, Outcome, compare
from harness.behaviour.derive import Names, derive, linked_consumers
from harness.traces.model import Trace

MARKDOWN = "behaviour.md"
UPDATE_HINT = "run `pytest --behaviour-update` and commit the snapshot"


def snapshot_exists(root: Path, nodeids: Iterable[str]) -> bool:
    """Whether any of these tests' files has a snapshot (else there is nothing to compare, or wait for)."""
    return any(snapshot.path_for(root, f).exists() for f in {snapshot.split(n)[0] for n in nodeids})


@dataclass
class BehaviourReport:
    mode: str
    outcomes: list[Outcome] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    latency: list[str] = field(default_factory=list)
    markdown_path: Path | None = None
    snapshot_found: bool = True

    @property
    def listed(self) -> list[Outcome]:
        """The scenarios the terminal table shows: changed and not compared; new ones once a snapshot exists."""
        shown = (CHANGED, UNCHECKED, NEW) if self.snapshot_found else (CHANGED, UNCHECKED)
        return [o for o in self.outcomes if o.state in shown]

    @property
    def gated(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.state == CHANGED] if self.mode == "gate" else []

    def lines(self) -> list[str]:
        if not self.snapshot_found and not self.updated:
            n = len(self.outcomes)
            return [
                f"behaviour ({self.mode}): no snapshot of these {n} scenario{'s' if n != 1 else ''} yet; {UPDATE_HINT}"
            ]
        out = [render.headline(self.outcomes, self.mode)]
        out += [f"  {line}" for line in self.updated]
        out += [f"  {line}" for line in self.latency]
        if self.markdown_path is not None:
            out.append(f"  summary -> {self.markdown_path}")
        if self.gated:
            out.append(
                f"  behaviour = gate: {len(self.gated)} scenario(s) changed; the run fails. If intended: {UPDATE_HINT}"
            )
        return out


def api_routes(
    resource_types: Mapping[str, str], resources: Mapping[str, str], client: Callable[[str], Any]
) -> list[str]:
    """The route templates of the stack's REST and HTTP APIs (read once per run)."""
    routes: list[str] = []
    for logical, kind in resource_types.items():
        physical = resources.get(logical)
        if not physical:
            continue
        try:
            if kind == "AWS::ApiGateway::RestApi":
                pages = client("apigateway").get_paginator("get_resources").paginate(restApiId=physical)
                routes += [r["path"] for page in pages for r in page.get("items", []) if r.get("path")]
            elif kind == "AWS::ApiGatewayV2::Api":
                items = client("apigatewayv2").get_routes(ApiId=physical).get("Items", [])
                routes += [i["RouteKey"].partition(" ")[2] for i in items if " " in i.get("RouteKey", "")]
        except Exception:  # noqa: BLE001 - no templates: paths are used as they are, and the report says so
            continue
    return routes


def check(
    *,
    mode: str,
    update: bool,
    root: Path,
    report_dir: Path,
    records: Iterable[Mapping[str, Any]],
    traces: Mapping[str, Trace],
    complete: Callable[[str], bool],
    others: Mapping[str, Trace],
    names: Names,
    collected: Iterable[str] | None,
    latency: float | None = None,
    summary_env: Mapping[str, str] = os.environ,
) -> BehaviourReport:
    """Compare (and with ``update`` write) every recorded scenario's behaviour."""
    report = BehaviourReport(mode=mode)
    recs = [r for r in records if r.get("outcome") in ("passed", "failed")]
    consumers = linked_consumers([str(r["trace_id"]) for r in recs], others)
    stored = snapshot.load(root, [str(r["nodeid"]) for r in recs])
    report.snapshot_found = stored is not None
    results: dict[str, Any] = {}
    for rec in recs:
        nodeid, tid = str(rec["nodeid"]), str(rec["trace_id"])
        trace = traces.get(tid)
        if trace is None or not complete(tid):
            report.outcomes.append(Outcome(nodeid, UNCHECKED, why="its trace is missing or incomplete"))
            continue
        behaviour, apart = derive(trace, names, consumers.get(tid, ()))
        outcome = compare(nodeid, (stored or {}).get(nodeid), behaviour, apart)
        if update and outcome.state == NEW:
            outcome.why = "added to the snapshot" if rec.get("outcome") == "passed" else outcome.why
        report.outcomes.append(outcome)
        if rec.get("outcome") == "passed":
            results[nodeid] = behaviour
        elif update:
            report.updated.append(f"not updated: {nodeid} (the test failed)")
    report.outcomes.sort(key=lambda o: o.nodeid)
    if update:
        report.updated = snapshot.update(root, results, collected) + report.updated
        if not report.updated:
            report.updated = ["snapshot already up to date"]
        report.mode = f"{mode}, updated"
    if latency is not None:
        from harness.behaviour import latency as latency_check

        report.latency = latency_check.check(report_dir / latency_check.FILE, report.outcomes, latency)
    _write_markdown(report, report_dir, summary_env)
    return report


def _write_markdown(report: BehaviourReport, report_dir: Path, env: Mapping[str, str]) -> None:
    text = render.markdown(report.outcomes, report.mode, snapshot_hint=UPDATE_HINT)
    report_dir.mkdir(parents=True, exist_ok=True)
    report.markdown_path = report_dir / MARKDOWN
    report.markdown_path.write_text(text, encoding="utf-8")
    step_summary = env.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as out:
            out.write(text)
