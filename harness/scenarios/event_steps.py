"""EventBridge and SNS: ``put_events``, ``expect_event``, ``publish``, ``expect_message``.

``expect_event`` and ``expect_message`` read what a listener of the harness
received (:mod:`harness.events.listeners`): a rule on the bus, or a queue
subscribed to the topic, made before the scenario's first step and removed
at the end of the session. Patterns are EventBridge event patterns, judged
by the harness's matcher (:mod:`harness.events.pattern`) the same way on
every target; they are checked when the file is collected.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from harness.errors import PatternError
from harness.events import pattern as patterns
from harness.events import watch
from harness.events.listeners import Listener, Listeners
from harness.scenarios.actions import Observation, Pending, StepContext, StepError, action, number_arg, resolve_ref
from harness.scenarios.matchers import Mismatch
from harness.scenarios.schema import SpecError, check_mapping
from harness.scenarios.schema import field as f
from harness.scenarios.templating import jsonable, stringify
from harness.scenarios.waiting import WaitTimeout
from harness.scenarios.yamlio import line_of
from harness.stack import topic_arn_named

# -- shared ------------------------------------------------------------------


def _listeners(ctx: StepContext) -> Listeners:
    found = ctx.runtime.listeners
    if found is None:
        raise StepError(
            "this step needs the harness's event listeners, which exist only in a session with the branch stack",
            hint="run the scenario through pytest with the plugin (the stack deployed)",
        )
    return found


def _validate_pattern(args: Mapping[str, Any], line: int, key: str = "pattern") -> None:
    if key not in args:
        return
    try:
        patterns.validate(args[key])
    except PatternError as exc:
        if "{{" in json.dumps(args[key], default=str):  # a template may make it valid: checked once rendered
            return
        raise SpecError(
            f"{key}.{exc.path}: {exc.reason}" if exc.path else f"{key}: {exc.reason}",
            line_of(args, key, line),
            hint=exc.hint or "see FORMAT.md, Events",
        ) from None


def _rendered_pattern(args: Mapping[str, Any]) -> Mapping[str, Any] | None:
    value = args.get("pattern")
    if value is None:
        return None
    try:
        patterns.validate(value)
    except PatternError as exc:
        raise StepError(f"pattern.{exc.path}: {exc.reason}", hint=exc.hint) from None
    return value


def _count(args: Mapping[str, Any]) -> int | None:
    return None if args.get("count") is None else int(number_arg(args, "count", 0) or 0)


def wait_for(ctx: StepContext, listener: Listener, args: Mapping[str, Any], what: str) -> Observation:
    """Poll the listener until the pattern's count is met; fail with what arrived instead."""
    listeners = _listeners(ctx)
    pattern, count = _rendered_pattern(args), _count(args)
    within = number_arg(args, "within", 10.0) or 0.0
    since = ctx.runtime.started if ctx.runtime.started is not None else ctx.runtime.clock()
    last = watch.Outcome(count=count)

    def attempt() -> Observation:
        nonlocal last
        listeners.drain(listener)
        last = watch.judge(listener.arrivals, pattern, since=since, count=count)
        if not last.done:
            observed = last.observation(what)
            raise Pending(observed, [Mismatch("count", watch.expected_words(count), len(last.matched))])
        return last.observation(what)

    try:
        ctx.poll(attempt, within=within, interval=number_arg(args, "interval", 0.2), description=listener.label)
    except WaitTimeout:
        pass
    if not last.passed:
        headline, appendix = watch.failure_text(last, what, listener.label, within)
        mismatch = Mismatch("count", watch.expected_words(count), len(last.matched))
        raise Pending(last.observation(what), [mismatch], headline=headline, appendix=appendix)
    return last.observation(what)


_WAIT_FIELDS = {
    "within": f("number", minimum=0),
    "count": f("int", minimum=0),
    "interval": f("number", minimum=0.001),
}

# -- EventBridge ---------------------------------------------------------------


def _bus(ctx: StepContext, ref: Any) -> str:
    value = resolve_ref(ctx, ref, "bus")
    ctx.detail = f"event bus {value}"
    return value


ENTRY_FIELDS = {
    "source": f("str", required=True, example="source: orders"),
    "detail_type": f("str", required=True, example="detail_type: OrderPlaced"),
    "detail": f("any"),
    "resources": f("list"),
    "bus": f("str"),
}


def _validate_put_events(args: Mapping[str, Any], line: int) -> None:
    entries = args.get("entries")
    if not isinstance(entries, list) or not 1 <= len(entries) <= 10:
        raise SpecError(
            "put_events.entries must be a list of 1 to 10 events",
            line_of(args, "entries", line),
            hint="e.g. entries: [{source: orders, detail_type: OrderPlaced, detail: {order_id: x}}]",
        )
    for i, entry in enumerate(entries):
        check_mapping(entry, ENTRY_FIELDS, what=f"put_events.entries[{i}]", line=line_of(entries, i, line))


