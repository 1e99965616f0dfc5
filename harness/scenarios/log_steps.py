"""``expect_log``: a step that checks what the test's function invocations logged.

    - expect_log:
        function: CreateOrderFunction       # a logical id, a physical name or part of one (optional)
        contains: "stored order"            # or matches: a regular expression
        within: 10                          # seconds to wait for the line (default 10)

The invocations are the ones in the test's trace (see ``harness.function_logs``).
It observes ``lines`` (the matching lines) and ``invocations`` (how many were read).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from harness.errors import ExpectationFailed
from harness.scenarios.actions import Observation, StepContext, StepError, action, number_arg, resolve_ref
from harness.scenarios.schema import SpecError
from harness.scenarios.schema import field as f


def _validate(args: Mapping[str, Any], line: int) -> None:
    if ("contains" in args) == ("matches" in args):
        raise SpecError(
            "expect_log needs exactly one of `contains` (text) or `matches` (a regular expression)",
            line,
            hint='e.g. expect_log: {function: CreateOrderFunction, contains: "stored order"}',
        )
    if "matches" in args:
        try:
            re.compile(str(args["matches"]))
        except re.error as exc:
            raise SpecError(
                f"expect_log.matches is not a regular expression: {exc}",
                line,
                hint="escape special characters, or use `contains` for plain text",
            ) from None


@action(
    "expect_log",
    fields={
        "function": f("str", example="function: CreateOrderFunction"),
        "contains": f("str", example='contains: "stored order"'),
        "matches": f("str", example='matches: "order [a-z0-9-]+ stored"'),
        "within": f("number", minimum=0),
    },
    observes=("lines", "invocations"),
    example='expect_log: {function: CreateOrderFunction, contains: "stored order"}',
    summary=lambda a: f"expect_log {a.get('function') or ''}".strip(),
    validate=_validate,
)
def run_expect_log(args: dict[str, Any], ctx: StepContext) -> Observation:
    """Wait (up to ``within``) until an invocation of the test logged a matching line."""
    logs = ctx.runtime.logs
    if logs is None:
        raise StepError(
            "expect_log needs this test's trace and function logs, but traces are off in this run",
            hint="function logs are found through the trace: on the local emulator and on aws (X-Ray)",
        )
    function = resolve_ref(ctx, args["function"], "function") if args.get("function") else None
    pattern = str(args["matches"]) if "matches" in args else re.escape(str(args["contains"]))
    ctx.detail = f"function {function}" if function else "any function"
    try:
        lines = logs.wait_for(pattern, function, within=number_arg(args, "within", None))
    except ExpectationFailed as exc:
        raise StepError(exc.message, hint=exc.hint) from None
    return {"lines": lines, "invocations": len(logs.invocations(function))}
