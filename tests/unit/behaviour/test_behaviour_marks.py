"""What the snapshot reads from the trace: poll attempts on the test's calls, links on a consumer's invocation."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.retries.standard import ExponentialBackoff

from harness.emulator import guard, stream_links
from harness.emulator.invocation_record import Record
from harness.emulator.lambda_segments import documents
from harness.emulator.trace_header import INBOUND_TRACE_HEADER
from harness.scenarios.waiting import eventually
from harness.traces.model import Trace
from harness.traces.propagation import CurrentContext, TraceContext, instrument_botocore

ROOT = "1-6b043315-23214c168721134c5ded6f95"


def test_each_attempt_of_a_wait_marks_its_calls() -> None:
    ctx = TraceContext("t")
    tries = itertools.count(1)

    def poll() -> int:
        call = ctx.begin_aws_call("DynamoDB", "GetItem", {"TableName": "t"})
        call.finish(status=200)
        n = next(tries)
        assert n == 3
        return n

    eventually(poll, within=5, interval=0.001, sleep=lambda _s: None)
    marks = [c.poll for c in ctx.calls]
    assert [m[1] for m in marks if m] == [1, 2, 3] and len({m[0] for m in marks if m}) == 1
    spans = Trace(ctx.trace_id, [ctx.segment_document()]).spans_of("call")
    assert [s.poll[1] for s in spans if s.poll] == [1, 2, 3]
    outside = ctx.begin_aws_call("DynamoDB", "GetItem", {"TableName": "t"})
    assert outside.poll is None


class _Answers(BaseHTTPRequestHandler):
    """DynamoDB answering from a script: (status, JSON body) per request, in order."""

    script: list[tuple[int, dict[str, Any]]] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        self.rfile.read(int(self.headers.get("content-length", 0)))
        status, body = self.script.pop(0)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/x-amz-json-1.0")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def dynamodb() -> Iterator[tuple[Any, TraceContext, type[_Answers]]]:
    """A DynamoDB client on a scripted local server, its calls traced into one test's context."""
    server = HTTPServer(("127.0.0.1", 0), _Answers)
    # shutdown() waits for the next poll: 0.5 s by default
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    current, ctx = CurrentContext(), TraceContext("t")
    current.set(ctx)
    undo = instrument_botocore(current)
    try:
        client = boto3.client(
            "dynamodb",
            region_name="us-east-1",
            endpoint_url=f"http://127.0.0.1:{server.server_port}",
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=Config(retries={"mode": "standard", "max_attempts": 5}),
        )
        yield client, ctx, _Answers
    finally:
        undo()
        server.shutdown()
        server.server_close()


def test_a_botocore_waiters_attempts_are_poll_attempts(dynamodb: Any) -> None:
    client, ctx, answers = dynamodb
    missing = {"__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException", "message": "no"}
    answers.script = [(400, missing), (200, {"Table": {"TableStatus": "ACTIVE", "TableName": "ttt"}})]
    client.get_waiter("table_exists").wait(TableName="ttt", WaiterConfig={"Delay": 0.01, "MaxAttempts": 3})
    assert [c.poll[1] if c.poll else None for c in ctx.calls] == [1, 2]


def test_sdk_retries_are_one_call_with_its_retries(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client, ctx, answers = dynamodb
    # The retries themselves are counted, not their backoff (up to 1 s, then 2 s, of jitter).
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)
    busy = {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "busy"}
    answers.script = [(500, busy), (500, busy), (200, {})]
    client.get_item(TableName="ttt", Key={"k": {"S": "v"}})
    assert len(ctx.calls) == 1 and ctx.calls[0].aws["retries"] == 2


def test_a_consumer_invocation_links_the_traces_that_wrote_its_records() -> None:
    stream_links.remember("ev-1", f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=1")
    stream_links.remember("ev-2", f"Root={ROOT};Parent=0000000000000002;Sampled=1")
    stream_links.remember("ev-3", None)  # an untraced write: nothing to link
    sqs_root = "1-6b043316-0000000000000000000000aa"
    event = {
        "Records": [
            {"eventSource": "aws:dynamodb", "eventID": "ev-1"},
            {"eventSource": "aws:dynamodb", "eventID": "ev-2"},
            {"eventSource": "aws:dynamodb", "eventID": "ev-3"},
            {"eventSource": "aws:sqs", "attributes": {"AWSTraceHeader": f"Root={sqs_root};Sampled=1"}},
        ]
    }
    links = stream_links.links_for(event)
    assert links == [{"trace_id": ROOT, "id": "53995c3f42cd8ad8"}, {"trace_id": sqs_root}]
    assert stream_links.links_for({"body": "{}"}) == [] and stream_links.links_for([1]) == []
    rec = Record("audit", "arn:fn", "python3.11", "r", True, 1.0, 2.0, "1-6b043317-0000000000000000000000bb")
    rec.lambda_id, rec.function_id, rec.links = "a" * 16, "b" * 16, links
    function = documents(rec)[1]
    assert function["links"] == links
    assert Trace("x", [function]).spans_of("function")[0].links == (ROOT, sqs_root)


def test_the_emulator_notes_the_writer_of_each_stream_record(monkeypatch: pytest.MonkeyPatch) -> None:
    ddb: Any = guard.module(stream_links.DYNAMODB, stream_links.NAME)
    monkeypatch.setattr(ddb, "handle_request", ddb.handle_request)
    monkeypatch.setattr(ddb, "_build_change_record", ddb._build_change_record)
    stream_links.apply()
    stream_links.apply()  # twice in one process: applied once
    assert stream_links.NAME in getattr(ddb._build_change_record, guard.MARK)
    table = {
        "pk_name": "id",
        "sk_name": None,
        "TableArn": "arn:aws:dynamodb:us-east-1:0:table/t",
        "LatestStreamArn": "s",
    }
    token = INBOUND_TRACE_HEADER.set(f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=1")
    try:
        record = ddb._build_change_record(table, "INSERT", None, {"id": {"S": "1"}}, "NEW_IMAGE")
    finally:
        INBOUND_TRACE_HEADER.reset(token)
    assert stream_links.links_for({"Records": [record]}) == [{"trace_id": ROOT, "id": "53995c3f42cd8ad8"}]
    assert "harness" not in str(record)  # the record the function receives is unchanged

    async def seen(method: str, path: str, headers: dict, body: bytes, query_params: dict) -> Any:
        return INBOUND_TRACE_HEADER.get()

    monkeypatch.setattr(ddb, "handle_request", seen)
    monkeypatch.setattr(ddb, "_build_change_record", ddb._build_change_record.__wrapped__)
    stream_links.apply()
    header = f"Root={ROOT};Sampled=1"
    assert asyncio.run(ddb.handle_request("POST", "/", {"x-amzn-trace-id": header}, b"", {})) == header


def test_the_adaptation_refuses_a_changed_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    ddb: Any = guard.module(stream_links.DYNAMODB, stream_links.NAME)
    monkeypatch.setattr(ddb, "_build_change_record", lambda table, event_name: None)
    with pytest.raises(guard.AdaptationError, match="_build_change_record takes"):
        stream_links.apply()
