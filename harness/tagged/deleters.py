"""Delete a tagged resource by its ARN, for the types the harness knows; name the others.

Used by ``harness gc`` for tagged deployments whose destroy command cannot
run (another project's, or one that left resources behind). One deleter per
type, each a few calls; a resource already gone counts as deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import botocore.exceptions

from harness.tagged.discover import ClientFor, TaggedResource

_GONE = {
    "ResourceNotFoundException",
    "NoSuchEntity",
    "NoSuchBucket",
    "NotFoundException",
    "NotFound",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
}


def _tail(arn: str, sep: str = "/") -> str:
    return arn.rsplit(sep, 1)[-1]


def _lambda_function(client_for: ClientFor, arn: str) -> None:
    client_for("lambda").delete_function(FunctionName=arn)


def _dynamodb_table(client_for: ClientFor, arn: str) -> None:
    ddb = client_for("dynamodb")
    name = arn.split(":table/", 1)[1].split("/", 1)[0]
    ddb.delete_table(TableName=name)
    ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})


def _s3_bucket(client_for: ClientFor, arn: str) -> None:
    s3 = client_for("s3")
    bucket = _tail(arn, ":")
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
    for page in pages:  # every version and delete marker: a versioned bucket is only empty without them
        doomed = [
            {"Key": o["Key"], "VersionId": o["VersionId"]}
            for o in [*(page.get("Versions") or []), *(page.get("DeleteMarkers") or [])]
        ]
        if doomed:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True})
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents") or []]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    s3.delete_bucket(Bucket=bucket)


def _sqs_queue(client_for: ClientFor, arn: str) -> None:
    sqs = client_for("sqs")
    _, _, _, _, account, name = arn.split(":", 5)
    url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)


def _sns_topic(client_for: ClientFor, arn: str) -> None:
    client_for("sns").delete_topic(TopicArn=arn)


def _iam_role(client_for: ClientFor, arn: str) -> None:
    """The role and what holds on to it: inline policies, attached policies, instance profiles."""
    iam = client_for("iam")
    name = _tail(arn)
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
        for policy in page.get("PolicyNames") or []:
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
        for policy in page.get("AttachedPolicies") or []:
            iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
    for page in iam.get_paginator("list_instance_profiles_for_role").paginate(RoleName=name):
        for profile in page.get("InstanceProfiles") or []:
            iam.remove_role_from_instance_profile(InstanceProfileName=profile["InstanceProfileName"], RoleName=name)
    iam.delete_role(RoleName=name)


def _rest_api(client_for: ClientFor, arn: str) -> None:
    client_for("apigateway").delete_rest_api(restApiId=_tail(arn))


def _log_group(client_for: ClientFor, arn: str) -> None:
    client_for("logs").delete_log_group(logGroupName=arn.split(":log-group:", 1)[1].removesuffix(":*"))


Deleter = Callable[[ClientFor, str], None]

#: ``TaggedResource.kind`` -> its deleter.
DELETERS: dict[str, Deleter] = {
    "lambda:function": _lambda_function,
    "dynamodb:table": _dynamodb_table,
    "s3": _s3_bucket,
    "sqs": _sqs_queue,
    "sns": _sns_topic,
    "iam:role": _iam_role,
    "apigateway:restapis": _rest_api,
    "logs:log-group": _log_group,
}

#: In the order they are deleted: what uses a role or a table goes before it.
_ORDER = list(DELETERS)


def can_delete(resource: TaggedResource) -> bool:
    return resource.kind in DELETERS


def delete(client_for: ClientFor, resource: TaggedResource) -> None:
    """Delete one resource (gone already counts as deleted); raises for a type without a deleter."""
    deleter = DELETERS.get(resource.kind)
    if deleter is None:
        raise KeyError(resource.kind)
    try:
        deleter(client_for, resource.arn)
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in _GONE:
            raise
    except botocore.exceptions.WaiterError:
        raise


def delete_all(client_for: ClientFor, resources: list[TaggedResource]) -> tuple[list[str], list[str], list[str]]:
    """Delete every resource the harness has a deleter for: (deleted ARNs, failures, ARNs of unknown types)."""
    known = sorted((r for r in resources if can_delete(r)), key=lambda r: _ORDER.index(r.kind))
    unknown = [f"{r.arn} (no deleter for {r.kind})" for r in resources if not can_delete(r)]
    deleted: list[str] = []
    failed: list[str] = []
    for r in known:
        try:
            delete(client_for, r)
            deleted.append(r.arn)
        except Exception as exc:  # noqa: BLE001 - every failure is reported with the others
            failed.append(f"{r.arn}: {_error_text(exc)}")
    return deleted, failed, unknown


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        err: Any = exc.response.get("Error", {})
        return f"{err.get('Code', '?')}: {err.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"
