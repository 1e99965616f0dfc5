from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from traces_support import sdk_subsegment

from harness.errors import TraceError, TracesIncomplete
from harness.traces.aws_source import XRayApiSource
from harness.traces.ids import new_segment_id, new_trace_id
from tests.unit.fakes import FakeClock


def tid(i: int) -> str:
    return f"1-6b043315-{i:024x}"


def segment(trace_id: str, *, in_progress: bool = False, **extra: Any) -> dict[str, Any]:
    doc = {
        "id": new_segment_id(),
        "name": "orders-fn",
        "trace_id": trace_id,
        "start_time": 1.0,
        "origin": "AWS::Lambda",
    }
    doc.update({"in_progress": True} if in_progress else {"end_time": 2.0})
    doc.update(extra)
    return doc


class FakeXRay:
    """BatchGetTraces with X-Ray's documented response shapes, driven by a fake clock.

    ``appear[id]``: when the trace becomes visible; ``complete[id]``: until
    when its segment is in progress; ``unprocessed_once``: ids answered as
    unprocessed the first time they are asked; ``page``: segments per page.
    """

    def __init__(self, clock: FakeClock, ids: list[str], page: int = 100) -> None:
        self.clock = clock
        self.ids = ids
        self.appear: dict[str, float] = {}
        self.complete: dict[str, float] = {}
        self.extra: dict[str, list[dict[str, Any]]] = {}
        self.unprocessed_once: set[str] = set()
        self.page = page
        self.requests: list[dict[str, Any]] = []

    def batch_get_traces(self, TraceIds: list[str], NextToken: str | None = None) -> dict[str, Any]:  # noqa: N803
        assert 1 <= len(TraceIds) <= 5, "BatchGetTraces takes at most 5 ids"
        self.requests.append({"TraceIds": list(TraceIds), "NextToken": NextToken})
        now = self.clock()
        traces: list[dict[str, Any]] = []
        unprocessed: list[str] = []
        for t in TraceIds:
            if t in self.unprocessed_once:
                self.unprocessed_once.discard(t)
                unprocessed.append(t)
                continue
            if t not in self.ids or now < self.appear.get(t, 0):
                continue  # not indexed yet: simply absent
            docs = [segment(t, in_progress=now < self.complete.get(t, 0)), *self.extra.get(t, [])]
            traces.append(
                {
                    "Id": t,
                    "Duration": 1.0,
                    "LimitExceeded": False,
                    "Segments": [{"Id": d["id"], "Document": json.dumps(d)} for d in docs],
                }
            )
        # page by segments: the first page carries the first `page` segments
        start = int(NextToken or 0)
        flat = [(tr, s) for tr in traces for s in tr["Segments"]]
        chunk = flat[start : start + self.page]
        out: dict[str, dict[str, Any]] = {}
        for tr, s in chunk:
            out.setdefault(tr["Id"], {**tr, "Segments": []})["Segments"].append(s)
        resp: dict[str, Any] = {
            "Traces": list(out.values()),
            "UnprocessedTraceIds": unprocessed if not NextToken else [],
        }
        if start + self.page < len(flat):
            resp["NextToken"] = str(start + self.page)
        return resp


def source(fake: FakeXRay, clock: FakeClock) -> XRayApiSource:
    return XRayApiSource(fake, sleep=clock.sleep, clock=clock)


def test_twelve_ids_take_three_calls_of_at_most_five(clock: FakeClock) -> None:
    ids = [tid(i) for i in range(12)]
    fake = FakeXRay(clock, ids)
    traces = source(fake, clock).fetch(ids, within=30)
    assert list(traces) == ids
    assert [len(r["TraceIds"]) for r in fake.requests] == [5, 5, 2]
    assert clock.sleeps == []
    assert all(len(t.functions()) == 0 and len(t.spans) == 1 for t in traces.values())


def test_an_unprocessed_id_is_asked_again(clock: FakeClock) -> None:
    ids = [tid(1), tid(2)]
    fake = FakeXRay(clock, ids)
    fake.unprocessed_once = {tid(2)}
    src = source(fake, clock)
    traces = src.fetch(ids, within=30)
    assert set(traces) == set(ids)
    assert [r["TraceIds"] for r in fake.requests] == [[tid(1), tid(2)], [tid(2)]]
    assert clock.sleeps == [1.0]
    assert src.calls == 2


def test_waits_until_no_segment_is_in_progress(clock: FakeClock) -> None:
    fake = FakeXRay(clock, [tid(1)])
    fake.appear[tid(1)] = 1001.5  # indexing delay: absent first
    fake.complete[tid(1)] = 1004.0  # then present but in progress
    traces = source(fake, clock).fetch([tid(1)], within=30)
    assert not traces[tid(1)].in_progress
    assert clock.sleeps == pytest.approx([1.0, 1.6, 2.56])  # backoff: absent, absent, in progress, then done


