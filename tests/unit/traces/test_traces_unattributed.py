"""Nothing dropped silently: traces no test started, traces missing a hop, segments sent twice."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from traces_support import FUNCTION_SEGMENT, lambda_segments, sdk_subsegment

from harness.traces.collector import Collector, Received
from harness.traces.html import render_html
from harness.traces.local_source import LocalSource, pending_documents
from harness.traces.model import Trace
from harness.traces.propagation import TraceContext
from harness.traces.run import collect, record_for, start_collector

HEADER = b'{"format":"json","version":1}\n'
STRAY = "1-6b043315-0000000000000000000000aa"


def send(collector: Collector, doc: dict[str, Any]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(HEADER + json.dumps(doc).encode(), ("127.0.0.1", collector.port))


def finished_test(nodeid: str) -> tuple[TraceContext, str]:
    ctx = TraceContext(nodeid)
    call = ctx.begin_aws_call("Lambda", "Invoke", {"FunctionName": "fn"})
    call.finish(status=200)
    ctx.finish()
    return ctx, call.id


def test_a_trace_no_test_started_is_counted_named_written_and_shown(tmp_path: Path) -> None:
    with start_collector(tmp_path, "run1") as c:
        ctx, invoke = finished_test("tests/test_a.py::test_one")
        send(c, sdk_subsegment("d000000000000001", invoke, trace=ctx.trace_id))
        # A stream consumer's invocation: a trace of its own, Lambda's segments its root.
        for doc in lambda_segments(None, trace=STRAY, function="audit-fn", cold=False):
            send(c, doc)
        send(c, sdk_subsegment("d0000000000000aa", FUNCTION_SEGMENT, trace=STRAY, operation="GetItem"))
        records = [record_for(ctx, "tests/test_a.py::test_one", "passed")]
        report = collect(records, LocalSource(collector=c), tmp_path / "traces", within=2)

    assert list(report.unattributed) == [STRAY]
    lines = report.lines()
    assert lines[0].startswith("traces: 1 of 1 collected")
    assert lines[1] == "traces: unattributed: 5 segments in 1 trace no test started (see unattributed.json)"
    named = ["Lambda audit-fn", "Lambda function audit-fn", "Invocation", "DynamoDB GetItem orders", "Overhead"]
    # Siblings are ordered by start time; these share theirs, so compare the names as a set.
    assert lines[2].startswith(f"  1 trace, {STRAY}: ") and sorted(lines[2].split(": ", 1)[1].split(", ")) == sorted(
        named
    )
    [stray] = json.loads((tmp_path / "traces" / "unattributed.json").read_text())
    assert stray["trace_id"] == STRAY and sorted(stray["named"]) == sorted(named)
    page = render_html(report)
    assert '<section id="unattributed"><h2>Unattributed</h2>' in page
    assert "5 segments in 1 trace no test started" in page and STRAY in page
    assert "<td>DynamoDB</td><td>GetItem</td><td>orders</td>" in page


def test_the_spool_lists_unattributed_traces_for_other_processes(tmp_path: Path) -> None:
    with start_collector(tmp_path, "run1") as c:
        send(c, sdk_subsegment("d0000000000000aa", "f0000000000000aa", trace=STRAY))
        c.flush()
        worker = LocalSource(spool_dir=c.spool_dir, address=c.address)
        found = worker.unattributed({"1-6b043315-23214c168721134c5ded6f95"})
    assert list(found) == [STRAY] and [s.operation for s in found[STRAY].calls("DynamoDB")] == ["PutItem"]


def test_no_line_and_no_file_when_every_trace_belongs_to_a_test(tmp_path: Path) -> None:
    with start_collector(tmp_path, "run1") as c:
        ctx, invoke = finished_test("t::one")
        send(c, sdk_subsegment("d000000000000001", invoke, trace=ctx.trace_id))
        report = collect([record_for(ctx, "t::one", "passed")], LocalSource(collector=c), tmp_path / "t", within=2)
    assert report.unattributed == {} and len(report.lines()) == 1
    assert not (tmp_path / "t" / "unattributed.json").exists()
    assert "Unattributed" not in render_html(report)


def test_a_trace_missing_a_hop_its_spans_name_is_marked_incomplete(tmp_path: Path) -> None:
    with start_collector(tmp_path, "run1") as c:
        ctx, _invoke = finished_test("tests/test_a.py::test_one")
        # A complete segment naming a parent (a state machine's task) that never arrived.
        send(
            c,
            {
                "id": "e000000000000001",
                "name": "orders-fn",
                "trace_id": ctx.trace_id,
                "parent_id": "9999999999999999",
                "origin": "AWS::Lambda::Function",
                "start_time": 1.0,
                "end_time": 2.0,
            },
        )
        records = [record_for(ctx, "tests/test_a.py::test_one", "passed")]
        report = collect(records, LocalSource(collector=c), tmp_path / "traces", within=2)
    assert not report.complete(ctx.trace_id)
    hop = "Lambda function orders-fn names parent 9999999999999999, which never arrived"
    assert report.incomplete == {ctx.trace_id: [hop]}
    assert report.lines()[0].startswith("traces: 0 of 1 collected")
    assert report.lines()[1] == f"  tests/test_a.py::test_one: trace {ctx.trace_id} is incomplete: {hop}"
    [entry] = json.loads((tmp_path / "traces" / "index.json").read_text())
    assert entry["complete"] is False and entry["missing_hops"] == [hop]
    assert f"incomplete: {hop}" in render_html(report)


def test_missing_hops_lists_orphans_only() -> None:
    docs = [
        {"id": "a000000000000001", "name": "t", "trace_id": "x", "start_time": 1.0, "end_time": 2.0},
        sdk_subsegment("b000000000000001", "a000000000000001", trace="x"),
        sdk_subsegment("c000000000000001", "f00000000000000f", trace="x", operation="GetItem"),
    ]
    [(span, parent)] = Trace("x", docs).missing_hops()
    assert (span.operation, parent) == ("GetItem", "f00000000000000f")


def rec(doc: dict[str, Any]) -> Received:
    return Received(doc=doc, src=1)


def test_a_segment_sent_in_progress_then_complete_is_no_longer_pending() -> None:
    started = {"id": "s000000000000001", "in_progress": True}
    assert pending_documents([rec(started)]) is True
    assert pending_documents([rec(started), rec({"id": "s000000000000001", "end_time": 2.0})]) is False
    assert pending_documents([rec(started), rec({"id": "s000000000000002", "end_time": 2.0})]) is True
    assert pending_documents([]) is False


def consumer(tid: str, writes: int = 0, links: tuple[str, ...] = ()) -> Trace:
    """A stream consumer's trace: its function segment (linking to ``links``) and ``writes`` PutItem calls."""
    function = {
        "id": "f00000000000000f",
        "name": "audit-fn",
        "trace_id": tid,
        "origin": "AWS::Lambda::Function",
        "start_time": 1.0,
        "end_time": 2.0,
        **({"links": [{"trace_id": t, "id": "c000000000000001"} for t in links]} if links else {}),
    }
    docs = [sdk_subsegment(f"d00000000000000{i}", "f00000000000000f", trace=tid) for i in range(writes)]
    return Trace(tid, [function, *docs])


