"""Version-guarded adaptation: a Step Functions task's call is made with the state machine's role.

The gap (MiniStack 1.5.33): a Task state calls Lambda, DynamoDB, SQS, SNS,
EventBridge or a nested state machine directly, whatever the state machine's
role allows. With IAM enforced everywhere else, a role missing a permission
passes locally (the SAM stock-trader workflow stays green with its
``DynamoDBWritePolicy`` removed).

What AWS does: Step Functions makes each call with the role
(https://docs.aws.amazon.com/step-functions/latest/dg/procedure-create-iam-role.html);
a call the role may not make fails the task with the service's error, e.g.
``Lambda.AWSLambdaException`` or ``DynamoDB.AmazonDynamoDBException``, whose
cause is the service's access-denied message, and the execution fails unless a
``Catch`` handles it.

The adaptation (``stepfunctions-tasks-use-the-role``), applied in the emulator's
process by ``adapt.apply_all``: ``_execute_task`` (which has the execution)
keeps the state machine's role in a ContextVar; ``_invoke_resource`` asks the
emulator's own IAM evaluator, as a session of that role (registered as
``lambda_runtime.execution_credentials`` registers a function's), whether the
role may make the call the task's resource names before it is made:

* a Lambda function (its ARN as the resource, or ``lambda:invoke``):
  ``lambda:InvokeFunction`` on the function (with its qualifier);
* ``dynamodb:getItem|putItem|deleteItem|updateItem``: that action on the table;
* ``sqs:sendMessage``, ``sns:publish``, ``events:putEvents`` (each entry's
  bus), ``states:startExecution``: on the queue, topic, bus, state machine.

A denial raises the task error AWS raises. As every other call, only where
the emulator enforces IAM (``AUTH``, which the harness sets). Other tasks (``aws-sdk:`` calls,
activities, ECS) are not checked; ``harness.fidelity`` names a state machine
that has such a task.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import re
from collections.abc import Iterator, Mapping
from typing import Any

from harness.emulator import guard
from harness.emulator.sfn_history import split_resource

NAME = "stepfunctions-tasks-use-the-role"
SFN = "ministack.services.stepfunctions"
EVALUATOR = "ministack.core.iam_evaluator"
APP = "ministack.app"
TARGETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("_execute_task", ("state_def", "raw_input", "execution", "ctx")),
    ("_invoke_resource", ("resource", "input_data")),
)
CALLERS = (("_execute_task", "_invoke_resource"),)

#: The task errors AWS raises when the role may not make the call, by service.
ERRORS = {
    "lambda": ("Lambda.AWSLambdaException", "AWSLambda", 403),
    "dynamodb": ("DynamoDB.AmazonDynamoDBException", "AmazonDynamoDBv2", 400),
    "sqs": ("SQS.AmazonSQSException", "AmazonSQS", 403),
    "sns": ("SNS.AmazonSNSException", "AmazonSNS", 403),
    "events": ("EventBridge.AmazonEventBridgeException", "AmazonEventBridge", 400),
    "states": ("StepFunctions.AWSStepFunctionsException", "AWSStepFunctions", 400),
}
DYNAMODB = {"getItem": "GetItem", "putItem": "PutItem", "deleteItem": "DeleteItem", "updateItem": "UpdateItem"}
#: The service integrations whose calls are checked (``integration``'s names; ``harness.fidelity`` names the rest).
CHECKED = frozenset(
    {
        "lambda:invoke",
        *(f"dynamodb:{action}" for action in DYNAMODB),
        "sqs:sendMessage",
        "sns:publish",
        "events:putEvents",
        "states:startExecution",
    }
)

#: (role ARN, state machine ARN) of the execution whose task runs on this thread.
_ROLE: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("harness_sfn_role", default=None)

Call = tuple[str, str, str]  # (service, IAM action, resource ARN)


def _arn(service: str, region: str, account: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def _function_arn(ref: Any, region: str, account: str) -> str | None:
    """The function ARN (with its qualifier) a task names by name, partial ARN or ARN."""
    if not isinstance(ref, str) or not ref:
        return None
    if ref.startswith("arn:"):
        return ref
    if ":function:" in ref:  # account:function:name[:qualifier]
        owner, _, rest = ref.partition(":function:")
        return _arn("lambda", region, owner or account, f"function:{rest}")
    return _arn("lambda", region, account, f"function:{ref}")


def _queue_arn(url: Any, region: str, account: str) -> str | None:
    if not isinstance(url, str) or not url:
        return None
    parts = url.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2].isdigit():
        return _arn("sqs", region, parts[-2], parts[-1])
    return _arn("sqs", region, account, parts[-1])


def integration(resource: str) -> str | None:
    """``service:action`` of a service-integration ARN (``sfn_history.split_resource``), without the pattern's
    suffix (``.sync``, ``.sync:2``, ``.waitForTaskToken``); None for any other resource."""
    split = split_resource(resource)
    return None if split is None else f"{split[0]}:{re.split(r'[.:]', split[1], maxsplit=1)[0]}"


def calls(resource: str, params: Mapping[str, Any], region: str, account: str) -> Iterator[Call]:
    """The calls a Task state's resource makes (those this adaptation checks)."""
    if resource.startswith("arn:aws:lambda:") and ":function:" in resource:
        yield "lambda", "lambda:InvokeFunction", resource
        return
    name = integration(resource)
    if name is None:
        return
    service, _, action = name.partition(":")
    if service == "lambda" and action == "invoke":
        arn = _function_arn(params.get("FunctionName"), region, account)
        if arn:
            qualifier = params.get("Qualifier")
            yield "lambda", "lambda:InvokeFunction", f"{arn}:{qualifier}" if isinstance(qualifier, str) else arn
    elif service == "dynamodb" and action in DYNAMODB and isinstance(params.get("TableName"), str):
        table = str(params["TableName"])
        arn = table if table.startswith("arn:") else _arn("dynamodb", region, account, f"table/{table}")
        yield "dynamodb", f"dynamodb:{DYNAMODB[action]}", arn
    elif service == "sqs" and action == "sendMessage":
        queue = _queue_arn(params.get("QueueUrl"), region, account)
        if queue:
            yield "sqs", "sqs:SendMessage", queue
    elif service == "sns" and action == "publish" and isinstance(params.get("TopicArn"), str):
        yield "sns", "sns:Publish", str(params["TopicArn"])
    elif service == "events" and action == "putEvents":
        entries = params.get("Entries") if isinstance(params.get("Entries"), list) else []
        buses = {str(e.get("EventBusName") or "default") for e in entries if isinstance(e, Mapping)} or {"default"}
        for bus in sorted(buses):
            yield (
                "events",
                "events:PutEvents",
                bus if bus.startswith("arn:") else _arn("events", region, account, f"event-bus/{bus}"),
            )
    elif service == "states" and action == "startExecution" and isinstance(params.get("StateMachineArn"), str):
        yield "states", "states:StartExecution", str(params["StateMachineArn"])


