"""Step executors: one function per action, registered in :data:`ACTIONS`.

An executor takes the step's rendered arguments and a :class:`StepContext`
and returns an *observation*: a plain JSON-like dict that ``expect`` matches
and ``save`` reads. The ``@action`` decorator records what arguments it
accepts and what it observes, which is what the loader validates against.
"""

from __future__ import annotations

import base64
import decimal
import json
from collections.abc import Mapping
from typing import Any

from harness.scenarios.actions import (
    ACTIONS,
    Observation,
    Pending,
    StepContext,
    StepError,
    action,
    check_action_args,
    decode_bytes,
    number_arg,
    queue_url,
    resolve_ref,
    table_name,
)
from harness.scenarios.dynamo import KEY_OPS, from_dynamo, key_condition_expression, to_dynamo
from harness.scenarios.matchers import Mismatch
from harness.scenarios.schema import SpecError, is_template
from harness.scenarios.schema import field as f
from harness.scenarios.templating import jsonable, stringify, suggest
from harness.scenarios.waiting import WaitTimeout
from harness.scenarios.yamlio import line_of
from harness.stack import invoke_function

__all__ = ["ACTIONS", "WAITABLE", "StepContext", "StepError", "check_action_args"]

# Actions that can be the condition of `wait: {until: ...}`: they only look.
WAITABLE = ("get", "query", "http", "invoke")

# -- invoke ------------------------------------------------------------------


@action(
    "invoke",
    fields={
        "function": f("str", required=True, example="function: OrdersFunction"),
        "payload": f("any"),
        "invocation_type": f("str", choices=("RequestResponse", "Event", "DryRun")),
        "qualifier": f("str"),
    },
    observes=("status", "payload", "function_error"),
    example="invoke: {function: OrdersFunction, payload: {order_id: x}}",
    summary=lambda a: f"invoke {a.get('function')}",
)
def run_invoke(args: dict[str, Any], ctx: StepContext) -> Observation:
    """Invoke a Lambda function; observe status code, decoded payload and FunctionError."""
    name = resolve_ref(ctx, args["function"], "function")
    ctx.detail = f"function {name}"
    response, raw = invoke_function(
        ctx.runtime.stack.client("lambda"),
        name,
        json.dumps(args.get("payload", {})).encode(),
        invocation_type=args.get("invocation_type", "RequestResponse"),
        qualifier=str(args["qualifier"]) if args.get("qualifier") else None,
    )
    return {
        "status": response.get("StatusCode"),
        "payload": decode_bytes(raw),
        "function_error": response.get("FunctionError"),
    }


# -- http --------------------------------------------------------------------

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def _validate_http(args: Mapping[str, Any], line: int) -> None:
    if ("api" in args) == ("url" in args):
        raise SpecError(
            "http needs exactly one of `api` (a stack output holding the base URL) or `url`",
            line,
            hint="e.g. http: {api: ApiUrl, method: GET, path: /orders}",
        )
    if "json" in args and "body" in args:
        raise SpecError(
            "http takes `json` or `body`, not both",
            line,
            hint="`json` sends a JSON-encoded value; `body` sends a string as is",
        )
    if "url" in args and "path" in args:
        raise SpecError(
            "http `path` is only for `api`",
            line_of(args, "path", line),
            hint="put the whole address in `url`, or use api: <output name> with path",
        )


@action(
    "http",
    fields={
        "api": f("str", example="api: ApiUrl"),
        "url": f("str"),
        "method": f("str", choices=METHODS),
        "path": f("str"),
        "headers": f("mapping"),
        "query": f("mapping"),
        "json": f("any"),
        "body": f("str"),
        "timeout": f("number", minimum=0),
    },
    observes=("status", "headers", "body"),
    example="http: {api: ApiUrl, method: POST, path: /orders, json: {...}}",
    summary=lambda a: f"http {a.get('method', 'GET')} {a.get('path', a.get('url', '/'))}",
    validate=_validate_http,
)
def run_http(args: dict[str, Any], ctx: StepContext) -> Observation:
    """Call the API; observe status, lower-cased headers and the (JSON-decoded) body."""
    if "url" in args:
        url = str(args["url"])
    else:
        api = args["api"]
        outputs = ctx.runtime.stack.outputs
        if api not in outputs:
            raise StepError(
                f"http.api {api!r} is not an output of stack {ctx.runtime.stack.name}",
                hint=suggest(str(api), outputs, "outputs"),
            )
        base = str(outputs[api])
        path = str(args.get("path", ""))
        url = base.rstrip("/") + "/" + path.lstrip("/") if path else base
    url = ctx.runtime.resolve_url(url)
    method = str(args.get("method", "GET")).upper()
    ctx.detail = f"{method} {url}"
    query = {
        str(k): [stringify(x) for x in v] if isinstance(v, list) else stringify(v)
        for k, v in (args.get("query") or {}).items()
    }
    headers = {str(k): stringify(v) for k, v in (args.get("headers") or {}).items()}
    kwargs: dict[str, Any] = {
        "params": query,
        "headers": headers,
        "timeout": number_arg(args, "timeout", ctx.runtime.http_timeout),
    }
    if "json" in args:
        kwargs["json"] = args["json"]
    elif "body" in args:
        kwargs["data"] = stringify(args["body"]).encode()
    response = ctx.runtime.http.request(method, url, **kwargs)
    body: Any = ""
    if response.content:
        try:
            body = response.json()
        except ValueError:
            body = response.text
    return {
        "status": response.status_code,
        "headers": {k.lower(): v for k, v in response.headers.items()},
        "body": body,
    }


