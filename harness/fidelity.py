"""Say it before it bites: template features the embedded emulator does not reproduce faithfully.

A local run that passes must predict a pass on AWS. Where a template uses a
feature the pinned emulator (MiniStack 1.5.33, with the harness's
adaptations in ``harness.emulator``) does not reproduce, a scenario that
depends on it fails later with a bare 404/500, or passes where AWS would
fail. After the deploy, the harness reads the processed template of every
stack of the set (``harness.templates``: SAM already expanded; read once per
run, the retained-resources handling uses the same copy) and the physical
ids of their resources, and prints one warning per finding before the tests
run, naming the resource (and its stack, for a set of several), the property
and the consequence.

Each rule is a plain function of the template's resources (or of the stack's
resources), so the rules are unit-tested on template snippets;
docs/fidelity.md lists every message. A rule is removed when an adaptation
closes its gap.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import botocore.exceptions

from harness import templates
from harness.emulator import sfn_role
from harness.emulator.http_api_body import operations

AWS_HINT = "run the scenarios that use it with --target aws"


@dataclass(frozen=True)
class Finding:
    """One feature of one resource that the emulator does not reproduce."""

    resource: str  # logical id, with the route or event where that helps
    prop: str  # the property (or properties) concerned
    consequence: str  # what happens locally, against what AWS does
    hint: str = AWS_HINT  # what to do about it
    stack: str = ""  # the stack of the set it is in (empty for a one-stack app)

    def render(self) -> str:
        where = f"{self.stack}:{self.resource}" if self.stack else self.resource
        return f"{where} {self.prop}: {self.consequence}; {self.hint}"


Resources = Mapping[str, Mapping[str, Any]]
TemplateRule = Callable[[Resources], Iterable[Finding]]


# -- helpers on templates ---------------------------------------------------------


def _props(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    props = resource.get("Properties")
    return props if isinstance(props, Mapping) else {}


def _of_type(resources: Resources, rtype: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for logical_id, resource in resources.items():
        if isinstance(resource, Mapping) and resource.get("Type") == rtype:
            yield logical_id, _props(resource)


def _referenced_type(value: Any, resources: Resources) -> str | None:
    """The resource type a ``Ref`` / ``Fn::GetAtt`` (long or short form) points at, if any."""
    if not isinstance(value, Mapping):
        return None
    target: Any = None
    if "Ref" in value:
        target = value["Ref"]
    elif "Fn::GetAtt" in value:
        att = value["Fn::GetAtt"]
        target = att[0] if isinstance(att, list) and att else str(att).split(".", 1)[0]
    resource = resources.get(target) if isinstance(target, str) else None
    return resource.get("Type") if isinstance(resource, Mapping) else None


def _stream_source(arn: Any, resources: Resources) -> str | None:
    """'Kinesis' or 'DynamoDB' when an event source ARN names a stream."""
    rtype = _referenced_type(arn, resources)
    text = arn if isinstance(arn, str) else json.dumps(arn)
    if rtype == "AWS::Kinesis::Stream" or ":kinesis:" in text:
        return "Kinesis"
    if rtype == "AWS::DynamoDB::Table" or (":dynamodb:" in text and "/stream/" in text):
        return "DynamoDB"
    return None


# -- rules on the processed template ------------------------------------------------

#: Event source mapping properties the emulator's stream pollers ignore, by source.
STREAM_ESM_IGNORED = {
    "Kinesis": (
        "MaximumRetryAttempts",
        "BisectBatchOnFunctionError",
        "MaximumRecordAgeInSeconds",
        "DestinationConfig",
        "FunctionResponseTypes",
    ),
    "DynamoDB": ("MaximumRetryAttempts", "BisectBatchOnFunctionError", "FunctionResponseTypes"),
}


def stream_error_handling(resources: Resources) -> Iterator[Finding]:
    """Kinesis / DynamoDB stream mappings: retries, bisecting, partial batch responses are not applied."""
    for logical_id, props in _of_type(resources, "AWS::Lambda::EventSourceMapping"):
        source = _stream_source(props.get("EventSourceArn"), resources)
        if source is None:
            continue
        used = [p for p in STREAM_ESM_IGNORED[source] if props.get(p) not in (None, [], {})]
        if used:
            yield Finding(
                logical_id,
                ", ".join(used),
                f"not applied by the emulator's {source} stream poller: a batch the function fails is "
                "retried until it succeeds and blocks its shard (AWS retries, bisects, reports "
                "partial failures and discards as configured)",
            )


def http_api_body(resources: Resources) -> Iterator[Finding]:
    """HTTP APIs: what the Body import adaptation does not bring over."""
    for logical_id, props in _of_type(resources, "AWS::ApiGatewayV2::Api"):
        if props.get("BodyS3Location"):
            yield Finding(
                logical_id,
                "BodyS3Location",
                "the OpenAPI document in S3 is not imported locally, so the API has no routes and answers 404",
            )
        body = props.get("Body")
        if not isinstance(body, Mapping):
            continue
        default_security = body.get("security")
        for route, op in operations(body):
            security = op.get("security", default_security)
            if security:
                yield Finding(
                    f"{logical_id} {route}",
                    "security (authorizer)",
                    "authorizers in an HTTP API's Body are not imported locally: requests reach the "
                    "integration without being authorized",
                )
            spec = op.get("x-amazon-apigateway-integration")
            if isinstance(spec, Mapping) and spec.get("integrationSubtype"):
                yield Finding(
                    f"{logical_id} {route}",
                    f"x-amazon-apigateway-integration integrationSubtype {spec['integrationSubtype']}",
                    "AWS-service integrations of HTTP APIs are not reproduced locally: the route answers "
                    "with an error instead of calling the service",
                )


def _service_uri(uri: Any) -> str:
    """An integration URI as text (an ``Fn::Sub`` keeps its pattern), for matching its service and form."""
    if isinstance(uri, Mapping) and "Fn::Sub" in uri:
        sub = uri["Fn::Sub"]
        uri = sub[0] if isinstance(sub, list) and sub else sub
    return uri if isinstance(uri, str) else json.dumps(uri)


def rest_api_service_integrations(resources: Resources) -> Iterator[Finding]:
    """REST APIs: AWS-service integrations (type ``aws``) in the OpenAPI Body."""
    for logical_id, props in _of_type(resources, "AWS::ApiGateway::RestApi"):
        body = props.get("Body")
        if not isinstance(body, Mapping):
            continue
        for route, op in operations(body):
            spec = op.get("x-amazon-apigateway-integration")
            if not isinstance(spec, Mapping) or str(spec.get("type", "")).lower() != "aws":
                continue
            uri = _service_uri(spec.get("uri"))
            where = f"{logical_id} {route}"
            if ":lambda:" not in uri and ":action/" in uri:
                yield Finding(
                    where,
                    "x-amazon-apigateway-integration uri (action/ form)",
                    "an AWS-service integration addressed by action is not reproduced locally (only the "
                    "path/ form reaches the service): the method answers an error",
                    hint="write the URI in its path/ form (e.g. sqs:path/{account}/{queue}), or run the "
                    "scenarios that use it with --target aws",
                )
            if spec.get("credentials"):
                yield Finding(
                    where,
                    "x-amazon-apigateway-integration credentials",
                    "the integration's role is not assumed locally, so a permission missing from it passes "
                    "here and fails on AWS (500)",
                )


#: A service-integration ARN in a definition's text (harness.emulator.sfn_role.integration names it).
_INTEGRATION = re.compile(r"arn:aws[a-z-]*:states:::[A-Za-z0-9:.-]+")


def _unchecked_tasks(definition: Any) -> list[str]:
    """The service integrations of a definition whose calls the emulator makes without checking the role."""
    found = {sfn_role.integration(arn) for text in _texts(definition) for arn in _INTEGRATION.findall(text)}
    return sorted(name for name in found if name is not None and name not in sfn_role.CHECKED)


def _texts(value: Any) -> Iterator[str]:
    """Every string among the values of a template value (an ``Fn::Sub``'s pattern, a definition's fields)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def _role_finding(logical_id: str, unchecked: list[str]) -> Finding:
    return Finding(
        logical_id,
        "RoleArn",
        f"the emulator makes the calls of its {', '.join(unchecked)} tasks without checking the state "
        "machine's role (it checks Lambda, DynamoDB item, SQS, SNS, EventBridge and Step Functions tasks), "
        "so a permission missing from the role for them passes here and fails on AWS",
    )


