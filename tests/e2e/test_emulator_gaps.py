"""Emulator gaps that real templates hit, reproduced on MiniStack, with and without their adaptation.

Each template under ``stacks/gaps/`` is a tiny SAM/CloudFormation app written
the way AWS's samples write it. Deployed on the emulator as the harness starts
it (every adaptation applied) it behaves as on AWS; on the emulator as shipped
(the gap's adaptation left out with ``HARNESS_EMULATOR_ADAPTATIONS_OFF``) it
shows the gap, so each adaptation is proved to be what closes it.

To see the adapted tests go red, leave an adaptation out of the harness's own
emulator too: ``HARNESS_EMULATOR_ADAPTATIONS_OFF=<name> pytest tests/e2e/test_emulator_gaps.py``
(the variable reaches the emulator the harness starts).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
import requests
from e2e_support import Emulator, start_emulator

from harness.emulator import (
    OFF_VARIABLE,
    apigw_openapi_integration,
    eventbridge_sqs_policy,
    iam_s3_list_buckets,
    lambda_env_strings,
    lambda_name_length,
    lambda_tag_update,
    sfn_role,
    sfn_start,
)

pytestmark = pytest.mark.e2e

STACKS = Path(__file__).parent / "stacks" / "gaps"
GAP_ADAPTATIONS = (
    iam_s3_list_buckets.NAME,
    apigw_openapi_integration.NAME,
    lambda_env_strings.NAME,
    lambda_name_length.NAME,
    lambda_tag_update.NAME,
    eventbridge_sqs_policy.NAME,
    sfn_role.NAME,
)


@pytest.fixture(scope="module")
def adapted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The emulator as the harness starts it: every adaptation applied."""
    emu = start_emulator(tmp_path_factory.mktemp("adapted"))
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The emulator without the adaptations of these gaps (the trace-header one stays)."""
    emu = start_emulator(tmp_path_factory.mktemp("shipped"), extra_env={OFF_VARIABLE: ",".join(GAP_ADAPTATIONS)})
    try:
        yield emu
    finally:
        emu.stop()


@dataclass
class Deployed:
    status: str
    outputs: dict[str, str] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)


def deploy(emu: Emulator, template: str) -> Deployed:
    """Create a stack from ``stacks/gaps/<template>`` and wait for it to settle (created or failed)."""
    cfn = emu.client("cloudformation")
    name = f"gap-{Path(template).stem.replace('_', '-')}-{uuid.uuid4().hex[:6]}"
    cfn.create_stack(
        StackName=name,
        TemplateBody=(STACKS / template).read_text(),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        OnFailure="DO_NOTHING",
    )
    try:
        cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    except botocore.exceptions.WaiterError:
        pass  # a failed create is an outcome these tests look at
    desc = cfn.describe_stacks(StackName=name)["Stacks"][0]
    reasons = [
        f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
        for e in cfn.describe_stack_events(StackName=name)["StackEvents"]
        if e.get("ResourceStatus", "").endswith("FAILED")
    ]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in desc.get("Outputs") or []}
    return Deployed(desc["StackStatus"], outputs, reasons)


def invoke(emu: Emulator, function: str) -> tuple[str | None, Any]:
    resp = emu.client("lambda").invoke(FunctionName=function, Payload=b"{}")
    return resp.get("FunctionError"), json.loads(resp["Payload"].read() or b"null")


# --------------------------------------------------------------------------- 1. IAM: ListBuckets on arn:aws:s3:::*


def test_list_buckets_allowed_on_s3_wildcard(adapted: Emulator) -> None:
    stack = deploy(adapted, "list_buckets.yaml")
    assert stack.status == "CREATE_COMPLETE", stack.reasons
    error, payload = invoke(adapted, stack.outputs["FunctionName"])
    assert error is None, payload
    assert isinstance(payload["buckets"], int)


def test_list_buckets_denied_as_shipped(shipped: Emulator) -> None:
    stack = deploy(shipped, "list_buckets.yaml")
    assert stack.status == "CREATE_COMPLETE", stack.reasons
    error, payload = invoke(shipped, stack.outputs["FunctionName"])
    assert error == "Unhandled", payload
    assert "AccessDenied" in json.dumps(payload) and "s3:ListAllMyBuckets" in json.dumps(payload)


# --------------------------------------------------------------------------- 2. API Gateway -> SQS from OpenAPI


def post_inbox(emu: Emulator, stack: Deployed, body: dict[str, Any]) -> requests.Response:
    url = f"{emu.url}/_aws/execute-api/{stack.outputs['ApiId']}/Prod/inbox"
    return requests.post(url, json=body, timeout=30)


def test_openapi_sqs_integration_sends_the_message(adapted: Emulator) -> None:
    stack = deploy(adapted, "apigw_sqs.yaml")
    assert stack.status == "CREATE_COMPLETE", stack.reasons
    order = {"order": f"o-{uuid.uuid4().hex[:8]}", "note": "a & b = c"}
    resp = post_inbox(adapted, stack, order)
    assert resp.status_code == 200, resp.text
    message_id = resp.json()["messageId"]
    got = adapted.client("sqs").receive_message(QueueUrl=stack.outputs["QueueUrl"], WaitTimeSeconds=2)
    assert [(m["MessageId"], json.loads(m["Body"])) for m in got.get("Messages", [])] == [(message_id, order)]


def test_openapi_sqs_integration_keeps_every_field(adapted: Emulator) -> None:
    stack = deploy(adapted, "apigw_sqs.yaml")
    apigw = adapted.client("apigateway")
    api = stack.outputs["ApiId"]
    resource = next(r for r in apigw.get_resources(restApiId=api)["items"] if r["path"] == "/inbox")
    integration = apigw.get_integration(restApiId=api, resourceId=resource["id"], httpMethod="POST")
    assert integration["type"] == "AWS"
    assert integration["credentials"].endswith(":role/" + integration["credentials"].rsplit("/", 1)[1])
    assert integration["requestTemplates"]["application/json"].startswith("Action=SendMessage&")
    assert integration["requestParameters"] == {
        "integration.request.header.Content-Type": "'application/x-www-form-urlencoded'"
    }
    assert integration["passthroughBehavior"] == "NEVER" or integration["passthroughBehavior"] == "never"
    assert integration["integrationResponses"]["200"]["selectionPattern"] in ("", None)
    method = apigw.get_method(restApiId=api, resourceId=resource["id"], httpMethod="POST")
    assert "200" in method["methodResponses"]


def test_openapi_sqs_integration_answers_500_as_shipped(shipped: Emulator) -> None:
    stack = deploy(shipped, "apigw_sqs.yaml")
    assert stack.status == "CREATE_COMPLETE", stack.reasons
    resp = post_inbox(shipped, stack, {"order": "o-1"})
    assert resp.status_code == 500, resp.text
    got = shipped.client("sqs").receive_message(QueueUrl=stack.outputs["QueueUrl"], WaitTimeSeconds=0)
    assert not got.get("Messages")


# --------------------------------------------------------------------------- 3. Lambda environment scalars

EXPECTED_ENV = {"POWERTOOLS_LOGGER_SAMPLE_RATE": "0.1", "POWERTOOLS_TRACE_DISABLED": "true", "RETRIES": "3"}


def test_environment_numbers_and_booleans_reach_the_function_as_strings(adapted: Emulator) -> None:
    stack = deploy(adapted, "env_scalars.yaml")
    assert stack.status == "CREATE_COMPLETE", stack.reasons
    error, payload = invoke(adapted, stack.outputs["FunctionName"])
    assert (error, payload) == (None, EXPECTED_ENV)
    config = adapted.client("lambda").get_function_configuration(FunctionName=stack.outputs["FunctionName"])
    assert config["Environment"]["Variables"] == EXPECTED_ENV


def test_environment_numbers_crash_the_function_as_shipped(shipped: Emulator) -> None:
    stack = deploy(shipped, "env_scalars.yaml")
    assert stack.status == "CREATE_COMPLETE", stack.reasons
    error, payload = invoke(shipped, stack.outputs["FunctionName"])
    assert error is not None, payload
    assert "expected str, bytes or os.PathLike object" in json.dumps(payload)


# --------------------------------------------------------------------------- 4. Lambda name length


def test_function_name_over_64_characters_fails_the_stack(adapted: Emulator) -> None:
    stack = deploy(adapted, "long_name.yaml")
    assert stack.status in ("CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED"), stack
    assert any("Member must have length less than or equal to 64" in r for r in stack.reasons), stack.reasons


def test_function_name_over_64_characters_refused_by_create_function(adapted: Emulator) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as err:
        adapted.client("lambda").create_function(
            FunctionName="f" * 65,
            Runtime="python3.11",
            Role="arn:aws:iam::000000000000:role/any",
            Handler="index.handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert "less than or equal to 64" in err.value.response["Error"]["Message"]


def test_function_name_over_64_characters_deploys_as_shipped(shipped: Emulator) -> None:
    stack = deploy(shipped, "long_name.yaml")
    assert stack.status == "CREATE_COMPLETE", stack.reasons


# --------------------------------------------------------------------------- 5. Lambda: a tags-only update


def update(emu: Emulator, name: str, *, tags: dict[str, str], greeting: str = "hello") -> None:
    """Update the stack ``name`` with its template as it is, new stack tags and the ``Greeting`` parameter."""
    cfn = emu.client("cloudformation")
    cfn.update_stack(
        StackName=name,
        UsePreviousTemplate=True,
        Parameters=[{"ParameterKey": "Greeting", "ParameterValue": greeting}],
        Capabilities=["CAPABILITY_IAM"],
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )
    cfn.get_waiter("stack_update_complete").wait(StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})


def runtimes_across_updates(emu: Emulator) -> tuple[list[dict[str, str]], dict[str, str]]:
    """What the function answers before, after a tags-only update, and after a variable changed; its tags."""
    stack = deploy(emu, "warm_tags.yaml")
    assert stack.status == "CREATE_COMPLETE", stack.reasons
    function = stack.outputs["FunctionName"]
    name = next(
        s["StackName"]
        for s in emu.client("cloudformation").describe_stacks()["Stacks"]
        if s.get("Outputs") and s["Outputs"][0]["OutputValue"] == function
    )
    answers = [invoke(emu, function)[1]]
    update(emu, name, tags={"harness:run-id": "second"})
    answers.append(invoke(emu, function)[1])
    update(emu, name, tags={"harness:run-id": "second"}, greeting="hi")
    answers.append(invoke(emu, function)[1])
    arn = emu.client("lambda").get_function(FunctionName=function)["Configuration"]["FunctionArn"]
    return answers, emu.client("lambda").list_tags(Resource=arn)["Tags"]


def test_a_tags_only_update_keeps_the_warm_runtime_and_applies_the_tags(adapted: Emulator) -> None:
    (first, after_tags, after_variable), function_tags = runtimes_across_updates(adapted)
    assert after_tags == first  # the same runtime answered: the update did not touch it
    assert function_tags.get("harness:run-id") == "second"
    assert after_variable["greeting"] == "hi"
    assert after_variable["runtime"] != first["runtime"]  # a configuration change still starts a new one


def test_a_tags_only_update_starts_the_function_cold_as_shipped(shipped: Emulator) -> None:
    (first, after_tags, _after_variable), function_tags = runtimes_across_updates(shipped)
    assert after_tags["runtime"] != first["runtime"]
    assert function_tags.get("harness:run-id") == "second"


# --------------------------------------------------------------------------- the guards, on the pinned emulator

CHANGED_SHAPES = [
    (iam_s3_list_buckets, "ministack.core.iam_actions", "extract_resource_arn"),
    (apigw_openapi_integration, "ministack.services.apigateway_v1", "_import_operation"),
    (apigw_openapi_integration, "ministack.services.apigateway_v1", "_put_integration_response"),
    (lambda_env_strings, "ministack.services.cloudformation.provisioners", "_lambda_update"),
    (lambda_name_length, "ministack.services.lambda_svc", "_create_function"),
    (lambda_tag_update, "ministack.services.cloudformation.provisioners", "_reconcile_tag_map"),
    (eventbridge_sqs_policy, "ministack.services.eventbridge", "_invoke_target"),
    (eventbridge_sqs_policy, "ministack.services.sqs", "queue_policy_allows"),
    (sfn_role, "ministack.services.stepfunctions", "_execute_task"),
    (sfn_role, "ministack.services.stepfunctions", "_invoke_resource"),
    (sfn_start, "ministack.services.stepfunctions", "_run_execution"),
]


def rule_to_two_queues(emu: Emulator) -> tuple[str, str]:
    """A rule targeting two queues, only the first of which lets the rule send; one event put. (allowed, denied)"""
    tag = uuid.uuid4().hex[:8]
    events, sqs = emu.client("events"), emu.client("sqs")
    rule_arn = events.put_rule(Name=f"r-{tag}", EventPattern=json.dumps({"source": [f"gap.{tag}"]}))["RuleArn"]
    urls = [sqs.create_queue(QueueName=f"{name}-{tag}")["QueueUrl"] for name in ("allowed", "denied")]
    arns = [sqs.get_queue_attributes(QueueUrl=u, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"] for u in urls]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": arns[0],
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=urls[0], Attributes={"Policy": json.dumps(policy)})
    events.put_targets(Rule=f"r-{tag}", Targets=[{"Id": str(i), "Arn": arn} for i, arn in enumerate(arns)])
    events.put_events(Entries=[{"Source": f"gap.{tag}", "DetailType": "Gap", "Detail": "{}"}])
    return urls[0], urls[1]


def messages(emu: Emulator, url: str) -> int:
    return len(emu.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []))


def test_eventbridge_delivers_only_where_the_queue_policy_allows(adapted: Emulator) -> None:
    allowed, denied = rule_to_two_queues(adapted)
    assert (messages(adapted, allowed), messages(adapted, denied)) == (1, 0)


def test_eventbridge_delivers_to_any_queue_as_shipped(shipped: Emulator) -> None:
    allowed, denied = rule_to_two_queues(shipped)
    assert (messages(shipped, allowed), messages(shipped, denied)) == (1, 1)


@pytest.mark.parametrize(("adaptation", "module", "attr"), CHANGED_SHAPES, ids=lambda v: getattr(v, "NAME", v))
def test_an_adaptation_refuses_a_changed_emulator(
    monkeypatch: pytest.MonkeyPatch, adaptation: Any, module: str, attr: str
) -> None:
    """In this process (no emulator): a patched function whose shape changed stops the adaptation, loudly."""
    import importlib

    from harness.emulator.guard import AdaptationError

    monkeypatch.setattr(importlib.import_module(module), attr, lambda changed: None)
    with pytest.raises(AdaptationError, match=f"^{adaptation.NAME}: .*{attr}"):
        adaptation.apply()


def test_cloudformation_handler_table_must_hold_the_patched_function(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from harness.emulator.guard import AdaptationError

    prov = importlib.import_module("ministack.services.cloudformation.provisioners")
    entry = dict(prov._RESOURCE_HANDLERS["AWS::Lambda::Function"], create=lambda logical_id, props, stack_name: None)
    monkeypatch.setitem(prov._RESOURCE_HANDLERS, "AWS::Lambda::Function", entry)
    with pytest.raises(AdaptationError, match="create handler of AWS::Lambda::Function is no longer"):
        lambda_env_strings.apply()


def test_a_service_deferred_at_boot_is_whole_once_used(adapted: Emulator) -> None:
    """Cognito, EC2, KMS, SSM and Secrets Manager load at their first use (harness.emulator.launch.DEFERRED): what
    CloudFormation creates through them is what their own APIs then list, and the stack's delete removes it."""
    template = {
        "Resources": {
            "Key": {"Type": "AWS::KMS::Key", "Properties": {"Description": "deferred-key"}},
            "Parameter": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": "/deferred/param", "Type": "String", "Value": "v1"},
            },
            "Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": {"Name": "deferred-secret"}},
            "Pool": {"Type": "AWS::Cognito::UserPool", "Properties": {"UserPoolName": "deferred-pool"}},
            "Client": {"Type": "AWS::Cognito::UserPoolClient", "Properties": {"UserPoolId": {"Ref": "Pool"}}},
            "Group": {
                "Type": "AWS::EC2::SecurityGroup",
                "Properties": {"GroupDescription": "deferred", "GroupName": "deferred-group"},
            },
        }
    }
    cfn, idp, ec2 = adapted.client("cloudformation"), adapted.client("cognito-idp"), adapted.client("ec2")
    cfn.create_stack(StackName="deferred", TemplateBody=json.dumps(template))
    cfn.get_waiter("stack_create_complete").wait(StackName="deferred", WaiterConfig={"Delay": 0.2})
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.describe_stack_resources(StackName="deferred")["StackResources"]
    }
    pools = {p["Id"]: p["Name"] for p in idp.list_user_pools(MaxResults=60)["UserPools"]}
    assert pools.get(physical["Pool"]) == "deferred-pool", pools
    clients = idp.list_user_pool_clients(UserPoolId=physical["Pool"])["UserPoolClients"]
    assert [c["ClientId"] for c in clients] == [physical["Client"]]
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["deferred-group"]}])
    assert [g["GroupId"] for g in groups["SecurityGroups"]] == [physical["Group"]]
    kms, ssm, secrets = adapted.client("kms"), adapted.client("ssm"), adapted.client("secretsmanager")
    assert kms.describe_key(KeyId=physical["Key"])["KeyMetadata"]["Description"] == "deferred-key"
    assert ssm.get_parameter(Name="/deferred/param")["Parameter"]["Value"] == "v1"
    assert secrets.describe_secret(SecretId="deferred-secret")["Name"] == "deferred-secret"
    cfn.delete_stack(StackName="deferred")
    cfn.get_waiter("stack_delete_complete").wait(StackName="deferred", WaiterConfig={"Delay": 0.2})
    assert physical["Pool"] not in {p["Id"] for p in idp.list_user_pools(MaxResults=60)["UserPools"]}
    assert not ssm.get_parameters(Names=["/deferred/param"])["Parameters"]
    assert kms.describe_key(KeyId=physical["Key"])["KeyMetadata"]["KeyState"] == "PendingDeletion"


