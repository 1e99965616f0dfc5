"""The run's traces as one self-contained HTML page: ``<report dir>/traces/index.html``.

``write_html(report)`` renders a ``CollectReport`` (what ``run.collect``
found) as a single file with inline CSS, SVG and a few lines of JS, and no
external URL (a Content-Security-Policy forbids loading anything), so it can
be opened from a CI artifact as is:

* an index of the tests: outcome, trace duration, trace id, calls, failed
  spans, cold starts, each linking to its trace;
* a service map of the run: one node per service, one edge per caller ->
  callee with its call count (failed calls in red);
* a waterfall per trace: one bar per span on the trace's time axis, nested by
  depth, colored by service; failed spans are outlined in red and tagged.

Every string from a test or a trace (test names, resource names, URLs) is
untrusted and escaped. Drawing never raises on odd trace documents: spans
without timing get no bar, and a trace that cannot be drawn says so in its
section. ``report_line`` is what the plugin calls: it writes the page and
returns the line to print, and never raises (the stack teardown runs after it).
"""

from __future__ import annotations

import hashlib
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.traces.causes import LINKED, failures
from harness.traces.model import Span, Trace
from harness.traces.run import UNATTRIBUTED, CollectReport, TestRecord, linking, span_name

FILE_NAME = "index.html"

# Service colors: bars in the waterfall and nodes in the service map. None is red:
# red means failed.
SERVICE_COLORS = {
    "client": "#6b7280",
    "API Gateway": "#8b5cf6",
    "Lambda": "#f59e0b",
    "DynamoDB": "#2563eb",
    "SQS": "#db2777",
    "SNS": "#0d9488",
    "S3": "#16a34a",
    "EventBridge": "#c026d3",
    "Step Functions": "#ea580c",
    "STS": "#0891b2",
    "Kinesis": "#4f46e5",
    "HTTP": "#475569",
    "local": "#a3a3a3",
}
_OTHER_COLORS = ("#0f766e", "#7c3aed", "#65a30d", "#b45309", "#1d4ed8", "#be185d", "#0369a1", "#4d7c0f")
ERROR_COLOR = "#dc2626"
MAX_ROWS = 400  # spans drawn per waterfall; the rest are counted

# Waterfall geometry (px).
WF_WIDTH = 1180
WF_LABEL = 440
WF_BAR_X = WF_LABEL + 10
WF_BAR_W = WF_WIDTH - WF_BAR_X - 110  # room on the right for the duration text
WF_ROW = 20
WF_BAR_H = 12
WF_AXIS = 26
WF_MIN_BAR = 3


def color_of(service: str) -> str:
    """The color of a service (a stable pick from a palette for services not listed)."""
    if service in SERVICE_COLORS:
        return SERVICE_COLORS[service]
    digest = hashlib.sha256(service.encode("utf-8", "replace")).digest()
    return _OTHER_COLORS[digest[0] % len(_OTHER_COLORS)]


def esc(value: object) -> str:
    """Text and attribute values: every string in the page goes through here."""
    return html.escape(str(value), quote=True)


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1000
    if ms >= 10000:
        return f"{seconds:.1f} s"
    if ms >= 100:
        return f"{ms:.0f} ms"
    return f"{ms:.1f} ms"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "…"


# -- the page -------------------------------------------------------------------


@dataclass
class _Entry:
    """One test of the index: its record and its trace (the client segment alone if none came)."""

    number: int
    record: TestRecord
    trace: Trace
    complete: bool
    missing: list[str] = field(default_factory=list)  # the hops the trace's own spans name but never came


def _entries(report: CollectReport) -> list[_Entry]:
    out = []
    for i, rec in enumerate(report.records, 1):
        tid = str(rec.get("trace_id", ""))
        trace = report.traces.get(tid)
        complete = report.complete(tid)
        if trace is None:
            client = rec.get("client")
            trace = Trace(tid, [client] if isinstance(client, dict) else [])
        out.append(_Entry(i, rec, trace, complete, list(report.incomplete.get(tid, []))))
    return out