@action(
    "put_events",
    fields={
        "bus": f("str", example="bus: OrdersBus"),
        "entries": f(
            "list", required=True, items=ENTRY_FIELDS, example="entries: [{source: orders, detail_type: OrderPlaced}]"
        ),
    },
    observes=("event_ids",),
    example="put_events: {bus: OrdersBus, entries: [{source: orders, detail_type: OrderPlaced, detail: {id: x}}]}",
    summary=lambda a: f"put_events {a.get('bus', 'default')}",
    validate=_validate_put_events,
)
def run_put_events(args: dict[str, Any], ctx: StepContext) -> Observation:
    """Put events on a bus (each entry may name its own ``bus``); the test's trace rides in ``TraceHeader``."""
    default_bus = _bus(ctx, args["bus"]) if args.get("bus") else "default"
    entries = []
    for entry in args["entries"]:
        detail = entry.get("detail", {})
        entries.append(
            {
                "EventBusName": _bus(ctx, entry["bus"]) if entry.get("bus") else default_bus,
                "Source": stringify(entry["source"]),
                "DetailType": stringify(entry["detail_type"]),
                "Detail": detail if isinstance(detail, str) else json.dumps(detail, default=jsonable),
                "Resources": [stringify(r) for r in entry.get("resources") or ()],
            }
        )
    response = ctx.runtime.stack.client("events").put_events(Entries=entries)
    failed = [e for e in response.get("Entries", []) if e.get("ErrorCode")]
    if response.get("FailedEntryCount") or failed:
        raise StepError(
            "EventBridge refused " + "; ".join(f"{e.get('ErrorCode')}: {e.get('ErrorMessage')}" for e in failed),
            hint="check the bus name and that the source does not start with 'aws.'",
        )
    return {"event_ids": [e.get("EventId") for e in response.get("Entries", [])]}


def _prepare_bus(args: dict[str, Any], ctx: StepContext) -> None:
    _listeners(ctx).bus(_bus(ctx, args.get("bus", "default")))


@action(
    "expect_event",
    fields={
        "bus": f("str", required=True, example="bus: OrdersBus"),
        "pattern": f("mapping", required=True, example="pattern: {detail-type: [OrderAudited]}"),
        **_WAIT_FIELDS,
    },
    observes=("events", "event", "count"),
    example='expect_event: {bus: OrdersBus, pattern: {detail-type: [OrderAudited], detail: {order_id: ["x"]}}}',
    summary=lambda a: f"expect_event {a.get('bus')}",
    validate=_validate_pattern,
    prepare=_prepare_bus,
)
def run_expect_event(args: dict[str, Any], ctx: StepContext) -> Observation:
    """Wait (``within``, default 10 s) until events matching ``pattern`` arrived on the bus (``count``)."""
    listener = _listeners(ctx).bus(_bus(ctx, args["bus"]))
    return wait_for(ctx, listener, args, "event")


# -- SNS ---------------------------------------------------------------------


def topic_arn(ctx: StepContext, ref: Any) -> str:
    value = resolve_ref(ctx, ref, "topic")
    if not value.startswith("arn:"):
        found = topic_arn_named(ctx.runtime.stack, value)
        if found is None:
            raise StepError(f"no SNS topic named {value!r}")
        value = found
    ctx.detail = f"topic {value}"
    return value


def _sns_attribute(value: Any) -> dict[str, str]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"DataType": "Number", "StringValue": str(value)}
    return {"DataType": "String", "StringValue": stringify(value)}


@action(
    "publish",
    fields={
        "topic": f("str", required=True, example="topic: OrdersTopic"),
        "message": f("any", required=True, example="message: {order_id: abc}"),
        "subject": f("str"),
        "attributes": f("mapping"),
        "group_id": f("str"),
        "deduplication_id": f("str"),
    },
    observes=("message_id",),
    example="publish: {topic: OrdersTopic, message: {order_id: abc}}",
    summary=lambda a: f"publish {a.get('topic')}",
)
def run_publish(args: dict[str, Any], ctx: StepContext) -> Observation:
    """Publish one message (non-strings JSON-encoded); SNS passes the test's trace on."""
    params: dict[str, Any] = {"TopicArn": topic_arn(ctx, args["topic"]), "Message": stringify(args["message"])}
    if args.get("subject"):
        params["Subject"] = str(args["subject"])
    if args.get("attributes"):
        params["MessageAttributes"] = {str(k): _sns_attribute(v) for k, v in args["attributes"].items()}
    if args.get("group_id"):
        params["MessageGroupId"] = str(args["group_id"])
    if args.get("deduplication_id"):
        params["MessageDeduplicationId"] = str(args["deduplication_id"])
    return {"message_id": ctx.runtime.stack.client("sns").publish(**params).get("MessageId")}


def _prepare_topic(args: dict[str, Any], ctx: StepContext) -> None:
    _listeners(ctx).topic(topic_arn(ctx, args["topic"]))


@action(
    "expect_message",
    fields={
        "topic": f("str", required=True, example="topic: OrdersTopic"),
        "pattern": f("mapping", example="pattern: {message: {order_id: [abc]}}"),
        **_WAIT_FIELDS,
    },
    observes=("messages", "message", "count"),
    example="expect_message: {topic: OrdersTopic, pattern: {message: {order_id: [abc]}}}",
    summary=lambda a: f"expect_message {a.get('topic')}",
    validate=_validate_pattern,
    prepare=_prepare_topic,
)
def run_expect_message(args: dict[str, Any], ctx: StepContext) -> Observation:
    """Wait until messages matching ``pattern`` (on ``{message, subject, attributes}``) arrived on the topic."""
    listener = _listeners(ctx).topic(topic_arn(ctx, args["topic"]))
    return wait_for(ctx, listener, args, "message")
