"""The ``expect_trace`` step: validation at collection, checks at run time against a fake trace."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from harness.errors import ExpectationFailed, ScenarioError, TracesIncomplete
from harness.scenarios.loader import load_text
from harness.scenarios.runner import run_scenario
from harness.scenarios.steps import StepError
from harness.scenarios.trace_steps import parse_count
from harness.traces.model import Trace

TRACE_ID = "1-6b043315-23214c168721134c5ded6f95"
TABLE = "orders-test-OrdersTable-1A2B"
FUNCTION = "orders-test-CreateOrderFunction-9Z"
OUTPUTS = {"OrdersTableName": TABLE, "OrdersTableArn": f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}"}
RESOURCES = {"CreateOrderFunction": FUNCTION, "OrdersTable": TABLE}


def create_order_documents(*, put_status: int = 200, api_status: int = 201, puts: int = 1) -> list[dict[str, Any]]:
    """client -> API Gateway POST -> stage -> Lambda Invoke -> function (cold) -> DynamoDB PutItem(s)."""
    t = 1000.0
    client = {
        "id": "c0000000000000001",
        "name": "scenarios/x.yaml::create",
        "trace_id": TRACE_ID,
        "start_time": t,
        "in_progress": True,
        "annotations": {"harness_client": True, "harness_test": "scenarios/x.yaml::create"},
        "subsegments": [
            {
                "id": "a000000000000001",
                "name": "127.0.0.1",
                "namespace": "remote",
                "start_time": t + 0.01,
                "end_time": t + 0.2,
                "http": {
                    "request": {"method": "POST", "url": "http://127.0.0.1:4566/_aws/execute-api/abc123/Prod/orders"},
                    "response": {"status": api_status},
                },
                **({"error": True} if 400 <= api_status < 500 else {}),
            }
        ],
    }
    stage = {
        "id": "s000000000000001",
        "name": "abc123/Prod",
        "trace_id": TRACE_ID,
        "parent_id": "a000000000000001",
        "origin": "AWS::ApiGateway::Stage",
        "start_time": t + 0.01,
        "end_time": t + 0.2,
        "subsegments": [
            {
                "id": "i000000000000001",
                "name": "Lambda",
                "namespace": "aws",
                "start_time": t + 0.01,
                "end_time": t + 0.2,
                "aws": {"operation": "Invoke", "function_name": FUNCTION},
            }
        ],
    }
    function = {
        "id": "f000000000000001",
        "name": FUNCTION,
        "trace_id": TRACE_ID,
        "parent_id": "i000000000000001",
        "origin": "AWS::Lambda::Function",
        "start_time": t + 0.05,
        "end_time": t + 0.15,
        "aws": {"cold_start": True, "resource_names": [FUNCTION]},
    }
    docs = [client, stage, function]
    for n in range(puts):
        docs.append(
            {
                "id": f"d00000000000000{n}",
                "name": "DynamoDB",
                "namespace": "aws",
                "type": "subsegment",
                "trace_id": TRACE_ID,
                "parent_id": "f000000000000001",
                "start_time": t + 0.06 + n * 0.01,
                "end_time": t + 0.07 + n * 0.01,
                "http": {"response": {"status": put_status}},
                "aws": {"operation": "PutItem", "table_name": TABLE},
                **({"error": True} if put_status >= 400 else {}),
            }
        )
    return docs


class FakeTrace:
    """Stands in for the plugin's ``TraceHandle``: each fetch sees the next batch of documents."""

    def __init__(self, *batches: Sequence[dict[str, Any]]) -> None:
        self.batches = [list(b) for b in batches]
        self.trace_id = TRACE_ID
        self.fetches: list[dict[str, Any]] = []

    def fetch(self, *, within: float | None = None, accept: Callable[[Trace], bool] | None = None) -> Trace:
        self.fetches.append({"within": within, "accept": accept})
        for docs in self.batches:
            trace = Trace(TRACE_ID, docs)
            if accept is None or accept(trace):
                return trace
        raise TracesIncomplete(source="fake", within=within or 5.0, not_accepted=[TRACE_ID], found={})


def scenario(steps: str) -> Any:
    text = "scenarios:\n  - name: traced\n    steps:\n" + steps
    return load_text(text, "t.yaml").scenarios[0]


def run(make_runtime, steps: str, trace: Any) -> Any:
    runtime = make_runtime(outputs=OUTPUTS, resources=RESOURCES)
    runtime.trace = trace
    return run_scenario(scenario(steps), runtime)


