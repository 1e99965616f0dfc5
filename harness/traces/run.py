"""One run's traces, as plain objects the plugin wires to pytest hooks.

* ``start_collector``: the local X-Ray daemon for the embedded emulator (the
  controller starts it before the emulator, whose environment gets
  ``AWS_XRAY_DAEMON_ADDRESS = collector.address``).
* ``TraceInfo``: how any process of the run reads traces; JSON-able, sent to
  pytest-xdist workers through ``workerinput``.
* ``TraceHandle``: what a test sees (the ``trace`` fixture): its trace id and
  its trace so far, for assertions inside the test.
* ``TestRecord`` / ``record_for``: what goes on each test's report (JSON-able,
  travels from workers to the controller).
* ``collect``: at the end of the run, every test's trace fetched at once,
  written to ``<report dir>/traces/``, problems listed together (``gather``
  then ``write_files``: the plugin writes while the teardown runs).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from harness.errors import TraceError, TracesIncomplete
from harness.traces import jsonfile
from harness.traces.collector import Collector
from harness.traces.local_source import LocalSource
from harness.traces.model import Trace
from harness.traces.propagation import TraceContext
from harness.traces.source import Accept, TraceSource

TRACES_DIR = "traces"
LOCAL_WITHIN = 5.0  # a flushed local collector has everything already
AWS_WITHIN = 60.0  # X-Ray indexes segments seconds after the calls


class TraceInfo(TypedDict):
    """How a process of this run reads traces (``kind``: ``local``, ``aws`` or ``off``)."""

    kind: str
    address: str | None
    spool_dir: str | None
    within: float


class TestRecord(TypedDict):
    """One test's trace, as put on its report."""

    nodeid: str
    trace_id: str
    outcome: str
    client: dict[str, Any]
    # A failed test's failed function invocations (harness.function_errors), if any.
    function_errors: NotRequired[list[dict[str, Any]]]


def start_collector(run_dir: Path, run_id: str, port: int = 0) -> Collector:
    """The local daemon, spooling to ``<run_dir>/traces/spool/<run_id>`` for worker processes.

    ``port``: reuse a port (an emulator kept from an earlier run still sends there).
    """
    spool = run_dir / TRACES_DIR / "spool" / run_id
    shutil.rmtree(spool, ignore_errors=True)
    return Collector(spool_dir=spool, port=port).start()


def local_info(collector: Collector, within: float = LOCAL_WITHIN) -> TraceInfo:
    spool = str(collector.spool_dir) if collector.spool_dir is not None else None
    return TraceInfo(kind="local", address=collector.address, spool_dir=spool, within=within)


def aws_info(within: float = AWS_WITHIN) -> TraceInfo:
    return TraceInfo(kind="aws", address=None, spool_dir=None, within=within)


def source_for(
    info: TraceInfo,
    *,
    collector: Collector | None = None,
    xray_client: Callable[[], Any] | None = None,
) -> TraceSource | None:
    """The trace source of this process: the collector itself (controller), its spool (workers), or X-Ray."""
    if info["kind"] == "local":
        if collector is not None:
            return LocalSource(collector=collector)
        if info["spool_dir"] and info["address"]:
            return LocalSource(spool_dir=Path(info["spool_dir"]), address=info["address"])
        return None
    if info["kind"] == "aws" and xray_client is not None:
        from harness.traces.aws_source import XRayApiSource

        return XRayApiSource(xray_client())
    return None


class TraceHandle:
    """This test's trace: its id, the header its calls carry, and the trace so far."""

    def __init__(self, ctx: TraceContext, source: TraceSource | None, within: float) -> None:
        self.ctx = ctx
        self.source = source
        self.within = within

    @property
    def trace_id(self) -> str:
        return self.ctx.trace_id

    def header(self) -> str:
        """``X-Amzn-Trace-Id`` for a call made outside the instrumented clients."""
        return self.ctx.header()

    def fetch(self, *, within: float | None = None, accept: Accept | None = None) -> Trace:
        """The trace of everything this test caused so far (waits for ``accept`` if given)."""
        __tracebackhide__ = True
        if self.source is None:
            raise TraceError(
                "traces are not available in this run (no trace source for this target)",
                hint="run on the local target, or on aws with X-Ray active tracing",
            )
        tid = self.ctx.trace_id
        found = self.source.fetch(
            [tid],
            within=self.within if within is None else within,
            client_documents={tid: [self.ctx.segment_document()]},
            accept=accept,
        )
        return found[tid]

    def wait_for_call(
        self, service: str, operation: str | None = None, resource: str | None = None, *, within: float | None = None
    ) -> Trace:
        """The trace, once it holds a call to ``service`` (e.g. an asynchronous consumer's write)."""
        return self.fetch(within=within, accept=lambda t: bool(t.calls(service, operation, resource)))


def record_for(ctx: TraceContext, nodeid: str, outcome: str) -> TestRecord:
    return TestRecord(nodeid=nodeid, trace_id=ctx.trace_id, outcome=outcome, client=ctx.segment_document())


