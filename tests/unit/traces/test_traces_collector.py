from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from traces_support import TRACE, sdk_subsegment

from harness.errors import TraceError
from harness.traces.collector import Collector, parse_datagram

HEADER = b'{"format":"json","version":1}\n'
OTHER = "1-6b043316-fe93a6d12ab61e66e0715598"


def datagram(doc: dict[str, Any]) -> bytes:
    return HEADER + json.dumps(doc).encode()


class Runtime:
    """A fake Lambda runtime: one UDP socket, like the SDK's emitter."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self.to = (host, int(port))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def send(self, data: bytes | dict[str, Any]) -> None:
        self.sock.sendto(data if isinstance(data, bytes) else datagram(data), self.to)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as c:
        yield c


@pytest.fixture
def runtime(collector: Collector) -> Iterator[Runtime]:
    rt = Runtime(collector.address)
    yield rt
    rt.close()


def test_collects_sdk_datagrams_by_trace_id(collector: Collector, runtime: Runtime) -> None:
    assert collector.address == f"127.0.0.1:{collector.port}"
    runtime.send(sdk_subsegment("a3a215ed503b321e", "f36c9e124ce71a85"))
    runtime.send(sdk_subsegment("b3a215ed503b321e", "f36c9e124ce71a85", trace=OTHER))
    collector.flush()  # a barrier: no sleeping, no polling
    assert [d["id"] for d in collector.documents(TRACE)] == ["a3a215ed503b321e"]
    assert [d["id"] for d in collector.documents(OTHER)] == ["b3a215ed503b321e"]
    assert collector.documents("1-00000000-000000000000000000000000") == []
    (rec,) = collector.received(TRACE)
    assert rec == {"doc": sdk_subsegment("a3a215ed503b321e", "f36c9e124ce71a85"), "src": runtime.port}
    assert set(collector.trace_ids()) == {TRACE, OTHER}
    assert collector.stats.received == 2 and collector.stats.malformed == 0


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"no newline at all",
        b"not json\n{}",
        b'{"format":"xml","version":1}\n{}',
        HEADER + b"[1, 2]",
        HEADER + b"{broken",
        HEADER + json.dumps({"id": "x"}).encode(),  # no trace id
        HEADER + json.dumps({"id": "x", "trace_id": "../../etc/passwd"}).encode(),
        HEADER + json.dumps({"trace_id": TRACE}).encode(),  # no id
        HEADER + json.dumps({"harness_flush": "../x"}).encode(),
        bytes(range(256)) * 4,
    ],
)
def test_malformed_datagrams_are_counted_and_never_stop_collection(
    collector: Collector, runtime: Runtime, garbage: bytes
) -> None:
    runtime.send(garbage)
    runtime.send(sdk_subsegment("a3a215ed503b321e", "f36c9e124ce71a85"))
    collector.flush()
    assert collector.stats.malformed == 1
    assert len(collector.documents(TRACE)) == 1


def test_parse_datagram() -> None:
    assert parse_datagram(datagram({"a": 1})) == {"a": 1}
    assert parse_datagram(b"\xff\xfe\n\xff") is None


def test_memory_is_bounded_per_trace_and_in_total() -> None:
    with Collector(max_per_trace=3, max_total=5) as c:
        rt = Runtime(c.address)
        for i in range(5):
            rt.send(sdk_subsegment(f"{i:016x}", "f36c9e124ce71a85"))
        c.flush()
        assert len(c.documents(TRACE)) == 3 and c.stats.dropped == 2
        for i in range(3):
            rt.send(sdk_subsegment(f"{i:016x}", "f36c9e124ce71a85", trace=OTHER))
        c.flush()
        # 6 > 5: the oldest trace goes, the newest stays whole
        assert c.documents(TRACE) == [] and len(c.documents(OTHER)) == 3
        assert c.stats.evicted == 3 and c.stats.documents == 3 and c.stats.traces == 1
        c.discard(OTHER)
        assert c.stats.documents == 0
        rt.close()


def test_wait_for_returns_when_the_predicate_holds(collector: Collector, runtime: Runtime) -> None:
    def later() -> None:
        time.sleep(0.05)
        runtime.send(sdk_subsegment("a3a215ed503b321e", "f36c9e124ce71a85"))

    threading.Thread(target=later).start()
    docs = collector.wait_for(TRACE, lambda docs: any(d["name"] == "dynamodb" for d in docs), within=5)
    assert [d["id"] for d in docs] == ["a3a215ed503b321e"]


def test_wait_for_says_what_it_got_when_time_runs_out(collector: Collector, runtime: Runtime) -> None:
    runtime.send(sdk_subsegment("a3a215ed503b321e", "f36c9e124ce71a85"))
    started = time.monotonic()
    with pytest.raises(TraceError, match=r"received 1 \(dynamodb\)") as info:
        collector.wait_for(TRACE, lambda docs: len(docs) > 1, within=0.2)
    assert time.monotonic() - started < 2
    assert collector.address in str(info.value)


def test_a_new_source_is_not_looked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every traced invocation's Lambda segments come from a fresh socket of the emulator: the receiving
    thread, which shares the test process with the tests, stores them without asking who sent them."""
    import psutil

    asked: list[str] = []
    monkeypatch.setattr(psutil, "Process", lambda *a, **k: asked.append("Process"))
    monkeypatch.setattr(psutil, "net_connections", lambda *a, **k: asked.append("net_connections"))
    with Collector() as c:
        senders = [Runtime(c.address) for _ in range(5)]
        for n, rt in enumerate(senders, 1):
            rt.send(sdk_subsegment(f"{n:016x}", "f36c9e124ce71a85"))
        c.flush()
        assert [(r["src"], sorted(r)) for r in c.received(TRACE)] == [(rt.port, ["doc", "src"]) for rt in senders]
        for rt in senders:
            rt.close()
    assert asked == []