CHECKS_PASS = """\
      - expect_trace:
          within: 3
          calls:
            - {service: API Gateway, operation: POST, resource: /orders, count: 1}
            - {service: Lambda, operation: Invoke, resource: CreateOrderFunction, count: 1}
            - {service: dynamodb, operation: PutItem, resource: OrdersTableName, count: ">=1"}
            - {service: DynamoDB, operation: PutItem, resource: OrdersTableArn, count: "<2"}
          no_errors: true
          max_duration: 5
          forbidden: [{service: DynamoDB, operation: Scan}, {service: SQS}]
        expect: {cold_starts: [orders-test-CreateOrderFunction-9Z], errors: !len 0}
        save: {tid: trace_id}
"""


def test_every_kind_of_check_passes_on_a_matching_trace(make_runtime) -> None:
    trace = FakeTrace(create_order_documents())
    results = run(make_runtime, CHECKS_PASS, trace)
    assert [r.status for r in results] == ["passed"]
    assert trace.fetches[0]["within"] == 3 and trace.fetches[0]["accept"] is not None


def test_it_waits_for_the_expected_calls_to_arrive(make_runtime) -> None:
    docs = create_order_documents()
    early = docs[:3]  # the function has not written yet
    trace = FakeTrace(early, docs)
    steps = "      - expect_trace: {calls: [{service: DynamoDB, operation: PutItem, count: 1}]}\n"
    assert [r.status for r in run(make_runtime, steps, trace)] == ["passed"]


def test_without_waiting_checks_it_fetches_once_without_a_condition(make_runtime) -> None:
    trace = FakeTrace(create_order_documents())
    run(make_runtime, "      - expect_trace: {forbidden: [{service: SQS}], max_duration: 1}\n", trace)
    assert trace.fetches == [{"within": None, "accept": None}]


def test_failure_lists_every_unmet_expectation_and_the_tree(make_runtime) -> None:
    trace = FakeTrace(create_order_documents(puts=2))
    steps = """\
      - expect_trace:
          within: 2
          calls:
            - {service: DynamoDB, operation: PutItem, resource: OrdersTable, count: 1}
            - {service: DynamoDB, operation: GetItem}
          forbidden: [{service: Lambda, operation: Invoke}]
          max_duration: 0.01
          errors: [{service: DynamoDB}]
"""
    with pytest.raises(ExpectationFailed) as failed:
        run(make_runtime, steps, trace)
    text = str(failed.value)
    assert "step 1/1 'expect_trace' (line 4): expect_trace (trace " + TRACE_ID + ")" in text
    assert "not met within 2s; the trace as it was then" in text
    assert "5 mismatches:" in text
    assert f"calls[0]: expected exactly 1 call(s) to DynamoDB PutItem on OrdersTable ({TABLE}), observed 2" in text
    assert "calls[1]: expected at least 1 call(s) to DynamoDB GetItem, observed 0" in text
    assert f"forbidden[0]: expected no call to Lambda Invoke, observed 1 (Lambda Invoke {FUNCTION}" in text
    assert "max_duration: expected a trace of at most 0.01s, observed 0.2" in text
    assert "errors[0]: expected a failed span of DynamoDB, observed 0 (failed spans: none)" in text
    # The trace as a tree, so the reader sees what did happen.
    assert "trace so far:\n    trace " + TRACE_ID in text
    assert f"Lambda function {FUNCTION} (100.0 ms) [cold start]" in text
    assert "faker seed:" in text


def test_a_failing_path_is_expected_with_errors(make_runtime) -> None:
    trace = FakeTrace(create_order_documents(put_status=400, api_status=409))
    steps = """\
      - expect_trace:
          errors:
            - {service: DynamoDB, operation: PutItem, resource: OrdersTableName, kind: error}
            - {service: API Gateway}
"""
    assert [r.status for r in run(make_runtime, steps, trace)] == ["passed"]
    with pytest.raises(ExpectationFailed, match=r"no_errors: expected no failed span .*observed 2"):
        run(
            make_runtime,
            "      - expect_trace: {no_errors: true}\n",
            FakeTrace(create_order_documents(put_status=400, api_status=409)),
        )
    with pytest.raises(ExpectationFailed, match=r"errors\[0\]: expected a fault span of DynamoDB"):
        run(make_runtime, "      - expect_trace: {errors: [{service: DynamoDB, kind: fault}]}\n", trace)


def test_traces_off_is_a_step_error_that_says_so(make_runtime) -> None:
    with pytest.raises(StepError) as err:
        run(make_runtime, "      - expect_trace: {no_errors: true}\n", None)
    assert "expect_trace needs this test's trace, but traces are off in this run" in str(err.value)
    assert "hint:" in str(err.value)