# --------------------------------------------------------------------------- Step Functions: the role of the tasks


def run_execution(emu: Emulator, machine: str, order: str) -> dict[str, Any]:
    """Start an execution of ``machine`` for ``order`` and wait until it ends (hang guard 60 s)."""
    sfn = emu.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"id": order}))["executionArn"]
    deadline = time.monotonic() + 60
    while (desc := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"hang guard: {arn} still running"
        time.sleep(0.05)
    return desc


def recorded(emu: Emulator, table: str, order: str) -> bool:
    return "Item" in emu.client("dynamodb").get_item(TableName=table, Key={"Id": {"S": order}})


def test_a_task_its_role_may_not_make_fails_the_execution_as_on_aws(adapted: Emulator) -> None:
    stack = deploy(adapted, "sfn_role.yaml")
    assert stack.status == "CREATE_COMPLETE", stack.reasons
    out = stack.outputs

    assert run_execution(adapted, out["Allowed"], "o-1")["status"] == "SUCCEEDED"
    assert recorded(adapted, out["Orders"], "o-1")

    no_table = run_execution(adapted, out["NoTable"], "o-2")  # priced, then refused the table
    assert (no_table["status"], no_table.get("error")) == ("FAILED", "DynamoDB.AmazonDynamoDBException"), no_table
    assert "is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:" in no_table["cause"]
    assert "Error Code: AccessDeniedException" in no_table["cause"]
    assert not recorded(adapted, out["Orders"], "o-2")

    no_function = run_execution(adapted, out["NoFunction"], "o-3")
    assert (no_function["status"], no_function.get("error")) == ("FAILED", "Lambda.AWSLambdaException"), no_function
    assert "is not authorized to perform: lambda:InvokeFunction on resource: arn:aws:lambda:" in no_function["cause"]


def test_a_task_runs_whatever_its_role_allows_as_shipped(shipped: Emulator) -> None:
    stack = deploy(shipped, "sfn_role.yaml")
    assert stack.status == "CREATE_COMPLETE", stack.reasons
    assert run_execution(shipped, stack.outputs["NoTable"], "o-4")["status"] == "SUCCEEDED"  # the gap
    assert recorded(shipped, stack.outputs["Orders"], "o-4")
