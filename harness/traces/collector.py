"""A local X-Ray daemon: segment documents over UDP, gathered by trace id.

The daemon protocol: each datagram is a JSON header line
(``{"format": "json", "version": 1}``), a newline, then one segment document
(a full segment, or a subsegment sent on its own with ``type: subsegment``,
``parent_id`` and ``trace_id``). The collector binds a free 127.0.0.1 port
(give the emulator ``AWS_XRAY_DAEMON_ADDRESS=collector.address`` and every
Lambda runtime it starts sends here) and receives on a background thread.

Each document is kept with the UDP source port it came from. Nothing is
looked up per source: the function a segment belongs to is in the segments
themselves (the emulator adaptation sends Lambda's own ``AWS::Lambda`` and
``AWS::Lambda::Function`` segments, the SDK's subsegments nest under them),
and the receiving thread shares the test process with the tests, so it does
no more than parse, store and spool.

Memory is bounded: at most ``max_per_trace`` documents per trace (the rest
are counted as dropped) and ``max_total`` in all (the oldest traces are
evicted and counted). Malformed datagrams are counted and never stop the
thread. With ``spool_dir`` every kept document is also appended to
``<spool_dir>/<trace id>.jsonl``, so other processes (pytest-xdist workers)
can read traces the controller's collector received.

``flush()`` is a barrier: it sends a marker datagram to the collector and
waits until the thread has processed it. Datagrams sent before the marker
(on loopback, into the same socket queue) have then been stored: a test that
invoked a function and got its response calls ``flush`` and sees every
subsegment the function sent during that invocation.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from harness import procs
from harness.errors import TraceError
from harness.traces.ids import is_trace_id

MAX_DATAGRAM = 65535
FLUSH_KEY = "harness_flush"
_TOKEN_RE = re.compile(r"^[0-9a-f]{16,64}$")
_PROTOCOL_HEADER = b'{"format":"json","version":1}'
_SPOOL_OPEN = 64  # spool files kept open (a trace's documents mostly arrive together)


class Received(TypedDict):
    """One stored document and where it came from (JSON-able, one spool line)."""

    doc: dict[str, Any]
    src: int


@dataclass(frozen=True)
class CollectorStats:
    received: int
    malformed: int
    dropped: int
    evicted: int
    traces: int
    documents: int


def flush_datagram(token: str) -> bytes:
    return _PROTOCOL_HEADER + b"\n" + json.dumps({FLUSH_KEY: token}).encode()


def send_flush(address: str, token: str) -> None:
    """Send a flush marker to the collector at ``host:port`` (from any process)."""
    host, _, port = address.rpartition(":")
    _send(flush_datagram(token), host, int(port))


def _send(data: bytes, host: str, port: int) -> None:
    """One datagram from a socket connected first, so it is bound to the address that reaches ``host`` (loopback
    for the collector); an unconnected sender is bound to 0.0.0.0 while it lives."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((host, port))
        s.send(data)


def parse_datagram(data: bytes) -> dict[str, Any] | None:
    """The document in a daemon-protocol datagram, or ``None`` if it is not one."""
    parsed = _parse(data)
    return None if parsed is None else parsed[0]


def _parse(data: bytes) -> tuple[dict[str, Any], bytes] | None:
    """The document in a daemon-protocol datagram and its JSON text, or ``None`` if it is not one."""
    head, sep, body = data.partition(b"\n")
    if not sep:
        return None
    try:
        header = json.loads(head)
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict) or header.get("format") != "json" or not isinstance(doc, dict):
        return None
    return doc, body


def spool_line(doc: dict[str, Any], body: bytes, src: int) -> bytes:
    """One spool line (a :class:`Received` as JSON) for a document parsed from ``body``.

    The document's own text is copied, not serialised again: it is a JSON object
    already checked by the parse, and a raw newline in it can only be whitespace
    (JSON strings escape theirs), so it becomes a space. Text in another encoding
    than UTF-8 (``json.loads`` also reads UTF-16 and UTF-32, and a byte-order mark)
    is serialised again.
    """
    text = body.strip()
    if text[:1] == b"{" and b"\x00" not in text:
        return b'{"doc":%s,"src":%d}\n' % (text.replace(b"\n", b" ").replace(b"\r", b" "), src)
    return json.dumps(Received(doc=doc, src=src), separators=(",", ":")).encode() + b"\n"


