"""Version-guarded adaptations of MiniStack internals, applied in its process.

Each adaptation names the emulator gap it covers. ``apply_all`` refuses to run
against any version other than ``PINNED_VERSION``: an adaptation written for
one version must never be silently applied to, or silently skipped on,
another, and each one checks the shape of what it patches (signatures, and
that the callers still look the patched names up at call time), raising
``AdaptationError`` at emulator start instead of silently not applying.
``tests/e2e/test_traces_emulator.py`` (and ``tests/unit/traces/test_traces_adaptation.py``)
fail loudly when one no longer applies.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any, cast

from harness.emulator import (
    OFF_VARIABLE,
    PINNED_VERSION,
    apigw_openapi_integration,
    cfn_yaml,
    eventbridge_sqs_policy,
    http_api_body,
    iam_s3_list_buckets,
    invocations,
    invoke_log_end,
    kinesis_encryption,
    lambda_env_strings,
    lambda_name_length,
    lambda_tag_update,
    layer_cache,
    notify_traces,
    pending_work,
    sandbox,
    secure_transport,
    sfn_history,
    sfn_role,
    sfn_start,
    sfn_traces,
    stream_links,
    warm_start,
)
from harness.emulator.trace_header import INBOUND_TRACE_HEADER, with_inbound_trace_header
from harness.errors import AdaptationError


def installed_version() -> str:
    try:
        return metadata.version("ministack")
    except metadata.PackageNotFoundError as exc:
        raise AdaptationError(
            "ministack is not installed; install the harness with its local extra: "
            f"pip install 'pytest-branchstack[local]' (pins ministack=={PINNED_VERSION})"
        ) from exc


def check_version() -> str:
    version = installed_version()
    if version != PINNED_VERSION:
        raise AdaptationError(
            f"ministack {version} is installed but the harness is pinned to {PINNED_VERSION}; "
            f"run: pip install ministack=={PINNED_VERSION}"
        )
    return version


# -- gap: Lambda Invoke ignores an inbound X-Amzn-Trace-Id ---------------------
#
# AWS continues the caller's trace: a function invoked with
# ``X-Amzn-Trace-Id: Root=R;Parent=P;Sampled=1`` runs with that trace
# (``_X_AMZN_TRACE_ID``), so its SDK's subsegments land in the caller's trace.
# MiniStack 1.5.33 has the logic (``_xray_trace_id_for_invocation(config,
# inbound_trace_header)`` prefers the header) but every executor calls it
# with ``config`` only, so a test can never find its own trace.
#
# The adaptation: the two request entries that lead to an invocation stash
# the request's header in a ContextVar for the duration of the request:
#   * ``lambda_svc._invoke`` (Invoke and InvokeWithResponseStream);
#   * ``handle_execute`` of ``apigateway_v1`` (REST APIs), whose Lambda
#     integrations call the executors directly.
# HTTP APIs (``apigateway``) are left alone on purpose: X-Ray supports tracing
# for REST APIs only, and on AWS a function behind an HTTP API does not
# continue the caller's trace (its invocation starts a trace of its own).
# ``_xray_trace_id_for_invocation`` uses the stashed header when no
# explicit one is passed. The executors run on threads that copy the
# request's context (``run_reentrant``, the async-invoke thread), so they see
# it; invocations that no request started (stream and queue pollers) do not,
# and keep MiniStack's own behaviour. The header reaches the function
# verbatim, so the SDK's subsegments have the caller's subsegment as parent;
# ``harness.traces.local_nodes`` inserts the function node between them.


#: (module, attribute, exact parameter names, is a coroutine function)
TRACE_HEADER_TARGETS: tuple[tuple[str, str, tuple[str, ...], bool], ...] = (
    ("ministack.services.lambda_svc", "_xray_trace_id_for_invocation", ("config", "inbound_trace_header"), False),
    (
        "ministack.services.lambda_svc",
        "_invoke",
        ("name", "event", "headers", "path_qualifier", "query_params"),
        True,
    ),
    (
        "ministack.services.apigateway_v1",
        "handle_execute",
        ("api_id", "stage_name", "method", "path", "headers", "body", "query_params"),
        True,
    ),
)

#: Callers that must look the patched names up at call time (module globals or
#: module attributes); a ``from x import name`` copy would bypass the patch.
TRACE_HEADER_CALLERS: tuple[tuple[str, str, str], ...] = (
    ("ministack.services.lambda_svc", "_execute_function_warm", "_xray_trace_id_for_invocation"),
    ("ministack.services.lambda_svc", "_execute_function_local", "_xray_trace_id_for_invocation"),
    ("ministack.services.lambda_svc", "_execute_function_provided", "_xray_trace_id_for_invocation"),
    ("ministack.services.lambda_svc", "_execute_function_provided_warm", "_xray_trace_id_for_invocation"),
    ("ministack.services.lambda_svc", "_execute_function_proxy", "_xray_trace_id_for_invocation"),
    ("ministack.services.lambda_svc", "handle_request", "_invoke"),
    ("ministack.app", "_handle_execute_api_request", "handle_execute"),
)


def _checked_target(module: Any, attr: str, params: tuple[str, ...], coroutine: bool) -> Callable[..., Any]:
    fn = getattr(module, attr, None)
    where = f"{getattr(module, '__name__', module)}.{attr}"
    if fn is None or not callable(fn):
        raise AdaptationError(
            f"trace-header adaptation: {where} is missing in the installed ministack; "
            f"the adaptation was written for {PINNED_VERSION}"
        )
    try:
        found = tuple(inspect.signature(fn).parameters)
    except (TypeError, ValueError) as exc:
        raise AdaptationError(f"trace-header adaptation: cannot read the signature of {where}: {exc}") from None
    if found != params:
        raise AdaptationError(
            f"trace-header adaptation: {where} takes ({', '.join(found)}), "
            f"expected ({', '.join(params)}) as in ministack {PINNED_VERSION}"
        )
    if inspect.iscoroutinefunction(fn) != coroutine:
        kind = "a coroutine function" if coroutine else "a plain function"
        raise AdaptationError(f"trace-header adaptation: {where} is no longer {kind}")
    return cast("Callable[..., Any]", fn)


def honour_inbound_trace_header() -> None:
    """Make Lambda invocations continue the caller's trace (Invoke and API Gateway integrations).

    Raises ``AdaptationError`` if a patched function or a caller that must see
    the patch is missing or changed shape.
    """
    modules: dict[str, Any] = {}

    def module(name: str) -> Any:
        # One at a time, in order: the first mismatch stops before anything else is imported.
        if name not in modules:
            modules[name] = importlib.import_module(name)
        return modules[name]

    targets = {
        (mod, attr): _checked_target(module(mod), attr, params, coro)
        for mod, attr, params, coro in TRACE_HEADER_TARGETS
    }
    for mod, fn_name, uses in TRACE_HEADER_CALLERS:
        caller = getattr(module(mod), fn_name, None)
        code = getattr(caller, "__code__", None)
        if code is None or uses not in code.co_names:
            raise AdaptationError(
                f"trace-header adaptation: {mod}.{fn_name} no longer calls {uses} by name, "
                f"so the patch would not reach it (written for ministack {PINNED_VERSION})"
            )
    lambda_svc = modules["ministack.services.lambda_svc"]
    if getattr(lambda_svc._invoke, "__harness_adapted__", False):
        return  # applied already in this process
    original_trace_id = targets[("ministack.services.lambda_svc", "_xray_trace_id_for_invocation")]

    @functools.wraps(original_trace_id)
    def trace_id_for_invocation(config: dict[str, Any], inbound_trace_header: str | None = None) -> str | None:
        return cast("str | None", original_trace_id(config, inbound_trace_header or INBOUND_TRACE_HEADER.get()))

    setattr(lambda_svc, "_xray_trace_id_for_invocation", trace_id_for_invocation)  # noqa: B010 - a module's global
    for mod, attr, params, coro in TRACE_HEADER_TARGETS:
        if coro:
            setattr(modules[mod], attr, with_inbound_trace_header(targets[(mod, attr)], params.index("headers")))


ADAPTATIONS: list[tuple[str, object]] = [
    ("lambda-honours-inbound-trace-header", honour_inbound_trace_header),
    (iam_s3_list_buckets.NAME, iam_s3_list_buckets.apply),
    (apigw_openapi_integration.NAME, apigw_openapi_integration.apply),
    (lambda_env_strings.NAME, lambda_env_strings.apply),
    (lambda_name_length.NAME, lambda_name_length.apply),
    # After lambda-env-strings: it wraps the update handler that one installs.
    (lambda_tag_update.NAME, lambda_tag_update.apply),
    (secure_transport.NAME, secure_transport.apply),
    (http_api_body.NAME, http_api_body.apply),
    (kinesis_encryption.NAME, kinesis_encryption.apply),
    (sfn_history.NAME, sfn_history.apply),
    # Before the trace adaptation: its task span wraps the role's check, so a denied call is traced as failed.
    (sfn_role.NAME, sfn_role.apply),
    (sfn_traces.NAME, sfn_traces.apply),
    (sfn_start.NAME, sfn_start.apply),
    (notify_traces.NAME, notify_traces.apply),
    (stream_links.NAME, stream_links.apply),
    (eventbridge_sqs_policy.NAME, eventbridge_sqs_policy.apply),
    # After the trace-header adaptation: it wraps the header that one computes.
    (invocations.NAME, invocations.record_invocations),
    (sandbox.NAME, sandbox.sandbox_python_runtimes),
    # Its drain waits for the mark the sandbox's worker writes.
    (invoke_log_end.NAME, invoke_log_end.apply),
    # Its launcher is what the sandbox's interpreter shims run.
    (warm_start.NAME, warm_start.apply),
    (layer_cache.NAME, layer_cache.apply),
    # After the invocation record: its count wraps the dispatch that one wraps.
    (pending_work.NAME, pending_work.apply),
    (cfn_yaml.NAME, cfn_yaml.apply),
]


def disabled(env: Mapping[str, str]) -> set[str]:
    """The adaptations ``HARNESS_EMULATOR_ADAPTATIONS_OFF`` leaves out; AdaptationError for an unknown name."""
    raw = env.get(OFF_VARIABLE, "").strip()
    names = {n.strip() for n in raw.split(",") if n.strip()}
    known = [name for name, _fn in ADAPTATIONS]
    if "all" in names:
        return set(known)
    unknown = sorted(names - set(known))
    if unknown:
        raise AdaptationError(f"{OFF_VARIABLE} names unknown adaptations {unknown}; known: {', '.join(known)}")
    return names


def apply_all(env: Mapping[str, str] | None = None) -> list[str]:
    """Apply every adaptation not switched off (``HARNESS_EMULATOR_ADAPTATIONS_OFF``); return their names."""
    check_version()
    off = disabled(os.environ if env is None else env)
    applied = []
    for name, fn in ADAPTATIONS:
        if name in off:
            continue
        fn()  # type: ignore[operator]
        applied.append(name)
    return applied
