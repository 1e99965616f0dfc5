"""Deploys without CloudFormation: outputs shapes, masking, discovery by tags, deleters, the kind's refusal."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from harness.errors import ConfigError, OutputsError
from harness.kinds import TaggedKind
from harness.tagged import deleters, masking
from harness.tagged import outputs as outputs_mod
from harness.tagged.deployment import name_of, resources_fields
from harness.tagged.discover import TaggedResource, find, wanted_tags
from harness.tagged.inventory import TaggedRecord, collect, list_deployments

CMD = ["terraform", "output", "-json"]
REGION = "us-east-1"


# --------------------------------------------------------------------------- outputs


def test_terraform_shape_gives_string_values_and_the_sensitive_names() -> None:
    text = json.dumps(
        {
            "table_name": {"value": "orders-dev", "type": "string", "sensitive": False},
            "port": {"value": 8080, "type": "number", "sensitive": False},
            "db_password": {"value": "hunter2-secret", "type": "string", "sensitive": True},
            "subnets": {"value": ["a", "b"], "type": ["list", "string"], "sensitive": False},
        }
    )
    found = outputs_mod.parse(text, command=CMD)
    assert found.values == {
        "table_name": "orders-dev",
        "port": "8080",
        "db_password": "hunter2-secret",
        "subnets": '["a", "b"]',
    }
    assert found.sensitive == {"db_password"}
    assert found.secrets() == ["hunter2-secret"]


def test_a_flat_object_is_pulumis_shape_with_nothing_sensitive() -> None:
    found = outputs_mod.parse('{"tableName": "orders-dev", "port": 8080, "url": null}', command=["pulumi"])
    assert found.values == {"tableName": "orders-dev", "port": "8080", "url": "null"}
    assert found.sensitive == frozenset()


def test_an_empty_object_is_no_outputs() -> None:
    assert outputs_mod.parse("{}", command=CMD).values == {}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not json at all", "printed no valid JSON on stdout (Expecting value at line 1, column 1"),
        ('{"a": {"value": "secret-value"', "printed no valid JSON on stdout"),
        ('["a", "b"]', "printed a JSON list, not an object of outputs"),
        ('{"a": {"value": 1}, "b": 2}', "a mix of Terraform-shaped outputs (a) and plain values"),
    ],
)
def test_malformed_outputs_are_refused_naming_the_command_and_never_quoting_the_text(text: str, says: str) -> None:
    with pytest.raises(OutputsError) as info:
        outputs_mod.parse(text, command=CMD)
    message = info.value.render()
    assert "`terraform output -json`" in message
    assert says in message
    assert "secret-value" not in message
    assert "terraform output -json" in (info.value.hint or "")


def _script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "outputs.py"
    path.write_text(body)
    return [sys.executable, str(path)]


def test_running_the_command_reads_stdout_and_logs_stderr_masked(tmp_path: Path) -> None:
    argv = _script(
        tmp_path,
        "import json, sys\n"
        "print('reading state; password is s3cr3t-value', file=sys.stderr)\n"
        "print(json.dumps({'pw': {'value': 's3cr3t-value', 'sensitive': True}, 'name': {'value': 'n'}}))\n",
    )
    log = tmp_path / "report" / "outputs.log"
    found = outputs_mod.run(argv, env={"PATH": "/usr/bin"}, cwd=tmp_path, log_path=log, timeout=60)
    assert found.values == {"pw": "s3cr3t-value", "name": "n"}
    assert log.read_text() == "reading state; password is ***\n"


def test_a_failing_outputs_command_is_named_with_its_exit_code_and_stderr(tmp_path: Path) -> None:
    argv = _script(tmp_path, "import sys\nprint('No outputs found: state is empty', file=sys.stderr)\nsys.exit(3)\n")
    with pytest.raises(OutputsError) as info:
        outputs_mod.run(argv, env={}, cwd=tmp_path, log_path=tmp_path / "outputs.log", timeout=60)
    message = info.value.render()
    assert f"the outputs command `{sys.executable} {tmp_path / 'outputs.py'}` exited 3" in message
    assert "No outputs found: state is empty" in message
    assert "must print the outputs as JSON and exit 0" in message


def test_a_command_whose_stdout_is_not_json_is_named_and_its_stderr_still_logged(tmp_path: Path) -> None:
    """E.g. ``make -s outputs`` run under an outer make, which prints its "Entering directory" lines first."""
    argv = _script(
        tmp_path,
        "import sys\n"
        "print(\"make[3]: Entering directory '/work/app'\")\n"
        'print(\'{"name": {"value": "n"}}\')\n'
        "print('reading state', file=sys.stderr)\n",
    )
    log = tmp_path / "outputs.log"
    with pytest.raises(OutputsError) as info:
        outputs_mod.run(argv, env={}, cwd=tmp_path, log_path=log, timeout=60)
    assert "printed no valid JSON on stdout (Expecting value at line 1, column 1" in info.value.render()
    assert log.read_text() == "reading state\n"


def test_an_outputs_command_that_is_not_there_is_named(tmp_path: Path) -> None:
    with pytest.raises(OutputsError) as info:
        outputs_mod.run(["no-such-tool-xyz", "output"], env={}, cwd=tmp_path, log_path=tmp_path / "o.log", timeout=5)
    assert "the outputs command `no-such-tool-xyz output` could not be started" in info.value.render()


def test_an_outputs_command_that_hangs_is_stopped(tmp_path: Path) -> None:
    argv = _script(tmp_path, "import time\ntime.sleep(60)\n")
    with pytest.raises(OutputsError, match="did not finish within 1s; it was stopped"):
        outputs_mod.run(argv, env={}, cwd=tmp_path, log_path=tmp_path / "o.log", timeout=1)


# --------------------------------------------------------------------------- masking


def test_a_report_and_the_report_folder_lose_the_secret(tmp_path: Path) -> None:
    info = {"outputs": {"pw": "s3cr3t", "name": "n"}, "sensitive_outputs": ["pw"]}
    secrets = masking.secrets_of(info)
    assert secrets == ["s3cr3t"]
    report = SimpleNamespace(longrepr="assert 's3cr3t' == 'x'", sections=[("Captured stdout call", "pw=s3cr3t\n")])
    masking.mask_report(report, secrets)
    assert report.longrepr == "assert '***' == 'x'"
    assert report.sections == [("Captured stdout call", "pw=***\n")]
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "t.json").write_text('{"v": "s3cr3t"}')
    (tmp_path / "clean.txt").write_text("nothing")
    assert masking.mask_files(tmp_path, secrets) == []
    assert (tmp_path / "traces" / "t.json").read_text() == '{"v": "***"}'
    assert (tmp_path / "clean.txt").read_text() == "nothing"


# --------------------------------------------------------------------------- the kind


def test_the_tagged_kind_refuses_to_start_without_a_destroy_command() -> None:
    with pytest.raises(ConfigError) as info:
        TaggedKind().check(SimpleNamespace(destroy_command=None))  # type: ignore[arg-type]
    assert "deploy-kind is 'tagged' but no destroy-command is set" in info.value.render()
    assert 'destroy-command = ["make", "destroy"]' in (info.value.hint or "")
    TaggedKind().check(SimpleNamespace(destroy_command=("make", "destroy")))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- discovery and deleters (moto)

TAGS = {"harness:managed-by": "branchstack", "harness:app": "shop", "harness:stage": "feat-x"}
KV = [{"Key": k, "Value": v} for k, v in TAGS.items()]
POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": "*"}]}
)


def _client_for(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def _deploy_everything(stage_tags: list[dict[str, str]]) -> None:
    c = _client_for
    role = c("iam").create_role(
        RoleName="shop-role",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        Tags=stage_tags,
    )["Role"]
    c("iam").put_role_policy(RoleName="shop-role", PolicyName="p", PolicyDocument=POLICY)
    c("iam").create_role(RoleName="other-role", AssumeRolePolicyDocument="{}")
    c("dynamodb").create_table(
        TableName="shop-orders",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        Tags=stage_tags,
    )
    c("sqs").create_queue(QueueName="shop-events", tags={t["Key"]: t["Value"] for t in stage_tags})
    c("sns").create_topic(Name="shop-topic", Tags=stage_tags)
    c("s3").create_bucket(Bucket="shop-bucket")
    c("s3").put_bucket_tagging(Bucket="shop-bucket", Tagging={"TagSet": stage_tags})
    c("s3").put_object(Bucket="shop-bucket", Key="k", Body=b"x")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("h.py", "def handler(e, c): return 1")
    c("lambda").create_function(
        FunctionName="shop-fn",
        Runtime="python3.11",
        Role=role["Arn"],
        Handler="h.handler",
        Code={"ZipFile": buf.getvalue()},
        Tags={t["Key"]: t["Value"] for t in stage_tags},
    )
    c("logs").create_log_group(logGroupName="/shop/app", tags={t["Key"]: t["Value"] for t in stage_tags})
    c("apigateway").create_rest_api(name="shop-api", tags={t["Key"]: t["Value"] for t in stage_tags})


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    for k, v in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


KINDS = [
    "apigateway:restapis",
    "dynamodb:table",
    "iam:role",
    "lambda:function",
    "logs:log-group",
    "s3",
    "sns",
    "sqs",
]


def test_find_lists_every_tagged_resource_by_arn_once_and_no_other(aws: Any) -> None:
    _deploy_everything(KV)
    found = find(_client_for, wanted_tags(app="shop", stage="feat-x"), region=REGION)
    assert sorted(r.kind for r in found) == KINDS
    assert len({r.arn for r in found}) == len(found)
    assert find(_client_for, wanted_tags(app="shop", stage="other"), region=REGION) == []
    physical, types = resources_fields(found)
    assert physical["shop-fn"] == "shop-fn" and types["shop-fn"] == "AWS::Lambda::Function"
    assert physical["shop-orders"] == "shop-orders" and types["shop-role"] == "AWS::IAM::Role"
    assert physical["/shop/app"] == "/shop/app"


def test_the_deleters_remove_each_listed_type_and_name_the_rest(aws: Any) -> None:
    _deploy_everything(KV)
    found = find(_client_for, wanted_tags(app="shop", stage="feat-x"), region=REGION)
    bus = TaggedResource("arn:aws:events:us-east-1:123456789012:event-bus/shop-bus", dict(TAGS))
    deleted, failed, unknown = deleters.delete_all(_client_for, [*found, bus])
    assert failed == []
    assert unknown == [f"{bus.arn} (no deleter for events:event-bus)"]
    assert sorted(deleted) == sorted(r.arn for r in found)
    assert find(_client_for, wanted_tags(app="shop", stage="feat-x"), region=REGION) == []
    assert [r["RoleName"] for r in _client_for("iam").list_roles()["Roles"]] == ["other-role"]
    # Deleting again: already gone counts as deleted (moto answers a deleted REST API with a KeyError).
    again = [r for r in found if r.kind != "apigateway:restapis"]
    assert deleters.delete_all(_client_for, again) == ([r.arn for r in sorted(again, key=_order)], [], [])


def _order(r: TaggedResource) -> int:
    return list(deleters.DELETERS).index(r.kind)


def test_name_of_gives_what_a_test_passes_to_boto3() -> None:
    cases = {
        "arn:aws:lambda:us-east-1:1:function:fn": "fn",
        "arn:aws:sqs:us-east-1:1:q": "q",
        "arn:aws:s3:::b": "b",
        "arn:aws:sns:us-east-1:1:t": "arn:aws:sns:us-east-1:1:t",
        "arn:aws:dynamodb:us-east-1:1:table/t": "t",
        "arn:aws:iam::1:role/r": "r",
        "arn:aws:logs:us-east-1:1:log-group:/a/b": "/a/b",
        "arn:aws:apigateway:us-east-1::/restapis/abc": "abc",
    }
    assert {arn: name_of(TaggedResource(arn)) for arn in cases} == cases


def test_ls_groups_tagged_resources_by_stage_and_gc_collects_one(aws: Any) -> None:
    _deploy_everything(KV)
    records = list_deployments(_client_for, region=REGION, stacks=[])
    assert [(r.name, r.stage, r.status) for r in records] == [("shop-feat-x", "feat-x", "TAGGED (8 resources)")]
    from harness.inventory import DELETE, GcDecision

    ran: list[str] = []
    result = collect(
        _client_for,
        GcDecision(records[0], DELETE, ("expired",)),
        region=REGION,
        destroy=lambda r: ran.append(r.name),
        in_use=lambda r: None,
    )
    assert ran == ["shop-feat-x"]
    assert result.ok and result.detail.startswith("deleted (destroy command ran; deleted by the harness: ")
    assert list_deployments(_client_for, region=REGION, stacks=[]) == []


def test_gc_leaves_a_tagged_deployment_in_use(aws: Any) -> None:
    _deploy_everything(KV)
    record = list_deployments(_client_for, region=REGION, stacks=[])[0]
    assert isinstance(record, TaggedRecord)
    from harness.inventory import DELETE, GcDecision

    result = collect(
        _client_for, GcDecision(record, DELETE, ("expired",)), region=REGION, destroy=None, in_use=lambda r: "run 1"
    )
    assert result.ok and result.detail == "skipped: in use: run 1"
    assert len(list_deployments(_client_for, region=REGION, stacks=[])[0].resources) == 8


def test_gc_judges_a_tagged_deployment_by_the_stack_rules() -> None:
    import datetime as dt

    from harness.inventory import DELETE, SKIP, plan_gc

    now = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)

    def record(stage: str, expires: str) -> TaggedRecord:
        t = {**TAGS, "harness:stage": stage, "harness:expires-at": expires, "harness:branch": stage}
        return TaggedRecord(name=f"shop-{stage}", stack_id=f"tagged:shop-{stage}", status="TAGGED (1 resource)", tags=t)

    plan = plan_gc(
        [
            record("main", "2026-01-01T00:00:00Z"),
            record("feat-a", "2026-01-01T00:00:00Z"),
            record("feat-b", "2026-01-03T00:00:00Z"),
            record("feat-c", "2026-01-01T00:00:00Z"),
        ],
        now=now,
        protected_stages=("main",),
        remote=None,
        in_use=lambda r: "run 7" if r.stage == "feat-c" else None,
    )
    decided = {d.record.name: (d.action, d.reason) for d in plan.decisions}
    assert decided["shop-main"][0] == SKIP and "protected stage 'main'" in decided["shop-main"][1]
    assert decided["shop-feat-a"] == (DELETE, "expired 1d ago")
    assert decided["shop-feat-c"][0] == SKIP and "in use: run 7" in decided["shop-feat-c"][1]
    assert "shop-feat-b" not in decided and plan.quietly_kept == 1
