"""Deploy, teardown, tags and leak probes against moto (no emulator)."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from harness import deploy, leaks, tags
from harness.deploy import delete_stack
from harness.errors import DeployError
from harness.plan import expand_argv
from harness.stack import StackInfo, TargetInfo, exported_env

TEMPLATE = {
    "Resources": {
        "Items": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            },
        },
        "Queue": {"Type": "AWS::SQS::Queue"},
    },
    "Outputs": {"TableName": {"Value": {"Ref": "Items"}}},
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield lambda service: boto3.client(service, region_name="us-east-1")


def _tags() -> tags.StackTags:
    return tags.StackTags(
        branch="feature/$(rm -rf x) 'q'",
        stage="feature-x",
        commit=None,
        run_id="r1",
        created_at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        ttl_hours=24,
    )


def test_tag_values_are_cloudformation_valid_and_shell_inert() -> None:
    t = _tags().as_dict()
    assert t[tags.MANAGED_BY] == tags.MANAGER
    assert t[tags.EXPIRES_AT] == "2026-01-03T03:04:05Z"
    for word in _tags().as_cli().split():
        key, _, value = word.partition("=")
        assert key and value
        assert not set(word) & set("$`'\"();&|<>*? \\")


def test_read_resources_and_delete_leaves_nothing(aws) -> None:
    cfn = aws("cloudformation")
    cfn.create_stack(StackName="app-x", TemplateBody=json.dumps(TEMPLATE), Tags=_tags().as_cfn())
    desc = deploy.stack_status(cfn, "app-x")
    assert desc is not None and tags.is_managed(tags.tag_dict(desc))
    physical, types = deploy.read_resources(cfn, "app-x")
    assert set(physical) == {"Items", "Queue"}
    assert types["Items"] == "AWS::DynamoDB::Table"
    before = leaks.probe(aws, physical, types)
    assert len(before.leftovers) == 2 and before.checked == 2

    delete_stack(cfn, "app-x", delay=0.01, max_attempts=5)

    assert deploy.stack_status(cfn, "app-x") is None
    after = leaks.probe(aws, physical, types)
    assert after.clean, after.leftovers


def test_leak_probe_reports_every_leftover_and_unknown_types(aws) -> None:
    aws("sqs").create_queue(QueueName="left")
    url = aws("sqs").get_queue_url(QueueName="left")["QueueUrl"]
    report = leaks.probe(
        aws,
        {"Q": url, "T": "no-such-table", "X": "something"},
        {"Q": "AWS::SQS::Queue", "T": "AWS::DynamoDB::Table", "X": "AWS::Custom::Thing"},
    )
    assert report.leftovers == [f"Q (AWS::SQS::Queue) {url}"]
    assert report.unchecked == ["X (AWS::Custom::Thing)"]


def test_delete_of_missing_stack_is_a_no_op(aws) -> None:
    delete_stack(aws("cloudformation"), "never-existed", delay=0.01, max_attempts=2)


class FakeEventsClient:
    """describe_stack_events as documented: newest first, paginated."""

    def __init__(self, events: list[dict]) -> None:
        self.events = events

    def get_paginator(self, name: str):
        assert name == "describe_stack_events"
        events = self.events

        class P:
            def paginate(self, StackName: str):  # noqa: N803 - boto3 spelling
                yield {"StackEvents": events[:2]}
                yield {"StackEvents": events[2:]}

        return P()


def _ev(logical: str, rtype: str, status: str, reason: str = "", minute: int = 0) -> dict:
    return {
        "LogicalResourceId": logical,
        "ResourceType": rtype,
        "ResourceStatus": status,
        "ResourceStatusReason": reason,
        "Timestamp": dt.datetime(2026, 1, 1, 0, minute, tzinfo=dt.UTC),
    }


def test_failure_events_name_resource_type_and_reason_newest_run_only() -> None:
    events = [
        _ev("app-x", "AWS::CloudFormation::Stack", "ROLLBACK_COMPLETE", minute=9),
        _ev("Queue", "AWS::SQS::Queue", "DELETE_COMPLETE", minute=8),
        _ev("Queue", "AWS::SQS::Queue", "CREATE_FAILED", "Invalid value for VisibilityTimeout", minute=7),
        _ev("Table", "AWS::DynamoDB::Table", "CREATE_FAILED", "Resource creation cancelled", minute=7),
        _ev("Old", "AWS::SQS::Queue", "CREATE_FAILED", "an earlier run", minute=1),
    ]
    since = dt.datetime(2026, 1, 1, 0, 5, tzinfo=dt.UTC)
    lines = deploy.failure_events(FakeEventsClient(events), "app-x", since)
    assert lines == ["Queue (AWS::SQS::Queue): CREATE_FAILED: Invalid value for VisibilityTimeout"]


def test_run_command_streams_to_log_and_reports_missing_program(tmp_path) -> None:
    seen: list[str] = []
    result = deploy.run_command(
        ["python3", "-c", "import os; print('stage', os.environ['STAGE'])"],
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", "STAGE": "dev"},
        cwd=tmp_path,
        log_path=tmp_path / "deploy.log",
        timeout=30,
        echo=seen.append,
    )
    assert result.returncode == 0
    assert seen == ["stage dev"]
    assert (tmp_path / "deploy.log").read_text() == "stage dev\n"
    with pytest.raises(DeployError, match="was not found"):
        deploy.run_command(["no-such-tool-xyz"], env={}, cwd=tmp_path, log_path=tmp_path / "x.log", timeout=5)


def test_run_command_never_uses_a_shell(tmp_path) -> None:
    canary = tmp_path / "canary"
    deploy.run_command(
        ["echo", f"$(touch {canary})", f"`touch {canary}`;", "touch", str(canary)],
        env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        log_path=tmp_path / "x.log",
        timeout=10,
    )
    assert not canary.exists()


def test_run_command_timeout_stops_the_tree(tmp_path) -> None:
    with pytest.raises(DeployError, match="did not finish within"):
        deploy.run_command(
            ["sh", "-c", "sleep 30 & sleep 30"],
            env={"PATH": "/usr/bin:/bin"},
            cwd=tmp_path,
            log_path=tmp_path / "x.log",
            timeout=0.5,
        )


def test_run_command_sleeps_on_the_command_s_end_instead_of_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where there is a pidfd, the wait for the command is one sleep the kernel ends when the command does
    (``Popen.wait`` with a timeout looks up to 50 ms apart, so a deploy's end was seen up to 50 ms late)."""
    import select

    waits: list[float] = []
    real = select.select

    def recorded(r: list[int], w: list[int], x: list[int], timeout: float) -> Any:
        waits.append(timeout)
        return real(r, w, x, timeout)

    monkeypatch.setattr(deploy.select, "select", recorded)
    result = deploy.run_command(
        ["sh", "-c", "sleep 0.2; exit 3"],
        env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        log_path=tmp_path / "x.log",
        timeout=60,
    )
    assert result.returncode == 3
    assert len(waits) == 1 and waits[0] > 59, waits