def test_deadline_lists_every_id_still_missing(clock: FakeClock) -> None:
    ids = [tid(1), tid(2), tid(3)]
    fake = FakeXRay(clock, [tid(1), tid(3)])
    fake.complete[tid(3)] = 10_000.0  # never completes in time
    with pytest.raises(TracesIncomplete) as info:
        source(fake, clock).fetch(ids, within=20)
    err = info.value
    assert err.missing == [tid(2)] and err.in_progress == [tid(3)]
    text = str(err)
    assert "not complete within 20s" in text
    assert f"missing (1): {tid(2)}" in text and f"still in progress (1): {tid(3)}" in text
    assert "hint:" in text
    assert sum(clock.sleeps) == pytest.approx(20.0)  # the last pause is cut to the deadline
    assert max(clock.sleeps) <= 8.0


def test_next_token_pages_are_followed(clock: FakeClock) -> None:
    fake = FakeXRay(clock, [tid(1)], page=2)
    fake.extra[tid(1)] = [sdk_subsegment(f"{i:016x}", "x", trace=tid(1)) for i in range(4)]
    traces = source(fake, clock).fetch([tid(1)], within=5)
    assert len(traces[tid(1)].spans) == 5
    assert [r["NextToken"] for r in fake.requests] == [None, "2", "4"]


def test_accept_waits_for_late_segments_and_client_documents_are_merged(clock: FakeClock) -> None:
    fake = FakeXRay(clock, [tid(1)])
    client = {
        "id": "c000000000000001",
        "name": "test",
        "trace_id": tid(1),
        "start_time": 0.5,
        "end_time": 3.0,
        "annotations": {"harness_client": True},
    }
    src = source(fake, clock)

    def late(trace: Any) -> bool:
        if clock() >= 1002:
            fake.extra[tid(1)] = [sdk_subsegment("d000000000000001", "x", trace=tid(1))]
        return bool(trace.calls("DynamoDB"))

    traces = src.fetch([tid(1)], within=30, client_documents={tid(1): [client]}, accept=late)
    trace = traces[tid(1)]
    assert trace.roots[0].kind == "client" and trace.calls("DynamoDB")
    with pytest.raises(TracesIncomplete, match="present but not yet as expected"):
        src.fetch([tid(1)], within=2, accept=lambda t: False)


def test_unreadable_documents_are_an_error(clock: FakeClock) -> None:
    class Broken:
        def batch_get_traces(self, **_: Any) -> dict[str, Any]:
            return {"Traces": [{"Id": tid(1), "Segments": [{"Id": "x", "Document": "{not json"}]}]}

    with pytest.raises(TraceError, match="unreadable segment document"):
        XRayApiSource(Broken(), sleep=clock.sleep, clock=clock).fetch([tid(1)], within=1)


def test_publish_sends_client_segments_in_batches() -> None:
    class Put:
        def __init__(self) -> None:
            self.batches: list[int] = []

        def put_trace_segments(self, TraceSegmentDocuments: list[str]) -> dict[str, Any]:  # noqa: N803
            self.batches.append(len(TraceSegmentDocuments))
            return {"UnprocessedTraceSegments": [{"Id": "x", "ErrorCode": "1"}] if len(self.batches) == 1 else []}

    put = Put()
    assert XRayApiSource(put).publish([segment(tid(i)) for i in range(120)]) == ["x"]
    assert put.batches == [50, 50, 20]


@pytest.fixture
def xray() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("xray", region_name="us-east-1")


def test_real_response_shapes_from_moto(xray: Any, clock: FakeClock) -> None:
    now = time.time()
    t1, t2 = new_trace_id(now), new_trace_id(now)
    fn = {
        "id": "f000000000000001",
        "name": "orders-fn",
        "origin": "AWS::Lambda::Function",
        "trace_id": t1,
        "start_time": now,
        "end_time": now + 0.5,
    }
    put = {**sdk_subsegment("d000000000000001", "f000000000000001", trace=t1, start=now + 0.1, end=now + 0.2)}
    src = XRayApiSource(xray, sleep=clock.sleep, clock=clock)
    assert src.publish([fn, put]) == []
    traces = src.fetch([t1], within=5)
    trace = traces[t1]
    assert [s.kind for s in trace.walk()] == ["function", "call"]
    trace.assert_calls("DynamoDB", "PutItem", resource="orders", count=1)
    # moto answers ids it does not know as unprocessed
    with pytest.raises(TracesIncomplete) as info:
        src.fetch([t1, t2], within=3)
    assert info.value.unprocessed == [t2]
