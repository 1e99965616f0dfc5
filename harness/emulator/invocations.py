"""Lambda invocations as AWS reports them: error payloads, logs and Lambda's own trace segments.

MiniStack 1.5.33 runs a function and answers, but:

* an init error (a module it cannot import) comes back as
  ``{"errorType": "RuntimeError", "errorMessage": "Worker init failed: ..."}``
  with no log, where AWS answers ``Runtime.ImportModuleError`` and logs it;
* an unhandled exception comes back as ``Runtime.HandlerError`` whatever was
  raised, where AWS answers the exception's class (``ValueError``) and stack;
* a function with an unsupported runtime (java, dotnet, ruby: they need
  Docker) gets a canned mock answer, so its callers pass;
* no ``AWS::Lambda`` / ``AWS::Lambda::Function`` segments are recorded, so a
  function without the X-Ray SDK is absent from its trace and a cold start's
  initialisation is in no span.

The adaptation (``record_invocations``) wraps the one function every executor
passes through (``lambda_svc._execute_function_dispatch``), the trace header
each executor asks for (``_xray_trace_id_for_invocation``) and the warm
worker's ``_spawn`` and ``invoke`` (to time the cold start and keep the init
error). Per invocation it keeps a :class:`Record` (thread-local: the executors
run the invocation on the calling thread), rewrites the error payload and log
to AWS's shapes (``sandbox`` makes the worker report them), and, when the
function's tracing mode is ``Active`` and the invocation is sampled, sends the
two segments Lambda records on AWS to the X-Ray daemon address
(``AWS_XRAY_DAEMON_ADDRESS``, the harness's collector):

* ``AWS::Lambda`` (the service; parent: the caller's subsegment), and
* ``AWS::Lambda::Function`` (the code; ``Initialization`` on a cold start,
  ``Invocation``, ``Overhead``; ``fault`` and ``cause.exceptions`` when it
  failed).

The function runs with ``Parent`` set to the function segment's id, so the
X-Ray SDK's subsegments (if it has the SDK) nest under it, as on AWS.
PassThrough functions get no segments, as on AWS.
"""

from __future__ import annotations

import functools
import importlib
import json
import re
import secrets
import threading
import time
from typing import Any

from harness.emulator import PINNED_VERSION, stream_links
from harness.emulator import runtimes as runtime_lookup
from harness.emulator.invocation_record import Record
from harness.emulator.trace_header import INBOUND_TRACE_HEADER

NAME = "lambda-invocation-records"
INIT_MARKER = "HARNESS_INIT_ERROR"
_HEADER_RE = re.compile(r"(?:^|;)\s*(Root|Parent|Sampled)=([^;]*)")
_ERROR_LINE_RE = re.compile(r"^\[ERROR\] ([A-Za-z_][\w.]*): ?(.*)$", re.MULTILINE)
_FRAME_RE = re.compile(r'^\s*File "([^"]+)", line (\d+), in (.+)$', re.MULTILINE)
_current = threading.local()


def _now() -> float:
    return time.time()


def current() -> Record | None:
    return getattr(_current, "record", None)


def trace_header(header: str | None, *, inbound: bool = True) -> str | None:
    """The invocation's ``_X_AMZN_TRACE_ID``: with segments recorded, its Parent is the function segment.

    ``inbound``: the header came with the request (its Parent is the caller's
    subsegment); else the emulator made it up and the Lambda segment is a root.
    """
    rec = current()
    if rec is None or not rec.tracing or not header:
        return header
    if rec.function_id is None:
        fields = dict(_HEADER_RE.findall(header))
        if fields.get("Sampled") == "0" or not fields.get("Root"):
            return header
        rec.root, rec.parent = fields["Root"], (fields.get("Parent") or None) if inbound else None
        rec.lambda_id, rec.function_id = secrets.token_hex(8), secrets.token_hex(8)
    return f"Root={rec.root};Parent={rec.function_id};Sampled=1"


def init_error_from(exc: BaseException) -> dict[str, Any] | None:
    """The AWS-shaped init error the sandboxed worker reported, from MiniStack's ``Worker init failed`` error."""
    text = str(exc)
    at = text.find(INIT_MARKER)
    if at < 0:
        if exc.__class__.__name__ == "SandboxError":
            return {"errorType": "Harness.RuntimeMismatch", "errorMessage": text, "trace": ""}
        return None
    try:
        found = json.loads(text[at + len(INIT_MARKER) :])
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _body(result: dict[str, Any]) -> dict[str, Any]:
    body = result.get("body")
    return body if isinstance(body, dict) else {}


def _stack(trace: str) -> list[dict[str, Any]]:
    return [{"path": p, "line": int(n), "label": label.strip()} for p, n, label in _FRAME_RE.findall(trace)]