def test_expand_argv_fills_tokens_and_splits_tags() -> None:
    values = {
        "HARNESS_STACK_NAME": "app-dev",
        "HARNESS_STAGE": "dev",
        "AWS_REGION": "eu-west-1",
        "HARNESS_STACK_TAGS": "a=1 b=2",
    }
    argv = ["sam", "deploy", "--stack-name", "{stack_name}", "--region={region}", "--tags", "{tags}", '{"k": 1}']
    assert expand_argv(argv, values) == [
        "sam",
        "deploy",
        "--stack-name",
        "app-dev",
        "--region=eu-west-1",
        "--tags",
        "a=1",
        "b=2",
        '{"k": 1}',
    ]


def test_exported_env_for_emulator_and_aws() -> None:
    target = TargetInfo(
        kind="local",
        region="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        access_key_id="test",
        secret_access_key="test",
        session_token=None,
        profile=None,
    )
    info = StackInfo(
        name="app-dev", stage="dev", branch="dev", outputs={}, resources={}, resource_types={}, tags={}, target=target
    )
    env = exported_env(info)
    assert env["AWS_SAM_STACK_NAME"] == "app-dev"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    aws_info = StackInfo(
        **{
            **info,
            "target": TargetInfo(
                **{**target, "kind": "aws", "endpoint_url": None, "access_key_id": "AKIA", "secret_access_key": "s"}
            ),
        }
    )
    env = exported_env(aws_info)
    assert "AWS_ENDPOINT_URL" not in env and "AWS_SECRET_ACCESS_KEY" not in env


