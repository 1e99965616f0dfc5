"""The emulator's count of work still ahead for Lambda (harness.emulator.pending_work), on stand-in state."""

from __future__ import annotations

import contextvars
import threading
import time
from types import SimpleNamespace
from typing import Any

from harness.emulator import pending_work

QUEUE = "arn:aws:sqs:us-east-1:000000000000:orders-receipts"
OTHER_QUEUE = "arn:aws:sqs:us-east-1:000000000000:nobody-reads-this"
STREAM = "arn:aws:dynamodb:us-east-1:000000000000:table/orders/stream/2026-12-01T00:00:00.000"


class Scoped:
    """MiniStack's account-and-region scoped dict keeps its items in ``_data``, keyed by (account, region, key)."""

    def __init__(self, items: dict[str, Any]) -> None:
        self._data = {("000000000000", "us-east-1", k): v for k, v in items.items()}


def state(esms: list[dict[str, Any]], *, messages: list[float], position: int, end: int, in_flight: int = 0) -> Any:
    now = time.time()
    svc = SimpleNamespace(
        _iter_all_esms=lambda: [("000000000000", "us-east-1", e) for e in esms],
        _dynamodb_stream_positions={"stream-esm": position},
        _dynamodb_stream_positions_lock=threading.Lock(),
        _esm_inflight={"sqs-esm": in_flight} if in_flight else {},
        _esm_inflight_lock=threading.Lock(),
    )
    queue = {"attributes": {"QueueArn": QUEUE}, "messages": [{"visible_at": now + d} for d in messages]}
    unread = {"attributes": {"QueueArn": OTHER_QUEUE}, "messages": [{"visible_at": now - 1}]}
    sqs = SimpleNamespace(_queues=Scoped({"q": queue, "other": unread}))
    ddb = SimpleNamespace(
        stream_end_position=lambda table, account_id=None, region=None: end if table == "orders" else 0
    )
    return svc, sqs, ddb


ESMS = [
    {"UUID": "sqs-esm", "EventSourceArn": QUEUE, "Enabled": True},
    {"UUID": "stream-esm", "EventSourceArn": STREAM, "Enabled": True},
]


def test_nothing_ahead_when_every_consumer_has_caught_up() -> None:
    svc, sqs, ddb = state(ESMS, messages=[60.0], position=5, end=5)  # one message in flight (its consumer failed)
    assert pending_work.count(svc, sqs, ddb, running=0) == {
        "busy": 0,
        "invocations": 0,
        "esm_in_flight": 0,
        "sqs_visible": 0,
        "stream_records": 0,
        "executions": 0,
        "deliveries": 0,
    }


def test_visible_messages_stream_records_batches_and_running_invocations_are_work_ahead() -> None:
    svc, sqs, ddb = state(ESMS, messages=[-1.0, -0.5, 60.0], position=3, end=5, in_flight=1)
    sfn = SimpleNamespace(_executions=Scoped({"a": {"status": "RUNNING"}, "b": {"status": "SUCCEEDED"}}))
    counted = pending_work.count(svc, sqs, ddb, running=2, sfn=sfn, delivering=1)
    assert counted == {
        "busy": 9,
        "invocations": 2,
        "esm_in_flight": 1,
        "sqs_visible": 2,
        "stream_records": 2,
        "executions": 1,
        "deliveries": 1,
    }


def test_a_disabled_mapping_is_no_work_and_an_uncounted_source_means_cannot_tell() -> None:
    disabled = [{**e, "Enabled": False} for e in ESMS]
    svc, sqs, ddb = state(disabled, messages=[-1.0], position=0, end=5)
    assert pending_work.count(svc, sqs, ddb, running=0)["busy"] == 0
    kinesis = [*ESMS, {"UUID": "k", "EventSourceArn": "arn:aws:kinesis:us-east-1:000000000000:stream/s"}]
    svc, sqs, ddb = state(kinesis, messages=[], position=0, end=0)
    assert pending_work.count(svc, sqs, ddb, running=0) == {"busy": None}


def test_a_run_asking_an_emulator_without_the_route_gets_no_answer() -> None:
    assert pending_work.ask("http://127.0.0.1:9", timeout=2.0) is None  # nothing listens: no signal


def test_a_delivery_thread_is_work_from_its_start_to_its_end_and_other_threads_are_not() -> None:
    """Threads the emulator starts to deliver to Lambda (SNS, S3, EventBridge, async Invoke) count until they end."""
    pending_work.apply()
    import ministack.services.eventbridge as eventbridge
    import ministack.services.lambda_svc as lambda_svc
    import ministack.services.s3 as s3
    import ministack.services.sns as sns

    views = [lambda_svc.threading, sns._threading, s3.threading, eventbridge.threading]
    assert all(v.Thread is pending_work.CountingThread and v.Lock is threading.Lock for v in views)
    release = threading.Event()
    started = threading.Event()

    def _deliver_to_lambda() -> None:
        started.set()
        release.wait(30)

    _deliver_to_lambda.__qualname__ = "_deliver_to_lambda"  # named as SNS's delivery is

    def scheduler() -> None:
        release.wait(30)

    ctx = contextvars.copy_context()
    delivery = sns._threading.Thread(target=ctx.run, args=(_deliver_to_lambda,), daemon=True)
    other = eventbridge.threading.Thread(target=scheduler, daemon=True)
    before = pending_work._delivering
    other.start()
    delivery.start()
    assert pending_work._delivering == before + 1  # from start(), before the thread has run a line
    started.wait(30)
    assert pending_work._delivering == before + 1
    release.set()
    delivery.join(30)
    other.join(30)
    assert pending_work._delivering == before
    pending_work.apply()  # again in the same process: nothing wrapped twice
    assert sns._threading is views[1]
