"""The stack set: discovery by tags, dependency order, merged outputs, ordered teardown.

Discovery and exports run against moto's CloudFormation; the teardown's two
wrong-order behaviours (the emulator's immediate ValidationError, AWS's
DELETE_FAILED) against a small fake that answers as each does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from moto import mock_aws

from harness import stackset, tags
from harness.errors import DeployError, TeardownError
from harness.stack import output_conflict

STAGE = "feature-x"


def _tags(stage: str = STAGE, app: str | None = "orders", run: str = "run1") -> list[dict[str, str]]:
    t = {tags.MANAGED_BY: tags.MANAGER, tags.STAGE: stage, tags.RUN_ID: run}
    if app:
        t[tags.APP] = app
    return [{"Key": k, "Value": v} for k, v in t.items()]


def _template(outputs: dict[str, Any], *, imports: list[str] = ()) -> str:  # type: ignore[assignment]
    resources: dict[str, Any] = {"Q": {"Type": "AWS::SQS::Queue"}}
    for i, name in enumerate(imports):
        resources[f"T{i}"] = {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Fn::ImportValue": name}}}
    return json.dumps({"Resources": resources, "Outputs": outputs})


class WithImports:
    """moto's CloudFormation, plus ListImports (moto has none), answered from the live templates."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_paginator(self, name: str) -> Any:
        if name != "list_imports":
            return self._client.get_paginator(name)
        return self

    def paginate(self, ExportName: str) -> list[dict[str, Any]]:  # noqa: N803 - boto3's name
        importers = []
        for desc in self._client.describe_stacks()["Stacks"]:
            body = self._client.get_template(StackName=desc["StackName"])["TemplateBody"]
            if f'"Fn::ImportValue": "{ExportName}"' in (body if isinstance(body, str) else json.dumps(body)):
                importers.append(desc["StackName"])
        if not importers:
            raise botocore.exceptions.ClientError(
                {
                    "Error": {
                        "Code": "ValidationError",
                        "Message": f"Export '{ExportName}' is not imported by any stack.",
                    }
                },
                "ListImports",
            )
        return [{"Imports": importers}]


@pytest.fixture
def cfn() -> Any:
    with mock_aws():
        yield WithImports(boto3.client("cloudformation", region_name="us-east-1"))


def _data_and_api(cfn: Any) -> None:
    cfn.create_stack(
        StackName=f"orders-data-{STAGE}",
        TemplateBody=_template(
            {
                "TableName": {"Value": "orders-table", "Export": {"Name": f"orders-table-{STAGE}"}},
                "Region": {"Value": "us-east-1"},
            }
        ),
        Tags=_tags(),
    )
    cfn.create_stack(
        StackName=f"orders-api-{STAGE}",
        TemplateBody=_template(
            {"ApiUrl": {"Value": "http://api"}, "Region": {"Value": "us-east-1"}},
            imports=[f"orders-table-{STAGE}"],
        ),
        Tags=_tags(),
    )


def test_discovers_the_set_by_tags_in_creation_order(cfn: Any) -> None:
    # The api stack sorts first by name; its import puts it after the data stack.
    _data_and_api(cfn)
    cfn.create_stack(StackName="orders-other", TemplateBody=_template({}), Tags=_tags(stage="other"))
    cfn.create_stack(StackName="billing-x", TemplateBody=_template({}), Tags=_tags(app="billing"))
    cfn.create_stack(StackName="untagged", TemplateBody=_template({}))
    found = stackset.discover(cfn, app="orders", stage=STAGE, primary=f"orders-api-{STAGE}")
    assert found.names == [f"orders-data-{STAGE}", f"orders-api-{STAGE}"]
    assert found.deletion_order() == [f"orders-api-{STAGE}", f"orders-data-{STAGE}"]
    assert found.depends_on[f"orders-api-{STAGE}"] == {f"orders-data-{STAGE}"}
    assert found.get(f"orders-data-{STAGE}").exports == (f"orders-table-{STAGE}",)  # type: ignore[union-attr]