def test_spool_lets_other_processes_read(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    with Collector(spool_dir=spool) as c:
        rt = Runtime(c.address)
        rt.send(sdk_subsegment("0000000000000001", "f36c9e124ce71a85"))
        rt.send(sdk_subsegment("0000000000000002", "f36c9e124ce71a85"))
        c.flush()
        lines = (spool / f"{TRACE}.jsonl").read_text().splitlines()
        assert [json.loads(line)["doc"]["id"] for line in lines] == ["0000000000000001", "0000000000000002"]
        assert json.loads(lines[0])["src"] == rt.port
        rt.close()


def test_the_spool_keeps_each_document_s_own_text_on_one_line(tmp_path: Path) -> None:
    """A document is spooled as it arrived (not serialised again): one line even when the sender
    pretty-printed it, the same document for the reader; text not in UTF-8 is serialised again."""
    from harness.traces.local_source import LocalSource

    spool = tmp_path / "spool"
    pretty = sdk_subsegment("0000000000000001", "f36c9e124ce71a85")
    pretty["annotations"] = {"note": "two\nlines", "n": 1.5}
    utf16 = sdk_subsegment("0000000000000002", "f36c9e124ce71a85")
    with Collector(spool_dir=spool) as c:
        rt = Runtime(c.address)
        rt.send(HEADER + json.dumps(pretty, indent=2).encode().replace(b"\n", b"\r\n"))
        rt.send(HEADER + json.dumps(utf16).encode("utf-16"))
        c.flush()
        lines = (spool / f"{TRACE}.jsonl").read_bytes().split(b"\n")
        assert len(lines) == 3 and lines[2] == b""
        assert [json.loads(line) for line in lines[:2]] == [
            {"doc": pretty, "src": rt.port},
            {"doc": utf16, "src": rt.port},
        ]
        reader = LocalSource(spool_dir=spool, address=c.address)
        assert reader.records(TRACE) == c.received(TRACE)
        rt.close()


def test_the_spool_keeps_a_bounded_number_of_files_open_and_closes_them(tmp_path: Path) -> None:
    from harness.traces import collector as collector_module

    spool = tmp_path / "spool"
    traces = [f"1-6b043316-{n:024x}" for n in range(collector_module._SPOOL_OPEN + 6)]
    c = Collector(spool_dir=spool).start()
    rt = Runtime(c.address)
    for round_ in range(2):  # the second round reopens the files closed in the first
        for n, trace in enumerate(traces):
            rt.send(sdk_subsegment(f"{round_:08x}{n:08x}", "f36c9e124ce71a85", trace=trace))
    c.flush()
    assert len(c._spool_fds) == collector_module._SPOOL_OPEN
    for n, trace in enumerate(traces):
        ids = [json.loads(line)["doc"]["id"] for line in (spool / f"{trace}.jsonl").read_text().splitlines()]
        assert ids == [f"{0:08x}{n:08x}", f"{1:08x}{n:08x}"]
    fds = list(c._spool_fds.values())
    c.close()
    rt.close()
    assert c._spool_fds == {}
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)


