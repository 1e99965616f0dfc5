"""Log groups a still-running function wrote again after its stack was deleted (moto)."""

from __future__ import annotations

import threading

import boto3
import botocore.exceptions
import pytest
from moto import mock_aws

from harness import leaks


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("logs", region_name="us-east-1")


def test_a_function_log_group_written_again_is_deleted_and_nothing_else(logs) -> None:
    resources = {"Fn": "app-Fn-1", "FnLogs": "/aws/lambda/app-Fn-1", "Other": "/custom/group"}
    types = {"Fn": "AWS::Lambda::Function", "FnLogs": "AWS::Logs::LogGroup", "Other": "AWS::Logs::LogGroup"}
    clients = {"logs": logs, "lambda": boto3.client("lambda", region_name="us-east-1")}
    client_for = clients.__getitem__
    for name in ("/aws/lambda/app-Fn-1", "/custom/group"):
        logs.create_log_group(logGroupName=name)
    report = leaks.probe(client_for, resources, types)
    assert len(report.leftovers) == 2
    assert leaks.recreated_log_groups(client_for, report, resources, types) == ["/aws/lambda/app-Fn-1"]
    after = leaks.probe(client_for, resources, types)
    assert after.leftovers == ["Other (AWS::Logs::LogGroup) /custom/group"]  # not a function's: only reported


class Client:
    """A stand-in for a boto3 client whose every probe call waits for the other probes to be in flight too."""

    def __init__(self, barrier: threading.Barrier, lingering: set[str], failing: set[str]) -> None:
        self.barrier, self.lingering, self.failing = barrier, lingering, failing
        self.threads: set[str] = set()

    def _call(self, name: str) -> dict[str, object]:
        self.threads.add(threading.current_thread().name)
        self.barrier.wait(timeout=30)  # hang guard: a probe run one after the other breaks the barrier
        if name in self.failing:
            raise botocore.exceptions.ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "Get")
        if name not in self.lingering:
            raise botocore.exceptions.ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "Get")
        return {}

    def get_function(self, FunctionName: str) -> dict[str, object]:  # noqa: N803 - boto3's parameter name
        return self._call(FunctionName)

    def describe_table(self, TableName: str) -> dict[str, object]:  # noqa: N803
        return self._call(TableName)


def test_the_probes_run_side_by_side_and_still_report_every_leftover_and_error() -> None:
    resources = {"Fn": "fn", "Table": "table", "Other": "fn-2", "Api": "api"}
    types = {"Fn": "AWS::Lambda::Function", "Table": "AWS::DynamoDB::Table", "Other": "AWS::Lambda::Function"}
    made: list[str] = []
    client = Client(threading.Barrier(3), lingering={"table"}, failing={"fn-2"})

    def client_for(service: str) -> Client:
        made.append(f"{service} on {threading.current_thread().name}")
        return client

    report = leaks.probe(client_for, resources, {**types, "Api": "AWS::Some::Unprobed"})
    could_not = [x for x in report.leftovers if "could not be checked" in x]
    assert [x for x in report.leftovers if x not in could_not] == ["Table (AWS::DynamoDB::Table) table"]
    assert len(could_not) == 1 and could_not[0].startswith("Other (AWS::Lambda::Function) fn-2: could not be")
    assert report.checked == 3 and report.unchecked == ["Api (AWS::Some::Unprobed)"]
    assert made == ["lambda on MainThread", "dynamodb on MainThread"]  # one client per service, made on the caller
    assert len(client.threads) == 3 and "MainThread" not in client.threads
