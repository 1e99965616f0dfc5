"""Why a function failed, as its trace records it (X-Ray ``cause.exceptions`` on the function segment).

Lambda marks the ``AWS::Lambda::Function`` segment of a failed invocation as a
``fault`` and records the exception (type, message, stack) in its ``cause``;
locally the emulator adaptation records the same. ``failures`` reads them back
from a trace's documents, with what is needed to find the invocation's log
(function name, request id, time window).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.traces.model import Trace


@dataclass(frozen=True)
class FunctionFailure:
    """One failed invocation of a function, from its trace."""

    function: str
    request_id: str | None
    error_type: str
    message: str
    start: float | None
    end: float | None
    stack: tuple[str, ...] = field(default=())

    def headline(self) -> str:
        return f"{self.function}: {self.error_type}: {self.message}"


def _docs(trace: Trace) -> Iterator[Mapping[str, Any]]:
    stack: list[Any] = list(trace.documents)
    while stack:
        doc = stack.pop(0)
        if isinstance(doc, Mapping):
            yield doc
            stack.extend(doc.get("subsegments") or ())


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


#: Said of a failed invocation in a trace that links to the test's (after "in trace <id>, "), in the
#: failure report's section and in the HTML report (a fixed text: not escaped there).
LINKED = "which links to this test's: a consumer of its writes"


def failures(trace: Trace) -> list[FunctionFailure]:
    """Every failed function invocation in ``trace`` that records a cause, in time order."""
    docs = list(_docs(trace))
    request_ids = {
        d.get("id"): (d.get("aws") or {}).get("request_id") for d in docs if d.get("origin") == "AWS::Lambda"
    }
    out = []
    for doc in docs:
        if doc.get("origin") != "AWS::Lambda::Function" or not (doc.get("fault") or doc.get("error")):
            continue
        aws = doc.get("aws") if isinstance(doc.get("aws"), Mapping) else {}
        request_id = aws.get("request_id") or request_ids.get(doc.get("parent_id"))
        cause = doc.get("cause") if isinstance(doc.get("cause"), Mapping) else {}
        exceptions = [e for e in cause.get("exceptions") or () if isinstance(e, Mapping)] or [{}]
        first = exceptions[0]
        frames = tuple(
            f"{f.get('path')}:{f.get('line')} in {f.get('label')}"
            for f in first.get("stack") or ()
            if isinstance(f, Mapping)
        )
        out.append(
            FunctionFailure(
                function=str(doc.get("name") or "?"),
                request_id=str(request_id) if request_id else None,
                error_type=str(first.get("type") or ("fault" if doc.get("fault") else "error")),
                message=str(first.get("message") or ""),
                start=_number(doc.get("start_time")),
                end=_number(doc.get("end_time")),
                stack=frames,
            )
        )
    return sorted(out, key=lambda f: f.start or 0.0)


@dataclass(frozen=True)
class Invocation:
    """One Lambda invocation in a trace (from the ``AWS::Lambda`` segment Lambda records for it)."""

    function: str
    request_id: str
    start: float
    end: float


def invocations(trace: Trace) -> list[Invocation]:
    """Every invocation Lambda recorded in ``trace`` (functions with active tracing), in time order."""
    out = []
    for doc in _docs(trace):
        request_id = (doc.get("aws") or {}).get("request_id") if isinstance(doc.get("aws"), Mapping) else None
        start = _number(doc.get("start_time"))
        if doc.get("origin") != "AWS::Lambda" or not request_id or start is None:
            continue
        out.append(
            Invocation(str(doc.get("name") or "?"), str(request_id), start, _number(doc.get("end_time")) or start)
        )
    return sorted(out, key=lambda i: i.start)
