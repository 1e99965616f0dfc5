from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions
import pytest
import requests
from botocore.config import Config
from moto import mock_aws

from harness.traces import ids
from harness.traces.propagation import (
    CLIENT_ANNOTATION,
    CurrentContext,
    TraceContext,
    instrument,
    instrument_requests,
    segment_name,
)

REGION = "us-east-1"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def current() -> CurrentContext:
    holder = CurrentContext()
    holder.set(TraceContext("tests/test_x.py::test_orders[1]"))
    return holder


def sent_headers(client: Any) -> list[dict[str, str]]:
    """Record the headers of every request the client sends (before moto answers it)."""
    seen: list[dict[str, str]] = []

    def capture(request: Any, **_: Any) -> None:
        seen.append({k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()})

    client.meta.events.register_first("before-send", capture)
    return seen


def sent_bodies(client: Any) -> list[bytes]:
    seen: list[bytes] = []
    client.meta.events.register_first("before-send", lambda request, **_: seen.append(request.body))
    return seen


def make_table(session: boto3.Session, name: str = "orders") -> Any:
    ddb = session.client("dynamodb", region_name=REGION)
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return ddb


def test_every_call_carries_the_test_trace_and_becomes_a_subsegment(aws: None, current: CurrentContext) -> None:
    session = boto3.Session(region_name=REGION)
    instrument(session, current)
    ddb = make_table(session)
    headers = sent_headers(ddb)
    ddb.put_item(TableName="orders", Item={"pk": {"S": "1"}})

    ctx = current()
    assert ctx is not None
    create, put = ctx.calls
    assert (create.service, create.operation, create.resource) == ("DynamoDB", "CreateTable", "orders")
    assert (put.service, put.operation, put.resource, put.status) == ("DynamoDB", "PutItem", "orders", 200)
    h = ids.parse_header(headers[-1][ids.HEADER])
    assert (h.root, h.parent, h.sampled) == (ctx.trace_id, put.id, True)
    assert put.end is not None and put.end >= put.start
    assert not (put.error or put.fault or put.throttle)

    ctx.finish()
    doc = ctx.segment_document()
    assert doc["trace_id"] == ctx.trace_id and doc["id"] == ctx.segment_id
    assert doc["annotations"][CLIENT_ANNOTATION] is True
    assert "in_progress" not in doc and doc["end_time"] >= doc["start_time"]
    sub = doc["subsegments"][1]
    assert sub == {
        "id": put.id,
        "name": "DynamoDB",
        "start_time": put.start,
        "end_time": put.end,
        "namespace": "aws",
        "http": {"response": {"status": 200}},
        "aws": {"operation": "PutItem", "table_name": "orders", "region": REGION, "request_id": put.aws["request_id"]},
    }
    json.dumps(doc)  # plain JSON, ready for a report or PutTraceSegments


def test_failed_calls_are_flagged(aws: None, current: CurrentContext) -> None:
    session = boto3.Session(region_name=REGION)
    instrument(session, current)
    ddb = session.client("dynamodb", region_name=REGION)
    with pytest.raises(ddb.exceptions.ResourceNotFoundException):
        ddb.get_item(TableName="nope", Key={"pk": {"S": "1"}})
    ctx = current()
    assert ctx is not None
    (call,) = ctx.calls
    assert call.status == 400 and call.error and not call.fault and not call.throttle
    assert call.document()["error"] is True


def test_unreachable_endpoint_is_a_fault(current: CurrentContext) -> None:
    session = boto3.Session(region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")  # noqa: S106
    instrument(session, current)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused, the port stays ours
        ddb = session.client(
            "dynamodb",
            endpoint_url=f"http://127.0.0.1:{held.getsockname()[1]}",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1),
        )
        with pytest.raises(botocore.exceptions.EndpointConnectionError):
            ddb.list_tables()
    ctx = current()
    assert ctx is not None
    (call,) = ctx.calls
    assert call.fault and call.status is None and "EndpointConnectionError" in (call.exception or "")
    assert call.document()["cause"]["exceptions"][0]["message"].startswith("EndpointConnectionError")


def test_status_and_error_codes_map_to_xray_flags() -> None:
    ctx = TraceContext("t")
    cases = {
        (429, None): (True, False, True),
        (400, "ThrottlingException"): (True, False, True),
        (400, "ProvisionedThroughputExceededException"): (True, False, True),
        (400, "ValidationException"): (True, False, False),
        (500, "InternalServerError"): (False, True, False),
        (200, None): (False, False, False),
    }
    for (status, code), (error, fault, throttle) in cases.items():
        call = ctx.begin_aws_call("DynamoDB", "PutItem")
        call.finish(status=status, error_code=code)
        assert (call.error, call.fault, call.throttle) == (error, fault, throttle), (status, code)


