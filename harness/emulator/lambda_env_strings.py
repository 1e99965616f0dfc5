"""Gap: a function's environment keeps the numbers and booleans YAML read.

AWS: Lambda environment variables are strings (``Environment.Variables``:
"Map of String to String"). In a template, ``POWERTOOLS_LOGGER_SAMPLE_RATE: 0.1``
or ``POWERTOOLS_TRACE_DISABLED: true`` are a JSON number and a boolean once
the YAML is read; CloudFormation passes them to Lambda as the strings
``"0.1"`` and ``"true"``, and the function sees those.

MiniStack 1.5.33's CloudFormation provisioner (``_lambda_create`` and
``_lambda_update``) stores ``Variables`` as parsed, and the runtime is spawned
with them as its environment: the function never starts
(``expected str, bytes or os.PathLike object, not float``), and
GetFunctionConfiguration answers numbers where AWS answers strings.

The adaptation: the CloudFormation create and update handlers of
``AWS::Lambda::Function`` receive ``Environment.Variables`` with every number
and boolean written as JSON writes it (``0.1``, ``5``, ``true``), which is
how CloudFormation turns template scalars into strings. Anything else (a
string, a null, a list) is passed on unchanged, to fail as it would.
Upstream, it is :func:`string_variables` applied to the props at the top of
both handlers.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from typing import Any

from harness.emulator import guard

NAME = "lambda-environment-as-strings"
RESOURCE_TYPE = "AWS::Lambda::Function"
_CREATE_PARAMS = ("logical_id", "props", "stack_name")
_UPDATE_PARAMS = ("physical_id", "old_props", "new_props", "stack_name", "logical_id")


def cfn_string(value: object) -> object:
    """A template scalar as CloudFormation hands it to Lambda: numbers and booleans as JSON writes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return json.dumps(value)
    return value


def string_variables(props: Any) -> Any:
    """``props`` with its ``Environment.Variables`` numbers and booleans as strings (a copy if any changed)."""
    if not isinstance(props, Mapping):
        return props
    env = props.get("Environment")
    variables = env.get("Variables") if isinstance(env, Mapping) else None
    if not isinstance(variables, Mapping):
        return props
    converted = {k: cfn_string(v) for k, v in variables.items()}
    if all(converted[k] is v for k, v in variables.items()):
        return props
    return {**props, "Environment": {**env, "Variables": converted}}


def apply() -> None:
    """Give Lambda functions made by CloudFormation string environment values."""
    create = guard.cfn_handler(RESOURCE_TYPE, "create", "_lambda_create", _CREATE_PARAMS, NAME)
    update = guard.cfn_handler(RESOURCE_TYPE, "update", "_lambda_update", _UPDATE_PARAMS, NAME)
    prov = guard.module("ministack.services.cloudformation.provisioners", NAME)
    guard.calls_by_name(prov, "_lambda_update", "_lambda_create", NAME)
    if guard.adapted(create, NAME):
        return

    @functools.wraps(create)
    def _lambda_create(logical_id: str, props: Any, stack_name: str) -> Any:
        return create(logical_id, string_variables(props), stack_name)

    @functools.wraps(update)
    def _lambda_update(
        physical_id: str, old_props: Any, new_props: Any, stack_name: str, logical_id: str | None = None
    ) -> Any:
        return update(physical_id, string_variables(old_props), string_variables(new_props), stack_name, logical_id)

    guard.replace_cfn_handler(RESOURCE_TYPE, "create", "_lambda_create", guard.mark(_lambda_create, NAME))
    guard.replace_cfn_handler(RESOURCE_TYPE, "update", "_lambda_update", guard.mark(_lambda_update, NAME))
