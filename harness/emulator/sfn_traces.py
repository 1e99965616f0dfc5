"""Version-guarded adaptation: Step Functions executions join the caller's trace.

The gap (MiniStack 1.5.33): ``StartExecution`` ignores the request's
``X-Amzn-Trace-Id``; the execution records no segment, its Lambda tasks run
under a fresh trace id and its service-integration tasks are not traced at all.

What AWS does (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-xray-tracing.html):
with tracing enabled on the state machine, or whenever the caller passes a
trace header, the execution sends an ``AWS::StepFunctions::StateMachine``
segment into the caller's trace (a new one when no header came), with a
subsegment per state; Lambda tasks continue that trace.

The adaptation (``stepfunctions-joins-the-callers-trace``), applied in the
emulator's process by ``adapt.apply_all``:

* ``stepfunctions.handle_request`` keeps the request's header in a ContextVar
  for the request; ``_start_execution`` copies the request's context into the
  execution's thread, and ``StartSyncExecution`` runs on a thread that copies
  it too, so ``_run_execution`` sees it;
* ``_run_execution`` opens the execution's segment (sent once in progress at
  the start, then complete with every state at the end) to the X-Ray daemon
  named by ``AWS_XRAY_DAEMON_ADDRESS``, the address the Lambda runtimes use;
* ``_execute_task`` records one subsegment per Task state and
  ``_invoke_resource`` one ``aws`` call subsegment per attempt (Lambda Invoke,
  DynamoDB PutItem, SQS SendMessage, SNS Publish, any ``aws-sdk:`` call); a
  Lambda task runs with ``Root=<trace>;Parent=<that call>;Sampled=1``, through
  the Lambda trace-header adaptation's ContextVar, so the function's own
  segments hang under the task as on AWS;
* ``_create_state_machine``/``_update_state_machine`` and the CloudFormation
  handlers of ``AWS::StepFunctions::StateMachine`` remember
  ``tracingConfiguration`` (MiniStack drops it), so a machine with tracing on
  starts a trace of its own when no header came;
* an execution an EventBridge rule starts continues the PutEvents caller's
  trace (the header the events-pass-the-trace-header adaptation keeps for
  that request), as EventBridge passes it to every target.

Every patched function, every caller that must look the patched name up at
call time, and CloudFormation's handler table are checked before anything is
patched (``harness.emulator.guard``); a mismatch raises ``AdaptationError``
at emulator start.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from harness.emulator import guard
from harness.emulator.trace_header import INBOUND_TRACE_HEADER

SFN = "ministack.services.stepfunctions"
CFN = "ministack.services.cloudformation.provisioners"
APP = "ministack.app"
STATE_MACHINE = "AWS::StepFunctions::StateMachine"

#: (module, attribute, exact parameter names, is a coroutine function)
TARGETS: tuple[tuple[str, str, tuple[str, ...], bool], ...] = (
    (SFN, "handle_request", ("method", "path", "headers", "body", "query_params"), True),
    (SFN, "_run_execution", ("exec_arn",), False),
    (SFN, "_execute_task", ("state_def", "raw_input", "execution", "ctx"), False),
    (SFN, "_invoke_resource", ("resource", "input_data"), False),
    (SFN, "_create_state_machine", ("data",), False),
    (SFN, "_update_state_machine", ("data",), False),
)

#: Callers that must look the patched names up at call time (nested functions included).
CALLERS: tuple[tuple[str, str, str], ...] = (
    (APP, "_lazy_handler", "handle_request"),
    (SFN, "handle_request", "_start_execution"),
    (SFN, "handle_request", "_create_state_machine"),
    (SFN, "handle_request", "_update_state_machine"),
    (SFN, "_start_execution", "_run_execution"),
    (SFN, "_start_sync_execution", "_run_execution"),
    (SFN, "_run_execution", "_execute_task"),
    (SFN, "_run_sub_machine", "_execute_task"),
    (SFN, "_execute_task", "_invoke_resource"),
)

_ROOT_RE = re.compile(r"^1-[0-9a-fA-F]{8}-[0-9a-fA-F]{24}$")
_PARENT_RE = re.compile(r"^[0-9a-fA-F]{16}$")
_PROTOCOL_HEADER = b'{"format":"json","version":1}\n'
_MAX_DATAGRAM = 64 * 1024 - 100

# The header of the StartExecution request (or of the task that started a nested execution).
_START_HEADER: contextvars.ContextVar[str | None] = contextvars.ContextVar("harness_sfn_start_header", default=None)
_CURRENT: contextvars.ContextVar[ExecutionTrace | None] = contextvars.ContextVar("harness_sfn_execution", default=None)
_STATE: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("harness_sfn_state", default=None)

# Service names as the X-Ray SDKs name their subsegments, by the resource ARN's service part.
_SERVICES = {"lambda": "Lambda", "dynamodb": "DynamoDB", "sqs": "SQS", "sns": "SNS", "events": "EventBridge"}
_RESOURCE_KEYS = (
    ("TableName", "table_name"),
    ("QueueUrl", "queue_url"),
    ("TopicArn", "topic_arn"),
    ("FunctionName", "function_name"),
    ("StateMachineArn", "state_machine_arn"),
    ("Bucket", "bucket_name"),
    ("EventBusName", "event_bus_name"),
)


def parse_header(value: str | None) -> tuple[str, str | None, bool] | None:
    """``(root, parent, sampled)`` of an ``X-Amzn-Trace-Id`` value; ``None`` without a root."""
    if not isinstance(value, str):
        return None
    fields: dict[str, str] = {}
    for part in value.split(";"):
        key, _, val = part.strip().partition("=")
        fields.setdefault(key, val.strip())
    root, parent = fields.get("Root", ""), fields.get("Parent")
    if not _ROOT_RE.match(root):
        return None
    return root, parent if parent and _PARENT_RE.match(parent) else None, fields.get("Sampled") != "0"


def new_id() -> str:
    return secrets.token_hex(8)


def new_root(now: float) -> str:
    return f"1-{int(now):08x}-{secrets.token_hex(12)}"


def task_call(resource: str, input_data: Any) -> tuple[str, str, dict[str, Any]]:
    """``(subsegment name, operation, aws fields)`` of the call a Task state's resource makes."""
    params = input_data if isinstance(input_data, Mapping) else {}
    if resource.startswith("arn:aws:lambda:") or ":function:" in resource:
        name = resource.split(":function:", 1)[-1].split(":")[0]
        return "Lambda", "Invoke", {"function_name": name}
    clean = resource.removeprefix("arn:aws:states:::").split(".", 1)[0]
    parts = clean.split(":")
    if parts and parts[0] == "aws-sdk":
        parts = parts[1:]
    service = parts[0] if parts else "states"
    action = parts[1] if len(parts) > 1 else ""
    operation = action[:1].upper() + action[1:]
    fields: dict[str, Any] = {}
    for param, key in _RESOURCE_KEYS:
        value = params.get(param)
        if isinstance(value, str):
            fields[key] = value
    return _SERVICES.get(service, service), operation, fields