def test_a_stack_without_the_app_tag_belongs_only_as_the_primary(cfn: Any) -> None:
    cfn.create_stack(StackName=f"orders-{STAGE}", TemplateBody=_template({}), Tags=_tags(app=None))
    cfn.create_stack(StackName=f"stranger-{STAGE}", TemplateBody=_template({}), Tags=_tags(app=None))
    found = stackset.discover(cfn, app="orders", stage=STAGE, primary=f"orders-{STAGE}")
    assert found.names == [f"orders-{STAGE}"]


def test_the_manifest_adds_dependencies_no_export_shows(cfn: Any, tmp_path: Path) -> None:
    for name in ("b-one", "a-two"):
        cfn.create_stack(StackName=name, TemplateBody=_template({}), Tags=_tags())
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "artifacts": {
                    "One": {"type": "aws:cloudformation:stack", "properties": {"stackName": "b-one"}},
                    "Two": {
                        "type": "aws:cloudformation:stack",
                        "properties": {"stackName": "a-two"},
                        "dependencies": ["One", "Two.assets"],
                    },
                    "Two.assets": {"type": "cdk:asset-manifest"},
                }
            }
        )
    )
    without = stackset.discover(cfn, app="orders", stage=STAGE, primary="b-one")
    assert without.names == ["a-two", "b-one"]
    found = stackset.discover(cfn, app="orders", stage=STAGE, primary="b-one", manifest=manifest)
    assert found.names == ["b-one", "a-two"]
    assert found.deletion_order() == ["a-two", "b-one"]


def test_an_unreadable_manifest_adds_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "manifest.json"
    bad.write_text("{not json")
    assert stackset.manifest_edges(bad, ["x"]) == {}


def test_a_cycle_is_refused_with_the_stacks_named() -> None:
    with pytest.raises(DeployError, match="a, b|b, a"):
        stackset.creation_order(["a", "b"], {"a": {"b"}, "b": {"a"}})


def test_outputs_merge_and_a_shared_key_names_both_stacks_and_the_way_to_pick(cfn: Any) -> None:
    _data_and_api(cfn)
    found = stackset.discover(cfn, app="orders", stage=STAGE, primary=f"orders-api-{STAGE}")
    merged, shared = stackset.merge_outputs(found.outputs_by_stack())
    assert merged == {"TableName": "orders-table", "ApiUrl": "http://api"}
    assert shared == {"Region": [f"orders-data-{STAGE}", f"orders-api-{STAGE}"]}
    err = output_conflict("Region", shared["Region"])
    assert isinstance(err, KeyError)
    assert f"defined by 2 stacks of the set: orders-data-{STAGE}, orders-api-{STAGE}" in str(err)
    assert f'stack.output("Region", stack="orders-data-{STAGE}")' in str(err)


def test_created_by_run_and_the_misnamed_deploy_message(cfn: Any, tmp_path: Path) -> None:
    cfn.create_stack(StackName="myapp-dev", TemplateBody=_template({}), Tags=_tags(run="r-now"))
    cfn.create_stack(StackName=f"old-{STAGE}", TemplateBody=_template({}), Tags=_tags(run="r-old"))
    found = stackset.discover(cfn, app="orders", stage=STAGE, primary=f"orders-{STAGE}")
    created = stackset.created_by_run(found, "r-now")
    assert created == ["myapp-dev"]
    err = stackset.misnamed_error(f"orders-{STAGE}", created, STAGE, tmp_path / "deploy.log")
    text = err.render()
    assert f"created no stack named orders-{STAGE}, but it did create myapp-dev" in text
    assert "it ignores STACK_NAME" in text
    assert "--stack-name $STACK_NAME" in text
    staged = stackset.misnamed_error(f"orders-{STAGE}", [f"orders-api-{STAGE}"], STAGE, tmp_path / "d.log")
    assert 'stack-name-pattern = "orders-api-{stage}"' in staged.render()


