"""harness.fidelity: the warnings printed before the tests, on template snippets (no emulator)."""

from __future__ import annotations

import json
from typing import Any

import botocore.exceptions
import pytest
import yaml

from harness import fidelity, templates
from harness.fidelity import AWS_HINT, Finding

KINESIS_ESM = """
Resources:
  Stream:
    Type: AWS::Kinesis::Stream
    Properties: {ShardCount: 1}
  ConsumerStream:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      EventSourceArn: !GetAtt Stream.Arn
      FunctionName: !Ref Consumer
      StartingPosition: TRIM_HORIZON
      MaximumRetryAttempts: 2
      BisectBatchOnFunctionError: true
"""


def template(text: str) -> dict[str, Any]:
    return dict(templates.parse(text))


def rendered(text: str) -> list[str]:
    return [f.render() for f in fidelity.check_template(template(text))]


def test_finding_names_resource_property_consequence_and_what_to_do() -> None:
    line = Finding("Api GET /x", "security (authorizer)", "not imported").render()
    assert line == f"Api GET /x security (authorizer): not imported; {AWS_HINT}"


def test_kinesis_mapping_retry_settings_are_named() -> None:
    (line,) = rendered(KINESIS_ESM)
    assert line.startswith("ConsumerStream MaximumRetryAttempts, BisectBatchOnFunctionError: ")
    assert "Kinesis stream poller" in line
    assert "blocks its shard" in line


def test_kinesis_mapping_without_error_handling_settings_is_silent() -> None:
    text = KINESIS_ESM.replace("      MaximumRetryAttempts: 2\n", "").replace(
        "      BisectBatchOnFunctionError: true\n", ""
    )
    assert rendered(text) == []


def test_dynamodb_stream_mapping_partial_batch_response_is_named() -> None:
    text = """
Resources:
  Table:
    Type: AWS::DynamoDB::Table
  Mapping:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      EventSourceArn: {"Fn::GetAtt": ["Table", "StreamArn"]}
      FunctionResponseTypes: [ReportBatchItemFailures]
      MaximumRecordAgeInSeconds: 60
"""
    (line,) = rendered(text)
    # MaximumRecordAgeInSeconds is applied to DynamoDB streams by the emulator.
    assert line.startswith("Mapping FunctionResponseTypes: ")
    assert "DynamoDB stream poller" in line


def test_sqs_mapping_partial_batch_response_is_reproduced() -> None:
    text = """
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Mapping:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      EventSourceArn: !GetAtt Queue.Arn
      FunctionResponseTypes: [ReportBatchItemFailures]
"""
    assert rendered(text) == []


def test_stream_named_by_a_literal_arn() -> None:
    text = KINESIS_ESM.replace("!GetAtt Stream.Arn", "arn:aws:kinesis:us-east-1:123456789012:stream/clicks")
    assert len(rendered(text)) == 1


HTTP_API = {
    "Resources": {
        "ServerlessHttpApi": {
            "Type": "AWS::ApiGatewayV2::Api",
            "Properties": {
                "Body": {
                    "openapi": "3.0.1",
                    "paths": {
                        "/open": {
                            "get": {"x-amazon-apigateway-integration": {"type": "aws_proxy", "uri": "arn"}},
                        },
                        "/private": {
                            "parameters": [],
                            "post": {
                                "security": [{"OAuth2": []}],
                                "x-amazon-apigateway-integration": {"type": "aws_proxy", "uri": "arn"},
                            },
                        },
                        "/queue": {
                            "x-amazon-apigateway-any-method": {
                                "x-amazon-apigateway-integration": {
                                    "type": "aws_proxy",
                                    "integrationSubtype": "SQS-SendMessage",
                                },
                            },
                        },
                    },
                }
            },
        }
    }
}


def test_http_api_authorizer_and_service_integration_are_named() -> None:
    lines = [f.render() for f in fidelity.check_template(HTTP_API)]
    assert len(lines) == 2
    assert lines[0].startswith("ServerlessHttpApi POST /private security (authorizer): ")
    assert "without being authorized" in lines[0]
    assert lines[1].startswith("ServerlessHttpApi ANY /queue x-amazon-apigateway-integration integrationSubtype ")