@dataclass
class CollectReport:
    """What the end-of-run collection found, and where it wrote it."""

    out_dir: Path
    records: list[TestRecord]
    traces: dict[str, Trace]
    problems: list[str] = field(default_factory=list)
    #: Traces the collector received that no test started, by id.
    unattributed: dict[str, Trace] = field(default_factory=dict)
    #: Traces missing a hop their own spans name, by id: one description per missing hop.
    incomplete: dict[str, list[str]] = field(default_factory=dict)
    #: Sections other reports add to the HTML page (already escaped HTML), after its header.
    html_sections: list[str] = field(default_factory=list)

    def complete(self, trace_id: str) -> bool:
        return trace_id in self.traces and trace_id not in self.incomplete

    def counts(self) -> tuple[int, int]:
        """(cold starts, failed calls on the stack's side) over the tests' traces: the terminal's and the page's."""
        traces = list(self.traces.values())
        return sum(len(t.cold_starts()) for t in traces), sum(len(t.failed_spans()) for t in traces)

    def lines(self) -> list[str]:
        """The terminal summary: counts, then every problem at once, then what no test started."""
        if not self.records:
            return []
        cold, failed = self.counts()
        whole = sum(1 for r in self.records if self.complete(r["trace_id"]))
        head = (
            f"traces: {whole} of {len(self.records)} collected -> {self.out_dir} "
            f"({cold} cold start{'s' if cold != 1 else ''}, {failed} failed call{'s' if failed != 1 else ''})"
        )
        return [head, *(f"  {p}" for p in self.problems), *unattributed_lines(self.unattributed)]


def span_name(span: Any) -> str:
    """A span by service and operation: ``Lambda function orders-create``, ``DynamoDB PutItem orders``."""
    if span.kind == "function":
        return f"Lambda function {span.name}"
    if span.kind == "service":
        return f"{span.service} {span.name}"
    if span.kind == "local":
        return span.name
    return " ".join(x for x in (span.service, span.operation, span.resource) if x)


def _shape(trace: Trace) -> str:
    """The spans of a trace by name, repeats folded: ``Lambda function f, DynamoDB PutItem t (x4)``."""
    counts: dict[str, int] = {}
    for span in trace.walk():
        name = span_name(span)
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(name + (f" (x{n})" if n > 1 else "") for name, n in counts.items())


#: The run's list of the tests' trace files, and the traces no test started (only when there are any),
#: written beside the tests' files.
INDEX = "index.json"
UNATTRIBUTED = "unattributed.json"


def unattributed_lines(traces: dict[str, Trace], *, limit: int = 10) -> list[str]:
    """``unattributed: N segments in M traces no test started``, then one line per shape of trace."""
    if not traces:
        return []
    count = sum(len(t.spans) for t in traces.values())
    linked = linking(traces)
    lines = [
        f"traces: unattributed: {count} segment{'s' if count != 1 else ''} in {len(traces)} "
        f"trace{'s' if len(traces) != 1 else ''} no test started (see {UNATTRIBUTED})"
        + (
            f"; {linked} of them link{'s' if linked == 1 else ''} to the traces that wrote their records "
            "(queue and stream consumers)"
            if linked
            else ""
        )
    ]
    shapes: dict[str, list[str]] = {}
    for tid, trace in traces.items():
        shapes.setdefault(_shape(trace), []).append(tid)
    ranked = sorted(shapes.items(), key=lambda item: -len(item[1]))
    for shape, ids in ranked[:limit]:
        which = f"{len(ids)} traces, e.g. {ids[0]}" if len(ids) > 1 else f"1 trace, {ids[0]}"
        lines.append(f"  {which}: {shape}")
    if len(ranked) > limit:
        lines.append(f"  ... and {len(ranked) - limit} more kinds of trace in {UNATTRIBUTED}")
    return lines


def linking(traces: Mapping[str, Trace]) -> int:
    """How many of ``traces`` link to other traces (a consumer's invocation names the traces that wrote its records)."""
    return sum(1 for t in traces.values() if any(s.links for s in t.spans.values()))


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _publish(source: TraceSource, records: Sequence[TestRecord], report: CollectReport) -> None:
    """Send the tests' own segments to X-Ray (a source that can), so every test has a trace there."""
    publish = getattr(source, "publish", None)
    if publish is None:
        return
    try:
        unprocessed = publish([r["client"] for r in records])
    except TraceError as exc:
        report.problems.append(f"the tests' segments could not be sent: {exc.message}")
        return
    if unprocessed:
        report.problems.append(
            f"X-Ray did not take the segments of {len(unprocessed)} test(s): {', '.join(unprocessed)}"
        )


def collect(
    records: Sequence[TestRecord], source: TraceSource | None, out_dir: Path, *, within: float
) -> CollectReport:
    """Fetch every test's trace at once and write them (one JSON file each, and ``index.json``).

    A trace that is missing or incomplete is written with what is known (the
    test's own segment) and listed as a problem; the collection never raises.
    """
    report = gather(records, source, out_dir, within=within)
    write_files(report)
    return report