def test_hooks_do_nothing_without_a_current_test(aws: None) -> None:
    holder = CurrentContext()  # nothing set: between tests, or in a session fixture
    session = boto3.Session(region_name=REGION)
    instrument(session, holder)
    ddb = make_table(session)
    headers = sent_headers(ddb)
    ddb.list_tables()
    assert ids.HEADER not in headers[-1]


def test_a_call_refused_by_validation_is_not_recorded(aws: None, current: CurrentContext) -> None:
    session = boto3.Session(region_name=REGION)
    instrument(session, current)
    ddb = session.client("dynamodb", region_name=REGION)
    with pytest.raises(botocore.exceptions.ParamValidationError):
        ddb.put_item(TableName="orders")  # no Item
    ctx = current()
    assert ctx is not None and ctx.calls == []


def test_instrumenting_twice_is_idempotent_and_undo_removes_the_hooks(aws: None, current: CurrentContext) -> None:
    session = boto3.Session(region_name=REGION)
    ddb = make_table(session)
    undo = instrument(ddb, current)
    instrument(ddb, current)
    ddb.list_tables()
    ctx = current()
    assert ctx is not None and len(ctx.calls) == 1
    undo()
    ddb.list_tables()
    assert len(ctx.calls) == 1


def test_sqs_messages_carry_the_trace_to_consumers(aws: None, current: CurrentContext) -> None:
    session = boto3.Session(region_name=REGION)
    instrument(session, current)
    sqs = session.client("sqs", region_name=REGION)
    bodies = sent_bodies(sqs)
    url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="one")
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "two"}, {"Id": "b", "MessageBody": "3"}])
    mine = "Root=1-6b043315-23214c168721134c5ded6f95;Parent=f36c9e124ce71a85;Sampled=1"
    sqs.send_message(
        QueueUrl=url,
        MessageBody="own",
        MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": mine}},
    )
    batch_entries = json.loads(bodies[2])["Entries"]
    got: list[dict[str, Any]] = []
    while len(got) < 4:
        got += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"])[
            "Messages"
        ]
    ctx = current()
    assert ctx is not None
    send, batch = ctx.calls[1], ctx.calls[2]
    assert send.resource == url and send.service == "SQS"
    by_body = {m["Body"]: m["Attributes"].get("AWSTraceHeader") for m in got}
    one = ids.parse_header(by_body["one"])
    assert (one.root, one.parent) == (ctx.trace_id, send.id)
    # moto drops system attributes of batch entries; the request carried them:
    batch_headers = [e["MessageSystemAttributes"]["AWSTraceHeader"]["StringValue"] for e in batch_entries]
    assert [ids.parse_header(v).parent for v in batch_headers] == [batch.id, batch.id]
    assert by_body["own"] == mine  # a header the test set itself is kept


def test_eventbridge_entries_carry_a_trace_header(aws: None, current: CurrentContext) -> None:
    session = boto3.Session(region_name=REGION)
    instrument(session, current)
    events = session.client("events", region_name=REGION)
    bodies = sent_bodies(events)
    events.put_events(
        Entries=[
            {"Source": "s", "DetailType": "d", "Detail": "{}"},
            {"Source": "s2", "DetailType": "d", "Detail": "{}"},
        ]
    )
    ctx = current()
    assert ctx is not None
    (call,) = ctx.calls
    entries = json.loads(bodies[-1])["Entries"]
    assert [ids.parse_header(e["TraceHeader"]).parent for e in entries] == [call.id, call.id]


