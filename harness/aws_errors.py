"""AWS failures in words: the call, the identity, and what to grant or fix.

Any AWS error the harness meets (a denied ``BatchGetTraces``, an expired
token, throttling past botocore's retries, an endpoint answering with a page
that is not AWS's XML or JSON) becomes one line naming the IAM action of the
call, who made it, and what to do, instead of a traceback. The IAM actions
come from the policy the harness ships (``aws_policy.json``, also in the
README), so a denied call names the statement that grants it.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import botocore.exceptions
import botocore.parsers

from harness.errors import TargetError

POLICY_FILE = "aws_policy.json"

DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "AuthorizationErrorException",
    "NotAuthorized",
}
EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
INVALID = {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "InvalidAccessKeyId"}
THROTTLED = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "SlowDown",
}

#: Operations whose IAM action is not ``service:Operation``.
IRREGULAR = {
    "HeadBucket": "s3:ListBucket",
    "GetRestApi": "apigateway:GET",
    "GetResources": "tag:GetResources",  # the Resource Groups Tagging API signs as "tagging"
    "GetRestApis": "apigateway:GET",
    "DeleteRestApi": "apigateway:DELETE",
}

#: Every error a call to AWS can end with, for ``except`` clauses (ResponseParserError is no BotoCoreError).
AWS_ERRORS: tuple[type[BaseException], ...] = (
    botocore.exceptions.ClientError,
    botocore.exceptions.BotoCoreError,
    botocore.parsers.ResponseParserError,
)


@functools.cache
def policy() -> dict[str, Any]:
    """The least-privilege policy of the harness's own calls (``harness/aws_policy.json``)."""
    return json.loads(resources.files("harness").joinpath(POLICY_FILE).read_text())  # type: ignore[no-any-return]


@functools.cache
def policy_actions() -> tuple[str, ...]:
    actions: list[str] = []
    for statement in policy()["Statement"]:
        value = statement["Action"]
        actions.extend([value] if isinstance(value, str) else value)
    return tuple(actions)


def permission_for(operation: str | None, service: str | None = None) -> str:
    """The IAM action of a botocore operation (``BatchGetTraces`` -> ``xray:BatchGetTraces``)."""
    if not operation:
        return f"{service}:?" if service else "an AWS call"
    if operation in IRREGULAR:
        return IRREGULAR[operation]
    for action in policy_actions():
        prefix, _, name = action.partition(":")
        if name == operation and (service is None or prefix == service):
            return action
    return f"{service or '?'}:{operation}"


def _code(exc: BaseException) -> tuple[str, str]:
    err = getattr(exc, "response", None) or {}
    error = err.get("Error", {}) if isinstance(err, dict) else {}
    return str(error.get("Code", "")), str(error.get("Message", "")).strip()


def explain(exc: BaseException, *, identity: str | None, call: str | None = None) -> str:
    """One message for an AWS failure: the call's IAM action, the identity, the cause and the remedy."""
    action = call or permission_for(getattr(exc, "operation_name", None))
    who = identity or "the run's credentials"
    if isinstance(exc, botocore.exceptions.ClientError):
        code, message = _code(exc)
        said = f" ({message})" if message else ""
        if code in DENIED or "AccessDenied" in code:
            return (
                f"{action} was denied to {who}{said}: the identity needs the permission {action} "
                "(the harness's least-privilege policy is harness/aws_policy.json, and in the README)"
            )
        if code in EXPIRED:
            return f"{action} failed: the credentials of {who} have expired ({code}); start the run with fresh ones"
        if code in INVALID:
            return f"{action} failed: AWS does not accept the credentials of {who} ({code}{said})"
        if code in THROTTLED:
            return f"{action} was throttled by AWS for {who} ({code}), after botocore's retries; run again later"
        return f"{action} failed for {who}: {code or 'error'}{said}"
    if isinstance(exc, botocore.parsers.ResponseParserError):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{action} failed for {who}: the endpoint's answer is not an AWS response ({first[:200]})"
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return f"{action} failed: no AWS credentials were found for {who}"
    return f"{action} failed for {who}: {type(exc).__name__}: {exc}"


def aws_error(
    exc: BaseException, *, identity: str | None, call: str | None = None, hint: str | None = None
) -> TargetError:
    """``explain`` as a ``TargetError`` (printed without a traceback)."""
    return TargetError(explain(exc, identity=identity, call=call), hint=hint)
