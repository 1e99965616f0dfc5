import json
import os
import time

import boto3
import pytest


@pytest.fixture(scope="module")
def state_machine_arn():
    stack = boto3.client("cloudformation").describe_stacks(StackName=os.environ["AWS_SAM_STACK_NAME"])["Stacks"][0]
    return next(o["OutputValue"] for o in stack["Outputs"] if o["OutputKey"] == "PaymentStateMachineArn")


def run_execution(state_machine_arn, payload, timeout=60):
    sfn = boto3.client("stepfunctions")
    execution_arn = sfn.start_execution(stateMachineArn=state_machine_arn, input=json.dumps(payload))["executionArn"]
    deadline = time.time() + timeout
    while True:
        execution = sfn.describe_execution(executionArn=execution_arn)
        if execution["status"] != "RUNNING" or time.time() > deadline:
            return execution
        time.sleep(1)


def test_valid_payment_is_charged(state_machine_arn):
    execution = run_execution(state_machine_arn, {"amount": 42, "currency": "EUR"})
    assert execution["status"] == "SUCCEEDED", execution
    output = json.loads(execution["output"])
    assert output["status"] == "CHARGED"
    assert output["amount"] == 42
    assert output["currency"] == "EUR"


def test_invalid_payment_is_rejected(state_machine_arn):
    execution = run_execution(state_machine_arn, {"amount": 42, "currency": "XXX"})
    assert execution["status"] == "FAILED"
    assert execution["error"] == "PaymentRejected"


def test_declined_charge_fails_the_execution(state_machine_arn):
    execution = run_execution(state_machine_arn, {"amount": 50_000, "currency": "USD"})
    assert execution["status"] == "FAILED"
    assert execution["error"] == "ChargeFailed"


def test_history_shows_both_lambda_tasks(state_machine_arn):
    execution = run_execution(state_machine_arn, {"amount": 7, "currency": "GBP"})
    events = boto3.client("stepfunctions").get_execution_history(executionArn=execution["executionArn"])["events"]
    scheduled = [e for e in events if e["type"] == "TaskScheduled"]
    assert [e["taskScheduledEventDetails"]["resource"] for e in scheduled] == ["invoke", "invoke"]
