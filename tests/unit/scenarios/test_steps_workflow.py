"""The start_execution step (Step Functions), against moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from harness.scenarios.loader import load_text
from harness.scenarios.report import StepResult
from harness.scenarios.runner import run_scenario
from harness.scenarios.runtime import StepRuntime
from harness.scenarios.steps import StepError

REGION = "us-east-1"
DEFINITION = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})


@pytest.fixture
def machine(aws_env: None) -> Iterator[str]:
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name=REGION)
        yield sfn.create_state_machine(
            name="orders-test-Flow", definition=DEFINITION, roleArn="arn:aws:iam::123456789012:role/flow"
        )["stateMachineArn"]


@pytest.fixture
def runtime(machine: str, make_runtime: Any) -> StepRuntime:
    return make_runtime(outputs={"FlowArn": machine}, resources={"Flow": machine})


def run(step: str, runtime: StepRuntime) -> list[StepResult]:
    body = "".join("      " + line + "\n" for line in step.strip().splitlines())
    [scenario] = load_text("scenarios:\n  - name: s\n    steps:\n" + body, "s.yaml").scenarios
    return run_scenario(scenario, runtime)


def test_start_without_waiting(runtime: StepRuntime, machine: str) -> None:
    [result] = run(
        "- start_execution: {state_machine: FlowArn, input: {order_id: o-1}, name: first, wait: false}\n"
        "  expect: {status: RUNNING, execution_arn: !re ':execution:orders-test-Flow:first$'}",
        runtime,
    )
    assert result.status == "passed" and result.name == "start_execution FlowArn"
    sfn = runtime.stack.client("stepfunctions")
    [execution] = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"]) == {"order_id": "o-1"}


def test_waits_until_the_execution_ends(runtime: StepRuntime, machine: str) -> None:
    sfn = runtime.stack.client("stepfunctions")
    real_sleep = runtime.sleep

    def sleep(seconds: float) -> None:  # the execution ends while the step polls
        for e in sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING")["executions"]:
            sfn.stop_execution(executionArn=e["executionArn"], error="Stopped", cause='{"why": "test"}')
        real_sleep(seconds)

    object.__setattr__(runtime, "sleep", sleep)
    [result] = run("- start_execution: {state_machine: orders-test-Flow}\n  expect: {status: ABORTED}", runtime)
    assert result.status == "passed"


def test_an_execution_still_running_after_the_wait_is_an_error(runtime: StepRuntime) -> None:
    with pytest.raises(StepError, match="still RUNNING after the wait"):
        run("- start_execution: {state_machine: Flow, within: 1}", runtime)


def test_an_unknown_state_machine_is_named(runtime: StepRuntime) -> None:
    with pytest.raises(StepError, match="no state machine named 'nope'"):
        run("- start_execution: {state_machine: nope}", runtime)


def test_expect_execution_waits_while_the_execution_runs(runtime: StepRuntime, machine: str) -> None:
    sfn = runtime.stack.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine, input='{"order_id": "o-9"}')["executionArn"]
    real_sleep = runtime.sleep
    polls: list[float] = []

    def sleep(seconds: float) -> None:  # the execution ends after the step has seen it running
        polls.append(seconds)
        sfn.stop_execution(executionArn=arn, error="Stopped", cause="test")
        real_sleep(seconds)

    object.__setattr__(runtime, "sleep", sleep)
    [result] = run("- expect_execution: {state_machine: Flow, input: {order_id: [o-9]}, within: 5}", runtime)
    assert result.status == "passed"
    assert polls  # no expect: it waited only because the execution was running


def test_expect_execution_names_an_execution_that_never_ends(runtime: StepRuntime, machine: str) -> None:
    runtime.stack.client("stepfunctions").start_execution(stateMachineArn=machine, input='{"order_id": "o-8"}')
    with pytest.raises(AssertionError, match="not ended yet"):
        run("- expect_execution: {state_machine: Flow, input: {order_id: [o-8]}, within: 0.5}", runtime)
