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


def test_a_pass_has_no_more_probes_in_flight_than_its_workers() -> None:
    names = [f"fn-{i}" for i in range(6)]
    resources = {f"Fn{i}": name for i, name in enumerate(names)}
    types = dict.fromkeys(resources, "AWS::Lambda::Function")
    in_flight, most = [0], [0]
    lock = threading.Lock()
    client = Client(threading.Barrier(2), lingering=set(), failing=set())  # each call waits for a second one
    plain = client._call

    def counted(name: str) -> dict[str, object]:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        try:
            return plain(name)
        finally:
            with lock:
                in_flight[0] -= 1

    client._call = counted  # type: ignore[method-assign]
    assert leaks.not_seen(lambda service: client, resources, types, workers=2) == set(resources)
    assert most[0] == 2 and len(client.threads) == 2


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        made: dict[str, object] = {}
        calls: list[str] = []

        def client_for(service: str):
            if service not in made:
                made[service] = boto3.client(service, region_name="us-east-1")
                made[service].meta.events.register("before-call", lambda model, **_: calls.append(model.name))
            return made[service]

        client_for.calls = calls  # type: ignore[attr-defined]
        yield client_for


def _some_of_each_listed_type(aws) -> tuple[dict[str, str], dict[str, str]]:
    """Two roles, tables and log groups of which one each still exists, one lone role and a table by ARN."""
    for name in ("app-RoleA", "app-Lone"):
        aws("iam").create_role(RoleName=name, AssumeRolePolicyDocument="{}")
    aws("dynamodb").create_table(
        TableName="app-TableA",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    aws("logs").create_log_group(logGroupName="/aws/lambda/app-FnA")
    aws("logs").create_log_group(logGroupName="/aws/lambda/app-FnB-other")  # listed under the prefix, not ours
    resources = {
        "RoleA": "app-RoleA",
        "RoleB": "app-RoleB",
        "Lone": "app-Lone",
        "TableA": "app-TableA",
        "TableB": "app-TableB",
        "TableArn": "arn:aws:dynamodb:us-east-1:123456789012:table/app-TableC",
        "LogsA": "/aws/lambda/app-FnA",
        "LogsB": "/aws/lambda/app-FnB",
    }
    types = {
        **dict.fromkeys(("RoleA", "RoleB"), "AWS::IAM::Role"),
        "Lone": "AWS::Lambda::Function",
        **dict.fromkeys(("TableA", "TableB", "TableArn"), "AWS::DynamoDB::Table"),
        **dict.fromkeys(("LogsA", "LogsB"), "AWS::Logs::LogGroup"),
    }
    return resources, types


def test_listing_checks_several_resources_of_a_type_with_one_listing_and_finds_the_same(aws) -> None:
    resources, types = _some_of_each_listed_type(aws)
    aws.calls.clear()
    read = leaks.probe(aws, resources, types)
    reads = sorted(aws.calls)
    aws.calls.clear()
    listed = leaks.probe(aws, resources, types, listing=True)
    expected = [
        "LogsA (AWS::Logs::LogGroup) /aws/lambda/app-FnA",
        "RoleA (AWS::IAM::Role) app-RoleA",
        "TableA (AWS::DynamoDB::Table) app-TableA",
    ]
    assert read.leftovers == listed.leftovers == expected
    assert read.checked == listed.checked == 8
    assert reads == sorted(["GetRole"] * 2 + ["GetFunction"] + ["DescribeTable"] * 3 + ["DescribeLogGroups"] * 2)
    # One listing per type with several plain names; a lone resource and an ARN are read on their own.
    assert sorted(aws.calls) == ["DescribeLogGroups", "DescribeTable", "GetFunction", "ListRoles", "ListTables"]


class Pages:
    """A client whose listing comes in pages (or fails), to check that every page is read."""

    def __init__(self, pages: list[dict[str, object]], fail: bool = False) -> None:
        self.pages, self.fail, self.asked = pages, fail, []

    def list_tables(self, **kw: object) -> dict[str, object]:
        self.asked.append(kw)
        if self.fail:
            raise botocore.exceptions.ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListTables")
        return self.pages[len(self.asked) - 1]


def test_a_listing_reads_every_page_and_a_failed_one_leaves_each_of_its_resources_unchecked() -> None:
    resources = {"A": "t-a", "B": "t-b", "C": "t-c"}
    types = dict.fromkeys(resources, "AWS::DynamoDB::Table")
    pages = Pages([{"TableNames": ["t-a"], "LastEvaluatedTableName": "t-a"}, {"TableNames": ["other", "t-c"]}])
    report = leaks.probe(lambda s: pages, resources, types, listing=True)
    assert report.leftovers == ["A (AWS::DynamoDB::Table) t-a", "C (AWS::DynamoDB::Table) t-c"]
    assert pages.asked == [{}, {"ExclusiveStartTableName": "t-a"}]
    failed = leaks.probe(lambda s: Pages([], fail=True), resources, types, listing=True)
    assert [x.partition(": could")[0] for x in failed.leftovers] == [
        f"{k} (AWS::DynamoDB::Table) t-{k.lower()}" for k in "ABC"
    ]
    assert all("could not be checked" in x for x in failed.leftovers) and failed.checked == 3


def test_a_rule_of_a_custom_bus_is_seen_by_its_plain_name_and_by_bus_and_name_until_it_is_deleted(aws) -> None:
    """AWS names a custom bus's rule ``bus|rule``; the emulator gives it its plain name: both are probed."""
    events = aws("events")
    events.create_event_bus(Name="app-orders")
    events.put_rule(Name="app-Audited", EventBusName="app-orders", EventPattern='{"source": ["app"]}')
    events.put_rule(Name="app-Nightly", ScheduleExpression="rate(1 day)")  # the default bus
    resources = {"Plain": "app-Audited", "Qualified": "app-orders|app-Audited", "Default": "app-Nightly"}
    types = dict.fromkeys(resources, "AWS::Events::Rule")

    assert leaks.not_seen(aws, resources, types) == set()
    assert leaks.probe(aws, resources, types).leftovers == [
        "Default (AWS::Events::Rule) app-Nightly",
        "Plain (AWS::Events::Rule) app-Audited",
        "Qualified (AWS::Events::Rule) app-orders|app-Audited",
    ]
    events.delete_rule(Name="app-Audited", EventBusName="app-orders")
    events.delete_rule(Name="app-Nightly")
    assert leaks.probe(aws, resources, types).clean
    assert leaks.not_seen(aws, resources, types) == set(resources)


def test_not_seen_names_what_its_probe_cannot_see_and_leaves_out_what_it_could_not_read(aws) -> None:
    resources, types = _some_of_each_listed_type(aws)
    resources["Broken"], types["Broken"] = "app-Broken", "AWS::SNS::Topic"
    unreadable = botocore.exceptions.ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "Get")

    class Denied:
        def get_topic_attributes(self, **_: object) -> None:
            raise unreadable

    def client_for(service: str):
        return Denied() if service == "sns" else aws(service)

    # "Lone" is a role that the types call a function: no function probe finds it.
    assert leaks.not_seen(client_for, resources, types, listing=True) == {
        "RoleB",
        "Lone",
        "TableB",
        "TableArn",
        "LogsB",
    }


def test_a_cognito_user_pool_is_probed_until_it_is_deleted(aws) -> None:
    idp = aws("cognito-idp")
    pool = idp.create_user_pool(PoolName="app-users")["UserPool"]["Id"]
    resources, types = {"Pool": pool}, {"Pool": "AWS::Cognito::UserPool"}
    assert leaks.probe(aws, resources, types).leftovers == [f"Pool (AWS::Cognito::UserPool) {pool}"]
    idp.delete_user_pool(UserPoolId=pool)
    report = leaks.probe(aws, resources, types)
    assert report.clean and report.checked == 1