def test_http_api_document_level_security_applies_to_every_route() -> None:
    body = json.loads(json.dumps(HTTP_API))
    api = body["Resources"]["ServerlessHttpApi"]["Properties"]["Body"]
    api["security"] = [{"OAuth2": []}]
    api["paths"]["/open"]["get"]["security"] = []  # explicitly public
    routes = [f.resource for f in fidelity.check_template(body) if "security" in f.prop]
    assert routes == ["ServerlessHttpApi POST /private", "ServerlessHttpApi ANY /queue"]


def test_http_api_body_in_s3_is_named() -> None:
    text = """
Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      BodyS3Location: {Bucket: b, Key: openapi.yaml}
"""
    (line,) = rendered(text)
    assert line.startswith("Api BodyS3Location: ") and "404" in line


REST_API_SQS = """
Resources:
  InboxApi:
    Type: AWS::ApiGateway::RestApi
    Properties:
      Body:
        paths:
          /inbox:
            post:
              x-amazon-apigateway-integration:
                type: aws
                credentials: !GetAtt Role.Arn
                uri: !Sub "arn:${AWS::Partition}:apigateway:${AWS::Region}:sqs:path/${AWS::AccountId}/q"
          /legacy:
            put:
              x-amazon-apigateway-integration:
                type: AWS
                uri: arn:aws:apigateway:us-east-1:sqs:action/SendMessage
          /fn:
            get:
              x-amazon-apigateway-integration:
                type: aws_proxy
                credentials: arn:aws:iam::1:role/r
                uri: arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/f/invocations
"""


def test_rest_api_service_integrations_are_named() -> None:
    lines = rendered(REST_API_SQS)
    assert lines == [
        "InboxApi POST /inbox x-amazon-apigateway-integration credentials: the integration's role is not "
        "assumed locally, so a permission missing from it passes here and fails on AWS (500); " + AWS_HINT,
        "InboxApi PUT /legacy x-amazon-apigateway-integration uri (action/ form): an AWS-service integration "
        "addressed by action is not reproduced locally (only the path/ form reaches the service): the method "
        "answers an error; write the URI in its path/ form (e.g. sqs:path/{account}/{queue}), or run the "
        "scenarios that use it with --target aws",
    ]


STATE_MACHINES = """
Resources:
  Checked:
    Type: AWS::StepFunctions::StateMachine
    Properties:
      RoleArn: arn:aws:iam::1:role/checked
      Definition:
        StartAt: Price
        States:
          Price: {Type: Task, Resource: "arn:aws:states:::lambda:invoke", Next: Record}
          Record: {Type: Task, Resource: "arn:aws:states:::dynamodb:putItem.waitForTaskToken", End: true}
  Sdk:
    Type: AWS::StepFunctions::StateMachine
    Properties:
      RoleArn: arn:aws:iam::1:role/sdk
      DefinitionString: {"Fn::Sub": ['{"StartAt": "Q", "States": {"Q": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:dynamodb:query", "Next": "E"}, "E": {"Type": "Task", "Resource": "arn:aws:states:::ecs:runTask.sync", "End": true}}}', {}]}
  FromSam:
    Type: AWS::StepFunctions::StateMachine
    Properties:
      RoleArn: {"Fn::GetAtt": [FromSamRole, Arn]}
      DefinitionS3Location: {Bucket: b, Key: k}
"""


def test_a_state_machine_is_named_for_the_tasks_its_role_is_not_checked_for() -> None:
    """The emulator checks the role for Lambda, DynamoDB item, SQS, SNS, EventBridge and Step Functions tasks
    (harness.emulator.sfn_role); a definition with other tasks is named, with them."""
    assert rendered(STATE_MACHINES) == [
        "Sdk RoleArn: the emulator makes the calls of its aws-sdk:dynamodb:query, ecs:runTask tasks without checking "
        "the state machine's role (it checks Lambda, DynamoDB item, SQS, SNS, EventBridge and Step Functions tasks), "
        "so a permission missing from the role for them passes here and fails on AWS; " + AWS_HINT
    ]


