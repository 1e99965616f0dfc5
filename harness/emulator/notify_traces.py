"""Gap: SNS and S3 notifications do not pass the publisher's trace on to Lambda subscribers.

AWS: "If you publish to an Amazon SNS topic from a service that's already
instrumented with X-Ray, Amazon SNS passes the trace context from publisher to
subscribers" (https://docs.aws.amazon.com/xray/latest/devguide/xray-services-sns.html);
Amazon S3 sends the tracing header of the request that caused an event
notification to its Lambda, SQS and SNS destinations
(https://docs.aws.amazon.com/xray/latest/devguide/xray-services-s3.html).

MiniStack 1.5.33 delivers both on a thread that copies the request's context
(``sns._publish`` -> ``_deliver_to_lambda``, ``s3._fire_s3_event_async``) but
never looks at the request's ``X-Amzn-Trace-Id``: the subscriber runs under a
fresh trace id.

The adaptation: ``sns.handle_request`` and ``s3.handle_request`` keep the
request's header in the Lambda trace-header adaptation's ContextVar for the
request, so the invocation it causes (on the delivery thread, which copies
the context) continues the publisher's trace, exactly as a Lambda Invoke
does. Queue and stream consumers (SQS, Kinesis, DynamoDB streams) are polled
on threads no request started, so they keep starting traces of their own, as
on AWS.
"""

from __future__ import annotations

import inspect
from typing import Any

from harness.emulator import guard

NAME = "sns-and-s3-pass-the-trace-header"
APP = "ministack.app"

#: (module, exact parameter names of its handle_request)
TARGETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ministack.services.sns", ("method", "path", "headers", "body", "query_params")),
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
    """Make Lambda subscribers of SNS topics and S3 notifications continue the publisher's trace."""
    from harness.emulator.trace_header import with_inbound_trace_header as _with_inbound_trace_header

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
    for mod, fn in handlers.values():
        if guard.adapted(fn, NAME):
            continue  # applied already in this process
        mod.handle_request = guard.mark(_with_inbound_trace_header(fn, 2), NAME)
