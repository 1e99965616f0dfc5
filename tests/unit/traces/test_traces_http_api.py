"""HTTP APIs (API Gateway v2) labelled right: `$default` and named stages, no stage node."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from traces_support import FUNCTION_SEGMENT, lambda_segments, sdk_subsegment

from harness.traces import local_nodes, propagation
from harness.traces.apistages import HttpApiStages
from harness.traces.collector import Received
from harness.traces.model import Trace
from harness.traces.propagation import CurrentContext, TraceContext, http_api_fields, instrument_requests, untraced


class _Api(http.server.BaseHTTPRequestHandler):
    """An HTTP API answers with ``apigw-requestid``, a REST API without it (as on AWS and MiniStack)."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        if "/http123" in self.path:
            self.send_header("apigw-requestid", "Yk0pQjwXoAMEV5g=")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    # shutdown() waits for the next poll: 0.5 s by default
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/_aws/execute-api"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def current() -> CurrentContext:
    c = CurrentContext()
    c.set(TraceContext("tests/test_api.py::test_items"))
    return c


def test_default_and_named_stages_are_told_apart(api: str, current: CurrentContext) -> None:
    asked: list[str] = []

    def stages(api_id: str) -> frozenset[str]:
        asked.append(api_id)
        return frozenset({"v1"})

    sess = requests.Session()
    undo = instrument_requests(current, session=sess, http_api_stages=stages)
    try:
        for path in ("/http123/items", "/http123/v1/items", "/http123/", "/rest123/Prod/items"):
            assert sess.get(api + path, timeout=5).status_code == 200
    finally:
        undo()
    ctx = current()
    assert ctx is not None
    default, named, root, rest = ctx.calls
    assert default.aws == {"api_id": "http123", "stage": "$default", "route": "/items", "api_type": "HTTP"}
    assert named.aws == {"api_id": "http123", "stage": "v1", "route": "/items", "api_type": "HTTP"}
    assert root.aws["stage"] == "$default" and root.aws["route"] == "/"
    assert rest.aws == {}  # a REST API: its URL says the stage
    assert asked == ["http123"] * 3

    ctx.finish()
    trace = Trace(ctx.trace_id, [ctx.segment_document()])
    found = trace.assert_calls("API Gateway", "GET", resource="/items", count=3)
    assert [c.resources[1] for c in found] == ["http123/$default", "http123/v1", "rest123/Prod"]
    assert trace.calls("API Gateway", resource="http123/v1") == [found[1]]
    assert [c.describe().split(" (")[0] for c in found] == [
        "API Gateway GET /items on stage $default",
        "API Gateway GET /items on stage v1",
        "API Gateway GET /items",
    ]


def test_without_the_stages_the_first_segment_is_taken_for_one() -> None:
    url = "https://abc123.execute-api.eu-west-1.amazonaws.com/v1/items"
    assert http_api_fields(url, None) == {"api_id": "abc123", "stage": "v1", "route": "/items", "api_type": "HTTP"}
    assert http_api_fields(url, lambda _api: frozenset())["stage"] == "$default"  # type: ignore[index]
    assert http_api_fields("https://example.com/items", None) is None


def test_no_stage_node_is_built_for_an_http_api() -> None:
    ctx = TraceContext("t")
    call = ctx.begin_http("GET", "https://abc123.execute-api.us-east-1.amazonaws.com/items")
    call.aws.update(http_api_fields(call.url or "", lambda _api: frozenset()) or {})
    call.finish(status=200)
    ctx.finish()
    docs = [
        *lambda_segments(call.id, trace=ctx.trace_id),
        sdk_subsegment("d000000000000001", FUNCTION_SEGMENT, trace=ctx.trace_id),
    ]
    recs = [Received(doc=d, src=1) for d in docs]
    trace = Trace(ctx.trace_id, local_nodes.build(recs, [ctx.segment_document()]))
    kinds = [(s.kind, s.service) for s in trace.walk() if s.kind != "local"]
    assert kinds == [
        ("client", "client"),
        ("call", "API Gateway"),
        ("service", "Lambda"),
        ("function", "Lambda"),
        ("call", "DynamoDB"),
    ]
    assert not [s for s in trace.walk() if s.origin == "AWS::ApiGateway::Stage"]


class _FakeClient:
    def __init__(self, stages: dict[str, list[str]]) -> None:
        self.stages = stages
        self.calls: list[tuple[str, bool]] = []

    def get_stages(self, ApiId: str) -> dict[str, Any]:  # noqa: N803 - boto3's parameter name
        self.calls.append((ApiId, propagation._suppressed()))
        if ApiId not in self.stages:
            raise RuntimeError("NotFoundException")
        return {"Items": [{"StageName": n} for n in self.stages[ApiId]]}


class _FakeStack:
    def __init__(self, client: _FakeClient) -> None:
        self._client = client

    def client(self, name: str) -> _FakeClient:
        assert name == "apigatewayv2"
        return self._client


def test_stages_are_looked_up_once_per_api_outside_the_tests_trace() -> None:
    client = _FakeClient({"http123": ["$default", "v1"]})
    stages = HttpApiStages(_FakeStack(client))
    assert stages("http123") == frozenset({"v1"})
    assert stages("http123") == frozenset({"v1"})
    assert stages("rest123") is None and stages("rest123") is None
    assert client.calls == [("http123", True), ("rest123", True)]


def test_untraced_calls_are_not_recorded(api: str, current: CurrentContext) -> None:
    sess = requests.Session()
    undo = instrument_requests(current, session=sess)
    try:
        with untraced():
            sess.get(api + "/rest123/Prod/a", timeout=5)
        sess.get(api + "/rest123/Prod/b", timeout=5)
    finally:
        undo()
    ctx = current()
    assert ctx is not None and [c.url.rsplit("/", 1)[1] for c in ctx.calls if c.url] == ["b"]
    json.dumps(ctx.segment_document())
