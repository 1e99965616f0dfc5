"""Gap: Lambda accepts function names over 64 characters.

AWS: a function name is at most 64 characters ("The length constraint applies
only to the full ARN. If you specify only the function name, it is limited to
64 characters in length", CreateFunction ``FunctionName``). CreateFunction
refuses a longer one with a ValidationException, and a CloudFormation stack
whose ``AWS::Lambda::Function`` names one fails with CREATE_FAILED.

MiniStack 1.5.33 accepts any length, through the API (``_create_function``)
and through CloudFormation (``_lambda_create``, which writes the function
record itself): a stack that cannot deploy on AWS deploys locally.

The adaptation: both refuse a name (the name itself, or the name part of a
function ARN) longer than 64 characters with AWS's validation message; the
API answers ``ValidationException`` (400), CloudFormation fails the resource
with the same message. Names CloudFormation generates are already cut to 64.
Upstream, it is :func:`name_error` called at the top of both.
"""

from __future__ import annotations

import functools
from typing import Any

from harness.emulator import guard

NAME = "lambda-function-name-length"
RESOURCE_TYPE = "AWS::Lambda::Function"
MAX_NAME = 64


def name_error(name: object) -> str | None:
    """AWS's validation message for a function name that is too long, or None."""
    if not isinstance(name, str):
        return None
    bare = name.split(":function:", 1)[1].split(":", 1)[0] if ":function:" in name else name
    if len(bare) <= MAX_NAME:
        return None
    return (
        f"1 validation error detected: Value '{name}' at 'functionName' failed to satisfy constraint: "
        f"Member must have length less than or equal to {MAX_NAME}"
    )


def apply() -> None:
    """Refuse function names over 64 characters, in CreateFunction and in CloudFormation."""
    lambda_svc = guard.module("ministack.services.lambda_svc", NAME)
    api_create = guard.function(lambda_svc, "_create_function", ("data",), NAME)
    if not callable(getattr(lambda_svc, "error_response_json", None)):
        raise guard.AdaptationError(f"{NAME}: ministack.services.lambda_svc.error_response_json is missing")
    guard.calls_by_name(lambda_svc, "handle_request", "_create_function", NAME)
    cfn_create = guard.cfn_handler(
        RESOURCE_TYPE, "create", "_lambda_create", ("logical_id", "props", "stack_name"), NAME
    )
    if guard.adapted(api_create, NAME):
        return

    @functools.wraps(api_create)
    def _create_function(data: dict[str, Any]) -> Any:
        error = name_error(data.get("FunctionName")) if isinstance(data, dict) else None
        if error is not None:
            return lambda_svc.error_response_json("ValidationException", error, 400)
        return api_create(data)

    @functools.wraps(cfn_create)
    def _lambda_create(logical_id: str, props: Any, stack_name: str) -> Any:
        error = name_error(props.get("FunctionName")) if isinstance(props, dict) else None
        if error is not None:
            raise ValueError(f"{error} (Service: Lambda, Status Code: 400)")
        return cfn_create(logical_id, props, stack_name)

    lambda_svc._create_function = guard.mark(_create_function, NAME)
    guard.replace_cfn_handler(RESOURCE_TYPE, "create", "_lambda_create", guard.mark(_lambda_create, NAME))
