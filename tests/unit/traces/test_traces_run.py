from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from traces_support import FUNCTION_SEGMENT, lambda_segments, sdk_subsegment

from harness.errors import TraceError, TracesIncomplete
from harness.traces.collector import Collector
from harness.traces.local_source import LocalSource
from harness.traces.model import Trace
from harness.traces.propagation import TraceContext
from harness.traces.run import (
    TraceHandle,
    TraceInfo,
    aws_info,
    collect,
    local_info,
    record_for,
    source_for,
    start_collector,
)

HEADER = b'{"format":"json","version":1}\n'


def finished_test(nodeid: str) -> tuple[TraceContext, str]:
    ctx = TraceContext(nodeid)
    call = ctx.begin_aws_call("Lambda", "Invoke", {"FunctionName": "fn"})
    call.finish(status=200)
    ctx.finish()
    return ctx, call.id


def send(collector: Collector, doc: dict[str, Any]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(HEADER + json.dumps(doc).encode(), ("127.0.0.1", collector.port))


def test_collect_writes_every_trace_and_an_index(tmp_path: Path) -> None:
    with start_collector(tmp_path, "run1") as c:
        assert c.spool_dir == tmp_path / "traces" / "spool" / "run1"
        a, a_invoke = finished_test("tests/test_a.py::test_one")
        b, _ = finished_test("tests/test_a.py::test_two[x/y]")
        for doc in lambda_segments(a_invoke, trace=a.trace_id):
            send(c, doc)
        send(c, sdk_subsegment("d000000000000001", FUNCTION_SEGMENT, trace=a.trace_id))
        records = [
            record_for(a, "tests/test_a.py::test_one", "passed"),
            record_for(b, "tests/test_a.py::test_two[x/y]", "failed"),
        ]
        json.dumps(records)  # travels on reports between processes
        out = tmp_path / "traces"
        report = collect(records, LocalSource(collector=c), out, within=2)
    assert set(report.traces) == {a.trace_id, b.trace_id} and report.problems == []
    index = json.loads((out / "index.json").read_text())
    assert [(i["nodeid"], i["outcome"], i["complete"], i["calls"]) for i in index] == [
        ("tests/test_a.py::test_one", "passed", True, 2),
        ("tests/test_a.py::test_two[x/y]", "failed", True, 1),
    ]
    text = (out / index[0]["file"]).read_text()
    first = json.loads(text)
    assert Trace.from_json(first).calls("DynamoDB", "PutItem")
    # For people too: each segment document and each span on a line of its own.
    lines = text.splitlines()
    assert len(lines) == len(first) + len(first["documents"]) + len(first["spans"]) + 4
    assert all(
        json.loads(line.strip().rstrip(",")) in first["documents"] for line in lines[6:][: len(first["documents"])]
    )
    assert (out / "index.json").read_text().count("\n") == len(index) + 2  # one test a line
    assert "/" not in index[1]["file"]
    assert report.lines()[0].startswith(f"traces: 2 of 2 collected -> {out} (1 cold start, 0 failed calls)")


def test_each_run_replaces_the_earlier_runs_files_and_only_those(tmp_path: Path) -> None:
    out = tmp_path / "traces"
    first, _ = finished_test("t::first")
    collect([record_for(first, "t::first", "passed")], None, out, within=1)
    [earlier] = json.loads((out / "index.json").read_text())
    (out / "unattributed.json").write_text("[]")  # an earlier run's traces no test started
    (out / "mine.json").write_text("{}")  # a developer's own file
    (tmp_path / "outside.json").write_text("{}")

    second, _ = finished_test("t::second")
    collect([record_for(second, "t::second", "passed")], None, out, within=1)

    [entry] = json.loads((out / "index.json").read_text())
    assert (out / entry["file"]).exists() and not (out / earlier["file"]).exists()
    assert sorted(p.name for p in out.iterdir()) == sorted([entry["file"], "index.json", "mine.json"])
    # An index naming files elsewhere (edited by hand) removes nothing outside the folder.
    (out / "index.json").write_text(json.dumps([{"file": "../outside.json"}, {"file": str(tmp_path / "outside.json")}]))
    collect([record_for(second, "t::second", "passed")], None, out, within=1)
    assert (tmp_path / "outside.json").exists() and (out / entry["file"]).exists()
    (out / "index.json").write_text("not json")
    collect([], None, out, within=1)  # an unreadable index: nothing removed, no error
    assert (out / entry["file"]).exists()


def test_collect_keeps_what_it_found_and_lists_every_problem(tmp_path: Path) -> None:
    ok, _ = finished_test("t::ok")
    lost, _ = finished_test("t::lost")
    slow, _ = finished_test("t::slow")

    class Partial:
        kind = "aws"

        def fetch(self, trace_ids: Any, *, within: float, client_documents: Any = None, accept: Any = None) -> Any:
            found = {ok.trace_id: Trace(ok.trace_id, client_documents[ok.trace_id])}
            raise TracesIncomplete(
                source="x", within=within, missing=[lost.trace_id], in_progress=[slow.trace_id], found=found
            )

    records = [
        record_for(ok, "t::ok", "passed"),
        record_for(lost, "t::lost", "passed"),
        record_for(slow, "t::slow", "passed"),
    ]
    report = collect(records, Partial(), tmp_path, within=30)
    assert list(report.traces) == [ok.trace_id]
    assert sorted(report.problems) == sorted(
        [
            f"t::lost: trace {lost.trace_id} missing after 30s",
            f"t::slow: trace {slow.trace_id} still in progress after 30s",
        ]
    )
    lines = report.lines()
    assert lines[0].startswith("traces: 1 of 3 collected") and len(lines) == 3
    index = json.loads((tmp_path / "index.json").read_text())
    assert [i["complete"] for i in index] == [True, False, False]  # the test's own segment is still written


def test_collect_without_a_source(tmp_path: Path) -> None:
    ctx, _ = finished_test("t::x")
    report = collect([record_for(ctx, "t::x", "passed")], None, tmp_path, within=1)
    assert report.traces == {} and "no trace source" in report.problems[0]
    assert (tmp_path / "index.json").exists()
    assert collect([], None, tmp_path / "empty", within=1).lines() == []


def test_a_test_reads_its_own_trace(tmp_path: Path) -> None:
    with Collector() as c:
        ctx = TraceContext("t::inside")
        call = ctx.begin_aws_call("Lambda", "Invoke", {"FunctionName": "fn"})
        call.finish(status=200)  # the test is still running: its segment is in progress
        handle = TraceHandle(ctx, LocalSource(collector=c), within=2)
        assert handle.trace_id == ctx.trace_id and handle.header().startswith(f"Root={ctx.trace_id};Parent=")
        send(c, sdk_subsegment("d000000000000001", call.id, trace=ctx.trace_id))
        trace = handle.wait_for_call("DynamoDB", "PutItem")
        assert trace.roots[0].in_progress and trace.calls("DynamoDB")
        with pytest.raises(TracesIncomplete):
            handle.wait_for_call("SQS", within=0.1)
    with pytest.raises(TraceError, match="not available"):
        TraceHandle(ctx, None, within=1).fetch()


def test_worker_sources_from_trace_info(tmp_path: Path) -> None:
    with start_collector(tmp_path, "r") as c:
        info: TraceInfo = json.loads(json.dumps(local_info(c)))  # as a worker receives it
        assert isinstance(source_for(info), LocalSource)
        assert source_for(info, collector=c).collector is c  # type: ignore[union-attr]
    no_spool = info.copy()
    no_spool["spool_dir"] = None
    assert source_for(no_spool) is None
    assert source_for(aws_info()) is None  # no client factory given
    src = source_for(aws_info(), xray_client=lambda: "client")
    assert src is not None and src.kind == "aws"
    assert source_for({"kind": "off", "address": None, "spool_dir": None, "within": 1}) is None


def test_the_controller_s_spool_goes_with_its_run(tmp_path: Path) -> None:
    """The spool is the workers' copy of what the collector received; a kept report folder does not
    gather one per run."""
    from harness.pytest.tracing import RunTracing

    tracing = RunTracing.for_controller("local", tmp_path, "run1")
    assert tracing.collector is not None and tracing.info["spool_dir"]
    spool = Path(tracing.info["spool_dir"])
    assert spool.is_dir()
    tracing.close()
    assert not spool.exists()
    assert (tmp_path / "traces" / "spool").is_dir()  # the runs' parent folder stays for the next run