class Collector:
    """A UDP X-Ray daemon endpoint on 127.0.0.1, storing documents by trace id."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_per_trace: int = 5_000,
        max_total: int = 50_000,
        spool_dir: Path | None = None,
    ) -> None:
        if host not in ("127.0.0.1", "localhost"):
            raise TraceError(f"the trace collector binds loopback only, not {host!r}")
        self.max_per_trace = max_per_trace
        self.max_total = max_total
        self.spool_dir = spool_dir
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            # Room for bursts while the thread is busy; the kernel caps
            # this at net.core.rmem_max.
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        except OSError:
            pass
        self._sock.bind(("127.0.0.1", port))
        self._sock.settimeout(1.0)  # a backstop; close() wakes the thread with a datagram
        self.port: int = self._sock.getsockname()[1]
        self._cond = threading.Condition()
        self._docs: dict[str, list[Received]] = {}
        # Segments sent in progress and not yet complete (a running Step Functions execution).
        self._open: set[tuple[str, str]] = set()
        self._total = 0
        self._received = self._malformed = self._dropped = self._evicted = 0
        self._last_at = time.monotonic()  # when the last segment arrived (or the collector was made)
        self._flushed: set[str] = set()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._spool_fds: dict[str, int] = {}
        if spool_dir is not None:
            spool_dir.mkdir(parents=True, exist_ok=True)

    # -- lifecycle ---------------------------------------------------------
    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``: the value for ``AWS_XRAY_DAEMON_ADDRESS``."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> Collector:
        if self._thread is None:
            self._thread = procs.start_thread(self._run, "harness-xray-collector")
        return self

    def close(self) -> None:
        """Stop the thread (joined) and close the socket. Idempotent."""
        if self._closing:
            return
        self._closing = True
        if self._thread is not None and self._thread.is_alive():
            try:
                _send(b"", "127.0.0.1", self.port)
            except OSError:
                pass
            self._thread.join(timeout=5.0)
        self._sock.close()
        if self._thread is None or not self._thread.is_alive():
            while self._spool_fds:
                os.close(self._spool_fds.popitem()[1])

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- receiving ---------------------------------------------------------
    def _run(self) -> None:
        sock = self._sock
        while not self._closing:
            try:
                data, addr = sock.recvfrom(MAX_DATAGRAM)
            except TimeoutError:
                continue
            except OSError:
                return
            if self._closing:
                return
            try:
                self._accept(data, int(addr[1]))
            except Exception:  # noqa: BLE001 - one bad datagram must never stop collection
                with self._cond:
                    self._malformed += 1

    def _accept(self, data: bytes, src: int) -> None:
        parsed = _parse(data)
        if parsed is None:
            with self._cond:
                self._malformed += 1
            return
        doc, body = parsed
        token = doc.get(FLUSH_KEY)
        if token is not None:
            self._mark_flushed(str(token))
            return
        trace_id = doc.get("trace_id")
        if not is_trace_id(trace_id) or not isinstance(doc.get("id"), str):
            with self._cond:
                self._malformed += 1
            return
        assert isinstance(trace_id, str)
        rec = Received(doc=doc, src=src)
        with self._cond:
            self._received += 1
            self._last_at = time.monotonic()
            if doc.get("in_progress") is True:
                self._open.add((trace_id, doc["id"]))
            else:
                self._open.discard((trace_id, doc["id"]))
            docs = self._docs.get(trace_id)
            if docs is None:
                docs = self._docs[trace_id] = []
            if len(docs) >= self.max_per_trace:
                self._dropped += 1
                return
            docs.append(rec)
            self._total += 1
            while self._total > self.max_total and len(self._docs) > 1:
                oldest = next(iter(self._docs))
                if oldest == trace_id:
                    break
                gone = self._docs.pop(oldest)
                self._total -= len(gone)
                self._evicted += len(gone)
            self._cond.notify_all()
        if self.spool_dir is not None:
            os.write(self._spool_fd(trace_id), spool_line(doc, body, src))

    def _spool_fd(self, trace_id: str) -> int:
        """The open spool file of ``trace_id`` (appending; the most recent few kept open, on the receiving
        thread only): one write per document, which readers in other processes see at once."""
        fd = self._spool_fds.pop(trace_id, None)
        if fd is None:
            assert self.spool_dir is not None
            fd = os.open(self.spool_dir / f"{trace_id}.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            while len(self._spool_fds) >= _SPOOL_OPEN:
                os.close(self._spool_fds.pop(next(iter(self._spool_fds))))
        self._spool_fds[trace_id] = fd  # the most recently written last
        return fd

    def _mark_flushed(self, token: str) -> None:
        if not _TOKEN_RE.match(token):
            with self._cond:
                self._malformed += 1
            return
        with self._cond:
            if len(self._flushed) > 10_000:  # markers other processes never collect here
                self._flushed.clear()
            self._flushed.add(token)
            self._cond.notify_all()
        if self.spool_dir is not None:
            (self.spool_dir / f".flush-{token}").touch()

    # -- reading -----------------------------------------------------------
    def documents(self, trace_id: str) -> list[dict[str, Any]]:
        """Every document received for ``trace_id`` so far (copies of the list, not of the documents)."""
        with self._cond:
            return [r["doc"] for r in self._docs.get(trace_id, ())]

    def received(self, trace_id: str) -> list[Received]:
        """Like ``documents``, with each document's source (for ``local_nodes``)."""
        with self._cond:
            return list(self._docs.get(trace_id, ()))

    def trace_ids(self) -> list[str]:
        with self._cond:
            return list(self._docs)

    def discard(self, trace_id: str) -> None:
        """Forget a trace (after it was read and reported) to keep memory flat in long sessions."""
        with self._cond:
            gone = self._docs.pop(trace_id, None)
            if gone:
                self._total -= len(gone)

    def wait_for(
        self,
        trace_id: str,
        predicate: Callable[[list[dict[str, Any]]], bool],
        within: float,
    ) -> list[dict[str, Any]]:
        """Wait until ``predicate(documents)`` holds for ``trace_id``; return the documents.

        Raises ``TraceError`` naming what was received when ``within`` seconds pass first.
        """
        deadline = time.monotonic() + within
        with self._cond:
            while True:
                docs = [r["doc"] for r in self._docs.get(trace_id, ())]
                if predicate(docs):
                    return docs
                left = deadline - time.monotonic()
                if left <= 0:
                    names = ", ".join(sorted({str(d.get("name")) for d in docs})) or "nothing"
                    raise TraceError(
                        f"trace {trace_id}: the expected documents did not arrive within {within:g}s; "
                        f"received {len(docs)} ({names}) on {self.address}",
                        hint="check that the function runs with Tracing: Active and the emulator "
                        f"has AWS_XRAY_DAEMON_ADDRESS={self.address}",
                    )
                self._cond.wait(left)

    def flush(self, within: float = 2.0) -> None:
        """Return once every datagram sent to the collector before this call has been stored."""
        token = os.urandom(12).hex()
        send_flush(self.address, token)
        deadline = time.monotonic() + within
        with self._cond:
            while token not in self._flushed:
                left = deadline - time.monotonic()
                if left <= 0 or self._closing:
                    raise TraceError(
                        f"the trace collector on {self.address} did not process a flush within {within:g}s"
                    )
                self._cond.wait(left)
            self._flushed.discard(token)

    def wait_quiet(
        self,
        quiet: float = 1.5,
        within: float = 15.0,
        step: float = 0.05,
        *,
        pending: Callable[[], int | None] | None = None,
        settled: float = 0.05,
        since: float | None = None,
        meanwhile: Iterable[Callable[[], object]] = (),
    ) -> bool:
        """Return once the late consumers' work is in (True), or after ``within`` (False).

        Queue and stream consumers run after the test that wrote their records
        has ended, and what they start (a state machine an event of theirs starts)
        after them; before reading what they did, the run lets them finish.

        Without ``pending``: once nothing has arrived for ``quiet`` seconds and
        no segment is still in progress. With it (the emulator's count of work
        still ahead for Lambda, None when it cannot tell): once it says none,
        nothing has arrived for ``settled`` seconds, no segment is in progress,
        and everything sent before is stored (:meth:`flush`); should it not
        tell, the quiet period as without it. The emulator counts a delivery
        from the request that starts it (``harness.emulator.pending_work``), so
        ``settled`` is only a margin for the emulator's own hand-overs between
        its counts (a poller's batch taken off its queue, not yet in flight). The quiet time counts from the
        last arrival or from ``since`` (a ``time.monotonic()``: when the last
        thing that could start work ended, e.g. the last test), whichever is
        later; without ``since``, from the call. ``meanwhile``: steps to run
        (one at a time, on this thread) where the wait would sleep; one that
        raises is skipped, and what is left when the wait ends is not run.
        """
        deadline = time.monotonic() + within
        begin = time.monotonic() if since is None else since
        steps = list(meanwhile)
        while True:
            with self._cond:
                seen, last = self._received, max(begin, self._last_at)
            left = (quiet if pending is None else settled) - (time.monotonic() - last)
            if left <= 0 and not self._still_open():
                if pending is None:
                    return True
                busy = pending()
                if busy is None:
                    pending = None  # no signal: the quiet period decides
                    continue
                if busy == 0 and self._flushed_all() and self.stats.received == seen:
                    return True
            now = time.monotonic()
            if now >= deadline:
                return False
            if steps:  # work instead of sleeping; the conditions are checked again after it
                with contextlib.suppress(Exception):
                    steps.pop(0)()
                continue
            time.sleep(min(step if left <= 0 else min(step, left), deadline - now))

    def _flushed_all(self) -> bool:
        try:
            self.flush()
        except TraceError:
            return False
        return True

    def _still_open(self) -> bool:
        with self._cond:  # a trace read and discarded (or evicted) no longer counts
            return any(trace_id in self._docs for trace_id, _ in self._open)

    @property
    def stats(self) -> CollectorStats:
        with self._cond:
            return CollectorStats(
                received=self._received,
                malformed=self._malformed,
                dropped=self._dropped,
                evicted=self._evicted,
                traces=len(self._docs),
                documents=self._total,
            )
