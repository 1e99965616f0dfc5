"""Traces from the X-Ray API (the ``aws`` target, or an endpoint serving X-Ray).

``BatchGetTraces`` takes at most 5 trace ids a call, pages with
``NextToken``, and may answer some ids in ``UnprocessedTraceIds`` (asked
again on the next round). X-Ray indexes segments some seconds after the
calls, so an id is first absent, then present with segments still
``in_progress``, then complete. ``fetch`` polls with a growing delay until
every id is present with no segment in progress (and, if given, ``accept``
holds), or the deadline passes: then one ``TracesIncomplete`` lists every id
still missing, unprocessed, in progress or not accepted. ``sleep`` and
``clock`` are injectable, so the tests run in microseconds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from harness.errors import TraceError, TracesIncomplete
from harness.traces.model import Trace
from harness.traces.source import Accept, ClientDocuments

BATCH_SIZE = 5  # the API's limit on TraceIds per BatchGetTraces call
PUT_BATCH = 50  # documents per PutTraceSegments call


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


class XRayApiSource:
    """A ``TraceSource`` over an X-Ray client (``boto3.client("xray")``)."""

    kind = "aws"

    def __init__(
        self,
        client: Any,
        *,
        initial_delay: float = 1.0,
        backoff: float = 1.6,
        max_delay: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.initial_delay = initial_delay
        self.backoff = backoff
        self.max_delay = max_delay
        self.sleep = sleep
        self.clock = clock
        self.calls = 0  # BatchGetTraces requests made (for reports and tests)

    def batch(self, trace_ids: Sequence[str]) -> tuple[dict[str, list[dict[str, Any]]], set[str]]:
        """One round: the segment documents of each present id, and the ids left unprocessed."""
        found: dict[str, list[dict[str, Any]]] = {}
        unprocessed: set[str] = set()
        for chunk in _chunks(list(trace_ids), BATCH_SIZE):
            token: str | None = None
            while True:
                kwargs: dict[str, Any] = {"TraceIds": chunk}
                if token:
                    kwargs["NextToken"] = token
                resp = self.client.batch_get_traces(**kwargs)
                self.calls += 1
                for trace in resp.get("Traces") or ():
                    docs = found.setdefault(str(trace.get("Id")), [])
                    for seg in trace.get("Segments") or ():
                        raw = seg.get("Document")
                        try:
                            doc = json.loads(raw) if isinstance(raw, str) else raw
                        except ValueError as exc:
                            raise TraceError(
                                f"X-Ray returned an unreadable segment document for trace {trace.get('Id')}: {exc}"
                            ) from None
                        if isinstance(doc, dict):
                            docs.append(doc)
                unprocessed.update(resp.get("UnprocessedTraceIds") or ())
                token = resp.get("NextToken")
                if not token:
                    break
        for tid in unprocessed:
            found.pop(tid, None)
        return found, unprocessed

    def fetch(
        self,
        trace_ids: Sequence[str],
        *,
        within: float = 60.0,
        client_documents: ClientDocuments | None = None,
        accept: Accept | None = None,
    ) -> dict[str, Trace]:
        """Every trace, complete; see the module docstring."""
        wanted = list(dict.fromkeys(trace_ids))
        client_docs = client_documents or {}
        deadline = self.clock() + within
        delay = self.initial_delay
        done: dict[str, Trace] = {}
        while True:
            pending = [tid for tid in wanted if tid not in done]
            found, unprocessed = self.batch(pending)
            missing, in_progress, rejected = [], [], []
            for tid in pending:
                if tid in unprocessed:
                    continue
                docs = found.get(tid)
                if not docs:
                    missing.append(tid)
                    continue
                if any(d.get("in_progress") is True for d in docs):
                    in_progress.append(tid)
                    continue
                trace = Trace(tid, [*client_docs.get(tid, ()), *docs])
                if accept is not None and not accept(trace):
                    rejected.append(tid)
                    continue
                done[tid] = trace
            if len(done) == len(wanted):
                return {tid: done[tid] for tid in wanted}
            left = deadline - self.clock()
            if left <= 0:
                raise TracesIncomplete(
                    source="the X-Ray API",
                    within=within,
                    missing=missing,
                    in_progress=in_progress,
                    unprocessed=sorted(unprocessed & set(pending)),
                    not_accepted=rejected,
                    found=done,
                )
            self.sleep(min(delay, left))
            delay = min(delay * self.backoff, self.max_delay)

    def publish(self, documents: Sequence[Mapping[str, Any]]) -> list[str]:
        """Send segment documents (the tests' client segments) with ``PutTraceSegments``.

        Optional: it puts each test at the root of its trace in the X-Ray
        console too. Returns the ids X-Ray reported as unprocessed.
        """
        unprocessed: list[str] = []
        docs = [json.dumps(d, separators=(",", ":")) for d in documents]
        for i in range(0, len(docs), PUT_BATCH):
            resp = self.client.put_trace_segments(TraceSegmentDocuments=docs[i : i + PUT_BATCH])
            unprocessed.extend(str(u.get("Id")) for u in resp.get("UnprocessedTraceSegments") or ())
        return unprocessed
