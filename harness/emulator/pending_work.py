"""What the emulator still has to deliver to Lambda: ``GET /_harness/pending`` (an instrument, no AWS gap).

A run reads what its queue and stream consumers did only once they have done
it: their invocations start after the test that wrote their records has
ended. Without a signal the run waits for a quiet period on its trace
collector. This adaptation answers, from MiniStack's own state, how much work
that leads to a Lambda invocation is still ahead or under way::

    {"busy": 2, "invocations": 1, "esm_in_flight": 1, "sqs_visible": 0, "stream_records": 0, "executions": 0,
     "deliveries": 0}

* ``invocations``: Lambda invocations running now (every executor passes
  through ``lambda_svc._execute_function_dispatch``; the count wraps it);
* ``esm_in_flight``: batches an event source mapping has taken and not yet
  finished (``lambda_svc._esm_inflight``);
* ``sqs_visible``: messages a poller can still take from a queue that an
  enabled mapping reads (a message in flight is counted by the two above; one
  whose consumer failed counts again when it becomes visible);
* ``stream_records``: DynamoDB stream records past an enabled mapping's
  position (``_dynamodb_stream_positions`` against ``stream_end_position``);
* ``executions``: Step Functions executions still running (an EventBridge
  rule starts one within the ``PutEvents`` that matched it, and its tasks
  invoke functions between its states).

* ``deliveries``: deliveries to Lambda on a thread of their own, from the
  moment the request that caused them starts the thread until the thread
  ends: an asynchronous Invoke (``lambda_svc.invoke_async_with_retry``'s
  ``_run``, retries included), SNS (``sns._deliver_to_lambda``), S3 event
  notifications (``s3._fire_s3_event``), EventBridge rule targets and Lambda
  destinations (``lambda_svc._execute_function_with_config_scope``). The
  thread starts before its invocation does (and an S3 notification's thread
  makes the invocation's thread), so without this count the work is unseen
  for a moment after the request has answered. The modules that start them
  get a ``threading`` whose ``Thread`` counts a thread running one of those
  functions (every other thread, e.g. a scheduler's, is a plain one).

Kinesis mappings are not counted: with one enabled, the answer is
``{"busy": null}`` and the run keeps its quiet period. The route is served by
the emulator's readiness handler (``app._handle_ready_request``), looked up by
name for every request.
"""

from __future__ import annotations

import contextvars
import functools
import json
import threading
import types
from typing import Any

from harness.emulator import guard

NAME = "pending-work-endpoint"
PATH = "/_harness/pending"
APP = "ministack.app"
LAMBDA = "ministack.services.lambda_svc"
SQS = "ministack.services.sqs"
DYNAMODB = "ministack.services.dynamodb"
SFN = "ministack.services.stepfunctions"
SNS = "ministack.services.sns"
S3 = "ministack.services.s3"
EVENTBRIDGE = "ministack.services.eventbridge"

#: Functions that deliver to Lambda on a thread of their own, by ``__qualname__``.
DELIVERIES = frozenset(
    {
        "invoke_async_with_retry.<locals>._run",
        "_deliver_to_lambda",
        "_fire_s3_event",
        "_execute_function_with_config_scope",
    }
)
#: (module, its name for ``threading``, a function of it that starts delivery threads by that name)
SPAWNERS = (
    (LAMBDA, "threading", "invoke_async_with_retry"),
    (LAMBDA, "threading", "_route_async_failure"),
    (SNS, "_threading", "_fanout"),
    (S3, "threading", "_fire_s3_event_async"),
    (EVENTBRIDGE, "threading", "_dispatch_to_lambda"),
)

_lock = threading.Lock()
_running = 0
_delivering = 0


def _delivery(target: Any, args: tuple[Any, ...]) -> bool:
    """Whether a thread of ``target(*args)`` delivers to Lambda (``Context.run(fn, ...)`` runs ``fn``)."""
    fn = args[0] if isinstance(getattr(target, "__self__", None), contextvars.Context) and args else target
    return getattr(fn, "__qualname__", None) in DELIVERIES


def _adjust(delta: int) -> None:
    global _delivering
    with _lock:
        _delivering += delta