def _inline_definition(props: Mapping[str, Any]) -> Any:
    return props.get("Definition", props.get("DefinitionString"))


def state_machine_roles(resources: Resources) -> Iterator[Finding]:
    """Step Functions: tasks whose calls the emulator makes without checking the state machine's role."""
    for logical_id, props in _of_type(resources, "AWS::StepFunctions::StateMachine"):
        unchecked = _unchecked_tasks(_inline_definition(props))
        if props.get("RoleArn") and unchecked:
            yield _role_finding(logical_id, unchecked)


DefinitionOf = Callable[[str], "str | None"]


def deployed_state_machine_roles(
    template: Mapping[str, Any], stack_resources: Iterable[Mapping[str, Any]], definition_of: DefinitionOf
) -> Iterator[Finding]:
    """As :func:`state_machine_roles`, for a definition the template does not hold (SAM's ``DefinitionUri``, read
    from S3 at deploy): the deployed state machine's own (``DescribeStateMachine``)."""
    declared = template.get("Resources") if isinstance(template.get("Resources"), Mapping) else {}
    for r in stack_resources:
        logical_id = str(r.get("LogicalResourceId", "?"))
        if r.get("ResourceType") != "AWS::StepFunctions::StateMachine" or not r.get("PhysicalResourceId"):
            continue
        if _inline_definition(_props(declared.get(logical_id) or {})) is not None:
            continue  # the template rule read it
        text = definition_of(str(r["PhysicalResourceId"]))
        try:
            definition = json.loads(text) if text else None
        except ValueError:
            continue
        unchecked = _unchecked_tasks(definition)
        if unchecked:
            yield _role_finding(logical_id, unchecked)