def session_key(role_arn: str, machine_arn: str, account: str) -> str:
    """Register the role's session the checks use (the same key for a role and machine; registered again at each
    check, as the emulator registers a function's at each invocation, so an expired session never denies); its
    access key."""
    from ministack.services import sts

    digest = hashlib.sha256(f"states:{machine_arn}:{role_arn}".encode()).hexdigest()
    key = f"ASIA{digest[:16].upper()}"
    role_name = role_arn.rsplit("/", 1)[-1]
    session = machine_arn.rsplit(":", 1)[-1][:64] or "states"
    sts.register_session(
        key,
        {
            "Arn": f"arn:aws:sts::{account}:assumed-role/{role_name}/{session}",
            "UserId": f"{role_name}:{session}",
            "SecretAccessKey": hashlib.sha256(f"secret:{digest}".encode()).hexdigest(),
            "SessionToken": hashlib.sha256(f"token:{digest}".encode()).hexdigest(),
        },
    )
    return key


def denial(call: Call, principal: str, explicit: bool) -> tuple[str, str]:
    """The task's (error, cause) for a denied call, worded as AWS words it."""
    service, action, resource = call
    error, service_name, status = ERRORS[service]
    why = (
        "with an explicit deny in an identity-based policy"
        if explicit
        else (f"because no identity-based policy allows the {action} action")
    )
    cause = (
        f"User: {principal} is not authorized to perform: {action} on resource: {resource} {why} "
        f"(Service: {service_name}; Status Code: {status}; Error Code: AccessDeniedException)"
    )
    return error, cause


def apply() -> None:
    """Check each Task call against the state machine's role. Raises ``AdaptationError`` on a changed emulator."""
    sfn = guard.module(SFN, NAME)
    evaluator = guard.module(EVALUATOR, NAME)
    targets = {attr: guard.function(sfn, attr, params, NAME) for attr, params in TARGETS}
    for caller, name in CALLERS:
        guard.calls_by_name(sfn, caller, name, NAME)
    app = guard.module(APP, NAME)
    for mod, attr in ((sfn, "_ExecutionError"), (sfn, "_state_machines"), (evaluator, "enforce"), (app, "AUTH")):
        if not hasattr(mod, attr):
            raise guard.AdaptationError(f"{NAME}: {mod.__name__}.{attr} is missing; written for {guard.PINNED_VERSION}")
    if guard.adapted(targets["_invoke_resource"], NAME):
        return
    execute_task = targets["_execute_task"]
    invoke_resource = targets["_invoke_resource"]

    @functools.wraps(execute_task)
    def adapted_execute_task(state_def: Any, raw_input: Any, execution: Any, ctx: Any) -> Any:
        machine_arn = str((execution or {}).get("stateMachineArn") or "")
        role = str((sfn._state_machines.get(machine_arn) or {}).get("roleArn") or "")
        token = _ROLE.set((role, machine_arn) if role else None)
        try:
            return execute_task(state_def, raw_input, execution, ctx)
        finally:
            _ROLE.reset(token)

    @functools.wraps(invoke_resource)
    def adapted_invoke_resource(resource: Any, input_data: Any) -> Any:
        role = _ROLE.get()
        if role is not None and isinstance(resource, str) and app.AUTH:  # as every other call: only with IAM on
            check(role, resource, input_data)
        return invoke_resource(resource, input_data)

    def check(role: tuple[str, str], resource: str, input_data: Any) -> None:
        role_arn, machine_arn = role
        parts = machine_arn.split(":")
        region, account = (parts[3], parts[4]) if len(parts) > 4 else ("us-east-1", "000000000000")
        params = input_data if isinstance(input_data, Mapping) else {}
        made = list(calls(resource, params, region, account))
        key = session_key(role_arn, machine_arn, account) if made else ""
        for call in made:
            denied = evaluator.enforce(key, call[1], call[0], region, resource_arn=call[2])
            if denied is None or not hasattr(denied, "decision"):
                continue  # allowed (an AuthError would be the emulator's own fault: not the task's)
            principal = str(getattr(denied, "principal_arn", "") or role_arn)
            raise sfn._ExecutionError(*denial(call, principal, denied.decision == "Deny"))

    setattr(sfn, "_execute_task", guard.mark(adapted_execute_task, NAME))  # noqa: B010 - a module's global
    setattr(sfn, "_invoke_resource", guard.mark(adapted_invoke_resource, NAME))  # noqa: B010
