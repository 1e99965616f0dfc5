"""The step-action machinery: registry, executor context, name resolution, errors.

An action is an executor plus the table of arguments it accepts and the
fields of the observation it returns. Executors live in ``steps.py`` (AWS and
HTTP) and register themselves in :data:`ACTIONS` with :func:`action`; the
loader validates against the tables, the runner dispatches through them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import StepError
from harness.scenarios.matchers import Mismatch, match
from harness.scenarios.runtime import StepRuntime
from harness.scenarios.schema import Field, check_mapping
from harness.scenarios.templating import suggest
from harness.scenarios.waiting import INTERVAL, eventually
from harness.stack import resolve_name, table_name_of

Observation = dict[str, Any]
Executor = Callable[[dict[str, Any], "StepContext"], Observation]


class Pending(AssertionError):
    """Not there yet: the observation so far and why it is not accepted.

    An action that judges by itself (``expect_trace``) raises it as its
    failure: ``headline`` and ``appendix`` (e.g. the trace tree) go into the
    step's failure message around the mismatches and the observation.
    """

    def __init__(
        self, observation: Observation, mismatches: list[Mismatch], *, headline: str = "", appendix: str = ""
    ) -> None:
        self.observation = observation
        self.mismatches = mismatches
        self.headline = headline
        self.appendix = appendix
        super().__init__("; ".join(m.render() for m in mismatches) or "not accepted yet")


@dataclass(frozen=True)
class Action:
    """One step action: its argument table, its observation fields, and its executor."""

    name: str
    run: Executor
    fields: Mapping[str, Field]
    observes: tuple[str, ...]
    example: str
    summary: Callable[[Mapping[str, Any]], str]
    validate: Callable[[Mapping[str, Any], int], None] | None = None
    observes_for: Callable[[Mapping[str, Any]], tuple[str, ...]] | None = None
    # Run before the scenario's first step (a listener must exist before the step that causes the event).
    prepare: Callable[[dict[str, Any], StepContext], None] | None = None

    def observed_fields(self, args: Mapping[str, Any]) -> tuple[str, ...]:
        """The top-level keys of this action's observation (what expect/save may use)."""
        return self.observes_for(args) if self.observes_for else self.observes


ACTIONS: dict[str, Action] = {}


def action(
    name: str,
    *,
    fields: Mapping[str, Field],
    observes: tuple[str, ...],
    example: str,
    summary: Callable[[Mapping[str, Any]], str],
    validate: Callable[[Mapping[str, Any], int], None] | None = None,
    observes_for: Callable[[Mapping[str, Any]], tuple[str, ...]] | None = None,
    prepare: Callable[[dict[str, Any], StepContext], None] | None = None,
) -> Callable[[Executor], Executor]:
    """Register an executor in :data:`ACTIONS` with its argument table."""

    def register(run: Executor) -> Executor:
        ACTIONS[name] = Action(name, run, fields, observes, example, summary, validate, observes_for, prepare)
        return run

    return register


def check_action_args(name: str, args: Any, line: int, what: str | None = None) -> None:
    """Validate one action's arguments (collection time)."""
    spec = ACTIONS[name]
    check_mapping(args, spec.fields, what=what or name, line=line, example=spec.example)
    if spec.validate:
        spec.validate(args, line)


@dataclass
class StepContext:
    """What an executor gets besides its arguments."""

    runtime: StepRuntime
    expect: Any = None
    has_expect: bool = False
    # What the action resolved to (URL, physical name), for failure messages.
    detail: str = ""
    # The logical reference being resolved, to explain "not found" errors.
    refs: list[str] = field(default_factory=list)

    def check(self, observation: Observation) -> list[Mismatch]:
        """Mismatches of the step's ``expect`` against ``observation`` (none without expect)."""
        return match(self.expect, observation) if self.has_expect else []

    def poll(
        self, attempt: Callable[[], Observation], *, within: float, interval: float | None, description: str
    ) -> Observation:
        """``eventually`` on the runtime's clock."""
        return eventually(
            attempt,
            within=within,
            interval=interval or INTERVAL,
            description=description,
            clock=self.runtime.clock,
            sleep=self.runtime.sleep,
        )

    def poll_until_matched(
        self,
        observe: Callable[[], Observation],
        args: Mapping[str, Any],
        *,
        description: str,
        missing: Callable[[Observation], Mismatch | None] = lambda _observation: None,
        within: float = 10.0,
        interval: float | None = None,
    ) -> Observation:
        """Observe until what the step waits for is there (``missing`` says what is not, yet) and the step's
        ``expect`` matches, or the step's ``within`` passes; its ``interval`` paces the polls (the arguments
        ``within`` and ``interval`` are the defaults of the step's own)."""

        def attempt() -> Observation:
            observation = observe()
            absent = missing(observation)
            mismatches = [absent] if absent is not None else self.check(observation)
            if mismatches:
                raise Pending(observation, mismatches)
            return observation

        return self.poll(
            attempt,
            within=number_arg(args, "within", within) or 0.0,
            interval=number_arg(args, "interval", interval),
            description=description,
        )

    def run_action(self, name: str, args: dict[str, Any]) -> Observation:
        """Run another action (the condition of ``wait: {until: ...}``) without expect."""
        inner = StepContext(self.runtime, refs=self.refs)
        observation = ACTIONS[name].run(args, inner)
        self.detail = inner.detail
        return observation


# -- resolving names ---------------------------------------------------------


def resolve_ref(ctx: StepContext, ref: Any, what: str) -> str:
    """A logical id (-> physical id), an output name (-> its value), or a physical name as is."""
    if not isinstance(ref, str) or not ref:
        raise StepError(f"{what} must be a non-empty string, got {ref!r}")
    ctx.refs.append(ref)
    return resolve_name(ctx.runtime.stack, ref)


def not_found_hint(stack: Any, refs: list[str]) -> str | None:
    """For a "does not exist" error: which names were not logical ids or outputs."""
    for ref in refs:
        if ref not in stack.resources and ref not in stack.outputs:
            known = sorted({*stack.resources, *stack.outputs})
            return (
                f"{ref!r} is not a logical id or output of stack {stack.name}, so it was used as a physical "
                f"name; " + suggest(ref, known, "logical ids and outputs")
            )
    return None


def table_name(ctx: StepContext, ref: Any) -> str:
    # An output may hold the table ARN (arn:aws:dynamodb:region:acct:table/Name).
    value = table_name_of(resolve_ref(ctx, ref, "table"))
    ctx.detail = f"table {value}"
    return value


def queue_url(ctx: StepContext, ref: Any) -> str:
    value = resolve_ref(ctx, ref, "queue")
    sqs = ctx.runtime.stack.client("sqs")
    if value.startswith(("http://", "https://")):
        url = value
    elif value.startswith("arn:"):
        parts = value.split(":")
        url = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
    else:
        url = sqs.get_queue_url(QueueName=value)["QueueUrl"]
    ctx.detail = f"queue {url}"
    return url


def number_arg(args: Mapping[str, Any], key: str, default: float | None) -> float | None:
    value = args.get(key, default)
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise StepError(f"{key} must be a number, got {value!r}") from None
    if number < 0:
        raise StepError(f"{key} must be >= 0, got {number:g}")
    return number


def decode_bytes(raw: bytes) -> Any:
    """JSON if it parses, else text (bytes that are not UTF-8 become base64)."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii")
