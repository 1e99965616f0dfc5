"""Traces on the embedded emulator: a test finds its trace by the id it sent.

A MiniStack is started the way ``harness.targets.local`` starts it, with
``AWS_XRAY_DAEMON_ADDRESS`` pointing at a harness ``Collector``. A tiny Python
function with ``Tracing: Active`` uses aws-xray-sdk ``patch_all`` and writes to
DynamoDB. The test invokes it (directly, and through a REST API) with a client
instrumented by ``harness.traces.propagation``, and checks that the function's
DynamoDB subsegment arrives under the test's own trace id, and that the trace
has the shape it has on AWS: client -> Lambda -> function -> DynamoDB.

That only works because ``harness.emulator.adapt`` makes the local Lambda
honour the inbound ``X-Amzn-Trace-Id``; the last tests check that the
adaptation fails loudly instead of silently not applying.
"""

from __future__ import annotations

import io
import json
import sys
import time
import types
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from e2e_support import REGION, Emulator, zip_packages

from harness import procs
from harness.emulator import adapt
from harness.errors import TargetError
from harness.targets.local import launch
from harness.traces import ids
from harness.traces.collector import Collector
from harness.traces.local_source import LocalSource
from harness.traces.model import Trace
from harness.traces.propagation import CurrentContext, TraceContext, instrument, instrument_requests
from harness.traces.run import TraceHandle

pytestmark = pytest.mark.e2e

TABLE = "trace-orders"
FUNCTION = "trace-writer"

FUNCTION_CODE = """
import json
import os
import time

import boto3
from aws_xray_sdk.core import patch_all

patch_all()
TABLE = boto3.resource("dynamodb").Table(os.environ["TABLE"])


def handler(event, context):
    body = event.get("body")
    item = json.loads(body) if isinstance(body, str) else event
    time.sleep(float(item.get("sleep", 0)))
    TABLE.put_item(Item={"pk": str(item.get("pk", "none"))})
    return {"statusCode": 201, "body": json.dumps({"stored": item.get("pk")})}
"""


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    c = Collector().start()
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory, collector: Collector) -> Iterator[Emulator]:
    """MiniStack as harness.targets.local starts it, sending traces to ``collector``."""
    base = tmp_path_factory.mktemp("traced-emulator")
    try:
        launched = launch(base, region=REGION, extra_env={"AWS_XRAY_DAEMON_ADDRESS": collector.address})
    except TargetError as exc:
        pytest.fail(f"the traced emulator did not start: {exc.message}", pytrace=False)
    try:
        yield Emulator(pid=launched.pid, port=launched.port, log_path=launched.log_path)
    finally:
        procs.stop_tree(launched.pid)