def test_long_bucket_name_is_named() -> None:
    name = "text-normalizer-feature-conforma-223dfd8-000000000000-destination"
    resources = [
        {"LogicalResourceId": "Dest", "ResourceType": "AWS::S3::Bucket", "PhysicalResourceId": name},
        {"LogicalResourceId": "Ok", "ResourceType": "AWS::S3::Bucket", "PhysicalResourceId": "x" * 63},
        {"LogicalResourceId": "Q", "ResourceType": "AWS::SQS::Queue", "PhysicalResourceId": "q" * 80},
    ]
    (finding,) = fidelity.bucket_names(resources)
    assert finding.resource == "Dest"
    assert f"is {len(name)} characters" in finding.render()
    assert finding.render().endswith("; shorten the name (the stage in it grows with the branch name)")


def test_templates_from_get_template_parse_in_every_form() -> None:
    as_dict = {"Resources": {"A": {"Type": "AWS::SQS::Queue"}}}
    assert templates.parse(as_dict) == as_dict
    assert templates.parse(json.dumps(as_dict)) == as_dict
    parsed = templates.parse("Resources:\n  A:\n    Type: X\n    Properties: {Arn: !GetAtt B.Arn, Name: !Sub '${X}'}\n")
    assert parsed["Resources"]["A"]["Properties"] == {"Arn": {"Fn::GetAtt": ["B", "Arn"]}, "Name": {"Fn::Sub": "${X}"}}
    assert templates.parse("") == {}
    with pytest.raises(yaml.YAMLError):
        templates.parse("a: [")


class FakeCfn:
    def __init__(self, body: Any, resources: list[dict[str, str]], fail: bool = False) -> None:
        self.body, self.resources, self.fail = body, resources, fail
        self.calls: list[dict[str, Any]] = []

    def get_template(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.fail:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "ValidationError", "Message": "no"}}, "GetTemplate"
            )
        return {"TemplateBody": self.body}

    def get_paginator(self, name: str) -> Any:
        assert name == "list_stack_resources"
        resources = self.resources

        class Pages:
            def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
                return [{"StackResourceSummaries": resources}]

        return Pages()


def test_check_stack_reads_the_processed_template_and_the_resources() -> None:
    cfn = FakeCfn(
        KINESIS_ESM,
        [{"LogicalResourceId": "B", "ResourceType": "AWS::S3::Bucket", "PhysicalResourceId": "b" * 64}],
    )
    findings = fidelity.check_stack(cfn, "app-dev")
    assert cfn.calls == [{"StackName": "app-dev", "TemplateStage": "Processed"}]
    assert [f.resource for f in findings] == ["ConsumerStream", "B"]


def test_resources_the_run_has_read_are_checked_without_reading_them_again() -> None:
    """After a one-stack deploy the run has its resources (nested stacks' keyed ``Nested/Logical``)."""
    physical = {"B": "b" * 64, "Nested": "arn:nested", "Nested/Inner": "c" * 70}
    types = {"B": "AWS::S3::Bucket", "Nested": "AWS::CloudFormation::Stack", "Nested/Inner": "AWS::S3::Bucket"}
    rows = fidelity.summaries(physical, types)
    assert [r["LogicalResourceId"] for r in rows] == ["B", "Nested"]  # the stack's own, as it lists them

    class Unlisted(FakeCfn):
        def get_paginator(self, name: str) -> Any:
            raise AssertionError("listed again")

    cfn = Unlisted(KINESIS_ESM, [])
    findings = fidelity.check_set(cfn, [("app-dev", "id-dev")], None, rows)
    assert [f.resource for f in findings] == ["ConsumerStream", "B"]  # the long bucket name is still named