class CountingThread(threading.Thread):
    """A ``threading.Thread`` that counts itself in ``deliveries`` from ``start()`` to the end of ``run()``
    when it runs one of ``DELIVERIES``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._harness_delivery = _delivery(kwargs.get("target"), tuple(kwargs.get("args") or ()))

    def start(self) -> None:
        if not self._harness_delivery:
            return super().start()
        _adjust(+1)
        try:
            super().start()
        except BaseException:
            _adjust(-1)
            raise

    def run(self) -> None:
        try:
            super().run()
        finally:
            if self._harness_delivery:
                _adjust(-1)


class _ThreadingView(types.ModuleType):
    """``threading`` as the spawning modules see it: its own ``Thread`` counts deliveries, the rest is threading's."""

    Thread = CountingThread

    def __getattr__(self, name: str) -> Any:
        return getattr(threading, name)


def threading_view() -> types.ModuleType:
    return guard.mark(_ThreadingView("threading"), NAME)  # type: ignore[return-value]


def _scoped_values(scoped: Any) -> list[Any]:
    """Every value of a MiniStack account-and-region scoped dict, whatever the account."""
    return list(getattr(scoped, "_data", {}).values())


def count(svc: Any, sqs: Any, ddb: Any, running: int, sfn: Any = None, delivering: int = 0) -> dict[str, int | None]:
    """The work ahead, from the modules' state (see the module docstring)."""
    import time

    sqs_arns: set[str] = set()
    stream_esms: list[tuple[str, str, str, str]] = []
    for acct, region, esm in svc._iter_all_esms():
        if not esm.get("Enabled", True):
            continue
        arn = str(esm.get("EventSourceArn", ""))
        if ":sqs:" in arn:
            sqs_arns.add(arn)
        elif ":dynamodb:" in arn and "/stream/" in arn:
            stream_esms.append((str(esm.get("UUID")), arn.split("/stream/")[0].split("/")[-1], acct, region))
        elif arn:
            return {"busy": None}  # Kinesis, Kafka, MQ: not counted here
    now = time.time()
    visible = sum(
        1
        for q in _scoped_values(sqs._queues)
        if q.get("attributes", {}).get("QueueArn") in sqs_arns
        for m in q.get("messages", ())
        if m.get("visible_at", 0) <= now
    )
    behind = 0
    with svc._dynamodb_stream_positions_lock:
        positions = dict(svc._dynamodb_stream_positions)
    for esm_id, table, acct, region in stream_esms:
        if esm_id in positions:
            end = ddb.stream_end_position(table, account_id=acct, region=region)
            behind += max(0, end - positions[esm_id])
    with svc._esm_inflight_lock:
        in_flight = sum(svc._esm_inflight.values())
    executions = sum(1 for e in _scoped_values(getattr(sfn, "_executions", None)) if e.get("status") == "RUNNING")
    parts = {
        "invocations": running,
        "esm_in_flight": in_flight,
        "sqs_visible": visible,
        "stream_records": behind,
        "executions": executions,
        "deliveries": delivering,
    }
    return {"busy": sum(parts.values()), **parts}


def _counting(dispatch: Any) -> Any:
    @functools.wraps(dispatch)
    def counted(func: dict, config: dict, event: dict, request_id: str, started: float) -> dict:
        global _running
        with _lock:
            _running += 1
        try:
            return dispatch(func, config, event, request_id, started)
        finally:
            with _lock:
                _running -= 1

    return guard.mark(counted, NAME)


def _serving(ready: Any, svc: Any, sqs: Any, ddb: Any, sfn: Any) -> Any:
    @functools.wraps(ready)
    def handle(path: str, request_id: str) -> Any:
        if path != PATH:
            return ready(path, request_id)
        try:
            body = count(svc, sqs, ddb, _running, sfn, _delivering)
        except Exception as exc:  # noqa: BLE001 - the run then keeps its quiet period; the reason is in the answer
            body = {"busy": None, "error": f"{type(exc).__name__}: {exc}"}
        return 200, {"Content-Type": "application/json", "x-amzn-requestid": request_id}, json.dumps(body).encode()

    return guard.mark(handle, NAME)


