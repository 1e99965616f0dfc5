"""Step Functions: the ``start_execution`` step action.

It starts an execution of a state machine (a logical id, an output holding
its ARN, an ARN or a name) with the test's trace header, and by default
waits until the execution ends, so the next step (``expect_trace``,
``expect_item``) sees what it did.
"""

from __future__ import annotations

import json
from typing import Any

from harness.scenarios.actions import Observation, Pending, StepContext, StepError, action, number_arg, resolve_ref
from harness.scenarios.matchers import Mismatch
from harness.scenarios.schema import field as f
from harness.scenarios.templating import jsonable
from harness.scenarios.waiting import WaitTimeout

RUNNING = "RUNNING"


def state_machine_arn(ctx: StepContext, ref: Any) -> str:
    value = resolve_ref(ctx, ref, "state_machine")
    if not value.startswith("arn:"):
        sfn = ctx.runtime.stack.client("stepfunctions")
        pages = sfn.get_paginator("list_state_machines").paginate()
        found = [m["stateMachineArn"] for page in pages for m in page["stateMachines"] if m["name"] == value]
        if not found:
            raise StepError(f"no state machine named {value!r}")
        value = found[0]
    ctx.detail = f"state machine {value}"
    return value


def _decoded(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _observed(described: dict[str, Any]) -> Observation:
    return {
        "execution_arn": described.get("executionArn"),
        "status": described.get("status"),
        "output": _decoded(described.get("output")),
        "error": described.get("error"),
        "cause": _decoded(described.get("cause")),
    }


@action(
    "start_execution",
    fields={
        "state_machine": f("str", required=True, example="state_machine: OrderFlow"),
        "input": f("any"),
        "name": f("str"),
        "wait": f("bool"),
        "within": f("number", minimum=0),
        "interval": f("number", minimum=0.001),
    },
    observes=("execution_arn", "status", "output", "error", "cause"),
    example="start_execution: {state_machine: OrderFlow, input: {order_id: abc}}",
    summary=lambda a: f"start_execution {a.get('state_machine')}",
)
def run_start_execution(args: dict[str, Any], ctx: StepContext) -> Observation:
    """Start an execution; unless ``wait: false``, wait (``within``, default 30 s) until it is no longer RUNNING."""
    arn = state_machine_arn(ctx, args["state_machine"])
    sfn = ctx.runtime.stack.client("stepfunctions")
    params: dict[str, Any] = {"stateMachineArn": arn, "input": json.dumps(args.get("input", {}), default=jsonable)}
    if args.get("name"):
        params["name"] = str(args["name"])
    started = sfn.start_execution(**params)
    first: Observation = {"execution_arn": started["executionArn"], "status": RUNNING}
    if args.get("wait", True) is False:
        return {**first, "output": None, "error": None, "cause": None}

    def attempt() -> Observation:
        observation = _observed(sfn.describe_execution(executionArn=started["executionArn"]))
        if observation["status"] == RUNNING:
            raise Pending(observation, [Mismatch("status", "not RUNNING", RUNNING, "still running")])
        return observation

    try:
        return ctx.poll(
            attempt,
            within=number_arg(args, "within", 30.0) or 0.0,
            interval=number_arg(args, "interval", None),
            description=f"execution of {arn}",
        )
    except WaitTimeout as exc:
        raise StepError(f"the execution {started['executionArn']} was still RUNNING after the wait: {exc}") from None
