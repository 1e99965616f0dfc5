"""Build the trace nodes the emulator does not send, so local trees look like AWS trees.

On AWS, Lambda itself records an ``AWS::Lambda::Function`` segment for each
invocation, and the X-Ray SDK inside the function sends its subsegments
(DynamoDB PutItem...) with that segment's id as ``parent_id`` (the ``Parent``
of ``_X_AMZN_TRACE_ID``). MiniStack sends no segment of its own; what arrives
is only the SDK's subsegments, e.g. (MiniStack 1.5.33, aws-xray-sdk 2.15)::

    {"format":"json","version":1}
    {"id": "a3a215ed503b321e", "name": "dynamodb", "start_time": 1795437334.12,
     "end_time": 1795437334.13, "parent_id": "f36c9e124ce71a85", "in_progress": false,
     "http": {"response": {"status": 200}}, "type": "subsegment", "namespace": "aws",
     "aws": {"operation": "PutItem", "region": "us-east-1", "request_id": "...",
             "table_name": "tab1"}, "trace_id": "1-6b043315-23214c168721134c5ded6f95"}

The name of the function is not in it. With the harness's adaptation (see
``harness/emulator/adapt.py``) the invocation's ``Parent`` is the caller's
own subsegment id (the test's Lambda Invoke call, or its HTTP request to the
API), so ``parent_id`` points at the caller.

``build`` inserts the missing node: one ``AWS::Lambda::Function`` segment per
invocation, i.e. per distinct ``parent_id`` that a runtime process's
subsegments point to outside that process (the SDK's facade segment), named
after the function that process runs (``Received.fn``, else the function the
calling Invoke named), flagged cold when it was the process's first traced
invocation. The SDK subsegments are re-parented under it. When the caller was
an HTTP request to an execute-api URL, an ``AWS::ApiGateway::Stage`` segment
with its Lambda integration call is inserted as well, as API Gateway records
on AWS with tracing on. So locally, as on AWS::

    client -> Lambda Invoke -> function -> DynamoDB PutItem
    client -> API Gateway POST /orders -> stage -> Lambda Invoke -> function -> DynamoDB PutItem

Every successful Lambda Invoke the client made gets its function node, with
or without SDK subsegments under it, as on AWS where Lambda records the
segment itself. (aws-xray-sdk for Python keeps its first facade segment while
the trace root stays the same, so on a warm runtime the subsegments of a
second invocation in one trace name the first invocation as parent, on AWS
as here: counts of calls are right, their attribution to invocations is the
SDK's.)

The built nodes carry ``metadata.harness.synthetic = true``; their times are
those of the calls they contain (the emulator does not report how long the
invocation took), so a local function's duration covers its traced calls only.
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
    documents from elsewhere (the test's client segment), used to find and
    name the callers.
    """
    ids_by_src: dict[int, set[str]] = {}
    for rec in received:
        ids_by_src.setdefault(rec["src"], set()).update(_index([rec["doc"]]))
    known = _index([*others, *(r["doc"] for r in received)])

    # (facade parent id, source) -> the records of one invocation
    groups: dict[tuple[str, int], list[Received]] = {}
    out: list[dict[str, Any]] = [dict(d) for d in others]
    for rec in received:
        doc = rec["doc"]
        parent = doc.get("parent_id")
        if doc.get("type") == "subsegment" and isinstance(parent, str) and parent not in ids_by_src[rec["src"]]:
            groups.setdefault((parent, rec["src"]), []).append(rec)
        else:
            out.append(dict(doc))

    gateways: dict[str, str] = {}  # caller's HTTP subsegment id -> the built integration call's id
    for (parent, src), recs in groups.items():
        trace_id = str(recs[0]["doc"]["trace_id"])
        caller = known.get(parent)
        info = next((r["fn"] for r in recs if r["fn"]), None)
        name = info["name"] if info else _invoked_name(caller) or UNKNOWN_FUNCTION
        fid = derived_id("function", trace_id, parent, str(src))
        function_parent = parent
        api = _gateway_call(caller)
        if caller is not None and api is not None:
            if parent not in gateways:
                stage_doc, integration_id = _gateway_nodes(trace_id, parent, caller, api, name)
                out.append(stage_doc)
                gateways[parent] = integration_id
            function_parent = gateways[parent]
        out.append(
            _function_doc(
                fid,
                name,
                trace_id,
                function_parent,
                _span_of([r["doc"] for r in recs]),
                cold=any(r["cold"] for r in recs),
                arn=info.get("arn") if info else None,
                caller=caller,
            )
        )
        out.extend({**rec["doc"], "parent_id": fid} for rec in recs)

    # Lambda records a function segment for every sampled invocation, whether
    # or not the code made a traced call: build one for each Invoke the client
    # made that no runtime's subsegments point to (a function without SDK
    # calls; or a second invocation in the same trace on a warm runtime, whose
    # SDK keeps the first invocation's parent while the trace root is the same).
    invoked = {parent for parent, _src in groups}
    for trace_id, call in _lambda_invokes(others):
        if call["id"] in invoked:
            continue
        name = _invoked_name(call) or UNKNOWN_FUNCTION
        out.append(
            _function_doc(
                derived_id("function", trace_id, call["id"], "client"),
                name,
                trace_id,
                call["id"],
                _span_of([call]),
                cold=False,
                arn=None,
                caller=call,
            )
        )
    return out


