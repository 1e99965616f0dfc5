"""Complete a local trace where the emulator's segments differ from AWS's.

On AWS, Lambda records two segments for every invocation of a function with
active tracing: ``AWS::Lambda`` (the service, a child of the caller's
subsegment) and ``AWS::Lambda::Function`` (the code, with ``Initialization``
on a cold start, ``Invocation`` and ``Overhead``); the X-Ray SDK inside the
function, if it has one, nests its subsegments under the function segment.
The harness's emulator adaptation (``harness.emulator.invocations``) records
and sends exactly those segments from the emulator's own invocation records,
so a function without the SDK is in its trace too, and a PassThrough function
gets none, as on AWS. Nothing here invents a function node.

What is still built here: API Gateway's stage segment. With tracing on, a REST
API records an ``AWS::ApiGateway::Stage`` segment with its Lambda integration
call; the emulator records none. When an ``AWS::Lambda`` segment's parent is
the test's HTTP request to an execute-api URL, ``build`` inserts the stage
segment and its ``Lambda Invoke`` integration subsegment between them::

    client -> API Gateway POST /orders -> stage -> Lambda Invoke -> AWS::Lambda -> function -> DynamoDB PutItem

The built nodes carry ``metadata.harness.synthetic = true``; their times are
those of the HTTP request they stand for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.traces.collector import Received
from harness.traces.model import execute_api_parts

SYNTHETIC = {"harness": {"synthetic": True, "source": "harness.traces.local_nodes"}}
UNKNOWN_FUNCTION = "unknown-function"


def derived_id(*parts: str) -> str:
    """A stable 16-hex id for a built node (the same inputs give the same id in every process)."""
    return hashlib.sha256(":".join(parts).encode()).hexdigest()[:16]


def _index(docs: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Every document and nested subsegment by id."""
    out: dict[str, Mapping[str, Any]] = {}
    stack = list(docs)
    while stack:
        doc = stack.pop()
        if isinstance(doc, Mapping) and isinstance(doc.get("id"), str):
            out.setdefault(doc["id"], doc)
            stack.extend(doc.get("subsegments") or ())
    return out


def _span_of(docs: Sequence[Mapping[str, Any]]) -> tuple[float | None, float | None, bool]:
    starts = [d["start_time"] for d in docs if isinstance(d.get("start_time"), int | float)]
    ends = [d["end_time"] for d in docs if isinstance(d.get("end_time"), int | float)]
    in_progress = any(d.get("in_progress") is True for d in docs)
    return (min(starts) if starts else None, max(ends) if ends else None, in_progress)


def _timed(doc: dict[str, Any], start: float | None, end: float | None, in_progress: bool) -> dict[str, Any]:
    if start is not None:
        doc["start_time"] = start
    if in_progress or end is None:
        doc["in_progress"] = True
    else:
        doc["end_time"] = end
    return doc


def build(received: Sequence[Received], others: Sequence[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
    """The documents of a local trace: ``others`` (the client segment), the received ones, the built nodes.

    ``received`` are the collector's records for one trace; ``others`` are
    documents from elsewhere (the test's client segment), used to find the
    callers of the Lambda service segments.
    """
    out: list[dict[str, Any]] = [dict(d) for d in others] + [dict(r["doc"]) for r in received]
    known = _index(out)
    built: list[dict[str, Any]] = []
    gateways: dict[str, str] = {}  # caller's HTTP subsegment id -> the built integration call's id
    for doc in out:
        parent = doc.get("parent_id")
        if doc.get("origin") != "AWS::Lambda" or not isinstance(parent, str):
            continue
        caller = known.get(parent)
        api = _gateway_call(caller)
        if caller is None or api is None:
            continue
        if parent not in gateways:
            stage_doc, integration_id = _gateway_nodes(
                str(doc.get("trace_id") or ""), parent, caller, api, str(doc.get("name") or UNKNOWN_FUNCTION)
            )
            built.append(stage_doc)
            gateways[parent] = integration_id
        doc["parent_id"] = gateways[parent]
    return out + built


def _gateway_call(caller: Mapping[str, Any] | None) -> tuple[str, str, str] | None:
    """The REST API a caller's HTTP request went to (X-Ray records no stage segment for HTTP APIs)."""
    if caller is None or caller.get("namespace") != "remote":
        return None
    if (caller.get("aws") or {}).get("api_type") == "HTTP":
        return None
    url = ((caller.get("http") or {}).get("request") or {}).get("url")
    return execute_api_parts(url) if isinstance(url, str) else None


def _gateway_nodes(
    trace_id: str, parent: str, caller: Mapping[str, Any], api: tuple[str, str, str], function: str
) -> tuple[dict[str, Any], str]:
    """The stage segment API Gateway records on AWS, with its Lambda integration call."""
    api_id, stage, _route = api
    start, end, in_progress = _span_of([caller])
    integration_id = derived_id("apigw-lambda", trace_id, parent)
    integration = _timed(
        {
            "id": integration_id,
            "name": "Lambda",
            "namespace": "aws",
            "aws": {"operation": "Invoke", "function_name": function},
        },
        start,
        end,
        in_progress,
    )
    http = caller.get("http") or {}
    stage_http = {key: dict(http[key]) for key in ("request", "response") if isinstance(http.get(key), Mapping)}
    stage_doc = _timed(
        {
            "id": derived_id("apigw", trace_id, parent),
            "name": f"{api_id}/{stage}",
            "trace_id": trace_id,
            "parent_id": parent,
            "origin": "AWS::ApiGateway::Stage",
            "http": stage_http,
            "aws": {"api_id": api_id, "stage": stage},
            "metadata": SYNTHETIC,
            "subsegments": [integration],
        },
        start,
        end,
        in_progress,
    )
    return stage_doc, integration_id