_TASK_DIR_RE = re.compile(r"/\S*?/ministack-lambda-[^/\s]+/code/")
_LAYER_DIR_RE = re.compile(r"/\S*?/ministack-lambda-[^/\s]+/layer_\d+/")


def aws_paths(text: str) -> str:
    """Paths as the function sees them on AWS: its bundle at ``/var/task``, its layers under ``/opt``."""
    return _LAYER_DIR_RE.sub("/opt/", _TASK_DIR_RE.sub("/var/task/", text))


def aws_log(rec: Record, log: str) -> str:
    """The invocation's log as AWS writes it: an init error's lines, a timeout's line; AWS's paths."""
    if rec.init_error is not None:
        err = rec.init_error
        kind, message = err.get("errorType", "Runtime.Unknown"), err.get("errorMessage", "")
        took = (rec.init[1] - rec.init[0]) * 1000 if rec.init else 0.0
        lines = [f"[ERROR] {kind}: {message}", "Traceback (most recent call last):", err.get("trace", "")]
        lines.append(f"INIT_REPORT Init Duration: {took:.2f} ms\tPhase: init\tStatus: error\tError Type: {kind}")
        log = "\n".join(x for x in lines if x)
    elif rec.timed_out:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        log = f"{log}\n{stamp}.000Z {rec.request_id} {rec.timed_out}".strip("\n")
    return aws_paths(log)


def shape_result(result: dict[str, Any], rec: Record) -> dict[str, Any]:
    """The executor's result with AWS's error payload and log (see the module docstring)."""
    if rec.init_error is not None:
        err = rec.init_error
        kind, message = err.get("errorType", "Runtime.Unknown"), err.get("errorMessage", "")
        stack = _stack(aws_paths(err.get("trace", "")))
        rec.error = {"type": kind, "message": message, "stack": stack}
        body = _payload(kind, message, rec, stack)
        return {**result, "body": body, "error": True, "log": aws_log(rec, "")}
    if not result.get("error"):
        return result
    body, log = _body(result), aws_log(rec, str(result.get("log") or ""))
    kind, message = str(body.get("errorType") or "Unhandled"), str(body.get("errorMessage") or "")
    stack: list[dict[str, Any]] = []
    found = list(_ERROR_LINE_RE.finditer(log))
    if kind == "Runtime.HandlerError" and found:
        kind = found[-1].group(1).rsplit(".", 1)[-1]
        stack = _stack(log[found[-1].end() :])
        body = _payload(kind, message, rec, stack)
    rec.error = {"type": kind, "message": message, "stack": stack}
    return {**result, "body": body, "log": log}


def _payload(kind: str, message: str, rec: Record, stack: list[dict[str, Any]]) -> dict[str, Any]:
    frames = [f'  File "{f["path"]}", line {f["line"]}, in {f["label"]}\n' for f in stack]
    return {"errorMessage": message, "errorType": kind, "requestId": rec.request_id, "stackTrace": frames}


def unsupported_result(rec: Record, res: runtime_lookup.Resolution) -> dict[str, Any]:
    message = (
        f"function {rec.function}: runtime {rec.runtime} cannot run on the embedded emulator ({res.used}); "
        "run it on --target aws or an emulator with Docker (--target endpoint)"
    )
    rec.error = {"type": "Harness.UnsupportedRuntime", "message": message, "stack": []}
    body = _payload("Harness.UnsupportedRuntime", message, rec, [])
    return {"body": body, "error": True, "log": f"[ERROR] Harness.UnsupportedRuntime: {message}"}


# -- the adaptation --------------------------------------------------------------

#: (module, attribute, exact parameter names)
TARGETS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "ministack.services.lambda_svc",
        "_execute_function_dispatch",
        ("func", "config", "event", "request_id", "started"),
    ),
    ("ministack.services.lambda_svc", "_xray_trace_id_for_invocation", ("config", "inbound_trace_header")),
    (
        "ministack.services.lambda_svc",
        "_emit_lambda_logs",
        ("func", "request_id", "log_text", "error", "duration_ms", "log_source"),
    ),
    ("ministack.core.lambda_runtime", "Worker._spawn", ("self",)),
    (
        "ministack.core.lambda_runtime",
        "Worker.invoke",
        ("self", "event", "request_id", "trace_id", "depth", "durable", "invoked_function_arn"),
    ),
)
#: Callers that must look the patched names up at call time.
CALLERS: tuple[tuple[str, str, str], ...] = (
    ("ministack.services.lambda_svc", "_execute_function", "_execute_function_dispatch"),
    ("ministack.services.lambda_svc", "_execute_function_dispatch", "_emit_lambda_logs"),
    ("ministack.services.lambda_svc", "_execute_function_warm", "_xray_trace_id_for_invocation"),
    ("ministack.core.lambda_runtime", "Worker.invoke", "_spawn"),
)


