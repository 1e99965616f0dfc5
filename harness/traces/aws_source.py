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

The test's own (client) segment is known before X-Ray has anything: a
trace whose calls reached only services that send no segments of their own
(DynamoDB, SQS called directly) is complete with it alone, at once; one that
reached Lambda or API Gateway waits for their segments. ``publish`` sends
the client segments with ``PutTraceSegments``, so every test's trace is in
X-Ray too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from harness.aws_errors import AWS_ERRORS, explain
from harness.errors import TraceError, TracesIncomplete
from harness.traces.model import Trace
from harness.traces.source import Accept, ClientDocuments

BATCH_SIZE = 5  # the API's limit on TraceIds per BatchGetTraces call
PUT_BATCH = 50  # documents per PutTraceSegments call
#: Services that send their own segments when a traced call reaches them: a
#: trace holding only the test's client segment is not complete while the
#: test called one of these.
REPORTING = {"Lambda", "API Gateway"}


def expects_downstream(client_docs: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the test's calls reached a service that adds segments of its own to the trace."""
    for doc in client_docs:
        for sub in doc.get("subsegments") or ():
            url = str(((sub.get("http") or {}).get("request") or {}).get("url", ""))
            if sub.get("name") in REPORTING or ".execute-api." in url or "/_aws/execute-api/" in url:
                return True
    return False


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
        self.identity: str | None = None  # who reads, for error messages

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
                try:
                    resp = self.client.batch_get_traces(**kwargs)
                except AWS_ERRORS as exc:
                    raise TraceError(explain(exc, identity=self.identity, call="xray:BatchGetTraces")) from None
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
                own = client_docs.get(tid, ())
                if tid in unprocessed and (not own or expects_downstream(own)):
                    continue
                own_ids = {d.get("id") for d in own}
                docs = [d for d in found.get(tid) or () if d.get("id") not in own_ids]  # ours, published
                if not docs and (not own or expects_downstream(own)):
                    # Nothing from X-Ray but the test's own segment, and its calls
                    # reached a service that adds segments of its own: not yet.
                    missing.append(tid)
                    continue
                if any(d.get("in_progress") is True for d in docs):
                    in_progress.append(tid)
                    continue
                trace = Trace(tid, [*own, *docs])
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

        It puts each test at the root of its trace in the X-Ray console, and
        gives a test whose calls reached only services that send no segments
        (DynamoDB called directly) a trace at all. Returns the ids X-Ray
        reported as unprocessed.
        """
        unprocessed: list[str] = []
        docs = [json.dumps(d, separators=(",", ":")) for d in documents]
        for i in range(0, len(docs), PUT_BATCH):
            try:
                resp = self.client.put_trace_segments(TraceSegmentDocuments=docs[i : i + PUT_BATCH])
            except AWS_ERRORS as exc:
                raise TraceError(explain(exc, identity=self.identity, call="xray:PutTraceSegments")) from None
            unprocessed.extend(str(u.get("Id")) for u in resp.get("UnprocessedTraceSegments") or ())
        return unprocessed