def test_a_definition_read_from_s3_is_checked_as_deployed() -> None:
    """SAM's DefinitionUri leaves no definition in the template: the deployed state machine's is read instead."""
    sm = "AWS::StepFunctions::StateMachine"
    resources = [
        {"LogicalResourceId": "FromSam", "ResourceType": sm, "PhysicalResourceId": "arn:sm:from-sam"},
        {"LogicalResourceId": "OnlyLambda", "ResourceType": sm, "PhysicalResourceId": "arn:sm:only-lambda"},
        {"LogicalResourceId": "Sdk", "ResourceType": sm, "PhysicalResourceId": "arn:sm:sdk"},  # inline: not read
    ]
    body = STATE_MACHINES + (
        "  OnlyLambda:\n    Type: AWS::StepFunctions::StateMachine\n"
        "    Properties: {RoleArn: r, DefinitionS3Location: {Bucket: b, Key: k2}}\n"
    )
    deployed = {
        "arn:sm:from-sam": json.dumps(
            {
                "StartAt": "Q",
                "States": {"Q": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject", "End": True}},
            }
        ),
        "arn:sm:only-lambda": json.dumps(
            {
                "StartAt": "F",
                "States": {"F": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True}},
            }
        ),
    }
    read: list[str] = []

    def definition_of(arn: str) -> str | None:
        read.append(arn)
        return deployed.get(arn)

    findings = fidelity.check_stack(FakeCfn(body, resources), "app-dev", definition_of=definition_of)
    assert [(f.resource, f.consequence.split(" tasks ")[0]) for f in findings] == [
        ("Sdk", "the emulator makes the calls of its aws-sdk:dynamodb:query, ecs:runTask"),  # from the template
        ("FromSam", "the emulator makes the calls of its aws-sdk:s3:getObject"),  # as deployed
    ]
    assert read == ["arn:sm:from-sam", "arn:sm:only-lambda"]


def test_definitions_are_read_with_one_client_and_a_failed_read_is_none() -> None:
    made: list[str] = []

    class Sfn:
        def describe_state_machine(self, stateMachineArn: str) -> dict[str, str]:  # noqa: N803 - boto3's name
            if stateMachineArn == "gone":
                raise botocore.exceptions.ClientError({"Error": {"Code": "StateMachineDoesNotExist"}}, "Describe")
            return {"definition": "{}"}

    definition_of = fidelity.definitions(lambda service: made.append(service) or Sfn())
    assert (definition_of("a"), definition_of("gone"), definition_of("b")) == ("{}", None, "{}")
    assert made == ["stepfunctions"]


def test_check_stack_never_raises() -> None:
    assert fidelity.check_stack(FakeCfn("", [], fail=True), "app-dev") == []


def test_every_stack_of_a_set_is_checked_and_named_from_the_runs_templates() -> None:
    """A stack set (CDK ``deploy --all``): each member's template, not only the primary's; each read once."""
    bodies = {"id-data": KINESIS_ESM, "id-api": "Resources: {Q: {Type: AWS::SQS::Queue}}"}
    read: list[str] = []

    def template_of(stack_id: str) -> Any:
        read.append(stack_id)
        return templates.parse(bodies[stack_id])

    cfn = FakeCfn("unused", [])
    findings = fidelity.check_set(cfn, [("app-data", "id-data"), ("app-api", "id-api")], template_of)
    assert read == ["id-data", "id-api"] and cfn.calls == []  # the run's copies, no GetTemplate of its own
    assert [(f.stack, f.resource) for f in findings] == [("app-data", "ConsumerStream")]
    block = fidelity.report(findings)
    assert block is not None and "of the templates of this stack set behave" in block
    assert "\n  warning: app-data:ConsumerStream MaximumRetryAttempts, BisectBatchOnFunctionError: " in block
    # one stack: named as before, no stack prefix
    (one,) = fidelity.check_set(cfn, [("app-data", "id-data")], template_of)
    assert one.render().startswith("ConsumerStream MaximumRetryAttempts")


def test_report_block() -> None:
    assert fidelity.report([]) is None
    block = fidelity.report([Finding("A", "P", "c")])
    assert block is not None
    assert block.splitlines() == [
        "fidelity: 1 feature(s) of this template behave differently on the emulator than on AWS:",
        f"  warning: A P: c; {AWS_HINT}",
    ]
