"""Prove that nothing of a stack is left: probe each resource it had, by type.

A probe answers "does this physical resource still exist?" with one cheap
read call. Types without a probe are reported as unchecked, never as clean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

ClientFor = Callable[[str], Any]

_GONE_CODES = {
    "ResourceNotFoundException",
    "NoSuchEntity",
    "NotFoundException",
    "NoSuchBucket",
    "404",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NotFound",
    "NoSuchEntityException",
}


def _exists(call: Callable[[], object]) -> bool:
    try:
        call()
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _GONE_CODES:
            return False
        raise
    return True


def _bucket(c: Any, pid: str) -> bool:
    return _exists(lambda: c.head_bucket(Bucket=pid))


def _layer(c: Any, pid: str) -> bool:
    # Physical id is the layer version ARN.
    name, _, version = pid.rpartition(":")
    return _exists(lambda: c.get_layer_version(LayerName=name, VersionNumber=int(version)))


def _stack(c: Any, pid: str) -> bool:
    # A nested stack: by id, describe_stacks still answers after the delete, as DELETE_COMPLETE.
    try:
        status = c.describe_stacks(StackName=pid)["Stacks"][0]["StackStatus"]
    except botocore.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return False
        raise
    return bool(status != "DELETE_COMPLETE")


PROBES: dict[str, tuple[str, Callable[[Any, str], bool]]] = {
    "AWS::Lambda::Function": ("lambda", lambda c, p: _exists(lambda: c.get_function(FunctionName=p))),
    "AWS::DynamoDB::Table": ("dynamodb", lambda c, p: _exists(lambda: c.describe_table(TableName=p))),
    "AWS::SQS::Queue": ("sqs", lambda c, p: _exists(lambda: c.get_queue_attributes(QueueUrl=p))),
    "AWS::SNS::Topic": ("sns", lambda c, p: _exists(lambda: c.get_topic_attributes(TopicArn=p))),
    "AWS::ApiGateway::RestApi": ("apigateway", lambda c, p: _exists(lambda: c.get_rest_api(restApiId=p))),
    "AWS::IAM::Role": ("iam", lambda c, p: _exists(lambda: c.get_role(RoleName=p))),
    "AWS::S3::Bucket": ("s3", _bucket),
    "AWS::Lambda::LayerVersion": ("lambda", _layer),
    "AWS::Logs::LogGroup": (
        "logs",
        lambda c, p: any(g["logGroupName"] == p for g in c.describe_log_groups(logGroupNamePrefix=p)["logGroups"]),
    ),
    "AWS::CloudFormation::Stack": ("cloudformation", _stack),
    "AWS::Lambda::EventSourceMapping": (
        "lambda",
        lambda c, p: _exists(lambda: c.get_event_source_mapping(UUID=p)),
    ),
}


@dataclass(frozen=True)
class LeakReport:
    leftovers: list[str]
    checked: int
    unchecked: list[str]

    @property
    def clean(self) -> bool:
        return not self.leftovers


def probe(client_for: ClientFor, resources: dict[str, str], types: dict[str, str]) -> LeakReport:
    """Check every resource the stack had; report all leftovers at once."""
    leftovers: list[str] = []
    unchecked: list[str] = []
    checked = 0
    for logical, physical in sorted(resources.items()):
        rtype = types.get(logical, "?")
        entry = PROBES.get(rtype)
        if entry is None:
            unchecked.append(f"{logical} ({rtype})")
            continue
        service, fn = entry
        checked += 1
        try:
            if fn(client_for(service), physical):
                leftovers.append(f"{logical} ({rtype}) {physical}")
        except botocore.exceptions.ClientError as exc:
            leftovers.append(f"{logical} ({rtype}) {physical}: could not be checked: {exc}")
    return LeakReport(leftovers, checked, unchecked)


def recreated_log_groups(
    client_for: ClientFor, report: LeakReport, resources: dict[str, str], types: dict[str, str]
) -> list[str]:
    """Delete the stack's function log groups that came back after the delete; returns their names.

    A function still running when its stack is deleted writes its last log
    lines after the log group resource went, and Lambda creates the group again
    (on AWS as on the emulator). Such a group belongs to a function of this
    stack that is now gone, so it is this run's to remove; any other leftover
    is only reported.
    """
    functions = {resources[k] for k, t in types.items() if t == "AWS::Lambda::Function" and k in resources}
    groups = {
        physical
        for logical, physical in resources.items()
        if types.get(logical) == "AWS::Logs::LogGroup" and physical.removeprefix("/aws/lambda/") in functions
    }
    deleted = []
    for line in report.leftovers:
        name = line.rsplit(" ", 1)[-1]
        if "(AWS::Logs::LogGroup)" in line and name in groups:
            try:
                client_for("logs").delete_log_group(logGroupName=name)
                deleted.append(name)
            except botocore.exceptions.ClientError:
                continue
    return deleted