def test_close_joins_the_thread_and_frees_the_port() -> None:
    c = Collector()
    c._sock.settimeout(60)  # so only the wake-up datagram can end the wait quickly
    c.start()
    port = c.port
    thread = c._thread
    assert thread is not None and thread.is_alive()
    started = time.monotonic()
    c.close()
    assert time.monotonic() - started < 10  # woken by close(), not by the 60 s timeout
    assert not thread.is_alive()
    c.close()  # idempotent
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))
    with pytest.raises(TraceError):
        c.flush(within=0.1)


def test_binds_loopback_only() -> None:
    with pytest.raises(TraceError, match="loopback"):
        Collector(host="0.0.0.0")  # noqa: S104 - the point of the test


def test_parallel_senders_lose_nothing(collector: Collector) -> None:
    def burst(n: int) -> None:
        rt = Runtime(collector.address)
        for i in range(25):  # within a default 208 KiB receive buffer even if the reader stalls
            rt.send(sdk_subsegment(f"{n:08x}{i:08x}", "f36c9e124ce71a85"))
        rt.close()

    threads = [threading.Thread(target=burst, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    collector.flush()
    assert len(collector.documents(TRACE)) == 100


def test_not_quiet_while_a_segment_is_in_progress(collector: Collector, runtime: Runtime) -> None:
    """A running state machine sent its segment in progress: what it will do is still to come."""
    started = {"trace_id": TRACE, "id": "c000000000000009", "name": "flow", "start_time": 1.0, "in_progress": True}
    runtime.send(started)
    collector.flush()
    assert collector.wait_quiet(quiet=0.01, within=0.3, step=0.01) is False  # hang guard only
    runtime.send({**{k: v for k, v in started.items() if k != "in_progress"}, "end_time": 2.0})
    collector.flush()
    assert collector.wait_quiet(quiet=0.01, within=5.0, step=0.01) is True
    collector.discard(TRACE)
    runtime.send({**started, "id": "c00000000000000a", "trace_id": OTHER})
    collector.flush()
    collector.discard(OTHER)  # read and forgotten: no longer waited for
    assert collector.wait_quiet(quiet=0.01, within=5.0, step=0.01) is True


def test_with_a_delivery_signal_a_late_consumer_is_still_waited_for_and_counted(
    collector: Collector, runtime: Runtime
) -> None:
    """The emulator says work is ahead (a queued message); the consumer's segment arrives; only then it is quiet."""
    late = sdk_subsegment("d000000000000001", "f36c9e124ce71a85")
    asked: list[int] = []

    def pending() -> int:
        asked.append(len(collector.documents(TRACE)))
        if len(asked) == 1:
            runtime.send(late)  # the consumer ran while the emulator still counted it
            return 1
        return 0

    assert collector.wait_quiet(within=30.0, pending=pending) is True  # within: a hang guard only
    assert [d["id"] for d in collector.documents(TRACE)] == ["d000000000000001"]
    assert len(asked) >= 2 and asked[0] == 0


def test_an_emulator_that_cannot_tell_leaves_it_to_the_quiet_period(collector: Collector) -> None:
    asked: list[None] = []

    def pending() -> None:
        asked.append(None)

    assert collector.wait_quiet(quiet=0.05, within=30.0, step=0.01, pending=pending) is True
    assert len(asked) == 1  # asked once; then the quiet period decided


def test_work_that_never_ends_is_waited_for_within_the_bound_only(collector: Collector) -> None:
    assert collector.wait_quiet(within=0.3, step=0.01, settled=0.01, pending=lambda: 1) is False  # hang guard


def test_the_quiet_counts_from_the_last_arrival_when_the_tests_ended_long_before(
    collector: Collector, runtime: Runtime
) -> None:
    """``since`` (the last test's end) long past: a segment that arrives later still restarts the quiet time,
    and a consumer the emulator still counts is waited for and collected."""
    sent = time.monotonic()  # it arrives after this
    runtime.send(sdk_subsegment("e000000000000001", "f36c9e124ce71a85"))
    collector.flush()
    late = sdk_subsegment("e000000000000002", "f36c9e124ce71a85")
    asked: list[float] = []

    def pending() -> int:
        asked.append(time.monotonic() - sent)
        if len(asked) == 1:
            runtime.send(late)  # the consumer ran while the emulator still counted it
            return 1
        return 0

    done = collector.wait_quiet(within=30.0, step=0.01, settled=0.05, pending=pending, since=sent - 10.0)
    assert done is True  # within: a hang guard only
    assert asked[0] >= 0.05  # first asked once quiet since the last arrival, not since `since`
    assert [d["id"] for d in collector.documents(TRACE)] == ["e000000000000001", "e000000000000002"]
    assert len(asked) >= 2


def test_work_given_to_the_wait_runs_instead_of_its_sleeps_and_ends_nothing_early(
    collector: Collector, runtime: Runtime
) -> None:
    """``meanwhile`` steps run where the wait would sleep (one raising is skipped); the late consumer still counts."""
    ran: list[str] = []
    asked: list[int] = []

    def pending() -> int:
        asked.append(len(ran))
        if len(asked) == 1:
            runtime.send(sdk_subsegment("e000000000000003", "f36c9e124ce71a85"))  # a consumer, still counted
            return 1
        return 0

    def broken() -> None:
        ran.append("broken")
        raise RuntimeError("a step that fails")

    steps = [lambda: ran.append("a"), broken, lambda: ran.append("c")]
    assert collector.wait_quiet(within=30.0, step=0.01, settled=0.05, pending=pending, meanwhile=steps) is True
    assert ran == ["a", "broken", "c"]
    assert [d["id"] for d in collector.documents(TRACE)] == ["e000000000000003"]
    assert len(asked) >= 2


def test_the_flush_and_wake_up_datagrams_leave_from_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness's senders never hold a socket bound to 0.0.0.0 (the network check counts every UDP socket)."""
    from harness.traces import collector as collector_mod

    bound: list[str] = []
    real = socket.socket

    class Watched(real):  # type: ignore[misc, valid-type]
        def send(self, data: bytes, *args: Any) -> int:
            bound.append(self.getsockname()[0])
            return super().send(data, *args)

    c = Collector().start()
    try:
        monkeypatch.setattr(collector_mod.socket, "socket", Watched)
        collector_mod.send_flush(f"127.0.0.1:{c.port}", "t")
        c.close()  # its wake-up datagram
    finally:
        monkeypatch.setattr(collector_mod.socket, "socket", real)
        c.close()
    assert bound == ["127.0.0.1", "127.0.0.1"]