def _tool(folder: Path, says: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sam").write_text(f"#!/bin/sh\necho {says}\n")
    (folder / "sam").chmod(0o755)


def test_a_tool_of_the_unactivated_virtualenv_reaches_the_deploy_command(tmp_path, monkeypatch) -> None:
    """`.venv/bin/pytest` without activation: `make deploy` ran `sam` and make said "sam: No such file"."""
    venv_bin = tmp_path / "venv" / "bin"
    _tool(venv_bin, "venv-sam")
    monkeypatch.setattr(deploy.sys, "prefix", str(tmp_path / "venv"))
    monkeypatch.setattr(deploy.sysconfig, "get_path", lambda name: str(venv_bin) if name == "scripts" else "")
    env = deploy.deploy_env({"PATH": "/usr/bin:/bin"}, {}, {"STAGE": "dev"})
    assert env["PATH"] == f"/usr/bin:/bin:{venv_bin}"  # appended: the user's PATH keeps precedence
    seen: list[str] = []
    deploy.run_command(["sam"], env=env, cwd=tmp_path, log_path=tmp_path / "d.log", timeout=30, echo=seen.append)
    assert seen == ["venv-sam"]

    own = tmp_path / "own-bin"
    _tool(own, "own-sam")
    env = deploy.deploy_env({"PATH": f"{own}:/usr/bin:/bin"}, {}, {})
    seen.clear()
    deploy.run_command(["sam"], env=env, cwd=tmp_path, log_path=tmp_path / "d.log", timeout=30, echo=seen.append)
    assert seen == ["own-sam"]  # a tool the user's PATH names wins
    assert deploy.deploy_env({"PATH": f"/bin:{venv_bin}"}, {}, {})["PATH"] == f"/bin:{venv_bin}"  # already there

    monkeypatch.setattr(deploy.sys, "prefix", deploy.sys.base_prefix)  # not a virtualenv: PATH is the user's
    assert deploy.deploy_env({"PATH": "/usr/bin:/bin"}, {}, {})["PATH"] == "/usr/bin:/bin"


#: A deploy tool that leaves a folder and a file in its temporary folder, and says where that was.
LEAVES_TEMP = (
    "import os, tempfile; d = tempfile.mkdtemp(); open(os.path.join(d, 'data.zip'), 'w').close(); "
    "print(os.environ['TMPDIR']); print(d)"
)


@pytest.mark.parametrize("named", [False, True])
def test_what_a_command_leaves_in_its_temporary_folder_goes_with_it(tmp_path: Path, named: bool) -> None:
    """Each command gets a TMPDIR of its own, inside the one its environment names (else the system's),
    removed when it ends, with what the tool left there (the SAM CLI leaves a folder per deploy)."""
    import tempfile

    mine = tmp_path / "my-tmp"
    mine.mkdir()
    env = {**os.environ, "TMPDIR": str(mine)} if named else {k: v for k, v in os.environ.items() if k != "TMPDIR"}
    log = tmp_path / "deploy.log"
    result = deploy.run_command([sys.executable, "-c", LEAVES_TEMP], env=env, cwd=tmp_path, log_path=log, timeout=60)
    assert result.returncode == 0, log.read_text()
    told, left = log.read_text().split()
    assert Path(left).parent == Path(told) and Path(told).name.startswith(deploy.COMMAND_TMP_PREFIX)
    assert Path(told).parent == (mine if named else Path(tempfile.gettempdir()))
    assert not Path(told).exists()
    assert list(mine.iterdir()) == []


def test_a_temporary_folder_a_killed_run_left_is_removed_by_the_next_command_and_a_live_ones_is_not(
    tmp_path: Path,
) -> None:
    """Where the harness and its command's supervisor were both SIGKILLed, nothing removed the command's folder."""
    import subprocess

    dead = subprocess.Popen([sys.executable, "-c", "pass"])  # noqa: S603 - this interpreter, fixed arguments
    dead.wait(30)
    left = tmp_path / f"{deploy.COMMAND_TMP_PREFIX}{dead.pid}-abc"
    (left / "data").mkdir(parents=True)
    live = tmp_path / f"{deploy.COMMAND_TMP_PREFIX}{os.getpid()}-def"
    live.mkdir()
    other = tmp_path / "harness-commands-of-someone-else"
    other.mkdir()

    made = Path(deploy.command_tmp({"TMPDIR": str(tmp_path)}))

    assert not left.exists() and live.exists() and other.exists()
    assert made.parent == tmp_path and made.name.startswith(f"{deploy.COMMAND_TMP_PREFIX}{os.getpid()}-")