class ExecutionTrace:
    """The segment of one execution: its states and their calls, sent to the X-Ray daemon."""

    def __init__(self, trace_id: str, parent: str | None, name: str, aws: dict[str, Any]) -> None:
        self.trace_id = trace_id
        self.parent = parent
        self.id = new_id()
        self.name = name
        self.aws = aws
        self.start = time.time()
        self.end: float | None = None
        self.states: list[dict[str, Any]] = []
        self.failed: str | None = None
        self._lock = threading.Lock()

    def header(self, parent: str) -> str:
        return f"Root={self.trace_id};Parent={parent};Sampled=1"

    def open_span(self, name: str, into: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
        span = {"id": new_id(), "name": name, "start_time": time.time(), "in_progress": True, **extra}
        with self._lock:
            (self.states if into is None else into).append(span)
        return span

    def close_span(self, span: dict[str, Any], *, error: BaseException | None = None, **extra: Any) -> None:
        with self._lock:
            span.pop("in_progress", None)
            span["end_time"] = time.time()
            span.update(extra)
            if error is not None:
                span["fault"] = True
                message = f"{getattr(error, 'error', type(error).__name__)}: {getattr(error, 'cause', error)}"
                span["cause"] = {"exceptions": [{"id": new_id(), "message": message[:1000]}]}

    def document(self) -> dict[str, Any]:
        with self._lock:
            doc: dict[str, Any] = {
                "id": self.id,
                "name": self.name,
                "trace_id": self.trace_id,
                "start_time": self.start,
                "origin": STATE_MACHINE,
                "aws": dict(self.aws),
                "subsegments": json.loads(json.dumps(self.states)),
            }
        if self.parent:
            doc["parent_id"] = self.parent
        if self.end is None:
            doc["in_progress"] = True
        else:
            doc["end_time"] = self.end
        if self.failed:
            doc["fault"] = True
            doc["cause"] = {"exceptions": [{"id": new_id(), "message": f"execution {self.failed}"}]}
        return doc

    def send(self) -> None:
        """One datagram to the daemon (best effort: tracing never fails an execution)."""
        address = os.environ.get("AWS_XRAY_DAEMON_ADDRESS", "")
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            return
        doc = self.document()
        data = _PROTOCOL_HEADER + json.dumps(doc, separators=(",", ":"), default=str).encode()
        if len(data) > _MAX_DATAGRAM:  # too many states for one datagram: keep the segment, drop the states
            doc["subsegments"] = []
            doc.setdefault("metadata", {})["harness"] = {"states_dropped": len(self.states)}
            data = _PROTOCOL_HEADER + json.dumps(doc, separators=(",", ":"), default=str).encode()
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(data, (host, int(port)))
        except OSError:
            pass


def _inbound(headers: Any) -> str | None:
    if not isinstance(headers, Mapping):
        return None
    value = headers.get("x-amzn-trace-id") or headers.get("X-Amzn-Trace-Id")
    return value.strip() if isinstance(value, str) and parse_header(value) else None


def open_execution(
    exec_arn: str, execution: Mapping[str, Any] | None, state_machine: Mapping[str, Any] | None
) -> ExecutionTrace | None:
    """The trace of a starting execution, or ``None`` when AWS would record none."""
    # A StartExecution request's own header; else the header of the request that led here
    # (an EventBridge PutEvents whose rule targets the machine: AWS passes it to the target).
    parsed = parse_header(_START_HEADER.get() or INBOUND_TRACE_HEADER.get())
    traced = bool(((state_machine or {}).get("tracingConfiguration") or {}).get("enabled"))
    if parsed is not None and not parsed[2]:
        return None  # the caller decided not to sample
    if parsed is None and not traced:
        return None
    root, parent = (parsed[0], parsed[1]) if parsed else (new_root(time.time()), None)
    name = str((state_machine or {}).get("name") or exec_arn.split(":")[-2])
    aws = {
        "state_machine_arn": (execution or {}).get("stateMachineArn"),
        "execution_arn": exec_arn,
        "resource_names": [name],
    }
    return ExecutionTrace(root, parent, name, aws)


# -- the wrappers -------------------------------------------------------------------


def _wrap_handle_request(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def adapted(method: Any, path: Any, headers: Any, body: Any, query_params: Any) -> Any:
        token = _START_HEADER.set(_inbound(headers))
        try:
            return await fn(method, path, headers, body, query_params)
        finally:
            _START_HEADER.reset(token)

    return adapted


def _wrap_run_execution(fn: Callable[..., Any], sfn: Any) -> Callable[..., Any]:
    @functools.wraps(fn)
    def adapted(exec_arn: str) -> Any:
        execution = sfn._executions.get(exec_arn)
        machine = sfn._state_machines.get((execution or {}).get("stateMachineArn", ""))
        trace = open_execution(exec_arn, execution, machine)
        if trace is None:
            return fn(exec_arn)
        token = _CURRENT.set(trace)
        trace.send()  # in progress: a reader waits for the complete copy
        try:
            return fn(exec_arn)
        finally:
            _CURRENT.reset(token)
            trace.end = time.time()
            status = (sfn._executions.get(exec_arn) or {}).get("status")
            trace.failed = status if status in ("FAILED", "TIMED_OUT", "ABORTED") else None
            trace.send()

    return adapted


def _wrap_execute_task(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def adapted(state_def: Any, raw_input: Any, execution: Any, ctx: Any) -> Any:
        trace = _CURRENT.get()
        if trace is None:
            return fn(state_def, raw_input, execution, ctx)
        name = str(((ctx or {}).get("State") or {}).get("Name") or "Task")
        span = trace.open_span(name, subsegments=[])
        token = _STATE.set(span)
        try:
            result = fn(state_def, raw_input, execution, ctx)
        except BaseException as exc:
            trace.close_span(span, error=exc)
            raise
        finally:
            _STATE.reset(token)
        trace.close_span(span)
        return result

    return adapted


def _wrap_invoke_resource(
    fn: Callable[..., Any], lambda_header: contextvars.ContextVar[str | None]
) -> Callable[..., Any]:
    @functools.wraps(fn)
    def adapted(resource: str, input_data: Any) -> Any:
        trace = _CURRENT.get()
        state = _STATE.get()
        if trace is None or state is None or ":activity:" in str(resource):
            return fn(resource, input_data)
        service, operation, fields = task_call(str(resource), input_data)
        call = trace.open_span(service, state["subsegments"], namespace="aws", aws={"operation": operation, **fields})
        header = trace.header(call["id"])
        tokens = (_START_HEADER.set(header), lambda_header.set(header))
        try:
            result = fn(resource, input_data)
        except BaseException as exc:
            trace.close_span(call, error=exc)
            raise
        finally:
            lambda_header.reset(tokens[1])
            _START_HEADER.reset(tokens[0])
        trace.close_span(call, http={"response": {"status": 200}})
        return result

    return adapted


def _remember_tracing(sfn: Any, arn: str | None, config: Any) -> None:
    machine = sfn._state_machines.get(arn) if arn else None
    if machine is not None and isinstance(config, Mapping):
        enabled = config.get("enabled", config.get("Enabled"))
        machine["tracingConfiguration"] = {"enabled": enabled in (True, "true", "True")}


def _wrap_api_write(fn: Callable[..., Any], sfn: Any, *, create: bool) -> Callable[..., Any]:
    @functools.wraps(fn)
    def adapted(data: Any) -> Any:
        result = fn(data)
        if isinstance(data, Mapping) and "tracingConfiguration" in data:
            if create:
                arn = f"arn:aws:states:{sfn.get_region()}:{sfn.get_account_id()}:stateMachine:{data.get('name')}"
            else:
                arn = str(data.get("stateMachineArn") or "")
            _remember_tracing(sfn, arn, data["tracingConfiguration"])
        return result

    return adapted


def _cfn_wrappers(create: Callable[..., Any], update: Callable[..., Any], sfn: Any) -> dict[str, Callable[..., Any]]:
    """CloudFormation's create and update of a state machine, remembering ``TracingConfiguration``."""

    @functools.wraps(create)
    def cfn_create(logical_id: Any, props: Any, stack_name: Any) -> Any:
        result = create(logical_id, props, stack_name)
        arn = result[0] if isinstance(result, tuple) and result else None
        _remember_tracing(sfn, arn, (props or {}).get("TracingConfiguration") or {"Enabled": False})
        return result

    @functools.wraps(update)
    def cfn_update(physical_id: Any, old_props: Any, new_props: Any, stack_name: Any, logical_id: Any = None) -> Any:
        result = update(physical_id, old_props, new_props, stack_name, logical_id)
        arn = result[0] if isinstance(result, tuple) and result else physical_id
        _remember_tracing(sfn, arn, (new_props or {}).get("TracingConfiguration") or {"Enabled": False})
        return result

    return {"create": cfn_create, "update": cfn_update}


# -- checks and application ---------------------------------------------------------


def _names_in(code: Any) -> Iterator[str]:
    """Every global/attribute name a code object and its nested functions use."""
    yield from code.co_names
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            yield from _names_in(const)


NAME = "stepfunctions-joins-the-callers-trace"


def apply() -> None:
    """Make Step Functions executions join the caller's trace (see the module docstring).

    Raises ``AdaptationError`` if a patched function, a caller that must see
    the patch, or a CloudFormation handler is missing or changed shape.
    """
    sfn = guard.module(SFN, NAME)
    targets = {attr: guard.function(sfn, attr, params, NAME, coroutine=coro) for _m, attr, params, coro in TARGETS}
    app = guard.module(APP, NAME)
    for mod, fn_name, uses in CALLERS:
        owner = app if mod == APP else sfn
        code = getattr(inspect.unwrap(getattr(owner, fn_name, None)), "__code__", None)
        if code is None or uses not in set(_names_in(code)):
            raise guard.AdaptationError(
                f"{NAME}: {mod}.{fn_name} no longer calls {uses} by name, so the patch would not reach it "
                f"(written for ministack {guard.PINNED_VERSION})"
            )
    cfn_params = {
        "create": ("_sfn_state_machine_create", ("logical_id", "props", "stack_name")),
        "update": (
            "_sfn_state_machine_update",
            ("physical_id", "old_props", "new_props", "stack_name", "logical_id"),
        ),
    }
    cfn = {op: guard.cfn_handler(STATE_MACHINE, op, attr, params, NAME) for op, (attr, params) in cfn_params.items()}
    if guard.adapted(targets["_run_execution"], NAME):
        return  # applied already in this process
    wrapped = {
        "handle_request": _wrap_handle_request(targets["handle_request"]),
        "_run_execution": _wrap_run_execution(targets["_run_execution"], sfn),
        "_execute_task": _wrap_execute_task(targets["_execute_task"]),
        "_invoke_resource": _wrap_invoke_resource(targets["_invoke_resource"], INBOUND_TRACE_HEADER),
        "_create_state_machine": _wrap_api_write(targets["_create_state_machine"], sfn, create=True),
        "_update_state_machine": _wrap_api_write(targets["_update_state_machine"], sfn, create=False),
    }
    for attr, fn in wrapped.items():
        setattr(sfn, attr, guard.mark(fn, NAME))
    for op, fn in _cfn_wrappers(cfn["create"], cfn["update"], sfn).items():
        guard.replace_cfn_handler(STATE_MACHINE, op, cfn_params[op][0], guard.mark(fn, NAME))