def render_html(report: CollectReport, *, title: str = "branchstack traces") -> str:
    """The whole page as a string."""
    entries = _entries(report)
    cold, failed = report.counts()
    outcomes: dict[str, int] = {}
    for e in entries:
        outcome = str(e.record.get("outcome", "?"))
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    counts = " · ".join(f"{n} {esc(k)}" for k, n in sorted(outcomes.items()))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # Nothing may be fetched: the page is one file, opened from disk or a CI artifact.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        f"<header><h1>{esc(title)}</h1>",
        f'<p class="summary">{len(entries)} test{"s" if len(entries) != 1 else ""} ({counts}) · '
        f"{len(report.traces)} trace{'s' if len(report.traces) != 1 else ''} collected · "
        f"{cold} cold start{'s' if cold != 1 else ''} · "
        f'<span class="{"bad" if failed else ""}">{failed} failed span{"s" if failed != 1 else ""}</span>'
        + _unattributed_count(report)
        + "</p>",
    ]
    if report.problems:
        parts.append('<div class="problems"><b>Problems</b><ul>')
        parts += [f"<li>{esc(p)}</li>" for p in report.problems]
        parts.append("</ul></div>")
    parts.append("</header>")
    parts += report.html_sections
    parts.append('<section id="service-map"><h2>Service map</h2>')
    parts.append(_safe(lambda: service_map_svg([e.trace for e in entries]), "the service map"))
    parts.append("</section>")
    parts.append(_index(entries))
    parts.append('<section id="traces"><h2>Traces</h2>')
    many = len(entries) > 50
    for e in entries:
        parts.append(_trace_section(e, open_=not many or e.record.get("outcome") == "failed"))
    parts.append("</section>")
    if report.unattributed:
        parts.append(_safe(lambda: _unattributed(report.unattributed), "the unattributed traces"))
    parts.append(f"<script>{_JS}</script>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def trace_link(trace_id: str) -> str:
    """Where a test's waterfall is, relative to the traces folder: its anchor opens it."""
    return f"{FILE_NAME}#{trace_id}"


def write_html(report: CollectReport, path: Path | None = None) -> Path:
    """Write the page (default ``<report.out_dir>/index.html``) and return its path."""
    target = Path(path) if path is not None else Path(report.out_dir) / FILE_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(render_html(report), encoding="utf-8")
    tmp.replace(target)
    return target


def report_line(report: CollectReport) -> str:
    """Write the page for the plugin and say where; never raises (teardown comes after)."""
    try:
        return f"traces: HTML report -> {write_html(report)}"
    except Exception as exc:  # a report must never cost the teardown
        return f"traces: HTML report not written: {type(exc).__name__}: {exc}"


def _safe(draw: object, what: str) -> str:
    try:
        return draw()  # type: ignore[operator,no-any-return]
    except Exception as exc:  # odd documents must not cost the rest of the page
        return f'<p class="bad">could not draw {esc(what)}: {esc(type(exc).__name__)}: {esc(exc)}</p>'


# -- the index ------------------------------------------------------------------


def _index(entries: Sequence[_Entry]) -> str:
    rows = []
    for e in entries:
        rec, trace = e.record, e.trace
        outcome = str(rec.get("outcome", "?"))
        failed = trace.failed_spans()
        cold = trace.cold_starts()
        calls = len(trace.spans_of("call"))
        errors = "-"
        if failed:
            more = f" (+{len(failed) - 1})" if len(failed) > 1 else ""
            errors = f'<span class="bad">{len(failed)}</span> {esc(_clip(failed[0].describe(), 70))}{more}'
        missing = "" if e.complete else f' <span class="warn" title="{esc(_why_incomplete(e))}">incomplete</span>'
        rows.append(
            f'<tr class="row {esc(_outcome_class(outcome))}" data-outcome="{esc(outcome)}">'
            f'<td class="num">{e.number}</td>'
            f'<td class="name"><a href="#trace-{e.number}">{esc(rec.get("nodeid", "?"))}</a></td>'
            f'<td><span class="badge {esc(_outcome_class(outcome))}">{esc(outcome)}</span></td>'
            f'<td class="num">{esc(_ms(trace.duration))}</td>'
            f'<td class="mono">{esc(rec.get("trace_id", ""))}{missing}</td>'
            f'<td class="num">{calls}</td>'
            f"<td>{errors}</td>"
            f'<td class="num">{len(cold) or "-"}</td></tr>'
        )
    return (
        '<section id="index"><h2>Tests</h2>'
        '<p class="filters"><input id="filter" type="search" placeholder="filter by name or trace id" '
        'aria-label="filter"> <label><input id="only-failed" type="checkbox"> only failed</label></p>'
        '<table class="index"><thead><tr><th>#</th><th>scenario</th><th>result</th><th>duration</th>'
        "<th>trace id</th><th>calls</th><th>failed spans</th><th>cold starts</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></section>"
    )


def _outcome_class(outcome: str) -> str:
    return outcome if outcome in ("passed", "failed", "skipped") else "other"


# -- what no test started --------------------------------------------------------


#: Waterfalls drawn in the Unattributed section (the table lists every span).
UNATTRIBUTED_DRAWN = 50


def _unattributed_count(report: CollectReport) -> str:
    count = sum(len(t.spans) for t in report.unattributed.values())
    if not count:
        return ""
    return f' · <a class="warn" href="#unattributed">{count} unattributed segment{"s" if count != 1 else ""}</a>'


def _unattributed(traces: Mapping[str, Trace]) -> str:
    """Every trace no test started: its spans by service and operation, and its waterfall."""
    count = sum(len(t.spans) for t in traces.values())
    linked = linking(traces)
    rows = []
    for tid, trace in traces.items():
        for span in trace.walk():
            rows.append(
                f'<tr><td class="mono">{esc(tid)}</td><td>{esc(span.service)}</td>'
                f"<td>{esc(span.operation or span.name)}</td><td>{esc(_clip(span.resource or '-', 80))}</td></tr>"
            )
    shown = list(traces.items())[:UNATTRIBUTED_DRAWN]
    waterfalls = "".join(
        f'<div class="trace unattributed" data-name="{esc(tid)}"><details{" open" if i < 5 else ""}><summary>'
        f'<span class="warn">unattributed</span> <span class="mono">{esc(tid)}</span> · {len(t.spans)} spans'
        f"</summary>{_safe(lambda t=t: waterfall_svg(t), 'this trace')}</details></div>"
        for i, (tid, t) in enumerate(shown)
    )
    if len(traces) > len(shown):
        waterfalls += f"<p>... and {len(traces) - len(shown)} more traces in {UNATTRIBUTED}</p>"
    consumers = (
        f", or they link to the traces that wrote their records ({linked} queue and stream consumer "
        f"trace{'s' if linked != 1 else ''}: see each one's links)"
        if linked
        else ""
    )
    return (
        '<section id="unattributed"><h2>Unattributed</h2>'
        f'<p class="warn">{count} segment{"s" if count != 1 else ""} in {len(traces)} '
        f"trace{'s' if len(traces) != 1 else ''} no test started: the trace header did not reach them "
        f"(a source that does not propagate it, a call made outside the tests' clients){consumers}.</p>"
        '<table class="index"><thead><tr><th>trace id</th><th>service</th><th>operation</th><th>resource</th>'
        "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>" + waterfalls + "</section>"
    )


# -- one trace ------------------------------------------------------------------


def _why_incomplete(e: _Entry) -> str:
    return "; ".join(e.missing) if e.missing else "only what the test itself recorded"


def _trace_section(e: _Entry, *, open_: bool) -> str:
    rec, trace = e.record, e.trace
    outcome = str(rec.get("outcome", "?"))
    failed = trace.failed_spans()
    head = (
        f'<span class="badge {esc(_outcome_class(outcome))}">{esc(outcome)}</span> '
        f'<span class="name">{esc(rec.get("nodeid", "?"))}</span> '
        f'<span class="meta">{esc(_ms(trace.duration))} · <span class="mono">{esc(trace.trace_id)}</span> · '
        f"{len(trace.spans)} spans"
        + (f' · <span class="bad">{len(failed)} failed</span>' if failed else "")
        + ("" if e.complete else f' · <span class="warn">incomplete: {esc(_why_incomplete(e))}</span>')
        + "</span>"
    )
    return (
        f'<div class="trace" id="trace-{e.number}" data-outcome="{esc(outcome)}" '
        f'data-name="{esc(rec.get("nodeid", ""))} {esc(trace.trace_id)}">'
        f'<span class="anchor" id="{esc(trace.trace_id)}"></span>'  # index.html#<trace id> (trace_link)
        f"<details{' open' if open_ else ''}><summary>{head}</summary>"
        + _safe(lambda: _function_errors(rec, trace), "the function errors")
        + _safe(lambda: waterfall_svg(trace), "this trace")
        + f'<details class="tree"><summary>as text</summary><pre>{esc(trace.render())}</pre></details>'
        + "</details></div>"
    )


def _function_errors(rec: TestRecord, trace: Trace) -> str:
    """Each failed invocation: function, error type and message, stack, and its log tail when the test recorded it."""
    errors = rec.get("function_errors") or [
        {"function": f.function, "error_type": f.error_type, "message": f.message, "stack": list(f.stack)}
        for f in failures(trace)
    ]
    blocks = []
    for err in errors:
        stack = "".join(f'<div class="mono">at {esc(frame)}</div>' for frame in err.get("stack") or ())
        tail = err.get("log_tail") or []
        log = f'<pre class="log">{esc(chr(10).join(tail))}</pre>' if tail else ""
        note = f'<div class="note">note: {esc(err.get("note"))}</div>' if err.get("note") else ""
        linked = err.get("linked_trace")
        where = f'<div class="note">in trace {esc(linked)}, {LINKED}</div>' if linked else ""
        blocks.append(
            f'<div class="fnerr"><span class="bad">Lambda function {esc(err.get("function"))}: '
            f"{esc(err.get('error_type'))}</span>: {esc(err.get('message'))}{where}{stack}{note}{log}</div>"
        )
    return "".join(blocks)


def _rows(trace: Trace) -> list[tuple[int, Span]]:
    rows: list[tuple[int, Span]] = []

    def walk(span: Span, depth: int) -> None:
        rows.append((depth, span))
        for child in span.children:
            walk(child, depth + 1)

    for root in trace.roots:
        walk(root, 0)
    return rows


def _label(span: Span) -> str:
    """A waterfall row: the test's own call as ``test <resource>``, every other span by its name in the summaries."""
    return f"test {span.resource or span.name}" if span.kind == "client" else span_name(span)


def _flags(span: Span) -> list[str]:
    flags = []
    if span.status is not None:
        flags.append(f"HTTP {span.status}")
    flags += [f for f in ("fault", "error", "throttle") if getattr(span, f)]
    if span.cold_start:
        flags.append("cold start")
    if span.in_progress:
        flags.append("in progress")
    return flags


def _nice_step(total_ms: float, ticks: int = 8) -> float:
    raw = max(total_ms / ticks, 1e-3)
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * power >= raw:
            return m * power
    return 10 * power  # pragma: no cover - the loop always returns


def _tick_label(ms: float) -> str:
    if ms == 0:
        return "0"
    if ms >= 1000:
        return f"{ms / 1000:g} s"
    return f"{ms:g} ms"


def waterfall_svg(trace: Trace) -> str:
    """The trace as an SVG waterfall: one row per span, bar = [start, end] on the trace's time axis."""
    rows = _rows(trace)
    hidden = max(0, len(rows) - MAX_ROWS)
    rows = rows[:MAX_ROWS]
    starts = [s.start for _, s in rows if s.start is not None]
    ends = [s.end for _, s in rows if s.end is not None]
    t0 = min(starts) if starts else 0.0
    t1 = max([*ends, *starts]) if starts else 0.0
    total = max(t1 - t0, 1e-6)
    scale = WF_BAR_W / total
    height = WF_AXIS + len(rows) * WF_ROW + 8 + (WF_ROW if hidden else 0)
    out = [
        f'<svg class="waterfall" width="{WF_WIDTH}" height="{height}" '
        f'viewBox="0 0 {WF_WIDTH} {height}" role="img" aria-label="waterfall of trace {esc(trace.trace_id)}">'
    ]
    # Time axis: ticks at a round step, labelled, with a light grid line down the rows.
    step_ms = _nice_step(total * 1000)
    tick = 0.0
    while tick <= total * 1000 + 1e-9:
        x = WF_BAR_X + tick / 1000 * scale
        out.append(
            f'<line class="grid" x1="{x:.1f}" y1="{WF_AXIS - 6}" x2="{x:.1f}" y2="{height - 4}"/>'
            f'<text class="tick" x="{x:.1f}" y="{WF_AXIS - 10}" text-anchor="middle">{esc(_tick_label(tick))}</text>'
        )
        tick += step_ms
    for i, (depth, span) in enumerate(rows):
        y = WF_AXIS + i * WF_ROW
        color = color_of(span.service)
        failed = span.failed and span.kind != "client"
        indent = 8 + min(depth, 20) * 14
        label = _clip(_label(span), max(8, int((WF_LABEL - indent - 16) / 6.4)))
        tip = "\n".join([span.describe(), *(f"resource: {r}" for r in span.resources[:4]), f"span id: {span.id}"])
        out.append(f'<g class="span{" failed" if failed else ""}" data-service="{esc(span.service)}">')
        out.append(f"<title>{esc(tip)}</title>")
        if i % 2:
            out.append(f'<rect class="stripe" x="0" y="{y}" width="{WF_WIDTH}" height="{WF_ROW}"/>')
        out.append(f'<circle cx="{indent + 4}" cy="{y + WF_ROW / 2:.1f}" r="4" fill="{color}"/>')
        out.append(f'<text class="label{" bad" if failed else ""}" x="{indent + 12}" y="{y + 14}">{esc(label)}</text>')
        if span.start is None:
            out.append(f'<text class="dur" x="{WF_BAR_X}" y="{y + 14}">(no timing)</text></g>')
            continue
        end = span.end if span.end is not None else t1
        x = WF_BAR_X + (span.start - t0) * scale
        w = max(WF_MIN_BAR, (end - span.start) * scale)
        dashed = ' stroke-dasharray="4 2" fill-opacity="0.5"' if span.in_progress or span.end is None else ""
        stroke = f' stroke="{ERROR_COLOR}" stroke-width="2"' if failed else ""
        out.append(
            f'<rect class="bar" x="{x:.1f}" y="{y + (WF_ROW - WF_BAR_H) / 2:.1f}" width="{w:.1f}" '
            f'height="{WF_BAR_H}" rx="2" fill="{color}"{stroke}{dashed}/>'
        )
        if failed:  # a red marker left of the bar, so a failed span is seen at a glance
            my = y + WF_ROW / 2
            out.append(
                f'<path class="err-mark" d="M{x - 9:.1f},{my - 5:.1f} L{x - 3:.1f},{my:.1f} '
                f'L{x - 9:.1f},{my + 5:.1f} Z" fill="{ERROR_COLOR}"/>'
            )
        text = " ".join([_ms(span.duration) if span.duration is not None else "…", *_flags(span)])
        cls = f"dur{' bad' if failed else ''}"
        if x + w + 5 + len(text) * 6.2 <= WF_WIDTH:  # right of the bar, else left of it
            out.append(f'<text class="{cls}" x="{x + w + 5:.1f}" y="{y + 14}">{esc(text)}</text>')
        else:
            tx = x - (12 if failed else 5)
            out.append(f'<text class="{cls}" x="{tx:.1f}" y="{y + 14}" text-anchor="end">{esc(text)}</text>')
        out.append("</g>")
    if hidden:
        y = WF_AXIS + len(rows) * WF_ROW + 14
        out.append(f'<text class="dur" x="8" y="{y}">… {hidden} more spans (see the trace JSON)</text>')
    out.append("</svg>")
    return "".join(out)


# -- the service map --------------------------------------------------------------


@dataclass
class Edge:
    caller: str
    callee: str
    calls: int = 0
    failed: int = 0


def _caller_of(span: Span) -> Span | None:
    """The node a call was made from: the nearest enclosing client, function or service segment."""
    node = span.parent
    while node is not None and node.kind not in ("client", "function", "service"):
        node = node.parent
    return node


def _node_name(span: Span) -> str:
    return "tests" if span.kind == "client" else span.service


def service_edges(traces: Iterable[Trace]) -> list[Edge]:
    """Caller service -> callee service, with the number of calls (and failed calls), over every trace."""
    edges: dict[tuple[str, str], Edge] = {}
    for trace in traces:
        for span in trace.walk():
            if span.kind != "call":
                continue
            caller = _caller_of(span)
            key = (_node_name(caller) if caller is not None else "tests", span.service)
            edge = edges.setdefault(key, Edge(*key))
            edge.calls += 1
            edge.failed += 1 if span.failed else 0
    return sorted(edges.values(), key=lambda e: (e.caller, e.callee))


def _layers(nodes: Sequence[str], edges: Sequence[Edge]) -> dict[str, int]:
    """Longest-path layering from the callers (cycles cut), so calls flow left to right."""
    layer = dict.fromkeys(nodes, 0)
    for _ in range(len(nodes)):
        changed = False
        for e in edges:
            if e.caller != e.callee and layer[e.callee] < layer[e.caller] + 1 < len(nodes):
                layer[e.callee] = layer[e.caller] + 1
                changed = True
        if not changed:
            break
    return layer


NODE_W, NODE_H, COL_W, ROW_H, MARGIN, LANE = 160, 44, 240, 74, 20, 16


def service_map_svg(traces: Iterable[Trace]) -> str:
    """Nodes = services, edges = caller -> callee with call counts; a simple layered SVG layout."""
    edges = service_edges(traces)
    if not edges:
        return '<p class="meta">No calls were traced in this run.</p>'
    names = list(dict.fromkeys([e.caller for e in edges] + [e.callee for e in edges]))
    names.sort(key=lambda n: (n != "tests", n))
    layer = _layers(names, edges)
    columns: dict[int, list[str]] = {}
    for n in names:
        columns.setdefault(layer[n], []).append(n)
    tallest = max(len(c) for c in columns.values())
    # Edges that skip a column run in lanes above the nodes, so they never cross one.
    long_edges = [e for e in edges if layer[e.callee] - layer[e.caller] > 1]
    lanes = {(e.caller, e.callee): MARGIN / 2 + i * LANE for i, e in enumerate(long_edges)}
    top = MARGIN + len(long_edges) * LANE
    width = MARGIN * 2 + (max(columns) + 1) * COL_W - (COL_W - NODE_W)
    height = top + MARGIN + tallest * ROW_H - (ROW_H - NODE_H) + 24
    pos: dict[str, tuple[float, float]] = {}
    for col, members in columns.items():
        offset = (tallest - len(members)) * ROW_H / 2
        for i, n in enumerate(members):
            pos[n] = (MARGIN + col * COL_W, top + offset + i * ROW_H)
    inbound: dict[str, int] = {}
    for e in edges:
        inbound[e.callee] = inbound.get(e.callee, 0) + e.calls
    out = [
        f'<svg class="service-map" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="service map">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 Z" fill="#6b7280"/></marker>'
        f'<marker id="arrow-bad" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 Z" fill="{ERROR_COLOR}"/></marker></defs>',
    ]
    for e in edges:
        (x1, y1), (x2, y2) = pos[e.caller], pos[e.callee]
        bad = e.failed > 0
        cls = "edge bad" if bad else "edge"
        marker = "url(#arrow-bad)" if bad else "url(#arrow)"
        if e.caller == e.callee:  # a service calling itself: a loop over the node
            sx, sy = x1 + NODE_W * 0.35, y1
            d = f"M{sx:.1f},{sy:.1f} C{sx - 10:.1f},{sy - 34:.1f} {sx + 60:.1f},{sy - 34:.1f} {sx + 50:.1f},{sy:.1f}"
            lx, ly = sx + 25, sy - 28
        elif (e.caller, e.callee) in lanes:
            sx, sy, tx, ty = x1 + NODE_W, y1 + NODE_H / 2, x2, y2 + NODE_H / 2
            ly = lanes[(e.caller, e.callee)]
            d = (
                f"M{sx:.1f},{sy:.1f} C{sx + 30:.1f},{sy:.1f} {sx + 30:.1f},{ly:.1f} {sx + 60:.1f},{ly:.1f} "
                f"L{tx - 60:.1f},{ly:.1f} C{tx - 30:.1f},{ly:.1f} {tx - 30:.1f},{ty:.1f} {tx:.1f},{ty:.1f}"
            )
            lx, ly = (sx + tx) / 2, ly - 3
        elif layer[e.callee] > layer[e.caller]:
            sx, sy, tx, ty = x1 + NODE_W, y1 + NODE_H / 2, x2, y2 + NODE_H / 2
            mid = (sx + tx) / 2
            d = f"M{sx:.1f},{sy:.1f} C{mid:.1f},{sy:.1f} {mid:.1f},{ty:.1f} {tx:.1f},{ty:.1f}"
            lx, ly = mid, (sy + ty) / 2 - 6
        else:  # a call back to the left: below the nodes
            sx, sy, tx, ty = x1 + NODE_W / 2, y1 + NODE_H, x2 + NODE_W / 2, y2 + NODE_H
            low = max(sy, ty) + 30
            d = f"M{sx:.1f},{sy:.1f} C{sx:.1f},{low:.1f} {tx:.1f},{low:.1f} {tx:.1f},{ty:.1f}"
            lx, ly = (sx + tx) / 2, low - 4
        label = f"{e.calls}" + (f" ({e.failed} failed)" if bad else "")
        tip = f"{e.caller} -> {e.callee}: {e.calls} call(s), {e.failed} failed"
        out.append(
            f'<g class="{cls}"><title>{esc(tip)}</title>'
            f'<path d="{d}" fill="none" marker-end="{marker}"/>'
            f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="middle">{esc(label)}</text></g>'
        )
    for n in sorted(names, key=lambda n: (layer[n], pos[n][1])):
        x, y = pos[n]
        color = color_of("client" if n == "tests" else n)
        sub = f"{inbound[n]} call{'s' if inbound[n] != 1 else ''} in" if n in inbound else "caller"
        out.append(
            f'<g class="node" data-service="{esc(n)}"><title>{esc(n)}</title>'
            f'<rect x="{x}" y="{y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="8" fill="{color}" '
            f'fill-opacity="0.14" stroke="{color}" stroke-width="2"/>'
            f'<text class="node-name" x="{x + NODE_W / 2}" y="{y + 19:.1f}" text-anchor="middle">'
            f"{esc(_clip(n, 22))}</text>"
            f'<text class="node-sub" x="{x + NODE_W / 2}" y="{y + 35:.1f}" text-anchor="middle">{esc(sub)}</text></g>'
        )
    out.append("</svg>")
    legend = "".join(
        f'<span class="swatch" style="background:{color_of("client" if n == "tests" else n)}"></span>{esc(n)} '
        for n in names
    )
    return "".join(out) + f'<p class="legend">{legend}<span class="swatch bad-swatch"></span>failed</p>'


_CSS = """
:root { color-scheme: light; }
body { font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 24px 40px; color: #111827;
       background: #fff; }
h1 { font-size: 20px; margin: 18px 0 4px; } h2 { font-size: 16px; margin: 22px 0 8px; }
.summary, .meta { color: #4b5563; } .mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
.bad { color: #dc2626; font-weight: 600; } .warn { color: #b45309; }
.problems { border: 1px solid #fca5a5; background: #fef2f2; padding: 6px 12px; border-radius: 6px; }
table.index { border-collapse: collapse; width: 100%; }
table.index th, table.index td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #e5e7eb;
  vertical-align: top; }
table.index th { background: #f3f4f6; position: sticky; top: 0; }
td.num, td.mono { text-align: right; white-space: nowrap; } td.mono { text-align: left; } td.name { word-break: break-word; }
tr.failed td { background: #fef2f2; }
a { color: #1d4ed8; text-decoration: none; } a:hover { text-decoration: underline; }
.badge { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 11px; color: #fff;
  background: #6b7280; }
.badge.passed { background: #15803d; } .badge.failed { background: #dc2626; }
.badge.skipped { background: #9ca3af; }
.trace { border: 1px solid #e5e7eb; border-radius: 6px; margin: 8px 0; padding: 4px 8px; }
.trace > details > summary { cursor: pointer; padding: 4px 0; }
.trace .name { font-weight: 600; word-break: break-word; }
.behaviour tr.changed td { background: #fff7ed; } .behaviour tr.new td { background: #eff6ff; }
.fnerr { border-left: 3px solid #dc2626; background: #fef2f2; padding: 6px 10px; margin: 6px 0; }
.fnerr pre.log { background: #fff; padding: 6px; margin: 4px 0 0; font-size: 12px; overflow-x: auto; }
.fnerr .note { margin: 4px 0; font-style: italic; }
details.tree pre { background: #f9fafb; padding: 8px; overflow-x: auto; font-size: 12px; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; fill: #111827; }
svg .tick { fill: #6b7280; font-size: 10px; } svg .grid { stroke: #e5e7eb; stroke-width: 1; }
svg .stripe { fill: #f9fafb; } svg .dur { fill: #4b5563; } svg .bad { fill: #dc2626; font-weight: 600; }
svg .edge path { stroke: #9ca3af; stroke-width: 1.5; } svg .edge.bad path { stroke: #dc2626; }
svg .edge text { fill: #374151; font-size: 11px; } svg .edge.bad text { fill: #dc2626; }
svg .node-name { font-weight: 600; font-size: 12px; } svg .node-sub { fill: #4b5563; font-size: 10px; }
.legend { color: #374151; } .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
  margin: 0 4px 0 10px; vertical-align: -1px; }
.bad-swatch { background: #fff; border: 2px solid #dc2626; width: 8px; height: 8px; }
.filters input[type=search] { width: 320px; padding: 3px 6px; }
.hidden { display: none; }
"""

# Filters the index and the trace sections in place; reads only the DOM, loads nothing.
_JS = """
(function () {
  var box = document.getElementById('filter'), failed = document.getElementById('only-failed');
  function apply() {
    var q = box.value.toLowerCase(), f = failed.checked;
    document.querySelectorAll('tr.row, div.trace').forEach(function (el) {
      var text = (el.getAttribute('data-name') || el.textContent).toLowerCase();
      var show = (!q || text.indexOf(q) >= 0) && (!f || el.getAttribute('data-outcome') === 'failed');
      el.classList.toggle('hidden', !show);
    });
  }
  box.addEventListener('input', apply); failed.addEventListener('change', apply);
  // index.html#<trace id> (a link from another report): open that trace's waterfall and show it.
  function reveal() {
    var anchor = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
    var trace = anchor && anchor.closest && anchor.closest('div.trace');
    if (!trace) { return; }
    trace.querySelector('details').open = true;
    trace.scrollIntoView();
  }
  window.addEventListener('hashchange', reveal); reveal();
})();
"""