def test_a_trace_that_never_completes_is_a_step_error(make_runtime) -> None:
    class InProgress(FakeTrace):
        def fetch(self, *, within=None, accept=None):
            raise TracesIncomplete(source="fake", within=1.0, in_progress=[TRACE_ID])

    with pytest.raises(StepError, match="still in progress"):
        run(make_runtime, "      - expect_trace: {calls: [{service: Lambda}]}\n", InProgress())


def test_count_parsing() -> None:
    assert parse_count(2) == ("==", 2)
    assert parse_count(">=1") == (">=", 1)
    assert parse_count(" < 3 ") == ("<", 3)
    assert parse_count("=0") == ("==", 0)
    assert parse_count("4") == ("==", 4)
    for bad in ("", "many", ">=-1", "1.5", True, None, -1, 1.0):
        assert parse_count(bad) is None, bad


@pytest.mark.parametrize(
    ("step", "line", "message", "hint"),
    [
        ("      - expect_trace: {within: 3}\n", 4, "expect_trace checks nothing", "calls, no_errors, errors"),
        ("      - expect_trace:\n          calls: []\n", 5, "expect_trace.calls is empty", "e.g. calls:"),
        (
            "      - expect_trace:\n          calls:\n            - {service: Lambda, operaton: Invoke}\n",
            6,
            "unknown key 'operaton' in expect_trace.calls[0]",
            "operation",
        ),
        (
            "      - expect_trace:\n          calls:\n            - {operation: Invoke}\n",
            6,
            "expect_trace.calls[0] is missing required key 'service'",
            "service: DynamoDB",
        ),
        (
            "      - expect_trace:\n          calls:\n            - {service: Lambda, count: lots}\n",
            6,
            "expect_trace.calls[0].count is 'lots'",
            '">=1"',
        ),
        (
            "      - expect_trace:\n          calls:\n            - {service: Lambda, count: -1}\n",
            6,
            "expect_trace.calls[0].count must be >= 0",
            "at least 0",
        ),
        (
            "      - expect_trace:\n          forbidden: [{service: Dynamo}]\n",
            5,
            "expect_trace.forbidden[0].service 'Dynamo' is not a service name a trace uses",
            "did you mean 'DynamoDB'",
        ),
        (
            "      - expect_trace:\n          errors:\n            - {service: Lambda, kind: crash}\n",
            6,
            "expect_trace.errors[0].kind is 'crash'",
            "error, fault, throttle",
        ),
        (
            "      - expect_trace:\n          no_errors: true\n          errors: [{service: Lambda}]\n",
            6,
            "both `no_errors: true` and `errors`",
            "drop one",
        ),
        ("      - expect_trace: {calls: {service: Lambda}}\n", 4, "expect_trace.calls must be a list", "calls:"),
        (
            "      - expect_trace: {no_errors: true}\n        expect: {spans: 3}\n",
            5,
            "`expect_trace` observes no field 'spans'",
            "calls, cold_starts, duration, errors, trace_id",
        ),
        ("      - expect_trace: {max_duration: -1}\n", 4, "expect_trace.max_duration must be >= 0", "at least"),
    ],
)
def test_mistakes_are_collection_errors_with_line_and_hint(step: str, line: int, message: str, hint: str) -> None:
    with pytest.raises(ScenarioError) as err:
        scenario(step)
    text = str(err.value)
    assert text.startswith(f"t.yaml:{line}: "), text
    assert message in text, text
    assert "hint:" in text and hint in text.split("hint:", 1)[1], text


def test_known_and_unknown_service_spellings() -> None:
    # Any spelling the trace model knows, and services it does not know at all, are accepted.
    for service in ("dynamodb", "DynamoDB", "execute-api", "API Gateway", "sqs", "Athena", "{{ vars.svc }}"):
        step = f"      - expect_trace: {{forbidden: [{{service: '{service}'}}]}}\n"
        text = "vars: {svc: SQS}\n" + "scenarios:\n  - name: traced\n    steps:\n" + step
        assert load_text(text, "t.yaml").scenarios[0].steps[0].action == "expect_trace"


def test_unknown_resource_names_are_used_as_physical_names(make_runtime) -> None:
    trace = FakeTrace(create_order_documents())
    steps = f"      - expect_trace: {{calls: [{{service: DynamoDB, resource: {TABLE}, count: 1}}]}}\n"
    assert [r.status for r in run(make_runtime, steps, trace)] == ["passed"]
    with pytest.raises(ExpectationFailed, match="on other-table, observed 0"):
        run(make_runtime, "      - expect_trace: {calls: [{service: DynamoDB, resource: other-table}]}\n", trace)
