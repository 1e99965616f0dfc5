"""The leak probe's listings on the embedded emulator find exactly what its per-resource reads find.

The teardown on the local target checks several functions, roles, tables or
log groups of a stack with one listing each (``harness.leaks.LISTINGS``): that
is the same proof only if the pinned MiniStack lists every resource its reads
still find, and none it no longer finds. Here some of each exist and some were
deleted a moment before, and both ways of probing must give the same leftovers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from e2e_support import Emulator, code_zip, start_emulator

from harness import leaks

pytestmark = pytest.mark.e2e

ROLE_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emu = start_emulator(tmp_path_factory.mktemp("leak-listing"))
    try:
        yield emu
    finally:
        emu.stop()


def _code() -> bytes:
    return code_zip({"index.py": "def handler(event, context):\n    return event\n"})


def test_listings_and_reads_agree_on_what_is_left(emu: Emulator) -> None:
    resources: dict[str, str] = {}
    types: dict[str, str] = {}
    iam, lam, ddb, logs = (emu.client(s) for s in ("iam", "lambda", "dynamodb", "logs"))
    role_arn = ""
    for i in range(3):
        role = f"leak-Role{i}"
        role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=ROLE_POLICY)["Role"]["Arn"]
        resources[f"Role{i}"], types[f"Role{i}"] = role, "AWS::IAM::Role"
        table = f"leak-Table{i}"
        ddb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        resources[f"Table{i}"], types[f"Table{i}"] = table, "AWS::DynamoDB::Table"
        fn = f"leak-Fn{i}"
        lam.create_function(
            FunctionName=fn, Runtime="python3.12", Role=role_arn, Handler="index.handler", Code={"ZipFile": _code()}
        )
        resources[f"Fn{i}"], types[f"Fn{i}"] = fn, "AWS::Lambda::Function"
        group = f"/aws/lambda/leak-Fn{i}"
        logs.create_log_group(logGroupName=group)
        resources[f"Logs{i}"], types[f"Logs{i}"] = group, "AWS::Logs::LogGroup"
    logs.create_log_group(logGroupName="/aws/lambda/leak-Fn1-not-ours")
    # The first of each is deleted, the second kept, the third deleted too.
    for i in (0, 2):
        lam.delete_function(FunctionName=f"leak-Fn{i}")
        iam.delete_role(RoleName=f"leak-Role{i}")
        ddb.delete_table(TableName=f"leak-Table{i}")
        logs.delete_log_group(logGroupName=f"/aws/lambda/leak-Fn{i}")

    read = leaks.probe(emu.client, resources, types)
    listed = leaks.probe(emu.client, resources, types, listing=True)

    assert (
        read.leftovers
        == listed.leftovers
        == [
            "Fn1 (AWS::Lambda::Function) leak-Fn1",
            "Logs1 (AWS::Logs::LogGroup) /aws/lambda/leak-Fn1",
            "Role1 (AWS::IAM::Role) leak-Role1",
            "Table1 (AWS::DynamoDB::Table) leak-Table1",
        ]
    )
    assert read.checked == listed.checked == 12
