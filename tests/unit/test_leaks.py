"""Log groups a still-running function wrote again after its stack was deleted (moto)."""

from __future__ import annotations

import boto3
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
