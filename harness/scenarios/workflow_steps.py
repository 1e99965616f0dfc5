"""Step Functions: the ``start_execution`` and ``expect_execution`` step actions.

It starts an execution of a state machine (a logical id, an output holding
its ARN, an ARN or a name) with the test's trace header, and by default
waits until the execution ends, so the next step (``expect_trace``,
``expect_item``) sees what it did. ``expect_execution`` waits for an
execution the stack started (found by an EventBridge pattern on its input)
or one saved by ``start_execution``, until it ends and matches ``expect``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from harness.errors import PatternError
from harness.events import pattern as patterns
from harness.scenarios.actions import Observation, Pending, StepContext, StepError, action, number_arg, resolve_ref
from harness.scenarios.matchers import Mismatch
from harness.scenarios.schema import SpecError
from harness.scenarios.schema import field as f
from harness.scenarios.templating import jsonable
from harness.scenarios.waiting import WaitTimeout
from harness.scenarios.yamlio import line_of
from harness.traces.propagation import untraced

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


# -- expect_execution --------------------------------------------------------

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")


def _validate_expect_execution(args: Mapping[str, Any], line: int) -> None:
    if "execution_arn" in args and "input" in args:
        raise SpecError(
            "expect_execution takes `execution_arn` or an `input` pattern, not both",
            line,
            hint="an execution started by this scenario: execution_arn; one the stack started: an input pattern",
        )
    if "input" in args:
        try:
            patterns.validate(args["input"])
        except PatternError as exc:
            if "{{" not in json.dumps(args["input"], default=str):
                raise SpecError(
                    f"input.{exc.path}: {exc.reason}", line_of(args, "input", line), hint=exc.hint or ""
                ) from None


def _executions(sfn: Any, arn: str, args: Mapping[str, Any]) -> list[Observation]:
    """The executions in question, newest first, described (input and output decoded).

    A lookup of the harness's, kept out of the test's trace: how many executions it
    reads depends on what other tests ran before, not on what this one caused.
    """
    with untraced():
        return _find_executions(sfn, arn, args)


def _find_executions(sfn: Any, arn: str, args: Mapping[str, Any]) -> list[Observation]:
    if args.get("execution_arn"):
        arns = [str(args["execution_arn"])]
    else:
        pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=arn)
        arns = [e["executionArn"] for page in pages for e in page.get("executions", [])][:100]
    found = []
    for execution in arns:
        described = sfn.describe_execution(executionArn=execution)
        found.append({**_observed(described), "input": _decoded(described.get("input"))})
    pattern = args.get("input")
    return [e for e in found if not pattern or patterns.matches(pattern, e["input"])]


@action(
    "expect_execution",
    fields={
        "state_machine": f("str", required=True, example="state_machine: OrderFlow"),
        "execution_arn": f("str"),
        "input": f("mapping", example="input: {order_id: ['{{ saved.order_id }}']}"),
        "within": f("number", minimum=0),
        "interval": f("number", minimum=0.001),
    },
    observes=("execution_arn", "status", "output", "error", "cause", "input"),
    example="expect_execution: {state_machine: OrderFlow, input: {order_id: ['{{ saved.order_id }}']}, within: 30}",
    summary=lambda a: f"expect_execution {a.get('state_machine')}",
    validate=_validate_expect_execution,
)
def run_expect_execution(args: dict[str, Any], ctx: StepContext) -> Observation:
    """Wait until an execution (by ARN, or the newest whose input matches the ``input`` pattern) has ended."""
    arn = state_machine_arn(ctx, args["state_machine"])
    sfn = ctx.runtime.stack.client("stepfunctions")
    if args.get("input") is not None:
        try:
            patterns.validate(args["input"])
        except PatternError as exc:
            raise StepError(f"input.{exc.path}: {exc.reason}", hint=exc.hint) from None

    def newest() -> Observation:
        found = _executions(sfn, arn, args)
        return found[0] if found else {}

    def missing(observation: Observation) -> Mismatch | None:
        if not observation:
            wanted = "an execution whose input matches" if args.get("input") else "an execution"
            return Mismatch("execution_arn", wanted, None, "none yet")
        if observation["status"] not in TERMINAL:
            return Mismatch("status", "a terminal status", observation["status"], "not ended yet")
        return None

    return ctx.poll_until_matched(
        newest, args, description=f"execution of {arn}", missing=missing, within=30.0, interval=0.2
    )