def test_resources_of_nested_stacks_are_read_under_their_parent() -> None:
    class Cfn:
        def get_paginator(self, name: str) -> Any:
            assert name == "list_stack_resources"
            return self

        def paginate(self, StackName: str) -> list[dict[str, Any]]:  # noqa: N803 - boto3's name
            rows = {
                "root": [
                    {"LogicalResourceId": "Fn", "ResourceType": "AWS::Lambda::Function", "PhysicalResourceId": "f1"},
                    {"LogicalResourceId": "Inner", "ResourceType": stackset.STACK_TYPE, "PhysicalResourceId": "n1"},
                    {"LogicalResourceId": "Pending", "ResourceType": "AWS::SQS::Queue"},
                ],
                "n1": [{"LogicalResourceId": "T", "ResourceType": "AWS::DynamoDB::Table", "PhysicalResourceId": "t"}],
            }[StackName]
            return [{"StackResourceSummaries": rows}]

    physical, types = stackset.read_resources_deep(Cfn(), "root")
    assert physical == {"Fn": "f1", "Inner": "n1", "Inner/T": "t"}
    assert types["Inner/T"] == "AWS::DynamoDB::Table"
    assert types["Pending"] == "AWS::SQS::Queue"


# -- teardown order ---------------------------------------------------------------


class FakeCfn:
    """Stacks with exports; deleting an exporter whose export is imported fails as ``mode`` says.

    ``emulator``: the delete call raises ValidationError at once. ``aws``: the
    delete is accepted and the stack ends DELETE_FAILED. ``stuck`` names
    stacks that end DELETE_FAILED for another reason.
    """

    def __init__(self, imports: dict[str, set[str]], *, mode: str, stuck: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.live = set(imports) | {x for v in imports.values() for x in v}
        self.imports = imports  # importer -> exporters
        self.mode = mode
        self.stuck = stuck
        self.status: dict[str, str] = {n: "CREATE_COMPLETE" for n in self.live}
        self.calls: list[str] = []

    def _in_use_by(self, name: str) -> list[str]:
        return sorted(i for i, ex in self.imports.items() if name in ex and i in self.live)

    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803
        if StackName not in self.status:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "ValidationError", "Message": f"Stack with id {StackName} does not exist"}},
                "DescribeStacks",
            )
        return {"Stacks": [{"StackName": StackName, "StackStatus": self.status[StackName]}]}

    def delete_stack(self, StackName: str, ClientRequestToken: str) -> None:  # noqa: N803
        self.calls.append(StackName)
        users = self._in_use_by(StackName)
        if users and self.mode == "emulator":
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "ValidationError", "Message": f"Export x-{StackName} is imported by {users[0]}"}},
                "DeleteStack",
            )
        if users or StackName in self.stuck:
            self.status[StackName] = "DELETE_FAILED"
            why = (
                f"Export x-{StackName} cannot be deleted as it is in use by {users[0]}" if users else "Bucket not empty"
            )
            self.events = [
                {
                    "Timestamp": 0,
                    "LogicalResourceId": "R",
                    "ResourceType": "AWS::S3::Bucket",
                    "ResourceStatus": "DELETE_FAILED",
                    "ResourceStatusReason": why,
                }
            ]
            return
        self.live.discard(StackName)
        self.status[StackName] = "DELETE_COMPLETE"

    def get_waiter(self, name: str) -> Any:
        cfn = self

        class Waiter:
            def wait(self, StackName: str, WaiterConfig: dict[str, Any]) -> None:  # noqa: N803
                if cfn.status[StackName] == "DELETE_FAILED":
                    raise botocore.exceptions.WaiterError(
                        name, "failed", {"Stacks": [{"StackStatus": "DELETE_FAILED"}]}
                    )

        return Waiter()

    def get_paginator(self, name: str) -> Any:
        cfn = self

        class Pages:
            def paginate(self, StackName: str) -> list[dict[str, Any]]:  # noqa: N803
                return [{"StackEvents": list(getattr(cfn, "events", []))}]

        return Pages()


@pytest.mark.parametrize("mode", ["emulator", "aws"])
def test_the_importer_first_deletes_each_stack_once(mode: str) -> None:
    cfn = FakeCfn({"api": {"data"}}, mode=mode)
    result = stackset.delete_set(cfn, [("api", "api"), ("data", "data")], delay=0, max_attempts=1)
    assert result.deleted == ["api", "data"]
    assert cfn.calls == ["api", "data"]
    assert result.errors == [] and result.retried == []


