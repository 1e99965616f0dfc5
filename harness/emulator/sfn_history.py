"""Adaptation: Step Functions history names a service integration as AWS does.

The gap (MiniStack 1.5.33): a ``Task`` state whose ``Resource`` is a service
integration (``arn:aws:states:::lambda:invoke``,
``arn:aws:states:::sqs:sendMessage.waitForTaskToken``,
``arn:aws:states:::aws-sdk:dynamodb:putItem``) is recorded in
``GetExecutionHistory`` with the whole ARN as ``resource`` (and
``resourceType`` ``lambda`` or ``states``), and ``TaskSucceeded`` /
``TaskFailed`` carry no ``resourceType``. AWS splits the ARN: ``resourceType``
is the service (``lambda``, ``sqs``, ``aws-sdk:dynamodb``) and ``resource``
the API action with its pattern suffix (``invoke``,
``sendMessage.waitForTaskToken``, ``putItem``), on every Task event.

The adaptation wraps the module's ``_add_event`` (looked up by name at call
time by every caller) and rewrites the details of the Task events it records.
Other resources (a function's or an activity's ARN) are left as they are.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from harness.emulator import guard

NAME = "stepfunctions-history-service-integrations"
MODULE = "ministack.services.stepfunctions"
PARAMS = ("execution", "event_type", "details")
#: arn:{partition}:states:::{service}:{action}; aws-sdk integrations have two service parts.
INTEGRATION_ARN = re.compile(r"^arn:aws[a-z-]*:states:::(?P<service>aws-sdk:[^:]+|[^:]+):(?P<action>.+)$")
TASK_DETAILS = (
    "taskScheduledEventDetails",
    "taskStartedEventDetails",
    "taskSucceededEventDetails",
    "taskFailedEventDetails",
    "taskSubmittedEventDetails",
    "taskTimedOutEventDetails",
)


def split_resource(resource: str) -> tuple[str, str] | None:
    """(resourceType, resource) as AWS records a service-integration ARN; None for other resources."""
    m = INTEGRATION_ARN.match(resource)
    return (m["service"], m["action"]) if m else None


def aws_details(details: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """Task event details with the integration ARN split; anything else unchanged."""
    if not details:
        return details
    out = dict(details)
    for key in TASK_DETAILS:
        inner = out.get(key)
        if isinstance(inner, Mapping) and isinstance(inner.get("resource"), str):
            split = split_resource(inner["resource"])
            if split is not None:
                out[key] = {**inner, "resourceType": split[0], "resource": split[1]}
    return out


def apply() -> None:
    """Record Task events of service integrations with AWS's resourceType / resource.

    Raises ``AdaptationError`` if ``_add_event`` is missing or changed shape,
    or if the Task code no longer records events through it by name.
    """
    module = guard.module(MODULE, NAME)
    original = guard.function(module, "_add_event", PARAMS, NAME)
    if guard.adapted(original, NAME):
        return  # applied already in this process
    guard.calls_by_name(module, "_execute_task", "_add_event", NAME)

    @functools.wraps(original)
    def add_event(execution: Any, event_type: str, details: Any = None) -> Any:
        if event_type.startswith("Task"):
            details = aws_details(details)
        return original(execution, event_type, details)

    setattr(module, "_add_event", guard.mark(add_event, NAME))  # noqa: B010 - a module's global
