"""The test process as a traced client.

Each test gets a ``TraceContext``: a trace id, the id of the test's own client
segment, and the AWS and HTTP calls the test made. ``instrument`` hooks
botocore so that every request carries ``X-Amzn-Trace-Id`` (``Root`` = the
test's trace, ``Parent`` = that call's subsegment id, ``Sampled=1``) and is
recorded as a subsegment; SQS messages also get the ``AWSTraceHeader`` system
attribute and EventBridge entries a ``TraceHeader``, so consumers continue the
trace. ``ctx.segment_document()`` is the test's client segment, in the same
JSON shape as every other segment, so a trace built from it and the
downstream segments has the client at its root.

The hooks read the current context from a provider callable (the plugin sets
it per test) and do nothing when it returns ``None``. Each traced call costs a
few microseconds: two ``os.urandom`` calls, a handful of dict operations.
"""

from __future__ import annotations

import functools
import itertools
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from harness.traces.apiurls import execute_api_parts
from harness.traces.ids import HEADER, header_value, new_segment_id, new_trace_id

#: Annotation that marks the harness's client segment (the model's ``kind == "client"``).
CLIENT_ANNOTATION = "harness_client"
TEST_ANNOTATION = "harness_test"

# Request parameters that name the resource a call touches, and the key the
# X-Ray SDKs use for it in a subsegment's ``aws`` object.
_RESOURCE_PARAMS: tuple[tuple[str, str], ...] = (
    ("TableName", "table_name"),
    ("FunctionName", "function_name"),
    ("QueueUrl", "queue_url"),
    ("QueueName", "queue_name"),
    ("TopicArn", "topic_arn"),
    ("Bucket", "bucket_name"),
    ("StreamName", "stream_name"),
    ("StateMachineArn", "state_machine_arn"),
    ("SecretId", "secret_id"),
    ("EventBusName", "event_bus_name"),
)

_THROTTLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "EC2ThrottledException",
    }
)

_UNTRACED = threading.local()
_POLL = threading.local()


@contextmanager
def poll_attempt(poll_id: str, attempt: int) -> Iterator[None]:
    """Calls made in this block (this thread) are attempt ``attempt`` of the wait ``poll_id``.

    The harness's waits poll a varying number of times; marking each call with
    its attempt lets a reader keep only the attempt that ended the wait
    (behaviour snapshots) and count the rest apart.
    """
    before = getattr(_POLL, "at", None)
    _POLL.at = (poll_id, attempt)
    try:
        yield
    finally:
        _POLL.at = before


def current_poll() -> tuple[str, int] | None:
    return getattr(_POLL, "at", None)


@contextmanager
def untraced() -> Iterator[None]:
    """Calls made in this block (this thread) are not part of the test's trace: the harness's own lookups."""
    before = getattr(_UNTRACED, "on", False)
    _UNTRACED.on = True
    try:
        yield
    finally:
        _UNTRACED.on = before


def _suppressed() -> bool:
    return bool(getattr(_UNTRACED, "on", False))


# X-Ray accepts names of up to 200 characters from this set.
_NAME_BAD = re.compile(r"[^\w\s.:/%&#=+\\\-@]", re.UNICODE)
_CONTEXT_KEY = "harness_trace_call"


def segment_name(text: str) -> str:
    """``text`` made acceptable as an X-Ray segment name (allowed characters, 200 at most)."""
    return _NAME_BAD.sub("_", text)[:200] or "test"