def apply() -> None:
    """Serve ``GET /_harness/pending``; AdaptationError if what it reads or wraps changed shape."""
    app = guard.module(APP, NAME)
    svc = guard.module(LAMBDA, NAME)
    sqs = guard.module(SQS, NAME)
    ddb = guard.module(DYNAMODB, NAME)
    sfn = guard.module(SFN, NAME)
    ready = guard.function(app, "_handle_ready_request", ("path", "request_id"), NAME)
    dispatch = guard.function(
        svc, "_execute_function_dispatch", ("func", "config", "event", "request_id", "started"), NAME
    )
    guard.function(ddb, "stream_end_position", ("table_name", "account_id", "region"), NAME)
    guard.function(svc, "_iter_all_esms", (), NAME)
    guard.calls_by_name(app, "_handle_pre_body_request", "_handle_ready_request", NAME)
    guard.calls_by_name(svc, "_execute_function", "_execute_function_dispatch", NAME)
    for mod, attr in (
        (svc, "_esm_inflight"),
        (svc, "_esm_inflight_lock"),
        (svc, "_dynamodb_stream_positions"),
        (svc, "_dynamodb_stream_positions_lock"),
        (sqs, "_queues"),
        (sfn, "_executions"),
    ):
        _require(mod, attr)
    spawners = _spawners(svc)
    if guard.adapted(ready, NAME):
        return
    svc._execute_function_dispatch = _counting(dispatch)
    app._handle_ready_request = _serving(ready, svc, sqs, ddb, sfn)
    view = threading_view()
    for mod, attr in spawners:
        setattr(mod, attr, view)


def _spawners(svc: Any) -> list[tuple[Any, str]]:
    """The modules whose ``threading`` counts deliveries, checked to start them as written for the pin."""
    from harness.emulator import PINNED_VERSION
    from harness.errors import AdaptationError

    out = []
    for name, attr, spawner in SPAWNERS:
        mod = guard.module(name, NAME)
        guard.calls_by_name(mod, spawner, attr, NAME)
        found = getattr(mod, attr, None)
        if found is not threading and not guard.adapted(found, NAME):
            raise AdaptationError(f"{NAME}: {name}.{attr} is not threading; written for ministack {PINNED_VERSION}")
        out.append((mod, attr))
    sns, s3, events = (guard.module(m, NAME) for m in (SNS, S3, EVENTBRIDGE))
    for mod, spawner, fn in (
        (sns, "_fanout", "_deliver_to_lambda"),
        (s3, "_fire_s3_event_async", "_fire_s3_event"),
        (events, "_dispatch_to_lambda", "_execute_function_with_config_scope"),
        (svc, "_route_async_failure", "_execute_function_with_config_scope"),
    ):
        guard.calls_by_name(mod, spawner, fn, NAME)
    nested = {c.co_qualname for c in svc.invoke_async_with_retry.__code__.co_consts if hasattr(c, "co_qualname")}
    if "invoke_async_with_retry.<locals>._run" not in nested:
        raise AdaptationError(
            f"{NAME}: {LAMBDA}.invoke_async_with_retry no longer retries in its _run (written for ministack "
            f"{PINNED_VERSION})"
        )
    return out


def _require(mod: Any, attr: str) -> None:
    from harness.emulator import PINNED_VERSION
    from harness.errors import AdaptationError

    if not hasattr(mod, attr):
        raise AdaptationError(f"{NAME}: {mod.__name__}.{attr} is missing; written for ministack {PINNED_VERSION}")


# -- in the run -----------------------------------------------------------------------------


def ask(endpoint_url: str, timeout: float = 2.0) -> int | None:
    """The emulator's count of work still ahead for Lambda; None when it cannot tell (or has no such route)."""
    import urllib.request

    try:
        with urllib.request.urlopen(endpoint_url.rstrip("/") + PATH, timeout=timeout) as resp:  # noqa: S310 - loopback
            body = json.loads(resp.read())
    except (OSError, ValueError):
        return None
    busy = body.get("busy") if isinstance(body, dict) else None
    return busy if isinstance(busy, int) and not isinstance(busy, bool) and busy >= 0 else None
