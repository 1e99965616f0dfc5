"""Gap: SNS, S3 notifications and EventBridge do not pass the publisher's trace on to Lambda.

AWS: "If you publish to an Amazon SNS topic from a service that's already
instrumented with X-Ray, Amazon SNS passes the trace context from publisher to
subscribers" (https://docs.aws.amazon.com/xray/latest/devguide/xray-services-sns.html);
Amazon S3 sends the tracing header of the request that caused an event
notification to its Lambda, SQS and SNS destinations
(https://docs.aws.amazon.com/xray/latest/devguide/xray-services-s3.html);
"EventBridge passes the original trace header to the target"
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-related-service-xray.html).

MiniStack 1.5.33 never looks at the request's ``X-Amzn-Trace-Id`` there: the
Lambda runs under a fresh trace id. SNS and S3 deliver on a thread that copies
the request's context (``sns._publish`` -> ``_deliver_to_lambda``,
``s3._fire_s3_event_async``); EventBridge starts a bare thread on
``lambda_svc._execute_function_with_config_scope`` (``_dispatch_to_lambda``).

The adaptation: ``handle_request`` of ``sns``, ``s3`` and ``eventbridge``
keeps the request's header in the Lambda trace-header adaptation's ContextVar
for the request; ``lambda_svc._execution_record_for_config``, called while
the request dispatches, copies it into the (fresh) execution record, and
``_execute_function_with_config_scope`` sets it again on whatever thread runs
the record. So the invocation the delivery causes continues the publisher's
trace, exactly as a Lambda Invoke does. Queue and stream consumers (SQS,
Kinesis, DynamoDB streams) are polled on threads no request started, so they
keep starting traces of their own, as on AWS.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from harness.emulator import guard
from harness.emulator.trace_header import INBOUND_TRACE_HEADER, with_inbound_trace_header

NAME = "events-pass-the-trace-header"
APP = "ministack.app"
LAMBDA = "ministack.services.lambda_svc"
EVENTBRIDGE = "ministack.services.eventbridge"
#: Where an execution record carries the header of the request that caused it.
RECORD_KEY = "_harness_trace_header"

#: (module, exact parameter names of its handle_request)
TARGETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ministack.services.sns", ("method", "path", "headers", "body", "query_params")),
    (EVENTBRIDGE, ("method", "path", "headers", "body", "query_params")),
    (
        "ministack.services.s3",
        (
            "method",
            "path",
            "headers",
            "body",
            "query_params",
            "signed_path",
            "enforce_bucket_region",
            "internal",
            "access_point_region",
            "access_point",
        ),
    ),
)

#: App functions that reach the handlers through a module attribute looked up at call time.
CALLERS = ("_lazy_handler", "_handle_s3_vhost_request")


def _names_in(code: Any) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names |= _names_in(const)
    return names


def apply() -> None:
    """Make Lambda targets of SNS topics, S3 notifications and EventBridge rules continue the publisher's trace."""

    handlers = {}
    for name, params in TARGETS:
        mod = guard.module(name, NAME)
        handlers[name] = (mod, guard.function(mod, "handle_request", params, NAME, coroutine=True))
    app = guard.module(APP, NAME)
    for caller in CALLERS:
        code = getattr(inspect.unwrap(getattr(app, caller, None)), "__code__", None)
        if code is None or "handle_request" not in _names_in(code):
            raise guard.AdaptationError(
                f"{NAME}: {APP}.{caller} no longer calls handle_request by name, so the patch would not reach it "
                f"(written for ministack {guard.PINNED_VERSION})"
            )
    lambda_svc = guard.module(LAMBDA, NAME)
    make_record = guard.function(lambda_svc, "_execution_record_for_config", ("func", "config"), NAME)
    run_record = guard.function(lambda_svc, "_execute_function_with_config_scope", ("func", "event"), NAME)
    for uses in ("_execution_record_for_config", "_execute_function_with_config_scope"):
        guard.calls_by_name(handlers[EVENTBRIDGE][0], "_dispatch_to_lambda", uses, NAME)
    if guard.adapted(make_record, NAME):
        return  # applied already in this process

    @functools.wraps(make_record)
    def execution_record_for_config(func: Any, config: Any) -> Any:
        record = make_record(func, config)
        header = INBOUND_TRACE_HEADER.get()
        if header and isinstance(record, dict):
            record[RECORD_KEY] = header  # a fresh dict per invocation: nothing leaks to the next one
        return record

    @functools.wraps(run_record)
    def execute_function_with_config_scope(func: Any, event: Any) -> Any:
        header = func.get(RECORD_KEY) if isinstance(func, dict) else None
        if not header or INBOUND_TRACE_HEADER.get() == header:
            return run_record(func, event)
        token = INBOUND_TRACE_HEADER.set(header)
        try:
            return run_record(func, event)
        finally:
            INBOUND_TRACE_HEADER.reset(token)

    lambda_svc._execution_record_for_config = guard.mark(execution_record_for_config, NAME)
    lambda_svc._execute_function_with_config_scope = guard.mark(execute_function_with_config_scope, NAME)
    for mod, fn in handlers.values():
        mod.handle_request = guard.mark(with_inbound_trace_header(fn, 2), NAME)