# -- DynamoDB ----------------------------------------------------------------

_TABLE = f("str", required=True, example="table: OrdersTable")
_KEY = f("mapping", required=True, example="key: {order_id: abc}")


@action(
    "put",
    fields={"table": _TABLE, "item": f("mapping", required=True, example="item: {order_id: abc, qty: 2}")},
    observes=(),
    example="put: {table: OrdersTable, item: {order_id: abc}}",
    summary=lambda a: f"put {a.get('table')}",
)
def run_put(args: dict[str, Any], ctx: StepContext) -> Observation:
    """Write one item."""
    ctx.runtime.stack.client("dynamodb").put_item(
        TableName=table_name(ctx, args["table"]), Item=to_dynamo(args["item"], "put.item")
    )
    return {}


def _get(args: Mapping[str, Any], ctx: StepContext) -> Observation:
    response = ctx.runtime.stack.client("dynamodb").get_item(
        TableName=table_name(ctx, args["table"]),
        Key=to_dynamo(args["key"], "key"),
        ConsistentRead=bool(args.get("consistent", False)),
    )
    # A missing item has no `item` key at all, which is what `item: !absent` matches.
    return {"item": from_dynamo(response["Item"])} if "Item" in response else {}


@action(
    "get",
    fields={"table": _TABLE, "key": _KEY, "consistent": f("bool")},
    observes=("item",),
    example="get: {table: OrdersTable, key: {order_id: abc}}",
    summary=lambda a: f"get {a.get('table')}",
)
def run_get(args: dict[str, Any], ctx: StepContext) -> Observation:
    """Read one item: ``{item: {...}}``, or ``{}`` when there is none."""
    return _get(args, ctx)


def _validate_query(args: Mapping[str, Any], line: int) -> None:
    cond = args.get("key_condition")
    cline = line_of(args, "key_condition", line)
    hint = "e.g. key_condition: {customer_id: c-1, created_at: {begins_with: '2024-'}}"
    if not isinstance(cond, Mapping) or not 1 <= len(cond) <= 2:
        raise SpecError("query.key_condition must name the partition key and optionally the sort key", cline, hint=hint)
    equalities = 0
    for attr, spec in cond.items():
        if not isinstance(spec, Mapping):
            equalities += 1
            continue
        aline = line_of(cond, attr, cline)
        if len(spec) != 1 or next(iter(spec)) not in KEY_OPS:
            raise SpecError(
                f"query.key_condition.{attr} must be a value or one condition",
                aline,
                hint=suggest(str(next(iter(spec), "")), KEY_OPS, "conditions"),
            )
        op, arg = next(iter(spec.items()))
        if op == "eq":
            equalities += 1
        if op == "between" and not is_template(arg) and not (isinstance(arg, list) and len(arg) == 2):
            raise SpecError(f"query.key_condition.{attr}.between takes [low, high]", aline, hint=hint)
    if equalities == 0:
        raise SpecError("query.key_condition needs an equality on the partition key", cline, hint=hint)


