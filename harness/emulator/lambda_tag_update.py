"""Gap: a stack update that changes only a function's tags throws away its warm runtimes.

AWS: tags are not part of a function's configuration. CloudFormation applies a
change of an ``AWS::Lambda::Function``'s ``Tags`` (a stack tag that changed
reaches every taggable resource) with TagResource/UntagResource, an update with
no interruption: the function's configuration, its code and its warm execution
environments stay as they were. Only a change of the code or the configuration
(UpdateFunctionCode, UpdateFunctionConfiguration) makes Lambda start new ones.

MiniStack 1.5.33's update handler (``_lambda_update``) re-applies the whole
configuration on every update, tags-only included, and ``_update_config``
invalidates the function's warm worker: after any stack update every function
of the stack starts cold, so a branch stack redeployed with one function
changed (its tags carry the run) pays a cold start in each of them.

The adaptation: an update whose properties differ in ``Tags`` only applies the
tag change to the function's tag store (the handler's own tag reconciliation)
and leaves its configuration, code and workers alone. Any other change goes
through the emulator's handler as before.
"""

from __future__ import annotations

import functools
from typing import Any

from harness.emulator import guard

NAME = "lambda-tags-only-update-keeps-warm-runtimes"
RESOURCE_TYPE = "AWS::Lambda::Function"
PARAMS = ("physical_id", "old_props", "new_props", "stack_name", "logical_id")


def tags_only(old_props: object, new_props: object) -> bool:
    """Whether two property sets of a function differ in ``Tags`` and in nothing else."""
    if not isinstance(old_props, dict) or not isinstance(new_props, dict):
        return False
    rest = {k: v for k, v in old_props.items() if k != "Tags"}
    return rest == {k: v for k, v in new_props.items() if k != "Tags"}


def apply() -> None:
    """A tags-only update of a function touches its tags only."""
    prov = guard.module("ministack.services.cloudformation.provisioners", NAME)
    update = guard.cfn_handler(RESOURCE_TYPE, "update", "_lambda_update", PARAMS, NAME)
    reconcile = guard.function(prov, "_reconcile_tag_map", ("store", "old_props", "new_props", "prop"), NAME)
    functions = getattr(getattr(prov, "_lambda_svc", None), "_functions", None)
    if functions is None:
        raise guard.AdaptationError(f"{NAME}: provisioners._lambda_svc._functions is missing")
    if guard.adapted(update, NAME):
        return

    @functools.wraps(update)
    def _lambda_update(
        physical_id: str, old_props: Any, new_props: Any, stack_name: str, logical_id: str | None = None
    ) -> Any:
        func = prov._lambda_svc._functions.get(physical_id)
        if func is None or not tags_only(old_props, new_props):
            return update(physical_id, old_props, new_props, stack_name, logical_id)
        reconcile(func.setdefault("tags", {}), old_props, new_props, "Tags")
        return physical_id, {"Arn": func["config"]["FunctionArn"]}

    guard.replace_cfn_handler(RESOURCE_TYPE, "update", "_lambda_update", guard.mark(_lambda_update, NAME))
