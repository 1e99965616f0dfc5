"""Retained resources: found in the template, recorded, deleted or kept, collected by gc (moto, no emulator).

The end-to-end proof on a SAM app with a layer and a retained log group is
``tests/e2e/test_retained_e2e.py``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile

import boto3
import pytest
from moto import mock_aws

from harness import retained, tags
from harness.lease import ensure_table
from harness.teardown import TeardownReport

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)

TEMPLATE = {
    "Resources": {
        "Audit": {"Type": "AWS::Logs::LogGroup", "DeletionPolicy": "Retain", "Properties": {"LogGroupName": "/a/x"}},
        "Data": {"Type": "AWS::SQS::Queue", "DeletionPolicy": "RetainExceptOnCreate"},
        "Scratch": {"Type": "AWS::SQS::Queue", "DeletionPolicy": "Delete"},
        "Plain": {"Type": "AWS::SQS::Queue"},
    }
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield lambda service: boto3.client(service, region_name="us-east-1")


def test_retaining_reads_deletion_policies() -> None:
    assert retained.retaining(TEMPLATE) == {"Audit": "AWS::Logs::LogGroup", "Data": "AWS::SQS::Queue"}
    assert retained.retaining({}) == {}


def test_yaml_templates_with_short_tags_are_read() -> None:
    class Cfn:
        def get_template(self, **kw: str) -> dict[str, str]:
            assert kw["TemplateStage"] == "Processed"
            return {
                "TemplateBody": "Resources:\n  L:\n    Type: AWS::Logs::LogGroup\n    DeletionPolicy: Retain\n"
                "    Properties: {LogGroupName: !Sub '/x/${AWS::StackName}'}\n"
            }

    found = retained.find(Cfn(), "id", {"L": "/x/s"}, {"L": "AWS::Logs::LogGroup"})
    assert found == [retained.Retained("L", "AWS::Logs::LogGroup", "/x/s")]


def _stack_with_retained(client_for) -> dict:
    cfn = client_for("cloudformation")
    template = {
        "Resources": {
            "Audit": {
                "Type": "AWS::Logs::LogGroup",
                "DeletionPolicy": "Retain",
                "Properties": {"LogGroupName": "/a/x"},
            },
            "Jobs": {"Type": "AWS::SQS::Queue", "DeletionPolicy": "Retain"},
            "Scratch": {"Type": "AWS::SQS::Queue"},
        }
    }
    tag_list = [{"Key": tags.MANAGED_BY, "Value": tags.MANAGER}, {"Key": tags.STAGE, "Value": "feature-x"}]
    cfn.create_stack(StackName="app-feature-x", TemplateBody=json.dumps(template), Tags=tag_list)
    return cfn.describe_stacks(StackName="app-feature-x")["Stacks"][0]


def _resources(client_for, stack: str) -> tuple[dict[str, str], dict[str, str]]:
    from harness.deploy import read_resources

    return read_resources(client_for("cloudformation"), stack)


def test_delete_mode_deletes_what_the_template_retained(aws) -> None:
    desc = _stack_with_retained(aws)
    physical, types = _resources(aws, desc["StackId"])
    ensure_table(aws("dynamodb"))
    store = retained.Records(aws("dynamodb"), now=lambda: NOW)
    around = retained.AroundDelete(aws, mode=retained.DELETE, records=store)
    around.before(desc, physical, types)
    assert [r.logical for r in around.items] == ["Audit", "Jobs"]
    assert [r.stack_name for r in store.load()] == ["app-feature-x"]  # recorded before the delete

    aws("cloudformation").delete_stack(StackName=desc["StackId"])
    assert aws("logs").describe_log_groups(logGroupNamePrefix="/a/x")["logGroups"]  # retained, as on AWS
    leftovers = [r.label for r in around.items]
    others, outcome = around.after([*leftovers, "Other (AWS::SNS::Topic) arn:x"])
    assert others == ["Other (AWS::SNS::Topic) arn:x"]
    assert outcome.deleted == leftovers and not outcome.left and not outcome.kept
    assert aws("logs").describe_log_groups(logGroupNamePrefix="/a/x")["logGroups"] == []
    assert store.load() == []  # nothing left to collect
    lines = outcome.lines(mode=retained.DELETE, local=True)
    assert lines[0].startswith("teardown: retained by the template, deleted by the harness:\n  Audit")


def test_keep_mode_names_them_and_leaves_the_record(aws) -> None:
    desc = _stack_with_retained(aws)
    physical, types = _resources(aws, desc["StackId"])
    store = retained.Records(aws("dynamodb"), now=lambda: NOW)  # the table is created on first use
    around = retained.AroundDelete(aws, mode=retained.KEEP, records=store)
    around.before(desc, physical, types)
    others, outcome = around.after([r.label for r in around.items])
    assert others == [] and outcome.kept == [r.label for r in around.items] and not outcome.deleted
    assert (
        "left in place (retained = keep; `harness gc --yes` removes them" in outcome.lines(mode="keep", local=False)[0]
    )
    (record,) = store.load()
    assert record.tags[tags.STAGE] == "feature-x" and len(record.resources) == 2


def test_a_type_without_a_deleter_is_left_behind_by_name(aws) -> None:
    item = retained.Retained("Key", "AWS::KMS::Key", "k-1")
    removal = retained.remove(aws, [item])
    assert removal.left == [item] and "cannot delete AWS::KMS::Key" in removal.failed[0][1]


def test_gc_plans_records_by_their_stack_rules_and_collects_them(aws) -> None:
    ensure_table(aws("dynamodb"))
    store = retained.Records(aws("dynamodb"), now=lambda: NOW)
    aws("logs").create_log_group(logGroupName="/a/old")
    old_tags = {tags.MANAGED_BY: tags.MANAGER, tags.STAGE: "feature-old", tags.EXPIRES_AT: "2026-02-01T00:00:00Z"}
    fresh_tags = {tags.MANAGED_BY: tags.MANAGER, tags.STAGE: "feature-new", tags.EXPIRES_AT: "2026-04-01T00:00:00Z"}
    main_tags = {tags.MANAGED_BY: tags.MANAGER, tags.STAGE: "main", tags.EXPIRES_AT: "2026-02-01T00:00:00Z"}
    log = retained.Retained("Audit", "AWS::Logs::LogGroup", "/a/old")
    store.put("app-feature-old", "id-old", old_tags, [log])
    store.put("app-feature-new", "id-new", fresh_tags, [log])
    store.put("app-main", "id-main", main_tags, [log])
    rules = {"now": NOW, "protected_stages": ("main",), "remote": None}
    decisions = {rec.stack_name: d.action for rec, d in retained.plan_records(store.load(), **rules)}
    assert decisions == {"app-feature-old": "delete", "app-main": "skip"}  # the fresh one is quietly kept
    rows = retained.record_rows(retained.plan_records(store.load(), **rules), dry_run=True)
    assert rows[0][:2] == ["app-feature-old", "Audit (AWS::Logs::LogGroup) /a/old"] and rows[0][3] == "would delete"
    (old,) = [r for r in store.load() if r.stack_name == "app-feature-old"]
    assert retained.collect(old, store, aws) == (True, "1 deleted")
    assert aws("logs").describe_log_groups(logGroupNamePrefix="/a/old")["logGroups"] == []
    assert sorted(r.stack_name for r in store.load()) == ["app-feature-new", "app-main"]


def test_gc_leaves_a_resource_a_live_stack_lists_again(aws) -> None:
    desc = _stack_with_retained(aws)  # the live stack of that name owns /a/x now
    ensure_table(aws("dynamodb"))
    store = retained.Records(aws("dynamodb"), now=lambda: NOW)
    record = store.put(desc["StackName"], "old-id", {}, [retained.Retained("Audit", "AWS::Logs::LogGroup", "/a/x")])
    assert retained.collect(record, store, aws) == (True, "0 deleted, 1 now part of a live stack left alone")
    assert [g["logGroupName"] for g in aws("logs").describe_log_groups(logGroupNamePrefix="/a/x")["logGroups"]] == [
        "/a/x"
    ]


def test_left_behind_is_listed_once() -> None:
    report = TeardownReport(leftovers=["Q (AWS::SQS::Queue) url"], errors=["could not read x"])
    with pytest.raises(Exception) as err:
        report.raise_for_leftovers()
    text = err.value.render()  # type: ignore[attr-defined]
    assert "Q (AWS::SQS::Queue)" not in text  # already printed under LEFT BEHIND by the teardown
    assert "could not read x" in text and "1 left behind (listed above)" in text


def test_gc_records_what_a_stack_it_deletes_retains(aws) -> None:
    desc = _stack_with_retained(aws)
    ensure_table(aws("dynamodb"))
    store = retained.Records(aws("dynamodb"), now=lambda: NOW)
    delete = retained.recording_delete(store, aws)
    delete(aws("cloudformation"), desc["StackId"], delay=0.01, max_attempts=50)
    (record,) = store.load()
    assert record.stack_id == desc["StackId"] and [r.logical for r in record.resources] == ["Audit", "Jobs"]
    assert record.tags[tags.STAGE] == "feature-x"
    assert retained.collect(record, store, aws) == (True, "2 deleted")
    assert aws("logs").describe_log_groups(logGroupNamePrefix="/a/x")["logGroups"] == []


def test_a_retained_function_version_is_deleted_or_already_gone_with_its_function(aws) -> None:
    iam = aws("iam")
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = aws("lambda")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("handler.py", "def main(e, c):\n    return 1\n")
    for name in ("kept-fn", "gone-fn"):
        lam.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role,
            Handler="handler.main",
            Code={"ZipFile": code.getvalue()},
        )
    kept = lam.publish_version(FunctionName="kept-fn")["FunctionArn"]
    gone = lam.publish_version(FunctionName="gone-fn")["FunctionArn"]
    lam.delete_function(FunctionName="gone-fn")  # as the stack's delete does: its versions go with it
    items = [retained.Retained(n, "AWS::Lambda::Version", arn) for n, arn in (("Kept", kept), ("Gone", gone))]
    removal = retained.remove(aws, items)
    assert removal.deleted == items and not removal.failed, removal.failed
    assert [f["Version"] for f in lam.list_versions_by_function(FunctionName="kept-fn")["Versions"]] == ["$LATEST"]


# -- what an update takes out of a stack and keeps ------------------------------------------------------

LAYER_V1 = "arn:aws:lambda:us-east-1:000000000000:layer:shared:1"


def _event(minute: int, logical: str, rtype: str, status: str, physical: str = "") -> dict:
    return {
        "Timestamp": NOW + dt.timedelta(minutes=minute),
        "LogicalResourceId": logical,
        "ResourceType": rtype,
        "ResourceStatus": status,
        "PhysicalResourceId": physical,
    }


class _Events:
    """DescribeStackEvents as AWS documents it: newest first, paged."""

    def __init__(self, pages: list[list[dict]]) -> None:
        self.pages = pages

    def get_paginator(self, name: str):
        assert name == "describe_stack_events"
        pages = self.pages

        class P:
            def paginate(self, StackName: str):  # noqa: N803 - boto3's keyword
                return [{"StackEvents": page} for page in pages]

        return P()


def test_the_update_s_delete_skipped_resources_are_found_since_it_began() -> None:
    stack = "arn:aws:cloudformation:us-east-1:1:stack/app-feature-x/1"
    cfn = _Events(
        [
            [
                _event(5, "app-feature-x", "AWS::CloudFormation::Stack", "UPDATE_COMPLETE", stack),
                _event(5, "SharedLayer4eab", "AWS::Lambda::LayerVersion", "DELETE_SKIPPED", LAYER_V1),
                _event(5, "Old", "AWS::SQS::Queue", "DELETE_SKIPPED", ""),  # never created: nothing kept
                _event(4, "SharedLayer244c", "AWS::Lambda::LayerVersion", "CREATE_COMPLETE", LAYER_V1[:-1] + "2"),
            ],
            [
                _event(4, "Audit", "AWS::Logs::LogGroup", "DELETE_SKIPPED", "/a/x"),
                _event(4, "SharedLayer4eab", "AWS::Lambda::LayerVersion", "DELETE_SKIPPED", LAYER_V1),  # said twice
                _event(-1, "Ancient", "AWS::Logs::LogGroup", "DELETE_SKIPPED", "/a/old"),  # before this deploy
            ],
        ]
    )
    found = retained.skipped_by_update(cfn, stack, since=NOW)
    assert found == [
        retained.Retained("Audit", "AWS::Logs::LogGroup", "/a/x"),
        retained.Retained("SharedLayer4eab", "AWS::Lambda::LayerVersion", LAYER_V1),
    ]


def _layer(client_for) -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("python/greeting.py", "x = 1\n")
    return client_for("lambda").publish_layer_version(LayerName="shared", Content={"ZipFile": buf.getvalue()})[
        "LayerVersionArn"
    ]


STACK = {
    "StackName": "app-feature-x",
    "StackId": "id-x",
    "Tags": [{"Key": tags.MANAGED_BY, "Value": tags.MANAGER}, {"Key": tags.STAGE, "Value": "feature-x"}],
}


def test_after_an_update_delete_mode_deletes_what_it_kept_and_names_it(aws) -> None:
    arn = _layer(aws)
    aws("logs").create_log_group(logGroupName="/a/x")
    items = [
        retained.Retained("SharedLayer4eab", "AWS::Lambda::LayerVersion", arn),
        retained.Retained("Audit", "AWS::Logs::LogGroup", "/a/x"),
    ]
    store = retained.Records(aws("dynamodb"), now=lambda: NOW)
    lines = retained.after_update(aws, items, mode=retained.DELETE, records=store, stack=STACK, run_id="r1")
    assert lines == [
        "retained by the update, deleted by the harness:\n"
        f"  SharedLayer4eab (AWS::Lambda::LayerVersion) {arn}\n"
        "  Audit (AWS::Logs::LogGroup) /a/x"
    ]
    assert aws("lambda").list_layer_versions(LayerName="shared")["LayerVersions"] == []
    assert aws("logs").describe_log_groups(logGroupNamePrefix="/a/x")["logGroups"] == []
    assert store.load() == []  # nothing to collect later


def test_after_an_update_what_cannot_be_deleted_is_recorded_for_gc(aws) -> None:
    aws("logs").create_log_group(logGroupName="/a/x")
    key = retained.Retained("Key", "AWS::KMS::Key", "k-1")
    log = retained.Retained("Audit", "AWS::Logs::LogGroup", "/a/x")
    store = retained.Records(aws("dynamodb"), now=lambda: NOW)
    lines = retained.after_update(aws, [key, log], mode=retained.DELETE, records=store, stack=STACK, run_id="r1")
    assert lines[0] == "retained by the update, deleted by the harness:\n  Audit (AWS::Logs::LogGroup) /a/x"
    assert lines[1].startswith("retained by the update and not deleted: Key (AWS::KMS::Key) k-1: the harness cannot")
    assert lines[2].startswith("`harness gc --yes` removes them once the stack has expired")
    (record,) = store.load()
    assert record.key == "retained#id-x#update#r1" and record.resources == [key]


def test_after_an_update_keep_mode_records_them_beside_the_delete_s_record_and_gc_collects_both(aws) -> None:
    aws("logs").create_log_group(logGroupName="/a/upd")
    aws("logs").create_log_group(logGroupName="/a/del")
    expired = {**tags.tag_dict(STACK), tags.EXPIRES_AT: "2026-02-01T00:00:00Z"}
    stack = {**STACK, "Tags": [{"Key": k, "Value": v} for k, v in expired.items()]}
    store = retained.Records(aws("dynamodb"), now=lambda: NOW)
    upd = retained.Retained("AuditOld", "AWS::Logs::LogGroup", "/a/upd")
    lines = retained.after_update(aws, [upd], mode=retained.KEEP, records=store, stack=stack, run_id="r1")
    assert lines == [
        "retained by the update, left in place (retained = keep; `harness gc --yes` removes them once the stack "
        "has expired or its branch is gone):\n  AuditOld (AWS::Logs::LogGroup) /a/upd"
    ]
    assert aws("logs").describe_log_groups(logGroupNamePrefix="/a/upd")["logGroups"]  # left, as asked
    store.put("app-feature-x", "id-x", expired, [retained.Retained("Audit", "AWS::Logs::LogGroup", "/a/del")])

    rules = {"now": NOW, "protected_stages": ("main",), "remote": None}
    plan = retained.plan_records(store.load(), **rules)
    assert sorted((rec.key, d.action) for rec, d in plan) == [
        ("retained#id-x", "delete"),
        ("retained#id-x#update#r1", "delete"),
    ]
    for rec, _d in plan:
        assert retained.collect(rec, store, aws) == (True, "1 deleted")
    assert aws("logs").describe_log_groups(logGroupNamePrefix="/a/")["logGroups"] == []
    assert store.load() == []