def test_traces_of_one_shape_share_a_line() -> None:
    from harness.traces.run import unattributed_lines

    ids = [f"1-6b043315-{n:024x}" for n in range(1, 5)]
    traces = {
        ids[0]: consumer(ids[0], 1),
        ids[1]: consumer(ids[1], 1),
        ids[2]: consumer(ids[2], 1),
        ids[3]: consumer(ids[3], 3),
    }
    assert unattributed_lines(traces) == [
        "traces: unattributed: 10 segments in 4 traces no test started (see unattributed.json)",
        f"  3 traces, e.g. {ids[0]}: Lambda function audit-fn, DynamoDB PutItem orders",
        f"  1 trace, {ids[3]}: Lambda function audit-fn, DynamoDB PutItem orders (x3)",
    ]
    assert len(unattributed_lines(traces, limit=1)) == 3


def test_consumer_traces_that_link_to_their_writers_are_counted_as_such() -> None:
    from harness.traces.run import unattributed_lines

    ids = [f"1-6b043315-{n:024x}" for n in range(1, 4)]
    traces = {ids[0]: consumer(ids[0], links=("1-6b043314-000000000000000000000001",)), ids[1]: consumer(ids[1])}
    assert unattributed_lines(traces)[0] == (
        "traces: unattributed: 2 segments in 2 traces no test started (see unattributed.json); "
        "1 of them links to the traces that wrote their records (queue and stream consumers)"
    )
    from harness.traces.html import _unattributed

    assert "or they link to the traces that wrote their records (1 queue and stream consumer trace" in _unattributed(
        traces
    )
    assert "link to the traces" not in _unattributed({ids[1]: traces[ids[1]]})
