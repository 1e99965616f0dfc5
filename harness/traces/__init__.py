"""X-Ray traces of the scenarios: propagate, collect, model, query.

* ``propagation``: the test process as a traced client (``TraceContext``,
  ``instrument`` for boto3, ``instrument_requests`` for requests).
* ``collector``: the local X-Ray daemon (UDP) the embedded emulator's Lambda
  runtimes send to; ``runtimes`` names the function behind a datagram.
* ``local_nodes``: the function (and API Gateway) nodes the emulator does not send.
* ``model``: ``Trace`` / ``Span``, one model for both sources, with the queries tests use.
* ``source``: the ``TraceSource`` protocol; ``local_source`` and ``aws_source`` implement it.
* ``run``: one run's traces as the plugin wires them (collector start, worker
  info, the per-test ``TraceHandle``, report records, end-of-run collection).
"""

from __future__ import annotations

import importlib
from typing import Any

# Names load on first use (PEP 562): importing one submodule (``traces.model``)
# must not start loading the rest (the UDP collector, the AWS source).
_HOMES = {
    "Collector": "collector",
    "CurrentContext": "propagation",
    "LocalSource": "local_source",
    "Span": "model",
    "Trace": "model",
    "TraceHandle": "run",
    "TraceContext": "propagation",
    "TraceSource": "source",
    "XRayApiSource": "aws_source",
    "instrument": "propagation",
    "instrument_botocore": "propagation",
    "instrument_requests": "propagation",
}
_ERRORS = ("TraceError", "TracesIncomplete")

__all__ = sorted([*_HOMES, *_ERRORS])


def __getattr__(name: str) -> Any:
    if name in _ERRORS:
        return getattr(importlib.import_module("harness.errors"), name)
    if name in _HOMES:
        return getattr(importlib.import_module(f"harness.traces.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'harness.traces' has no attribute {name!r}")
