"""Traces as AWS records them, end to end through the plugin on the emulator.

One throw-away project deploys ``stacks/traced`` (packaged: the function's
folder bundles aws-xray-sdk) (a state machine with X-Ray
tracing: a Lambda task then a DynamoDB PutItem task; an HTTP API with a
``$default`` and a ``v1`` stage in front of the same function) and runs:

* a YAML scenario that starts the state machine and asserts, with
  ``expect_trace``, one trace test -> Step Functions -> Lambda -> DynamoDB with
  the PutItem task visible;
* a Python test of the trace's shape (the state machine segment under the
  test's StartExecution call, one subsegment per state, the function under
  its Lambda task);
* a Python test calling ``GET /items`` on both stages of the HTTP API,
  asserting ``resource="/items"`` with the stage of each, and no API Gateway
  node (X-Ray records no segments for HTTP APIs).

The function behind the HTTP API starts traces of its own, as on AWS (HTTP
APIs do not pass the trace on): the run names them as unattributed in the
terminal summary and in the HTML report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from e2e_support import Runner, packaged_project

pytestmark = pytest.mark.e2e

TRACED_STACK = Path(__file__).resolve().parent / "stacks" / "traced"

FLOW_YAML = """\
scenarios:
  - name: a state machine run joins the test's trace
    steps:
      - start_execution: {state_machine: FlowArn, input: {pk: "{{ unique }}"}}
        expect: {status: SUCCEEDED}
      - expect_trace:
          within: 10
          calls:
            - {service: Step Functions, operation: StartExecution, count: 1}
            - {service: Lambda, operation: Invoke, count: 1}
            - {service: DynamoDB, operation: GetItem, count: 1}
            - {service: DynamoDB, operation: PutItem, resource: TableName, count: 1}
          no_errors: true
"""

SHAPE_TEST = """\
import json


def shape(trace):
    out = []

    def walk(span, depth):
        if span.kind == "local" and span.name in ("Initialization", "Invocation", "Overhead"):
            return  # Lambda's own subsegments of the function segment
        out.append((depth, span.kind, span.service, span.operation, span.name if span.kind == "local" else None))
        for child in span.children:
            walk(child, depth + 1)

    for root in trace.roots:
        walk(root, 0)
    return out


def test_flow_trace_shape(stack, trace):
    sfn = stack.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=stack.outputs["FlowArn"], input=json.dumps({"pk": "py-1"}))["executionArn"]
    t = trace.wait_for_call("DynamoDB", "PutItem", within=20)
    print(t.render())
    assert sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"
    assert shape(t) == [
        (0, "client", "client", None, None),
        (1, "call", "Step Functions", "StartExecution", None),
        (2, "service", "Step Functions", None, None),
        (3, "local", "local", "Check", "Check"),
        (4, "call", "Lambda", "Invoke", None),
        (5, "service", "Lambda", None, None),
        (6, "function", "Lambda", "Invoke", None),
        (7, "call", "DynamoDB", "GetItem", None),
        (3, "local", "local", "Store", "Store"),
        (4, "call", "DynamoDB", "PutItem", None),
    ], t.render()
    (machine,) = [s for s in t.walk() if s.kind == "service" and s.service == "Step Functions"]
    assert machine.origin == "AWS::StepFunctions::StateMachine"
    assert stack.outputs["FlowArn"] in machine.resources
    (put,) = t.calls("DynamoDB", "PutItem", resource=stack.outputs["TableName"])
    assert put.parent.name == "Store" and not put.failed
"""

HTTP_TEST = """\
import requests


def test_items_route_on_both_stages(stack, trace):
    base = stack.outputs["HttpApiUrl"]
    assert requests.get(f"{base}/items", timeout=30).status_code == 200
    assert requests.get(f"{base}/v1/items", timeout=30).status_code == 200
    t = trace.fetch()
    print(t.render())
    calls = t.assert_calls("API Gateway", "GET", resource="/items", count=2)
    assert sorted(c.resources[1].split("/", 1)[1] for c in calls) == ["$default", "v1"]
    # X-Ray records no segment for an HTTP API, and its function does not join the caller's trace
    assert [s for s in t.walk() if s.kind != "client" and s.kind != "call"] == []
"""


def test_step_functions_and_http_apis_traced_as_on_aws(tmp_path: Path, run: Runner) -> None:
    project = packaged_project(
        TRACED_STACK,
        tmp_path / "project",
        {"flow.yaml": FLOW_YAML, "test_flow.py": SHAPE_TEST, "test_http_api.py": HTTP_TEST},
        app="mini",
        bundles={"worker": ["aws_xray_sdk", "wrapt"]},  # the function's own X-Ray SDK, as on AWS
    )
    res = run(project, "tests/integration", "-p", "no:randomly", "-v", "-s")
    assert res.returncode == 0, res.output
    assert "a state machine run joins the test's trace PASSED" in res.output, res.output

    traces = project / "harness-report" / "traces"
    index = json.loads((traces / "index.json").read_text())
    assert [e["complete"] for e in index] == [True, True, True], index
    assert "3 of 3 collected" in res.output

    # The HTTP API's two invocations started traces of their own: counted and named.
    [head] = res.lines("traces: unattributed: ")
    assert "segments in 2 traces no test started" in head, res.output
    [named] = [line for line in res.output.splitlines() if line.startswith("branchstack:   2 traces, e.g. 1-")]
    assert "Lambda function " in named and "-Worker-" in named and "DynamoDB GetItem" in named, named
    stray = json.loads((traces / "unattributed.json").read_text())
    assert len(stray) == 2 and all(any(n.startswith("DynamoDB GetItem") for n in t["named"]) for t in stray), stray
    page = (traces / "index.html").read_text(encoding="utf-8")
    assert '<section id="unattributed"><h2>Unattributed</h2>' in page
    for t in stray:
        assert t["trace_id"] in page