def _lookup(module: Any, dotted: str) -> Any:
    obj = module
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
    return obj


def _check_shapes() -> dict[str, Any]:
    import inspect

    from harness.errors import AdaptationError

    modules = {name: importlib.import_module(name) for name, _a, _p in TARGETS}
    for mod, attr, params in TARGETS:
        fn = _lookup(modules[mod], attr)
        found = tuple(inspect.signature(fn).parameters) if callable(fn) else None
        if found != params:
            raise AdaptationError(
                f"invocation records: {mod}.{attr} takes {found}, expected {params} as in ministack {PINNED_VERSION}"
            )
    for mod, attr, uses in CALLERS:
        code = getattr(_lookup(modules[mod], attr), "__code__", None)
        if code is None or uses not in code.co_names:
            raise AdaptationError(f"invocation records: {mod}.{attr} no longer calls {uses} by name")
    return modules


def _dispatch(original: Any) -> Any:
    @functools.wraps(original)
    def dispatch(func: dict, config: dict, event: Any, request_id: str, started: float) -> Any:
        runtime = str(config.get("Runtime") or "python3.12")
        rec = Record(
            function=str(config.get("FunctionName", "unknown")),
            arn=str(config.get("FunctionArn", "")),
            runtime=runtime,
            request_id=request_id,
            tracing=(config.get("TracingConfig") or {}).get("Mode") == "Active",
            start=started,
            links=stream_links.links_for(event),
        )
        resolution = runtime_lookup.cached(runtime)
        _current.record = rec
        try:
            if config.get("PackageType", "Zip") == "Zip" and not resolution.supported:
                result = unsupported_result(rec, resolution)
            else:
                result = original(func, config, event, request_id, started)
        finally:
            _current.record = None
            rec.end = _now()
        if isinstance(result, dict):
            result = shape_result(result, rec)
        from harness.emulator import lambda_segments

        lambda_segments.send(rec)
        return result

    return dispatch


def _emit_logs(original: Any) -> Any:
    @functools.wraps(original)
    def emit(func: dict, request_id: str, log_text: str, error: bool, duration_ms: int, **kw: Any) -> Any:
        rec = current()
        if rec is not None:
            log_text, error = aws_log(rec, log_text or ""), error or rec.init_error is not None
        return original(func, request_id, log_text, error, duration_ms, **kw)

    return emit


def _spawn(original: Any) -> Any:
    @functools.wraps(original)
    def spawn(self: Any) -> Any:
        rec, began = current(), _now()
        try:
            return original(self)
        except Exception as exc:
            if rec is not None:
                rec.init_error = init_error_from(exc)
            raise
        finally:
            if rec is not None:
                rec.init = (began, _now())

    return spawn


def _invoke(original: Any) -> Any:
    @functools.wraps(original)
    def invoke(self: Any, *args: Any, **kwargs: Any) -> Any:
        rec, began = current(), _now()
        result = None
        try:
            result = original(self, *args, **kwargs)
            return result
        finally:
            if rec is not None:
                rec.invoke = (began, _now())
                error = result.get("error") if isinstance(result, dict) else None
                if isinstance(error, str) and error.startswith("Task timed out"):
                    rec.timed_out = error

    return invoke


def record_invocations() -> None:
    """Apply the adaptation (see the module docstring); AdaptationError if the emulator changed shape."""
    modules = _check_shapes()
    svc, lr = modules["ministack.services.lambda_svc"], modules["ministack.core.lambda_runtime"]
    if getattr(svc._execute_function_dispatch, "__harness_adapted__", False):
        return
    trace_id = svc._xray_trace_id_for_invocation

    @functools.wraps(trace_id)
    def trace_id_for_invocation(config: dict, inbound_trace_header: str | None = None) -> str | None:
        inbound = bool(inbound_trace_header or INBOUND_TRACE_HEADER.get())
        return trace_header(trace_id(config, inbound_trace_header), inbound=inbound)

    dispatch = _dispatch(svc._execute_function_dispatch)
    dispatch.__harness_adapted__ = True  # type: ignore[attr-defined]
    svc._execute_function_dispatch = dispatch
    svc._xray_trace_id_for_invocation = trace_id_for_invocation
    svc._emit_lambda_logs = _emit_logs(svc._emit_lambda_logs)
    lr.Worker._spawn = _spawn(lr.Worker._spawn)
    lr.Worker.invoke = _invoke(lr.Worker.invoke)
