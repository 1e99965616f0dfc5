"""Traces from the harness's own X-Ray daemon (the embedded emulator's target).

In the process that owns the ``Collector`` (the controller) pass
``collector=``; in any other process (a pytest-xdist worker) pass the
collector's ``spool_dir`` and ``address``: the worker then sends its own flush
marker to the collector and reads the spool files the collector writes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import TraceError, TracesIncomplete
from harness.traces import local_nodes
from harness.traces.collector import Collector, Received, send_flush
from harness.traces.ids import is_trace_id
from harness.traces.model import Trace, links_of
from harness.traces.source import Accept, ClientDocuments


def pending_documents(records: Sequence[Received]) -> bool:
    """Whether a received document is still in progress (a later complete copy of the same id ends it).

    A long-running segment (a Step Functions execution) is sent twice, as
    X-Ray SDKs do: in progress when it starts, complete when it ends.
    """
    latest: dict[str, bool] = {}
    for rec in records:
        doc = rec["doc"]
        key = str(doc.get("id"))
        latest[key] = latest.get(key, True) and doc.get("in_progress") is True
    return any(latest.values())


class LocalSource:
    """A ``TraceSource`` over a ``Collector`` (same process) or its spool (another process)."""

    kind = "local"

    def __init__(
        self,
        *,
        collector: Collector | None = None,
        spool_dir: Path | None = None,
        address: str | None = None,
        poll: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if collector is None and (spool_dir is None or address is None):
            raise TraceError("LocalSource needs the collector, or its spool_dir and address")
        self.collector = collector
        self.spool_dir = spool_dir if collector is None else None
        self.address = collector.address if collector is not None else address
        self.poll = poll
        self.clock = clock
        self.sleep = sleep

    def flush(self, within: float = 2.0) -> None:
        """Wait until the collector has stored every datagram sent before this call."""
        if self.collector is not None:
            self.collector.flush(within)
            return
        assert self.spool_dir is not None and self.address is not None
        token = os.urandom(12).hex()
        marker = self.spool_dir / f".flush-{token}"
        send_flush(self.address, token)
        deadline = self.clock() + within
        while not marker.exists():
            if self.clock() > deadline:
                raise TraceError(
                    f"the trace collector on {self.address} did not answer a flush within {within:g}s "
                    f"(spool {self.spool_dir})",
                    hint="the controller's collector is not running; traces cannot be read in this process",
                )
            self.sleep(0.002)
        marker.unlink(missing_ok=True)

    def records(self, trace_id: str) -> list[Received]:
        """What the collector stored for ``trace_id``, with each document's source."""
        if self.collector is not None:
            return self.collector.received(trace_id)
        assert self.spool_dir is not None
        if not is_trace_id(trace_id):
            raise TraceError(f"not an X-Ray trace id: {trace_id!r}")
        try:
            text = (self.spool_dir / f"{trace_id}.jsonl").read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        out: list[Received] = []
        for line in text.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # the line being written right now; read again on the next poll
            if isinstance(rec, dict) and isinstance(rec.get("doc"), dict):
                out.append(rec)  # type: ignore[arg-type]
        return out

    def unattributed(self, known: Collection[str], *, limit: int = 1000) -> dict[str, Trace]:
        """The traces the collector received that are not in ``known`` (no test started them)."""
        stray = [tid for tid in self._trace_ids() if tid not in known][:limit]
        return {tid: Trace(tid, local_nodes.build(self.records(tid))) for tid in stray}

    def linked(self, trace_id: str, *, limit: int = 1000) -> list[Trace]:
        """The other traces received so far whose segments link to ``trace_id``.

        A queue or stream consumer's invocation runs in a trace of its own that names, in its
        function segment's ``links``, the traces that wrote the records it processed (as X-Ray
        links an SQS-triggered invocation to its producer): the work a test's writes caused later.
        """
        self.flush()
        found: list[Trace] = []
        for tid in self._trace_ids():
            if tid == trace_id:
                continue
            recs = self.records(tid)
            if any(trace_id in links_of(rec["doc"]) for rec in recs):
                found.append(Trace(tid, local_nodes.build(recs)))
                if len(found) >= limit:
                    break
        return found

    def _trace_ids(self) -> list[str]:
        """Every trace id the collector (or its spool) has stored documents for."""
        if self.collector is not None:
            ids = self.collector.trace_ids()
        else:
            assert self.spool_dir is not None
            ids = sorted(p.stem for p in self.spool_dir.glob("1-*.jsonl"))
        return [tid for tid in ids if is_trace_id(tid)]

    def trace(self, trace_id: str, client_documents: Sequence[Mapping[str, Any]] = ()) -> tuple[Trace, bool]:
        """The trace as received so far, and whether a received document is still in progress."""
        recs = self.records(trace_id)
        return Trace(trace_id, local_nodes.build(recs, client_documents)), pending_documents(recs)

    def fetch(
        self,
        trace_ids: Sequence[str],
        *,
        within: float = 5.0,
        client_documents: ClientDocuments | None = None,
        accept: Accept | None = None,
    ) -> dict[str, Trace]:
        """The traces, once flushed, with no received document in progress and ``accept`` met.

        A trace that received nothing is returned too (the client segment
        alone): locally there is no indexing delay to wait out, so absence
        is an answer. Use ``accept`` to wait for calls that happen later
        (asynchronous invocations, stream consumers).
        """
        deadline = self.clock() + within
        self.flush(max(0.1, min(within, 2.0)))
        wanted = list(dict.fromkeys(trace_ids))
        docs = client_documents or {}
        done: dict[str, Trace] = {}
        while True:
            in_progress, rejected = [], []
            for tid in wanted:
                if tid in done:
                    continue
                trace, pending = self.trace(tid, list(docs.get(tid, ())))
                if pending:
                    in_progress.append(tid)
                elif accept is not None and not accept(trace):
                    rejected.append(tid)
                else:
                    done[tid] = trace
            if len(done) == len(wanted):
                return {tid: done[tid] for tid in wanted}
            if self.clock() >= deadline:
                raise TracesIncomplete(
                    source=f"the local collector ({self.address})",
                    within=within,
                    in_progress=in_progress,
                    not_accepted=rejected,
                    found=done,
                )
            self.sleep(self.poll)