def _function_doc(
    fid: str,
    name: str,
    trace_id: str,
    parent: str,
    times: tuple[float | None, float | None, bool],
    *,
    cold: bool,
    arn: str | None,
    caller: Mapping[str, Any] | None,
) -> dict[str, Any]:
    aws: dict[str, Any] = {"resource_names": [name], "cold_start": cold}
    if arn:
        aws["function_arn"] = arn
    doc: dict[str, Any] = {
        "id": fid,
        "name": name,
        "trace_id": trace_id,
        "parent_id": parent,
        "origin": "AWS::Lambda::Function",
        "aws": aws,
        "metadata": SYNTHETIC,
    }
    failure = ((caller or {}).get("aws") or {}).get("function_error")
    if failure:
        # As on AWS: an uncaught exception is a fault, an error-shaped return an error.
        doc["fault" if failure == "Unhandled" else "error"] = True
        doc["cause"] = {"exceptions": [{"id": derived_id("cause", fid), "message": f"function error: {failure}"}]}
    return _timed(doc, *times)


def _lambda_invokes(docs: Sequence[Mapping[str, Any]]) -> list[tuple[str, Mapping[str, Any]]]:
    """(trace id, subsegment) of every successful Lambda Invoke call in ``docs``."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    for top in docs:
        trace_id = str(top.get("trace_id") or "")
        stack = list(top.get("subsegments") or ())
        if top.get("type") == "subsegment":
            stack.append(top)
        while stack:
            doc = stack.pop()
            if not isinstance(doc, Mapping):
                continue
            stack.extend(doc.get("subsegments") or ())
            aws = doc.get("aws") or {}
            status = ((doc.get("http") or {}).get("response") or {}).get("status")
            if (
                doc.get("namespace") == "aws"
                and str(doc.get("name", "")).lower() == "lambda"
                and aws.get("operation") in ("Invoke", "InvokeAsync")
                and status in (200, 202)
                and isinstance(doc.get("id"), str)
            ):
                out.append((trace_id, doc))
    return out


def _invoked_name(caller: Mapping[str, Any] | None) -> str | None:
    """The function a Lambda Invoke call named (a name, a partial or a full ARN)."""
    if caller is None or caller.get("namespace") != "aws":
        return None
    name = (caller.get("aws") or {}).get("function_name")
    if not isinstance(name, str) or not name:
        return None
    if name.startswith("arn:"):
        parts = name.split(":")
        return parts[6] if len(parts) > 6 else name
    return name.split(":")[0]


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