@action(
    "query",
    fields={
        "table": _TABLE,
        "key_condition": f("mapping", required=True, example="key_condition: {customer_id: c-1}"),
        "index": f("str"),
        "limit": f("int", minimum=1),
        "descending": f("bool"),
        "consistent": f("bool"),
    },
    observes=("items", "count"),
    example="query: {table: OrdersTable, index: ByCustomer, key_condition: {customer_id: c-1}}",
    summary=lambda a: f"query {a.get('table')}" + (f" index {a['index']}" if a.get("index") else ""),
    validate=_validate_query,
)
def run_query(args: dict[str, Any], ctx: StepContext) -> Observation:
    """Query by key condition (all pages, up to ``limit``): ``{items, count}``."""
    expression, names, values = key_condition_expression(args["key_condition"])
    params: dict[str, Any] = {
        "TableName": table_name(ctx, args["table"]),
        "KeyConditionExpression": expression,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ScanIndexForward": not args.get("descending", False),
    }
    if args.get("index"):
        params["IndexName"] = str(args["index"])
    if args.get("consistent"):
        params["ConsistentRead"] = True
    limit = int(number_arg(args, "limit", 0) or 0)
    client = ctx.runtime.stack.client("dynamodb")
    items: list[dict[str, Any]] = []
    while True:
        response = client.query(**params)
        items += [from_dynamo(i) for i in response.get("Items", [])]
        if "LastEvaluatedKey" not in response or (limit and len(items) >= limit):
            break
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    if limit:
        items = items[:limit]
    return {"items": items, "count": len(items)}


@action(
    "delete",
    fields={"table": _TABLE, "key": _KEY},
    observes=(),
    example="delete: {table: OrdersTable, key: {order_id: abc}}",
    summary=lambda a: f"delete {a.get('table')}",
)
def run_delete(args: dict[str, Any], ctx: StepContext) -> Observation:
    """Delete one item (no error if it is not there)."""
    ctx.runtime.stack.client("dynamodb").delete_item(
        TableName=table_name(ctx, args["table"]), Key=to_dynamo(args["key"], "key")
    )
    return {}


@action(
    "expect_item",
    fields={
        "table": _TABLE,
        "key": _KEY,
        "within": f("number", minimum=0),
        "interval": f("number", minimum=0.001),
        "consistent": f("bool"),
    },
    observes=("item",),
    example="expect_item: {table: AuditTable, key: {order_id: abc}, within: 10}",
    summary=lambda a: f"expect_item {a.get('table')}",
)
def run_expect_item(args: dict[str, Any], ctx: StepContext) -> Observation:
    """Poll ``get`` until the item exists and matches ``expect``, or ``within`` passes."""

    def missing(observation: Observation) -> Mismatch | None:
        if "item" in observation:
            return None
        return Mismatch("item", "an item with this key", observation.get("item"), "not found yet")

    return ctx.poll_until_matched(
        lambda: _get(args, ctx), args, description=f"item in {args['table']}", missing=missing
    )


# -- SQS ---------------------------------------------------------------------


def _attribute(value: Any) -> dict[str, str]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"DataType": "Number", "StringValue": str(value)}
    return {"DataType": "String", "StringValue": stringify(value)}


@action(
    "send",
    fields={
        "queue": f("str", required=True, example="queue: OrdersQueue"),
        "body": f("any", required=True, example="body: {order_id: abc}"),
        "attributes": f("mapping"),
        "group_id": f("str"),
        "deduplication_id": f("str"),
        "delay": f("int", minimum=0),
    },
    observes=("message_id",),
    example="send: {queue: OrdersQueue, body: {order_id: abc}}",
    summary=lambda a: f"send {a.get('queue')}",
)
def run_send(args: dict[str, Any], ctx: StepContext) -> Observation:
    """Send one message (non-string bodies are JSON-encoded)."""
    params: dict[str, Any] = {"QueueUrl": queue_url(ctx, args["queue"]), "MessageBody": stringify(args["body"])}
    if args.get("attributes"):
        params["MessageAttributes"] = {str(k): _attribute(v) for k, v in args["attributes"].items()}
    if args.get("group_id"):
        params["MessageGroupId"] = str(args["group_id"])
    if args.get("deduplication_id"):
        params["MessageDeduplicationId"] = str(args["deduplication_id"])
    if args.get("delay") is not None:
        params["DelaySeconds"] = int(number_arg(args, "delay", 0) or 0)
    response = ctx.runtime.stack.client("sqs").send_message(**params)
    return {"message_id": response.get("MessageId")}


def _message(raw: Mapping[str, Any]) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for name, attr in (raw.get("MessageAttributes") or {}).items():
        if "StringValue" in attr:
            value: Any = attr["StringValue"]
            if str(attr.get("DataType", "")).startswith("Number"):
                value = jsonable(decimal.Decimal(value))
            attributes[name] = value
        elif "BinaryValue" in attr:
            attributes[name] = base64.b64encode(attr["BinaryValue"]).decode("ascii")
    body = raw.get("Body", "")
    return {
        "body": decode_bytes(body.encode()) if body else "",
        "attributes": attributes,
        "message_id": raw.get("MessageId"),
    }