def gather(records: Sequence[TestRecord], source: TraceSource | None, out_dir: Path, *, within: float) -> CollectReport:
    """Fetch every test's trace at once and find its problems; :func:`write_files` writes them to ``out_dir``.

    Never raises: what could not be read is a problem of the report.
    """
    from harness.aws_errors import AWS_ERRORS, explain  # botocore: loaded by then, not when tracing is set up

    report = CollectReport(out_dir=out_dir, records=list(records), traces={})
    ids = [r["trace_id"] for r in records]
    clients = {r["trace_id"]: [r["client"]] for r in records}
    if source is None:
        report.problems.append("no trace source for this target: only the tests' own segments were written")
    elif ids:
        _publish(source, records, report)
        try:
            report.traces = source.fetch(ids, within=within, client_documents=clients)
        except TracesIncomplete as exc:
            report.traces = dict(exc.found)
            why = {
                **{t: "missing" for t in exc.missing},
                **{t: "unprocessed by X-Ray" for t in exc.unprocessed},
                **{t: "still in progress" for t in exc.in_progress},
            }
            by_id = {r["trace_id"]: r["nodeid"] for r in records}
            report.problems.extend(
                f"{by_id.get(t, '?')}: trace {t} {reason} after {within:g}s" for t, reason in sorted(why.items())
            )
        except TraceError as exc:
            report.problems.append(f"traces could not be read: {exc.message}")
        except AWS_ERRORS as exc:  # a source that let one through: still a message, never a traceback
            report.problems.append(f"traces could not be read: {explain(exc, identity=None)}")
    _find_missing_hops(report)
    _find_unattributed(report, source, set(ids))
    return report


def write_files(report: CollectReport) -> None:
    """Write each test's trace (one JSON file each; a missing one with what is known, the test's own segment),
    ``index.json`` and, if any, ``unattributed.json`` into ``report.out_dir``."""
    out_dir = report.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    earlier = _earlier_files(out_dir)
    index = []
    for rec in report.records:
        tid = rec["trace_id"]
        trace = report.traces.get(tid) or Trace(tid, [rec["client"]])
        name = f"{_SAFE.sub('_', rec['nodeid'])[-150:]}-{tid}.json"
        complete = report.complete(tid)
        missing = report.incomplete.get(tid, [])
        data = {"nodeid": rec["nodeid"], "outcome": rec["outcome"], "complete": complete, **trace.to_json()}
        if missing:
            data["missing_hops"] = missing
        (out_dir / name).write_text(jsonfile.dumps(data, default=str))
        index.append(
            {
                "nodeid": rec["nodeid"],
                "outcome": rec["outcome"],
                "trace_id": tid,
                "file": name,
                "complete": complete,
                "missing_hops": missing,
                "duration_ms": round(trace.duration * 1000, 1) if trace.duration is not None else None,
                "calls": len(trace.spans_of("call")),
                "failed_spans": [s.describe() for s in trace.failed_spans()],
                "cold_starts": [s.name for s in trace.cold_starts()],
            }
        )
    (out_dir / INDEX).write_text(jsonfile.dumps(index, levels=1))
    if report.unattributed:
        stray = [{**t.to_json(), "named": [span_name(s) for s in t.walk()]} for tid, t in report.unattributed.items()]
        (out_dir / UNATTRIBUTED).write_text(jsonfile.dumps(stray, levels=3, default=str))
    else:
        earlier.add(UNATTRIBUTED)
    for name in earlier - {entry["file"] for entry in index}:  # the earlier run's, not written again
        with contextlib.suppress(OSError):  # never fails the report
            (out_dir / name).unlink(missing_ok=True)


def _earlier_files(out_dir: Path) -> set[str]:
    """The trace files the earlier run's ``index.json`` lists: this run's replace them.

    Without this each run's files stayed beside the next run's (a developer's folder held thousands
    after a day). Only what that index names, by a plain file name in this folder, is ever removed.
    """
    try:
        earlier = json.loads((out_dir / INDEX).read_text())
        names = {str(entry["file"]) for entry in earlier}
    except (OSError, ValueError, TypeError, KeyError):
        return set()
    return {n for n in names if n and n == Path(n).name and n not in (".", "..") and n.endswith(".json")}


def _find_missing_hops(report: CollectReport) -> None:
    """Mark each trace whose own spans name a parent that never arrived, and say which."""
    by_id = {r["trace_id"]: r["nodeid"] for r in report.records}
    for tid, trace in report.traces.items():
        hops = [
            f"{span_name(span)} names parent {parent}, which never arrived" for span, parent in trace.missing_hops()
        ]
        if hops:
            report.incomplete[tid] = hops
            report.problems.append(f"{by_id.get(tid, '?')}: trace {tid} is incomplete: " + "; ".join(hops))


def _find_unattributed(report: CollectReport, source: TraceSource | None, known: set[str]) -> None:
    """The traces the source received that no test started (only a local collector can list them)."""
    finder = getattr(source, "unattributed", None)
    if not callable(finder):
        return
    try:
        report.unattributed = finder(known)
    except (TraceError, OSError) as exc:
        report.problems.append(f"traces no test started could not be listed: {exc}")