@dataclass
class Call:
    """One call the test made: an AWS API call or an HTTP request (a client subsegment)."""

    id: str
    service: str
    operation: str
    start: float
    namespace: str = "aws"
    aws: dict[str, Any] = field(default_factory=dict)
    url: str | None = None
    method: str | None = None
    end: float | None = None
    status: int | None = None
    error: bool = False
    throttle: bool = False
    fault: bool = False
    exception: str | None = None
    #: (poll id, attempt) when one attempt of a harness wait made this call (``poll_attempt``).
    poll: tuple[str, int] | None = field(default_factory=current_poll)

    @property
    def resource(self) -> str | None:
        """The table, function, queue... the call touched (``None`` if none was named)."""
        for _param, key in _RESOURCE_PARAMS:
            value = self.aws.get(key)
            if isinstance(value, str):
                return value
        names = self.aws.get("table_names")
        return names[0] if isinstance(names, list) and names else None

    def finish(
        self,
        *,
        status: int | None = None,
        error_code: str | None = None,
        exception: BaseException | None = None,
        end: float | None = None,
    ) -> None:
        """Close the call: HTTP status, AWS error code, or the exception that ended it."""
        self.end = time.time() if end is None else end
        self.status = status
        if exception is not None:
            self.exception = f"{type(exception).__name__}: {exception}"
            if status is None:
                self.fault = True  # no response at all: connection refused, timeout
        if status is not None:
            if status == 429 or (error_code is not None and error_code in _THROTTLE_CODES):
                self.throttle = self.error = True
            elif 400 <= status < 500:
                self.error = True
            elif status >= 500:
                self.fault = True

    def document(self) -> dict[str, Any]:
        """This call as an X-Ray subsegment (nested in the client segment)."""
        doc: dict[str, Any] = {
            "id": self.id,
            "name": self.service,
            "start_time": self.start,
            "namespace": self.namespace,
        }
        if self.end is None:
            doc["in_progress"] = True
        else:
            doc["end_time"] = self.end
        http: dict[str, Any] = {}
        if self.url is not None:
            http["request"] = {"url": self.url, "method": self.method}
        if self.status is not None:
            http["response"] = {"status": self.status}
        if http:
            doc["http"] = http
        if self.namespace == "aws":
            doc["aws"] = {"operation": self.operation, **self.aws}
        elif self.aws:
            doc["aws"] = dict(self.aws)  # an HTTP API call: api_id, stage, route, api_type
        for flag in ("error", "throttle", "fault"):
            if getattr(self, flag):
                doc[flag] = True
        if self.exception:
            doc["cause"] = {"exceptions": [{"id": new_segment_id(), "message": self.exception}]}
        if self.poll is not None:
            doc["metadata"] = {"harness": {"poll": list(self.poll)}}
        return doc


class TraceContext:
    """One test's trace: its id, its client segment, the calls it made."""

    def __init__(
        self,
        name: str,
        *,
        trace_id: str | None = None,
        clock: Callable[[], float] = time.time,
        test_id: str | None = None,
        max_calls: int = 10_000,
    ) -> None:
        self.name = name
        self.max_calls = max_calls
        self.dropped_calls = 0
        self.test_id = test_id or name
        self.clock = clock
        self.start = clock()
        self.trace_id = trace_id or new_trace_id(self.start)
        self.segment_id = new_segment_id()
        self.end: float | None = None
        self.calls: list[Call] = []
        self.error = False
        self.fault = False

    def record(self, call: Call) -> None:
        """Keep ``call`` in the segment; past ``max_calls`` only count it (a load test stays flat in memory)."""
        if len(self.calls) < self.max_calls:
            self.calls.append(call)
        else:
            self.dropped_calls += 1

    def header(self, parent_id: str | None = None) -> str:
        """The ``X-Amzn-Trace-Id`` value for a call whose subsegment is ``parent_id`` (default: the test)."""
        return header_value(self.trace_id, parent_id or self.segment_id)

    # -- calls ------------------------------------------------------------
    def begin_aws_call(self, service: str, operation: str, params: Mapping[str, Any] | None = None) -> Call:
        """Start recording an AWS API call (``finish`` it, then it is part of the segment)."""
        call = Call(id=new_segment_id(), service=service, operation=operation, start=self.clock())
        if params:
            call.aws.update(resource_fields(params))
        self.record(call)
        return call

    def begin_http(self, method: str, url: str) -> Call:
        """Start recording an HTTP request; send ``ctx.header(call.id)`` with it."""
        host = urlsplit(url).hostname or url
        call = Call(
            id=new_segment_id(),
            service=host,
            operation=method.upper(),
            start=self.clock(),
            namespace="remote",
            url=url,
            method=method.upper(),
        )
        self.record(call)
        return call

    @contextmanager
    def http_call(self, method: str, url: str) -> Iterator[HttpCall]:
        """Trace one HTTP request made with any client::

        with ctx.http_call("POST", url) as call:
            resp = client.post(url, headers=call.headers, json=body)
            call.status = resp.status_code
        """
        call = self.begin_http(method, url)
        handle = HttpCall(headers={HEADER: self.header(call.id)}, call=call)
        try:
            yield handle
        except BaseException as exc:
            call.finish(status=handle.status, exception=exc, end=self.clock())
            raise
        call.finish(status=handle.status, end=self.clock())

    # -- the segment --------------------------------------------------------
    def finish(self, *, failed: bool = False, end: float | None = None) -> None:
        """End the client segment (``failed``: the test failed, flagged as an error)."""
        self.end = self.clock() if end is None else end
        self.error = self.error or failed

    def segment_document(self) -> dict[str, Any]:
        """The test's client segment, with every call as a subsegment (JSON-able)."""
        doc: dict[str, Any] = {
            "name": segment_name(self.name),
            "id": self.segment_id,
            "trace_id": self.trace_id,
            "start_time": self.start,
            "annotations": {CLIENT_ANNOTATION: True, TEST_ANNOTATION: self.test_id[:1000]},
            "subsegments": [c.document() for c in list(self.calls)],
        }
        if self.end is None:
            doc["in_progress"] = True
        else:
            doc["end_time"] = self.end
        if self.error:
            doc["error"] = True
        if self.fault:
            doc["fault"] = True
        if self.dropped_calls:
            doc["metadata"] = {"harness": {"dropped_calls": self.dropped_calls}}
        return doc