@pytest.mark.parametrize("mode", ["emulator", "aws"])
def test_the_exporter_first_is_retried_after_its_importer(mode: str) -> None:
    cfn = FakeCfn({"api": {"data"}}, mode=mode)
    said: list[str] = []
    result = stackset.delete_set(cfn, [("data", "data"), ("api", "api")], delay=0, max_attempts=1, out=said.append)
    assert result.deleted == ["api", "data"]
    assert cfn.calls == ["data", "api", "data"]
    assert result.retried == ["data"]
    assert said == ["teardown: data is still imported by another stack of the set; retrying after it"]
    stackset.raise_for(result)


def test_delete_failed_is_reported_with_cloudformations_reason_and_the_rest_still_goes() -> None:
    cfn = FakeCfn({"api": {"data"}, "solo": set()}, mode="aws", stuck={"api"})
    result = stackset.delete_set(cfn, [("api", "api"), ("solo", "solo"), ("data", "data")], delay=0, max_attempts=1)
    assert result.deleted == ["solo"]
    joined = "\n".join(result.errors)
    assert "stack api was not deleted: status DELETE_FAILED" in joined
    assert "Bucket not empty" in joined
    assert "stack data was not deleted" in joined and "in use by api" in joined
    with pytest.raises(TeardownError, match="the stack set was not fully deleted"):
        stackset.raise_for(result)


def test_a_stack_already_gone_counts_as_deleted() -> None:
    cfn = FakeCfn({"api": set()}, mode="aws")
    assert stackset.delete_set(cfn, [("ghost", "ghost")], delay=0, max_attempts=1).deleted == ["ghost"]


def test_a_nested_stack_without_parent_id_is_not_a_member_of_its_own(cfn: Any) -> None:
    # MiniStack lists a nested stack like any other (no ParentId), with its parent's tags.
    cfn.create_stack(StackName="inner", TemplateBody=_template({}), Tags=_tags())
    inner_id = cfn.describe_stacks(StackName="inner")["Stacks"][0]["StackId"]
    cfn.create_stack(StackName="outer", TemplateBody=_template({}), Tags=_tags())
    real = cfn.get_paginator

    class Paginator:
        def paginate(self, StackName: str) -> list[dict[str, Any]]:  # noqa: N803
            if "outer" in StackName:
                row = {
                    "LogicalResourceId": "Inner",
                    "ResourceType": stackset.STACK_TYPE,
                    "PhysicalResourceId": inner_id,
                }
                return [{"StackResourceSummaries": [row]}]
            return [{"StackResourceSummaries": []}]

    cfn.get_paginator = lambda name: Paginator() if name == "list_stack_resources" else real(name)
    assert stackset.discover(cfn, app="orders", stage=STAGE, primary="outer").names == ["outer"]


def test_set_fields_and_the_lines_the_run_prints(cfn: Any) -> None:
    _data_and_api(cfn)
    found = stackset.discover(cfn, app="orders", stage=STAGE, primary=f"orders-api-{STAGE}")
    fields = stackset.set_fields(cfn, found)
    assert fields["stacks"] == [f"orders-data-{STAGE}", f"orders-api-{STAGE}"]
    assert fields["shared_outputs"] == {"Region": fields["stacks"]}
    # Q is in both stacks: keyed by stack; T0 only in the api stack: by its logical id.
    assert set(fields["resources"]) == {f"orders-data-{STAGE}:Q", f"orders-api-{STAGE}:Q", "T0"}
    line = stackset.describe_line(found, fields)
    assert line.startswith(f"stack set of 2 (in deploy order): orders-data-{STAGE}, orders-api-{STAGE}; 3 resources")
    assert stackset.unhealthy(found) == []


def test_the_leak_line_names_the_types_it_could_not_check() -> None:
    assert stackset.leak_line(3, []) == "verified gone (3 resources checked, 0 left)"
    line = stackset.leak_line(5, ["D (AWS::ApiGateway::Deployment)", "P (AWS::IAM::Policy)", "E (AWS::IAM::Policy)"])
    assert line == (
        "verified gone (5 of 8 resources checked, 0 left); not checkable: AWS::ApiGateway::Deployment, AWS::IAM::Policy"
    )
