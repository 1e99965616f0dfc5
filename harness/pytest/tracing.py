"""The pytest processes' trace wiring: one ``RunTracing`` per process, held by its role object.

The controller starts the local collector (before the emulator, whose Lambda
runtimes send to it), every process instruments botocore and requests so each
test's calls carry its trace id, each test's record travels on its report,
and the controller fetches and writes every trace at the end.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.traces.apistages import HttpApiStages
from harness.traces.collector import Collector
from harness.traces.propagation import (
    CurrentContext,
    TraceContext,
    instrument,
    instrument_botocore,
    instrument_requests,
    untraced,
)
from harness.traces.run import (
    CollectReport,
    TestRecord,
    TraceHandle,
    TraceInfo,
    aws_info,
    collect,
    gather,
    local_info,
    record_for,
    source_for,
    start_collector,
)
from harness.traces.source import TraceSource

if TYPE_CHECKING:
    from harness.stack import Stack, StackInfo

REPORT_ATTR = "branchstack_trace"
OFF = TraceInfo(kind="off", address=None, spool_dir=None, within=0.0)


class _StackOnFirstUse:
    """``client(name)`` of a :class:`Stack` made when first asked (a boto3 session is milliseconds of CPU)."""

    def __init__(self, info: StackInfo) -> None:
        self.info = info
        self._stack: Stack | None = None
        self._lock = threading.Lock()  # a test's threads may ask at once; a boto3 session is not thread-safe

    def client(self, service: str) -> Any:
        with self._lock:
            if self._stack is None:
                from harness.stack import Stack  # boto3: not before the emulator's launch

                self._stack = Stack(self.info)
            return self._stack.client(service)


class RunTracing:
    """Traces of one pytest process: the current test's context, the source, the records."""

    def __init__(self, info: TraceInfo, collector: Collector | None = None) -> None:
        self.info = info
        self.collector = collector
        self.current = CurrentContext()
        self.records: list[TestRecord] = []
        self._undo: list[Callable[[], None]] = []
        self._source: TraceSource | None = None
        self._stack_info: StackInfo | None = None
        # The controller's clients (the run's refreshable credentials); else the stack's.
        self.client_for: Callable[[str], Any] | None = None
        self.identity: str | None = None  # who reads the traces, for error messages

    @classmethod
    def for_controller(cls, target: str, report_dir: Path, run_id: str) -> RunTracing:
        """Local: start the daemon now (the emulator must know its address). AWS: X-Ray. Endpoint: off."""
        if target == "local":
            from harness.targets.local import kept_xray_port

            try:
                collector = start_collector(report_dir, run_id, port=kept_xray_port(report_dir))
            except OSError:  # the kept port is taken: a kept emulator's traces are then lost, not the run
                collector = start_collector(report_dir, run_id)
            return cls(local_info(collector), collector)
        if target == "aws":
            return cls(aws_info())
        return cls(OFF)

    def emulator_env(self) -> dict[str, str]:
        if self.collector is None:
            return {}
        return {"AWS_XRAY_DAEMON_ADDRESS": self.collector.address}

    def activate(self, stack_info: StackInfo, made: Iterable[Any] = ()) -> None:
        """Instrument this process's AWS and HTTP clients (once the stack is known): every client created from
        now on, and ``made``, the clients the session made ahead for its tests (``Role.make_clients_ahead``)."""
        self._stack_info = stack_info
        if self.info["kind"] == "off" or self._undo:
            return
        self._undo.append(instrument_botocore(self.current))
        for client in made:
            instrument(client, self.current)  # as instrument_botocore does with each client it sees created
        stages = HttpApiStages(_StackOnFirstUse(stack_info))  # few runs look an HTTP API's stages up
        self._undo.append(instrument_requests(self.current, http_api_stages=stages))

    @property
    def active(self) -> bool:
        return bool(self._undo)

    def source(self) -> TraceSource | None:
        if self._source is None and self.info["kind"] != "off":
            info = self._stack_info
            self._source = source_for(
                self.info,
                collector=self.collector,
                xray_client=self._xray_client if info else None,
            )
            if self._source is not None and hasattr(self._source, "identity"):
                self._source.identity = self.identity
        return self._source

    def _xray_client(self) -> Any:
        if self.client_for is not None:
            return self.client_for("xray")
        assert self._stack_info is not None
        from harness.stack import Stack

        return Stack(self._stack_info).client("xray")

    # -- per test ----------------------------------------------------------
    def begin(self, nodeid: str) -> TraceContext | None:
        if not self.active:
            return None
        ctx = TraceContext(nodeid, test_id=nodeid)
        self.current.set(ctx)
        return ctx

    def end(self, ctx: TraceContext, nodeid: str, outcome: str, function_errors: list[Any] | None = None) -> TestRecord:
        ctx.finish(failed=outcome == "failed")
        self.current.set(None)
        record = record_for(ctx, nodeid, outcome)
        if function_errors:
            record["function_errors"] = function_errors
        # Plain JSON only: the record travels from xdist workers through execnet,
        # and botocore hands out str subclasses (ServiceId) that it cannot send.
        return json.loads(json.dumps(record, default=str))  # type: ignore[no-any-return]

    def function_logs(self, ctx: TraceContext, logs_client: Callable[[], Any]) -> Any:
        """The ``FunctionLogs`` of this test's invocations (the ``logs`` fixture, ``expect_log``)."""
        from harness.function_logs import FunctionLogs

        return FunctionLogs(lambda: self.test_trace(ctx).fetch(), logs_client, within=max(self.info["within"], 1.0))

    def function_errors(self, ctx: TraceContext, logs_client: Callable[[], Any] | None) -> list[Any]:
        """The failed function invocations of a failed test, with their log tails (harness.function_errors)."""
        if self.source() is None:
            return []
        from harness import function_errors

        local = self.info["kind"] == "local"
        wait = 0.0 if local else self.info["within"]
        # Consumers of the test's writes run in traces of their own that link to the test's: the local
        # collector lists them (the X-Ray API source does not look for them).
        linked = getattr(self.source(), "linked", None)
        with untraced():  # the harness's own log reads are not the test's calls (behaviour snapshots)
            return list(
                function_errors.collect(
                    lambda: self.test_trace(ctx).fetch(),
                    logs_client,
                    log_wait=wait,
                    local=local,
                    linked=(lambda: linked(ctx.trace_id)) if linked is not None else None,
                )
            )

    def test_trace(self, ctx: TraceContext) -> TraceHandle:
        return TraceHandle(ctx, self.source(), within=self.info["within"])

    # -- end of run --------------------------------------------------------
    def collect(self, out_dir: Path) -> CollectReport | None:
        if not self.records:
            return None
        return collect(self.records, self.source(), out_dir, within=self.info["within"])

    def gather(self, out_dir: Path) -> CollectReport | None:
        """The traces fetched and checked, not yet written (``harness.traces.run.write_files``)."""
        if not self.records:
            return None
        return gather(self.records, self.source(), out_dir, within=self.info["within"])

    def close(self) -> None:
        while self._undo:
            self._undo.pop()()
        if self.collector is not None:
            with contextlib.suppress(Exception):
                self.collector.close()
            if self.collector.spool_dir is not None:  # the workers' copy, read while they ran; the run has ended
                shutil.rmtree(self.collector.spool_dir, ignore_errors=True)


def record_of(report: Any) -> TestRecord | None:
    return getattr(report, REPORT_ATTR, None)