class _Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = json.dumps({"trace": self.headers.get(ids.HEADER)}).encode()
        self.send_response(200 if self.path != "/missing" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    # shutdown() waits for the next poll: 0.5 s by default
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_requests_calls_are_traced(echo: str, current: CurrentContext) -> None:
    original = requests.Session.send
    undo = instrument_requests(current)
    try:
        resp = requests.get(f"{echo}/orders/1", timeout=5)
        requests.get(f"{echo}/missing", timeout=5)
    finally:
        undo()
    assert requests.Session.send is original
    ctx = current()
    assert ctx is not None
    ok, bad = ctx.calls
    assert ids.parse_header(resp.json()["trace"]).parent == ok.id
    assert (ok.namespace, ok.method, ok.url, ok.status, ok.service) == (
        "remote",
        "GET",
        f"{echo}/orders/1",
        200,
        "127.0.0.1",
    )
    assert bad.status == 404 and bad.error
    assert ok.document()["http"] == {
        "request": {"url": f"{echo}/orders/1", "method": "GET"},
        "response": {"status": 200},
    }
    requests.get(f"{echo}/after", timeout=5)
    assert len(ctx.calls) == 2  # undone


def test_requests_on_one_session_only(echo: str, current: CurrentContext) -> None:
    sess = requests.Session()
    undo = instrument_requests(current, session=sess)
    sess.get(f"{echo}/a", timeout=5)
    requests.get(f"{echo}/b", timeout=5)
    undo()
    sess.get(f"{echo}/c", timeout=5)
    ctx = current()
    assert ctx is not None
    assert [c.url for c in ctx.calls] == [f"{echo}/a"]


def test_http_call_for_any_client(echo: str) -> None:
    ctx = TraceContext("t")
    with ctx.http_call("GET", f"{echo}/x") as call:
        resp = requests.get(f"{echo}/x", headers=call.headers, timeout=5)
        call.status = resp.status_code
    with pytest.raises(RuntimeError), ctx.http_call("POST", f"{echo}/y"):
        raise RuntimeError("client blew up")
    first, second = ctx.calls
    assert ids.parse_header(resp.json()["trace"]).parent == first.id and first.status == 200
    assert second.fault and "client blew up" in (second.exception or "")


def test_segment_document_before_the_test_ends_and_name_rules() -> None:
    ctx = TraceContext("tests/x.py::test_a[<weird> 'param']", trace_id="1-6b043315-23214c168721134c5ded6f95")
    doc = ctx.segment_document()
    assert doc["in_progress"] is True and "end_time" not in doc
    assert doc["name"] == "tests/x.py::test_a__weird_ _param__"
    assert doc["annotations"]["harness_test"] == "tests/x.py::test_a[<weird> 'param']"
    ctx.finish(failed=True)
    assert ctx.segment_document()["error"] is True
    assert len(segment_name("x" * 500)) == 200


class _Events:
    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}

    def register(self, event: str, fn: Any, unique_id: str) -> None:
        self.handlers[event] = fn

    def unregister(self, event: str, unique_id: str) -> None:
        self.handlers.pop(event, None)


def test_every_client_of_the_process_can_be_traced(aws: None, current: CurrentContext) -> None:
    from harness.traces.propagation import instrument_botocore

    undo = instrument_botocore(current)
    try:
        plain = boto3.client("sqs", region_name=REGION)  # any client, however made
        resource = boto3.resource("dynamodb", region_name=REGION)
        headers = sent_headers(plain)
        plain.list_queues()
        list(resource.tables.all())
    finally:
        undo()
    ctx = current()
    assert ctx is not None
    assert [(c.service, c.operation) for c in ctx.calls] == [("SQS", "ListQueues"), ("DynamoDB", "ListTables")]
    assert ids.parse_header(headers[-1][ids.HEADER]).parent == ctx.calls[0].id
    boto3.client("sqs", region_name=REGION).list_queues()
    assert len(ctx.calls) == 2  # undone: new clients are plain again


def test_a_busy_test_keeps_memory_flat() -> None:
    ctx = TraceContext("load", max_calls=3)
    for _ in range(5):
        ctx.begin_aws_call("DynamoDB", "GetItem").finish(status=200)
    assert len(ctx.calls) == 3 and ctx.dropped_calls == 2
    assert ctx.segment_document()["metadata"] == {"harness": {"dropped_calls": 2}}


def test_clients_made_before_the_tracing_starts_are_traced_when_handed_to_it(aws: None) -> None:
    """The session makes its tests' clients while it waits for the stack, before the tracing knows it."""
    from harness.pytest.tracing import RunTracing
    from harness.traces.run import TraceInfo

    made_ahead = boto3.client("sqs", region_name=REGION)
    not_handed = boto3.client("sqs", region_name=REGION)
    tracing = RunTracing(TraceInfo(kind="local", address="127.0.0.1:9", spool_dir=None, within=1.0))
    tracing.activate({"name": "s", "outputs": {}, "target": {}}, [made_ahead])  # type: ignore[typeddict-item]
    try:
        ctx = tracing.begin("test_x")
        assert ctx is not None
        made_ahead.list_queues()
        not_handed.list_queues()  # made before, never handed over: not the test's
    finally:
        tracing.close()
    assert [(c.service, c.operation) for c in ctx.calls] == [("SQS", "ListQueues")]