@pytest.fixture(scope="module")
def function_arn(emulator: Emulator) -> str:
    """A table, a role allowed to write it (AUTH=true enforces it), and the traced function."""
    emulator.client("dynamodb").create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    iam = emulator.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName="trace-writer-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": f"arn:aws:dynamodb:*:*:table/{TABLE}"}
        ],
    }
    iam.put_role_policy(RoleName="trace-writer-role", PolicyName="write", PolicyDocument=json.dumps(policy))
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("app.py", FUNCTION_CODE)
        zip_packages(z, "aws_xray_sdk", "wrapt")  # the SDK is the function's own, as on AWS
    lam = emulator.client("lambda")
    arn = lam.create_function(
        FunctionName=FUNCTION,
        Runtime=f"python3.{sys.version_info.minor}",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": code.getvalue()},
        TracingConfig={"Mode": "Active"},
        Environment={"Variables": {"TABLE": TABLE}},
        Timeout=30,
    )["FunctionArn"]
    lam.get_waiter("function_active_v2").wait(FunctionName=FUNCTION, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    return str(arn)


@pytest.fixture
def current() -> CurrentContext:
    return CurrentContext()


def traced_session(emulator: Emulator, current: CurrentContext) -> boto3.Session:
    session = boto3.Session(
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 - the emulator's dummy key
        region_name=REGION,
    )
    instrument(session, current)
    return session


def fetch(collector: Collector, ctx: TraceContext) -> Trace:
    """The test's trace, as the ``trace`` fixture reads it, once the function's call arrived."""
    ctx.finish()
    return TraceHandle(ctx, LocalSource(collector=collector), within=10).wait_for_call("DynamoDB")


def shape(trace: Trace) -> list[tuple[int, str, str, str | None]]:
    out: list[tuple[int, str, str, str | None]] = []

    def walk(span: Any, depth: int) -> None:
        out.append((depth, span.kind, span.service, span.operation))
        for child in span.children:
            walk(child, depth + 1)

    for root in trace.roots:
        walk(root, 0)
    return out


def test_the_function_joins_the_trace_the_test_sent(
    emulator: Emulator, collector: Collector, function_arn: str, current: CurrentContext, request: pytest.FixtureRequest
) -> None:
    ctx = TraceContext(request.node.nodeid)
    current.set(ctx)
    lam = traced_session(emulator, current).client("lambda", endpoint_url=emulator.url)
    resp = lam.invoke(FunctionName=FUNCTION, Payload=json.dumps({"pk": "order-1"}).encode())
    assert "FunctionError" not in resp, resp["Payload"].read()
    (invoke,) = ctx.calls
    assert (invoke.service, invoke.operation, invoke.resource, invoke.status) == ("Lambda", "Invoke", FUNCTION, 200)

    trace = fetch(collector, ctx)

    # What the function's SDK sent arrived under the id the test sent, below
    # the function segment Lambda records (as on AWS), itself below the
    # Lambda service segment whose parent is the test's Invoke subsegment.
    docs = collector.documents(ctx.trace_id)
    (sent,) = [d for d in docs if d.get("name") == "dynamodb"]
    (service,) = [d for d in docs if d.get("origin") == "AWS::Lambda"]
    (function,) = [d for d in docs if d.get("origin") == "AWS::Lambda::Function"]
    assert service["parent_id"] == invoke.id and function["parent_id"] == service["id"]
    assert sent["trace_id"] == ctx.trace_id and sent["parent_id"] == function["id"]
    assert sent["type"] == "subsegment" and sent["aws"]["operation"] == "PutItem" and sent["aws"]["table_name"] == TABLE

    assert [s for s in shape(trace) if s[1] != "local"] == [
        (0, "client", "client", None),
        (1, "call", "Lambda", "Invoke"),
        (2, "service", "Lambda", None),
        (3, "function", "Lambda", "Invoke"),
        (4, "call", "DynamoDB", "PutItem"),
    ]
    (fn,) = trace.functions(FUNCTION)
    assert fn.aws.get("function_arn") == function_arn  # recorded by the emulator adaptation
    assert trace.cold_starts() == [fn]  # the function's first traced invocation
    (put,) = trace.calls("DynamoDB", "PutItem", resource=TABLE)
    assert put.parent is fn and put.status == 200
    trace.assert_no_call("DynamoDB", "Scan")
    assert trace.errors() == []

    # A second test: its own trace, a warm runtime.
    ctx2 = TraceContext(request.node.nodeid + "[again]")
    current.set(ctx2)
    lam.invoke(FunctionName=FUNCTION, Payload=json.dumps({"pk": "order-2"}).encode())
    again = fetch(collector, ctx2)
    assert ctx2.trace_id != ctx.trace_id
    assert [s.operation for s in again.calls("DynamoDB")] == ["PutItem"]
    assert again.functions(FUNCTION) and again.cold_starts() == []
    assert len(trace.calls("DynamoDB")) == 1  # nothing of the second test leaked into the first


def test_an_api_gateway_request_carries_the_trace_to_the_function(
    emulator: Emulator, collector: Collector, function_arn: str, current: CurrentContext, request: pytest.FixtureRequest
) -> None:
    apigw = emulator.client("apigateway")
    api = apigw.create_rest_api(name="trace-api")["id"]
    root = next(r["id"] for r in apigw.get_resources(restApiId=api)["items"] if r["path"] == "/")
    res = apigw.create_resource(restApiId=api, parentId=root, pathPart="orders")["id"]
    apigw.put_method(restApiId=api, resourceId=res, httpMethod="POST", authorizationType="NONE")
    apigw.put_integration(
        restApiId=api,
        resourceId=res,
        httpMethod="POST",
        type="AWS_PROXY",
        integrationHttpMethod="POST",
        uri=f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{function_arn}/invocations",
    )
    apigw.create_deployment(restApiId=api, stageName="Prod")
    emulator.client("lambda").add_permission(
        FunctionName=FUNCTION,
        StatementId="apigw",
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
    )

    ctx = TraceContext(request.node.nodeid)
    current.set(ctx)
    http = requests.Session()
    undo = instrument_requests(current, session=http)
    try:
        url = f"{emulator.url}/_aws/execute-api/{api}/Prod/orders"
        resp = http.post(url, json={"pk": "order-3"}, timeout=30)
    finally:
        undo()
    assert resp.status_code == 201, resp.text
    (call,) = ctx.calls
    trace = fetch(collector, ctx)

    docs = collector.documents(ctx.trace_id)
    (service,) = [d for d in docs if d.get("origin") == "AWS::Lambda"]
    assert service["parent_id"] == call.id  # the gateway passed the test's header on
    assert [s for s in shape(trace) if s[1] != "local"] == [
        (0, "client", "client", None),
        (1, "call", "API Gateway", "POST"),
        (2, "service", "API Gateway", None),
        (3, "call", "Lambda", "Invoke"),
        (4, "service", "Lambda", None),
        (5, "function", "Lambda", "Invoke"),
        (6, "call", "DynamoDB", "PutItem"),
    ]
    assert trace.calls("API Gateway", "POST", resource="/orders")[0].status == 201
    assert [f.name for f in trace.functions()] == [FUNCTION]


def test_a_header_without_a_trace_root_is_ignored(emulator: Emulator, collector: Collector, function_arn: str) -> None:
    """MiniStack's own behaviour stays for callers that send no usable header: a fresh trace."""
    lam = emulator.client("lambda")
    lam.meta.events.register(
        "before-call.lambda.Invoke", lambda params, **_: params["headers"].__setitem__(ids.HEADER, "Self=1-x")
    )
    before = set(collector.trace_ids())
    lam.invoke(FunctionName=FUNCTION, Payload=b'{"pk": "order-4"}')
    collector.flush()
    seen = [t for t in collector.trace_ids() if t not in before]
    assert len(seen) == 1 and ids.is_trace_id(seen[0])


# -- the adaptation fails loudly -------------------------------------------------


def test_apply_all_refuses_an_emulator_without_the_patched_function(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("ministack.services.lambda_svc")  # lacks _xray_trace_id_for_invocation
    monkeypatch.setitem(sys.modules, "ministack.services.lambda_svc", fake)
    with pytest.raises(adapt.AdaptationError, match="_xray_trace_id_for_invocation is missing"):
        adapt.apply_all()


def test_apply_all_refuses_a_changed_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("ministack.services.lambda_svc")
    fake._xray_trace_id_for_invocation = lambda config: None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ministack.services.lambda_svc", fake)
    with pytest.raises(adapt.AdaptationError, match=r"takes \(config\), expected \(config, inbound_trace_header\)"):
        adapt.apply_all()


def test_the_emulator_log_shows_no_adaptation_error(emulator: Emulator) -> None:
    text = Path(emulator.log_path).read_text(errors="replace")
    assert "AdaptationError" not in text and "Ready" in text


def test_the_emulator_tells_the_run_how_much_work_is_ahead_of_lambda(emulator: Emulator) -> None:
    """harness.emulator.pending_work: the route answers from the emulator's state (no mapping, nothing ahead)."""
    from harness.emulator.pending_work import PATH, ask

    deadline = time.monotonic() + 30  # hang guard: an invocation of an earlier test may still be finishing
    while (busy := ask(emulator.url)) != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert busy == 0, f"GET {PATH} answered {busy}"


def test_an_asynchronous_invocation_is_work_ahead_until_its_segments_are_in(
    emulator: Emulator, collector: Collector, function_arn: str
) -> None:
    """A late consumer's trace is collected when the run ends on the emulator's signal (no quiet period)."""
    from harness.emulator.pending_work import ask

    def function_segments() -> int:
        docs = (d for t in collector.trace_ids() for d in collector.documents(t))
        return sum(1 for d in docs if d.get("origin") == "AWS::Lambda::Function")

    before = function_segments()
    lam = emulator.client("lambda")
    payload = json.dumps({"pk": "late-1", "sleep": 1.0}).encode()
    assert lam.invoke(FunctionName=FUNCTION, InvocationType="Event", Payload=payload)["StatusCode"] == 202
    assert (ask(emulator.url) or 0) >= 1  # its delivery thread, then its invocation (the handler sleeps 1 s)
    assert collector.wait_quiet(within=60.0, pending=lambda: ask(emulator.url)) is True  # within: a hang guard
    assert function_segments() == before + 1  # in when the wait ended, not fetched by a wait of its own
    item = emulator.client("dynamodb").get_item(TableName=TABLE, Key={"pk": {"S": "late-1"}})
    assert "Item" in item