@dataclass
class HttpCall:
    """What ``TraceContext.http_call`` yields: the headers to send, and a slot for the status."""

    headers: dict[str, str]
    call: Call
    status: int | None = None


class CurrentContext:
    """The context provider the plugin owns: one current test per process.

    A plain attribute, not a ``ContextVar``: threads a test starts (a thread
    pool firing requests) must be traced too, and a pytest process runs one
    test at a time.
    """

    def __init__(self) -> None:
        self._ctx: TraceContext | None = None
        self._lock = threading.Lock()

    def __call__(self) -> TraceContext | None:
        return self._ctx

    def set(self, ctx: TraceContext | None) -> None:
        with self._lock:
            self._ctx = ctx


ContextProvider = Callable[[], "TraceContext | None"]


def resource_fields(params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``aws`` fields naming what a call touches, from its request parameters."""
    out: dict[str, Any] = {}
    for param, key in _RESOURCE_PARAMS:
        value = params.get(param)
        if isinstance(value, str):
            out[key] = value
    items = params.get("RequestItems")  # BatchGetItem / BatchWriteItem
    if isinstance(items, Mapping) and items:
        out["table_names"] = list(items)
    return out


# -- botocore -------------------------------------------------------------------


def _events(target: Any) -> Any:
    """The event emitter of a boto3/botocore session or client."""
    meta = getattr(target, "meta", None)
    if meta is not None and hasattr(meta, "events"):
        return meta.events  # a client
    if hasattr(target, "events"):
        return target.events  # boto3.Session
    if hasattr(target, "get_component"):
        return target.get_component("event_emitter")  # botocore Session
    raise TypeError(f"cannot instrument {type(target).__name__}: expected a boto3/botocore session or client")


def _inject_message_headers(service: str, operation: str, params: dict[str, Any], header: str) -> None:
    """Carry the trace to SQS consumers (``AWSTraceHeader``), EventBridge targets (``TraceHeader``)
    and Step Functions executions (``traceHeader``)."""
    if service == "SQS":
        if operation == "SendMessage":
            attrs = params.setdefault("MessageSystemAttributes", {})
            attrs.setdefault("AWSTraceHeader", {"DataType": "String", "StringValue": header})
        elif operation == "SendMessageBatch":
            for entry in params.get("Entries") or ():
                attrs = entry.setdefault("MessageSystemAttributes", {})
                attrs.setdefault("AWSTraceHeader", {"DataType": "String", "StringValue": header})
    elif service == "EventBridge" and operation == "PutEvents":
        for entry in params.get("Entries") or ():
            entry.setdefault("TraceHeader", header)
    elif service == "SFN" and operation in ("StartExecution", "StartSyncExecution"):
        params.setdefault("traceHeader", header)


def instrument(target: Any, ctx_provider: ContextProvider) -> Callable[[], None]:
    """Trace every call made through ``target`` (a boto3/botocore session or a client).

    On a session, only clients created afterwards are traced (botocore copies
    the handlers into each new client). Instrumenting the same target twice
    with the same provider is a no-op. Returns a function that removes the hooks.
    """
    events = _events(target)
    tag = f"harness.traces.{id(ctx_provider):x}"

    def before_parameter_build(
        params: dict[str, Any], model: Any, context: dict[str, Any] | None = None, **_: Any
    ) -> None:
        ctx = ctx_provider()
        if ctx is None or context is None or _suppressed():
            return
        service = model.service_model.service_id
        call = Call(
            id=new_segment_id(),
            service=service,
            operation=model.name,
            start=ctx.clock(),
            aws=resource_fields(params),
        )
        context[_CONTEXT_KEY] = (ctx, call)
        if service in ("SQS", "EventBridge", "SFN"):
            _inject_message_headers(service, model.name, params, ctx.header(call.id))

    def before_call(params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> None:
        pending = context.get(_CONTEXT_KEY) if context else None
        if pending is None:
            return
        ctx, call = pending
        params["headers"][HEADER] = ctx.header(call.id)
        region = context.get("client_region") if context else None
        if region:
            call.aws["region"] = region
        # Recorded only now: a call refused by parameter validation never left the process.
        ctx.record(call)

    def after_call(http_response: Any, parsed: Any, context: dict[str, Any] | None = None, **_: Any) -> None:
        pending = context.pop(_CONTEXT_KEY, None) if context else None
        if pending is None:
            return
        ctx, call = pending
        code = None
        if isinstance(parsed, dict):
            code = (parsed.get("Error") or {}).get("Code")
            request_id = (parsed.get("ResponseMetadata") or {}).get("RequestId")
            if request_id:
                call.aws["request_id"] = request_id
            if parsed.get("FunctionError"):  # Lambda Invoke: the function failed (Handled / Unhandled)
                call.aws["function_error"] = parsed["FunctionError"]
            retries = (parsed.get("ResponseMetadata") or {}).get("RetryAttempts")
            if isinstance(retries, int) and retries:
                call.aws["retries"] = retries  # the SDK's own retries: one call, several attempts
        call.finish(status=getattr(http_response, "status_code", None), error_code=code, end=ctx.clock())

    def after_call_error(exception: BaseException, context: dict[str, Any] | None = None, **_: Any) -> None:
        pending = context.pop(_CONTEXT_KEY, None) if context else None
        if pending is None:
            return
        ctx, call = pending
        call.finish(exception=exception, end=ctx.clock())

    hooks = (
        ("before-parameter-build", before_parameter_build),
        ("before-call", before_call),
        ("after-call", after_call),
        ("after-call-error", after_call_error),
    )
    for event, fn in hooks:
        events.register(event, fn, unique_id=f"{tag}.{event}")

    def undo() -> None:
        for event, _fn in hooks:
            events.unregister(event, unique_id=f"{tag}.{event}")

    return undo


def instrument_botocore(ctx_provider: ContextProvider) -> Callable[[], None]:
    """Trace every botocore client this process creates from now on.

    Wraps ``botocore.session.Session.create_client`` so that ``boto3.client``,
    ``boto3.resource``, any ``boto3.Session`` and the harness's own ``Stack``
    clients all carry the hooks, whoever made them (a few microseconds per
    client created). Returns a function that restores ``create_client``.
    """
    import botocore.session

    original = botocore.session.Session.create_client

    @functools.wraps(original)
    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        instrument(client, ctx_provider)
        return client

    setattr(botocore.session.Session, "create_client", create_client)  # noqa: B010 - patching a class
    undo_waiters = _mark_waiter_polls()

    def undo() -> None:
        setattr(botocore.session.Session, "create_client", original)  # noqa: B010
        undo_waiters()

    return undo


_WAITER_IDS = itertools.count(1)


def _mark_waiter_polls() -> Callable[[], None]:
    """Each attempt of a botocore waiter (``client.get_waiter(...).wait``) is a poll attempt (``poll_attempt``)."""
    import botocore.waiter

    original = botocore.waiter.Waiter.wait

    @functools.wraps(original)
    def wait(self: Any, **kwargs: Any) -> Any:
        operation = self._operation_method
        poll_id, attempts = f"w{next(_WAITER_IDS)}", itertools.count(1)

        def attempt(**params: Any) -> Any:
            with poll_attempt(poll_id, next(attempts)):
                return operation(**params)

        self._operation_method = attempt
        try:
            return original(self, **kwargs)
        finally:
            self._operation_method = operation

    botocore.waiter.Waiter.wait = wait  # type: ignore[method-assign]

    def undo() -> None:
        botocore.waiter.Waiter.wait = original  # type: ignore[method-assign]

    return undo


# -- requests -------------------------------------------------------------------


def http_api_fields(url: str, stages: Callable[[str], frozenset[str] | None] | None) -> dict[str, Any] | None:
    """``{api_id, stage, route, api_type: HTTP}`` of a request to an HTTP API (API Gateway v2).

    An HTTP API serves its ``$default`` stage from the root (``/items``) and
    a named stage under its name (``/v1/items``); the first path segment is a
    stage only if the API has a stage of that name (``stages`` answers, once
    per API), else the request went to ``$default``.
    """
    parts = execute_api_parts(url)
    if parts is None:
        return None
    api_id, first, rest = parts
    named = stages(api_id) if stages is not None else None
    if not first or (named is not None and first not in named):
        route = "/" + first + (rest if rest != "/" else "") if first else "/"
        return {"api_id": api_id, "stage": "$default", "route": route, "api_type": "HTTP"}
    return {"api_id": api_id, "stage": first, "route": rest, "api_type": "HTTP"}


def instrument_requests(
    ctx_provider: ContextProvider,
    session: Any = None,
    *,
    http_api_stages: Callable[[str], frozenset[str] | None] | None = None,
) -> Callable[[], None]:
    """Trace ``requests`` calls: the trace header on each request, each one a client subsegment.

    With ``session`` only that ``requests.Session``; without, every session
    (``requests.Session.send`` itself, which module-level ``requests.get`` also
    uses). The URL recorded is the one the test asked for, before any
    emulator routing. A response of an HTTP API (its ``apigw-requestid``
    header) labels the call with the API's stage and route
    (``http_api_stages``: api id -> its named stages). Returns a function
    that removes the hook.
    """
    import requests

    owner: Any = session if session is not None else requests.Session
    original = owner.send  # bound method for an instance, function for the class

    def traced(sess: Any, request: Any, **kwargs: Any) -> Any:
        ctx = ctx_provider()
        send = original if session is not None else (lambda r, **kw: original(sess, r, **kw))
        if ctx is None or _suppressed():
            return send(request, **kwargs)
        call = ctx.begin_http(request.method or "GET", request.url or "")
        request.headers[HEADER] = ctx.header(call.id)
        try:
            response = send(request, **kwargs)
        except BaseException as exc:
            call.finish(exception=exc, end=ctx.clock())
            raise
        call.finish(status=response.status_code, end=ctx.clock())
        if "apigw-requestid" in getattr(response, "headers", {}):
            call.aws.update(http_api_fields(call.url or "", http_api_stages) or {})
        return response

    if session is not None:
        had_own = "send" in vars(session)
        session.send = lambda request, **kwargs: traced(session, request, **kwargs)

        def undo() -> None:
            if had_own:
                session.send = original
            else:
                del session.send
    else:
        requests.Session.send = traced  # type: ignore[method-assign, assignment]

        def undo() -> None:
            requests.Session.send = original  # type: ignore[method-assign]

    return undo
