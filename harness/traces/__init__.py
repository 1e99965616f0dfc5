"""X-Ray traces of the scenarios: propagate, collect, model, query.

* ``propagation``: the test process as a traced client (``TraceContext``,
  ``instrument`` for boto3, ``instrument_requests`` for requests).
* ``collector``: the local X-Ray daemon (UDP) the embedded emulator's Lambda
  runtimes send to; ``runtimes`` names the function behind a datagram.
* ``local_nodes``: the function (and API Gateway) nodes the emulator does not send.
* ``model``: ``Trace`` / ``Span``, one model for both sources, with the queries tests use.
* ``source``: the ``TraceSource`` protocol; ``local_source`` and ``aws_source`` implement it.
* ``run``: one run's traces as the plugin wires them (collector start, worker
  info, the per-test ``TestTrace``, report records, end-of-run collection).
"""

from __future__ import annotations

from harness.errors import TraceError, TracesIncomplete
from harness.traces.aws_source import XRayApiSource
from harness.traces.collector import Collector
from harness.traces.local_source import LocalSource
from harness.traces.model import Span, Trace
from harness.traces.propagation import (
    CurrentContext,
    TraceContext,
    instrument,
    instrument_botocore,
    instrument_requests,
)
from harness.traces.run import TestTrace
from harness.traces.source import TraceSource

__all__ = [
    "Collector",
    "CurrentContext",
    "LocalSource",
    "Span",
    "Trace",
    "TestTrace",
    "TraceContext",
    "TraceError",
    "TraceSource",
    "TracesIncomplete",
    "XRayApiSource",
    "instrument",
    "instrument_botocore",
    "instrument_requests",
]
