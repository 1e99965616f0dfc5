from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from traces_support import FUNCTION_SEGMENT, TRACE, lambda_segments, sdk_subsegment, shape

from harness.errors import TraceError, TracesIncomplete
from harness.traces.collector import Collector
from harness.traces.local_source import LocalSource
from harness.traces.propagation import TraceContext

HEADER = b'{"format":"json","version":1}\n'


def send(address: str, doc: dict[str, Any], sock: socket.socket) -> None:
    host, _, port = address.rpartition(":")
    sock.sendto(HEADER + json.dumps(doc).encode(), (host, int(port)))


@pytest.fixture
def runtime_sock() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        yield s


def client_ctx() -> tuple[TraceContext, str]:
    ctx = TraceContext("t.py::test_x", trace_id=TRACE)
    call = ctx.begin_aws_call("Lambda", "Invoke", {"FunctionName": "orders-fn"})
    call.finish(status=200)
    ctx.finish()
    return ctx, call.id


def test_from_the_collector_in_process(runtime_sock: socket.socket) -> None:
    with Collector() as c:
        ctx, invoke_id = client_ctx()
        for doc in lambda_segments(invoke_id):
            send(c.address, doc, runtime_sock)
        send(c.address, sdk_subsegment("d000000000000001", FUNCTION_SEGMENT), runtime_sock)
        traces = LocalSource(collector=c).fetch([TRACE], within=2, client_documents={TRACE: [ctx.segment_document()]})
    trace = traces[TRACE]
    assert [s for s in shape(trace) if s[1] != "local"] == [
        (0, "client", "client"),
        (1, "call", "Lambda"),
        (2, "service", "Lambda"),
        (3, "function", "Lambda"),
        (4, "call", "DynamoDB"),
    ]
    assert trace.functions()[0].name == "orders-fn"


def test_from_the_spool_in_another_process(tmp_path: Path, runtime_sock: socket.socket) -> None:
    spool = tmp_path / "traces"
    with Collector(spool_dir=spool) as c:
        ctx, invoke_id = client_ctx()
        for doc in lambda_segments(invoke_id):
            send(c.address, doc, runtime_sock)
        send(c.address, sdk_subsegment("d000000000000001", FUNCTION_SEGMENT), runtime_sock)
        # a worker knows only the spool folder and the address (from workerinput)
        worker = LocalSource(spool_dir=spool, address=c.address)
        trace = worker.fetch([TRACE], within=2, client_documents={TRACE: [ctx.segment_document()]})[TRACE]
        assert trace.calls("DynamoDB", "PutItem") and len(trace.functions()) == 1
        assert not list(spool.glob(".flush-*"))  # markers are cleaned up
        (spool / f"{TRACE}.jsonl").write_text((spool / f"{TRACE}.jsonl").read_text() + '{"doc": {"id": "half')
        assert len(worker.records(TRACE)) == 3  # a line being written is skipped, not an error
    with pytest.raises(TraceError, match="not an X-Ray trace id"):
        worker.records("../../etc/passwd")


CONSUMER = "1-6b043316-00000000000000000000c0de"
UNRELATED = "1-6b043317-00000000000000000000beef"


def _consumer(trace: str, links: list[str]) -> list[dict[str, Any]]:
    """A consumer's invocation in a trace of its own, its function segment linking to ``links``."""
    docs = lambda_segments(None, trace=trace, function="audit-fn", cold=False)
    for doc in docs:
        if doc.get("origin") == "AWS::Lambda::Function" and links:
            doc["links"] = [{"trace_id": t, "id": "c000000000000002"} for t in links]
    return docs


@pytest.mark.parametrize("where", ["in process", "from the spool"])
def test_linked_lists_the_traces_that_link_to_one(tmp_path: Path, runtime_sock: socket.socket, where: str) -> None:
    spool = tmp_path / "traces"
    with Collector(spool_dir=spool if where == "from the spool" else None) as c:
        for doc in [*_consumer(CONSUMER, [TRACE]), *_consumer(UNRELATED, [])]:
            send(c.address, doc, runtime_sock)
        for doc in lambda_segments(None, trace=TRACE):  # the test's own trace never lists itself
            send(c.address, {**doc, "links": [{"trace_id": TRACE}]}, runtime_sock)
        source = LocalSource(collector=c) if where == "in process" else LocalSource(spool_dir=spool, address=c.address)
        found = source.linked(TRACE)
        assert [t.trace_id for t in found] == [CONSUMER]
        assert [f.name for f in found[0].functions()] == ["audit-fn"]
        assert source.linked(UNRELATED) == [] and source.linked(CONSUMER) == []


def test_a_trace_with_nothing_received_is_the_client_alone() -> None:
    with Collector() as c:
        ctx, _ = client_ctx()
        trace = LocalSource(collector=c).fetch([TRACE], within=1, client_documents={TRACE: [ctx.segment_document()]})[
            TRACE
        ]
    # nothing is invented: a function node comes from the Lambda segments the emulator records
    assert shape(trace) == [(0, "client", "client"), (1, "call", "Lambda")]


def test_accept_waits_for_asynchronous_calls(runtime_sock: socket.socket) -> None:
    with Collector() as c:

        def later() -> None:
            time.sleep(0.1)
            send(c.address, sdk_subsegment("d000000000000001", "9999999999999999"), runtime_sock)

        threading.Thread(target=later).start()
        trace = LocalSource(collector=c).fetch([TRACE], within=5, accept=lambda t: bool(t.calls("DynamoDB")))[TRACE]
        assert trace.calls("DynamoDB")
        with pytest.raises(TracesIncomplete, match="present but not yet as expected"):
            LocalSource(collector=c).fetch([TRACE], within=0.2, accept=lambda t: False)


def test_in_progress_documents_are_waited_for(runtime_sock: socket.socket) -> None:
    with Collector() as c:
        open_doc = sdk_subsegment("d000000000000001", "9999999999999999", in_progress=True)
        del open_doc["end_time"]
        send(c.address, open_doc, runtime_sock)
        with pytest.raises(TracesIncomplete, match=r"still in progress \(1\)"):
            LocalSource(collector=c).fetch([TRACE], within=0.2)


def test_a_worker_without_a_running_collector_fails_clearly(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"  # bound, but nobody reads it
        src = LocalSource(spool_dir=tmp_path, address=address)
        with pytest.raises(TraceError, match="did not answer a flush"):
            src.flush(within=0.1)
    with pytest.raises(TraceError, match="needs the collector"):
        LocalSource(spool_dir=tmp_path)