def definitions(client_for: Callable[[str], Any]) -> DefinitionOf:
    """A deployed state machine's definition by ARN (None when it cannot be read); the client made on first use."""
    made: list[Any] = []

    def definition_of(arn: str) -> str | None:
        try:
            if not made:
                made.append(client_for("stepfunctions"))
            return str(made[0].describe_state_machine(stateMachineArn=arn)["definition"])
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, KeyError):
            return None

    return definition_of


TEMPLATE_RULES: tuple[TemplateRule, ...] = (
    stream_error_handling,
    http_api_body,
    rest_api_service_integrations,
    state_machine_roles,
)


# -- rules on the deployed resources ------------------------------------------------

BUCKET_NAME_MAX = 63


def bucket_names(stack_resources: Iterable[Mapping[str, Any]]) -> Iterator[Finding]:
    """S3 buckets whose name AWS refuses (the emulator creates them, and then rejects requests to them)."""
    for r in stack_resources:
        name = r.get("PhysicalResourceId") or ""
        if r.get("ResourceType") == "AWS::S3::Bucket" and len(name) > BUCKET_NAME_MAX:
            yield Finding(
                r.get("LogicalResourceId", "?"),
                "BucketName",
                f"{name!r} is {len(name)} characters; AWS refuses bucket names over {BUCKET_NAME_MAX} "
                "(the deploy fails there), while the emulator creates the bucket and then answers "
                "InvalidBucketName to requests for it",
                hint="shorten the name (the stage in it grows with the branch name)",
            )


# -- reading the stack ----------------------------------------------------------------


def check_template(template: Mapping[str, Any], rules: Iterable[TemplateRule] = TEMPLATE_RULES) -> list[Finding]:
    resources = template.get("Resources")
    if not isinstance(resources, Mapping):
        return []
    return [finding for rule in rules for finding in rule(resources)]


TemplateOf = Callable[[str], Mapping[str, Any]]


def check_stack(
    cfn: Any,
    stack: str,
    template_of: TemplateOf | None = None,
    resources: Sequence[Mapping[str, Any]] | None = None,
    definition_of: DefinitionOf | None = None,
) -> list[Finding]:
    """Every finding for a deployed stack (name or id). Never raises: a read that fails gives no finding.

    ``template_of`` hands the stack's processed template when the run already has it (one read per run);
    ``resources``, its resources (``ListStackResources``' summaries) when the run has just read them;
    ``definition_of``, a deployed state machine's definition (:func:`definitions`), for those the template
    does not hold.
    """
    try:
        template = template_of(stack) if template_of is not None else templates.read(cfn, stack)
        if resources is None:
            resources = []
            for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack):
                resources.extend(page["StackResourceSummaries"])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
        return []
    found = check_template(template) + list(bucket_names(resources))
    if definition_of is not None:
        found += deployed_state_machine_roles(template, resources, definition_of)
    return found


def summaries(physical: Mapping[str, str], types: Mapping[str, str]) -> list[dict[str, str]]:
    """A stack's own resources as ``ListStackResources`` summarizes them, from the ids and types the run read
    (``harness.stackset.read_resources_deep``: its nested stacks' resources, keyed ``Nested/Logical``, left out)."""
    return [
        {"LogicalResourceId": key, "ResourceType": rtype, "PhysicalResourceId": physical.get(key, "")}
        for key, rtype in types.items()
        if "/" not in key
    ]


def check_set(
    cfn: Any,
    members: Sequence[tuple[str, str]],
    template_of: TemplateOf | None = None,
    resources: Sequence[Mapping[str, Any]] | None = None,
    definition_of: DefinitionOf | None = None,
) -> list[Finding]:
    """Every finding for every stack of the set, ``(name, stack id)`` each; named by stack when there are several.

    ``resources``: a one-stack app's resources, as the run read them after its deploy (a set's are read here).
    """
    if len(members) == 1:
        return check_stack(cfn, members[0][1], template_of, resources, definition_of)
    return [
        replace(f, stack=name)
        for name, stack_id in members
        for f in check_stack(cfn, stack_id, template_of, None, definition_of)
    ]


def report(findings: list[Finding]) -> str | None:
    """The header block for a list of findings (None when there is nothing to say)."""
    if not findings:
        return None
    these = "the templates of this stack set" if any(f.stack for f in findings) else "this template"
    head = f"fidelity: {len(findings)} feature(s) of {these} behave differently on the emulator than on AWS:"
    return head + "".join(f"\n  warning: {f.render()}" for f in findings)