@action(
    "receive",
    fields={
        "queue": f("str", required=True, example="queue: EventsQueue"),
        "max": f("int", minimum=1),
        "within": f("number", minimum=0),
        "interval": f("number", minimum=0.001),
        "delete": f("bool"),
    },
    observes=("messages",),
    example="receive: {queue: EventsQueue, max: 1, within: 10}",
    summary=lambda a: f"receive {a.get('queue')}",
)
def run_receive(args: dict[str, Any], ctx: StepContext) -> Observation:
    """Collect messages until ``max`` arrived, ``expect`` matches, or ``within`` passes.

    Received messages are deleted unless ``delete: false``. Running out of time
    is not itself a failure: ``expect`` judges what arrived.
    """
    url = queue_url(ctx, args["queue"])
    want = int(number_arg(args, "max", 1) or 1)
    delete = bool(args.get("delete", True))
    sqs = ctx.runtime.stack.client("sqs")
    got: list[dict[str, Any]] = []

    def attempt() -> Observation:
        response = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=max(1, min(10, want - len(got))),
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
        )
        for raw in response.get("Messages", []):
            got.append(_message(raw))
            if delete:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=raw["ReceiptHandle"])
        observation = {"messages": list(got)}
        if len(got) >= want or (ctx.has_expect and not ctx.check(observation)):
            return observation
        raise Pending(observation, [Mismatch("messages", f"{want} message(s)", got, f"{len(got)} so far")])

    try:
        return ctx.poll(
            attempt,
            within=number_arg(args, "within", 10.0) or 0.0,
            interval=number_arg(args, "interval", None),
            description=f"messages on {args['queue']}",
        )
    except WaitTimeout:
        return {"messages": list(got)}


# -- wait --------------------------------------------------------------------


def _until(args: Mapping[str, Any]) -> tuple[str, Any] | None:
    until = args.get("until")
    if isinstance(until, Mapping) and len(until) == 1:
        name, inner = next(iter(until.items()))
        return str(name), inner
    return None


def _validate_wait(args: Mapping[str, Any], line: int) -> None:
    hint = "write wait: {seconds: 2} or wait: {until: {get: {...}}, within: 30} with a step-level expect"
    if ("seconds" in args) == ("until" in args):
        raise SpecError("wait needs exactly one of `seconds` or `until`", line, hint=hint)
    if "seconds" in args:
        for key in ("within", "interval"):
            if key in args:
                raise SpecError(f"wait.{key} only applies to `until`", line_of(args, key, line), hint=hint)
        return
    uline = line_of(args, "until", line)
    pair = _until(args)
    if pair is None:
        raise SpecError(
            "wait.until must be one action, like {get: {table: T, key: {...}}}",
            uline,
            hint="the action is re-run until the step's expect matches; one of: " + ", ".join(WAITABLE),
        )
    name, inner = pair
    if name not in WAITABLE:
        raise SpecError(f"wait.until cannot use {name!r}", uline, hint=suggest(name, WAITABLE, "usable actions"))
    check_action_args(name, inner, line_of(args["until"], name, uline), what=f"wait.until.{name}")


@action(
    "wait",
    fields={
        "seconds": f("number", minimum=0),
        "until": f("mapping"),
        "within": f("number", minimum=0),
        "interval": f("number", minimum=0.001),
    },
    observes=(),
    example="wait: {seconds: 2}",
    summary=lambda a: (
        f"wait {a['seconds']}s" if "seconds" in a else f"wait until {next(iter(a.get('until') or {'?': 0}))}"
    ),
    validate=_validate_wait,
    observes_for=lambda a: ACTIONS[p[0]].observes if (p := _until(a)) and p[0] in ACTIONS else (),
)
def run_wait(args: dict[str, Any], ctx: StepContext) -> Observation:
    """Sleep, or re-run the ``until`` action until the step's ``expect`` matches."""
    if "seconds" in args:
        ctx.runtime.sleep(number_arg(args, "seconds", 0.0) or 0.0)
        return {}
    name, inner = _until(args) or ("", {})
    return ctx.poll_until_matched(lambda: ctx.run_action(name, inner), args, description=f"wait until {name}")


# expect_trace reads the test's trace rather than the stack; importing its module registers it.
# expect_log reads the test's function logs; importing its module registers it.
# start_execution (Step Functions) lives in its own module; importing it registers it.
# So do the EventBridge/SNS steps (event_steps) and the S3/Kinesis steps (store_steps).
from harness.scenarios import event_steps as _event_steps  # noqa: E402,F401
from harness.scenarios import log_steps as _log_steps  # noqa: E402,F401
from harness.scenarios import store_steps as _store_steps  # noqa: E402,F401
from harness.scenarios import trace_steps as _trace_steps  # noqa: E402,F401
from harness.scenarios import workflow_steps as _workflow_steps  # noqa: E402,F401
