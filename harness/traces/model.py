"""One trace model for every source: a tree of spans built from segment documents.

The X-Ray API (``BatchGetTraces``) and the local daemon deliver the same JSON
segment documents: full segments (with nested ``subsegments``), and
subsegments sent on their own (``type: subsegment`` with ``parent_id``).
``Trace`` flattens them into ``Span``s by id (a later complete copy of a
document replaces an ``in_progress`` one), links each span to its parent, and
answers the questions tests ask: which calls were made (by service,
operation, resource), which failed, how long things took, which functions
started cold, and "no call to X".

Every span has a ``kind``:

* ``client``: the test's own segment (``propagation.TraceContext``);
* ``call``: a call as its caller saw it: an SDK subsegment in namespace
  ``aws`` (DynamoDB PutItem...) or ``remote`` (an HTTP request; calls to an
  execute-api URL count as service ``API Gateway``);
* ``function``: an ``AWS::Lambda::Function`` segment (the code that ran);
* ``service``: a segment a service emitted about itself (``AWS::Lambda``,
  ``AWS::ApiGateway::Stage``, ``AWS::DynamoDB::Table``...);
* ``local``: any other subsegment (``Initialization``, ``Invocation``, custom ones).

``calls()`` only returns ``call`` spans, so a count means the same thing on
AWS (where services also emit their own segments) and locally (where they do not).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from harness.errors import ExpectationFailed
from harness.traces.apiurls import execute_api_parts
from harness.traces.propagation import CLIENT_ANNOTATION, TEST_ANNOTATION

# Canonical service names, by every spelling the SDKs and origins use.
SERVICES = {
    "dynamodb": "DynamoDB",
    "lambda": "Lambda",
    "sqs": "SQS",
    "sns": "SNS",
    "s3": "S3",
    "events": "EventBridge",
    "eventbridge": "EventBridge",
    "cloudwatch events": "EventBridge",
    "kinesis": "Kinesis",
    "firehose": "Firehose",
    "sfn": "Step Functions",
    "states": "Step Functions",
    "stepfunctions": "Step Functions",
    "step functions": "Step Functions",
    "sts": "STS",
    "secretsmanager": "Secrets Manager",
    "secrets manager": "Secrets Manager",
    "ssm": "SSM",
    "kms": "KMS",
    "iam": "IAM",
    "apigateway": "API Gateway",
    "api gateway": "API Gateway",
    "execute-api": "API Gateway",
    "cloudwatch": "CloudWatch",
    "logs": "CloudWatch Logs",
    "cloudwatch logs": "CloudWatch Logs",
    "xray": "X-Ray",
    "x-ray": "X-Ray",
    "cognito-idp": "Cognito",
    "appsync": "AppSync",
    "http": "HTTP",
    "client": "client",
}


_COLD_SUBSEGMENTS = frozenset({"Initialization", "Init"})
KINDS = ("client", "call", "function", "service", "local")


def service_name(raw: str) -> str:
    """The canonical name of a service (``dynamodb`` -> ``DynamoDB``); unknown names unchanged."""
    return SERVICES.get(raw.strip().lower(), raw.strip())


def _last(value: str, sep: str) -> str:
    return value.rstrip(sep).rsplit(sep, 1)[-1]


def _resources(aws: Mapping[str, Any]) -> tuple[str, ...]:
    """Every name a span's resource may be asked by (name, URL, ARN)."""
    out: list[str] = []

    def add(value: Any, *short: str) -> None:
        if isinstance(value, str) and value:
            out.append(value)
            for sep in short:
                tail = _last(value, sep)
                if tail and tail != value:
                    out.append(tail)

    add(aws.get("table_name"))
    for name in aws.get("table_names") or ():
        add(name)
    add(aws.get("function_name"), ":")
    add(aws.get("queue_name"))
    add(aws.get("queue_url"), "/")
    add(aws.get("topic_arn"), ":")
    add(aws.get("bucket_name"))
    add(aws.get("stream_name"))
    add(aws.get("state_machine_arn"), ":")
    add(aws.get("secret_id"))
    add(aws.get("event_bus_name"))
    for name in aws.get("resource_names") or ():
        add(name)
    add(aws.get("function_arn"), ":")
    return tuple(dict.fromkeys(out))


@dataclass(eq=False)
class Span:
    """One node of a trace: a segment or a subsegment."""

    id: str
    trace_id: str
    parent_id: str | None
    name: str
    kind: str
    service: str
    operation: str | None
    resources: tuple[str, ...]
    namespace: str | None
    origin: str | None
    start: float | None
    end: float | None
    in_progress: bool
    error: bool
    fault: bool
    throttle: bool
    status: int | None
    annotations: dict[str, Any]
    aws: dict[str, Any]
    synthetic: bool = False
    #: A call made by one attempt of the harness's polling loop: (the poll's id, the attempt's number).
    poll: tuple[str, int] | None = None
    #: Trace ids this span names as its cause (segment ``links``: a stream record's writer).
    links: tuple[str, ...] = ()
    children: list[Span] = field(default_factory=list)
    parent: Span | None = field(default=None, repr=False)

    @property
    def resource(self) -> str | None:
        """The table, function, queue... (first of ``resources``)."""
        return self.resources[0] if self.resources else None

    @property
    def duration(self) -> float | None:
        """Seconds, or ``None`` while in progress."""
        if self.start is None or self.end is None:
            return None
        return max(0.0, self.end - self.start)

    @property
    def failed(self) -> bool:
        return self.error or self.fault or self.throttle

    @property
    def cold_start(self) -> bool:
        """A function span whose invocation started a new execution environment."""
        if self.kind != "function":
            return False
        if self.aws.get("cold_start") is True or self.annotations.get("ColdStart") is True:
            return True
        return any(c.name in _COLD_SUBSEGMENTS for c in self.children)

    def walk(self) -> Iterator[Span]:
        yield self
        for child in self.children:
            yield from child.walk()

    def matches(self, service: str, operation: str | None = None, resource: str | None = None) -> bool:
        if service_name(service).lower() != self.service.lower():
            return False
        if operation is not None and (self.operation or "").lower() != operation.lower():
            return False
        return resource is None or resource in self.resources

    def describe(self) -> str:
        """One line: ``DynamoDB PutItem orders (12.3 ms) [error]``."""
        if self.kind == "client":
            head = f"client {self.resource or self.name}"
        elif self.kind == "function":
            head = f"Lambda function {self.name}"
        elif self.kind == "service":
            head = f"{self.service} ({self.origin or 'segment'}) {self.name}"
        elif self.kind == "local":
            head = self.name
        else:
            head = " ".join(x for x in (self.service, self.operation, self.resource) if x)
            if self.aws.get("api_type") == "HTTP" and self.aws.get("stage"):
                head += f" on stage {self.aws['stage']}"  # an HTTP API: one route, several stages
        flags = [f for f in ("error", "fault", "throttle") if getattr(self, f)]
        if self.status is not None:
            flags.insert(0, f"HTTP {self.status}")
        if self.cold_start:
            flags.append("cold start")
        if self.in_progress:
            flags.append("in progress")
        if self.synthetic:
            flags.append("built locally")
        dur = self.duration
        timing = f" ({dur * 1000:.1f} ms)" if dur is not None else ""
        return head + timing + (f" [{', '.join(flags)}]" if flags else "")


class SpanJSON(TypedDict):
    depth: int
    id: str
    kind: str
    service: str
    operation: str | None
    resource: str | None
    duration_ms: float | None
    error: bool
    fault: bool
    throttle: bool
    cold_start: bool
    in_progress: bool


class TraceJSON(TypedDict):
    """A trace as plain JSON: enough to rebuild it (``documents``) and to read it (``spans``)."""

    trace_id: str
    documents: list[dict[str, Any]]
    duration: float | None
    spans: list[SpanJSON]


def _obj(doc: Mapping[str, Any], key: str) -> dict[str, Any]:
    """``doc[key]`` if it is a JSON object, else an empty one (documents are untrusted input)."""
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def _span(doc: Mapping[str, Any], trace_id: str, parent_id: str | None, nested: bool) -> Span:
    aws = _obj(doc, "aws")
    http = _obj(doc, "http")
    annotations = _obj(doc, "annotations")
    name = str(doc.get("name") or "")
    origin = doc.get("origin") if isinstance(doc.get("origin"), str) else None
    namespace = doc.get("namespace") if isinstance(doc.get("namespace"), str) else None
    is_subsegment = nested or doc.get("type") == "subsegment"
    status = _obj(http, "response").get("status")
    request = _obj(http, "request")
    operation: str | None = None
    resources = _resources(aws)
    if not is_subsegment:
        if annotations.get(CLIENT_ANNOTATION) is True:
            kind, service = "client", "client"
            test = annotations.get(TEST_ANNOTATION)
            resources = (str(test),) if test else (name,)
        elif origin == "AWS::Lambda::Function":
            kind, service, operation = "function", "Lambda", "Invoke"
            resources = tuple(dict.fromkeys((name, *resources)))
        elif origin:
            kind = "service"
            parts = origin.split("::")
            service = service_name(parts[1] if len(parts) > 1 else origin)
            resources = tuple(dict.fromkeys((name, *resources)))
        else:
            kind, service = "service", service_name(name)
    elif namespace == "aws":
        kind, service = "call", service_name(name)
        operation = aws.get("operation") if isinstance(aws.get("operation"), str) else None
    elif namespace == "remote":
        kind = "call"
        url = str(request.get("url") or "")
        operation = str(request.get("method") or "").upper() or None
        api = execute_api_parts(url) if url else None
        if aws.get("api_type") == "HTTP" and isinstance(aws.get("route"), str):
            # An HTTP API: its stage ($default or named) and route, as the call recorded them.
            service = "API Gateway"
            resources = (aws["route"], f"{aws.get('api_id')}/{aws.get('stage')}", url)
        elif api is not None:
            service = "API Gateway"
            resources = (api[2], f"{api[0]}/{api[1]}", url)
        else:
            service = "HTTP"
            resources = (url, name) if url else (name,)
    else:
        kind, service, operation = "local", "local", name
    start = doc.get("start_time")
    end = doc.get("end_time")
    metadata = _obj(doc, "metadata")
    return Span(
        id=str(doc.get("id")),
        trace_id=trace_id,
        parent_id=parent_id,
        name=name,
        kind=kind,
        service=service,
        operation=operation,
        resources=resources,
        namespace=namespace,
        origin=origin,
        start=float(start) if isinstance(start, int | float) else None,
        end=float(end) if isinstance(end, int | float) else None,
        in_progress=doc.get("in_progress") is True,
        error=doc.get("error") is True,
        fault=doc.get("fault") is True,
        throttle=doc.get("throttle") is True,
        status=status if isinstance(status, int) else None,
        annotations=dict(annotations),
        aws=dict(aws),
        synthetic=bool(_obj(metadata, "harness").get("synthetic")),
        poll=_poll(_obj(metadata, "harness").get("poll")),
        links=links_of(doc),
    )


def _poll(value: Any) -> tuple[str, int] | None:
    """``metadata.harness.poll``: ``[poll id, attempt]`` on a call one attempt of a wait made."""
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int):
        return (value[0], value[1])
    return None


def links_of(doc: Mapping[str, Any]) -> tuple[str, ...]:
    """The trace ids of a segment document's ``links`` (``[{"trace_id": ...}, ...]``), in order, once each."""
    value = doc.get("links")
    if not isinstance(value, list):
        return ()
    ids = (x.get("trace_id") for x in value if isinstance(x, dict))
    return tuple(dict.fromkeys(t for t in ids if isinstance(t, str) and t))


def _better(new: Span, old: Span) -> bool:
    """Whether a second copy of a document replaces the first (complete beats in progress)."""
    if old.in_progress != new.in_progress:
        return old.in_progress
    return (new.end or 0.0) >= (old.end or 0.0)


class Trace:
    """A trace: the spans of one trace id, linked into a tree."""

    def __init__(self, trace_id: str, documents: Sequence[Mapping[str, Any]]) -> None:
        self.trace_id = trace_id
        self.documents: list[dict[str, Any]] = [dict(d) for d in documents]
        self.spans: dict[str, Span] = {}
        for doc in self.documents:
            self._add(doc, str(doc.get("trace_id") or trace_id), doc.get("parent_id"), nested=False)
        self.roots: list[Span] = self._link()

    @classmethod
    def from_documents(cls, documents: Sequence[Mapping[str, Any] | str], trace_id: str | None = None) -> Trace:
        """A trace from segment documents (dicts or JSON strings as the X-Ray API returns them)."""
        docs = [json.loads(d) if isinstance(d, str) else d for d in documents]
        tid = trace_id or next((str(d["trace_id"]) for d in docs if d.get("trace_id")), "")
        return cls(tid, docs)

    def _add(self, doc: Mapping[str, Any], trace_id: str, parent_id: Any, *, nested: bool) -> None:
        if not isinstance(doc, Mapping) or not isinstance(doc.get("id"), str):
            return
        span = _span(doc, trace_id, parent_id if isinstance(parent_id, str) else None, nested)
        old = self.spans.get(span.id)
        if old is None or _better(span, old):
            self.spans[span.id] = span
        for sub in doc.get("subsegments") or ():
            self._add(sub, trace_id, span.id, nested=True)

    def _link(self) -> list[Span]:
        for span in self.spans.values():
            span.children = []
            span.parent = None
        for span in self.spans.values():
            parent = self.spans.get(span.parent_id) if span.parent_id and span.parent_id != span.id else None
            if parent is not None:
                span.parent = parent
                parent.children.append(span)
        key = _start_key
        roots = [s for s in self.spans.values() if s.parent is None]
        reached = {id(s) for r in roots for s in r.walk()}
        for span in self.spans.values():  # parent links that form a cycle: cut them
            if id(span) not in reached:
                if span.parent is not None:
                    span.parent.children.remove(span)
                span.parent = None
                roots.append(span)
                reached.update(id(s) for s in span.walk())
        for span in self.spans.values():
            span.children.sort(key=key)
        return sorted(roots, key=key)

    # -- queries -------------------------------------------------------------
    def walk(self) -> Iterator[Span]:
        """Every span, depth first, roots in start order."""
        for root in self.roots:
            yield from root.walk()

    def calls(self, service: str, operation: str | None = None, resource: str | None = None) -> list[Span]:
        """Calls to ``service`` (any spelling: ``DynamoDB``, ``dynamodb``), optionally one operation/resource."""
        return [s for s in self.walk() if s.kind == "call" and s.matches(service, operation, resource)]

    def spans_of(self, kind: str) -> list[Span]:
        if kind not in KINDS:
            raise ValueError(f"unknown span kind {kind!r}; kinds are: {', '.join(KINDS)}")
        return [s for s in self.walk() if s.kind == kind]

    def functions(self, name: str | None = None) -> list[Span]:
        """Lambda function spans (the code that ran), optionally by function name or ARN."""
        return [s for s in self.spans_of("function") if name is None or name in s.resources]

    def errors(self) -> list[Span]:
        """Spans flagged error (4xx), fault (5xx) or throttle."""
        return [s for s in self.walk() if s.failed]

    def failed_spans(self) -> list[Span]:
        """The failed spans of the stack's side: errors, faults and throttles, the test's own calls left out."""
        return [s for s in self.errors() if s.kind != "client"]

    def cold_starts(self) -> list[Span]:
        """Function spans that started a new execution environment."""
        return [s for s in self.spans_of("function") if s.cold_start]

    def missing_hops(self) -> list[tuple[Span, str]]:
        """Spans whose own ``parent_id`` names a span the trace does not have: a hop that never arrived.

        Each is ``(span, the parent id it names)``, in tree order.
        """
        return [
            (s, s.parent_id) for s in self.walk() if s.parent is None and s.parent_id and s.parent_id not in self.spans
        ]

    @property
    def in_progress(self) -> bool:
        return any(s.in_progress for s in self.spans.values())

    @property
    def duration(self) -> float | None:
        """From the earliest start to the latest end, in seconds."""
        starts = [s.start for s in self.spans.values() if s.start is not None]
        ends = [s.end for s in self.spans.values() if s.end is not None]
        if not starts or not ends:
            return None
        return max(0.0, max(ends) - min(starts))

    def slowest(self, service: str | None = None) -> Span | None:
        """The longest call (to ``service`` if given); ``None`` if there is none."""
        calls = [s for s in self.spans_of("call") if service is None or s.matches(service)]
        timed = [s for s in calls if s.duration is not None]
        return max(timed, key=lambda s: s.duration or 0.0, default=None)

    # -- assertions ------------------------------------------------------------
    def assert_no_call(self, service: str, operation: str | None = None, resource: str | None = None) -> None:
        """Raise ``ExpectationFailed`` listing every matching call, if there is any."""
        __tracebackhide__ = True
        found = self.calls(service, operation, resource)
        if found:
            raise ExpectationFailed(
                f"trace {self.trace_id}: expected no call to {_what(service, operation, resource)}, "
                f"found {len(found)}:\n" + "\n".join(f"  {_located(s)}" for s in found),
                hint="the calls are listed with the span that made them; see the trace tree in the report",
            )

    def assert_calls(
        self,
        service: str,
        operation: str | None = None,
        resource: str | None = None,
        *,
        count: int | None = None,
        at_least: int | None = None,
    ) -> list[Span]:
        """Check how many matching calls were made (exactly ``count``, or ``at_least``); return them."""
        __tracebackhide__ = True
        found = self.calls(service, operation, resource)
        if count is None and at_least is None:
            at_least = 1
        ok = (count is None or len(found) == count) and (at_least is None or len(found) >= at_least)
        if not ok:
            expected = f"exactly {count}" if count is not None else f"at least {at_least}"
            seen = self.calls(service)
            listing = "\n".join(f"  {_located(s)}" for s in seen) or "  (none)"
            raise ExpectationFailed(
                f"trace {self.trace_id}: expected {expected} call(s) to {_what(service, operation, resource)}, "
                f"found {len(found)}; every call to {service_name(service)} in the trace:\n{listing}",
                hint="if the calls happen asynchronously, fetch the trace with an `accept` condition so it waits for them",
            )
        return found

    # -- output ----------------------------------------------------------------
    def render(self) -> str:
        """The tree as indented text, one span a line."""
        lines = [f"trace {self.trace_id}" + (f" ({self.duration * 1000:.1f} ms)" if self.duration is not None else "")]

        def emit(span: Span, depth: int) -> None:
            lines.append("  " * (depth + 1) + span.describe())
            for child in span.children:
                emit(child, depth + 1)

        for root in self.roots:
            emit(root, 0)
        return "\n".join(lines)

    def to_json(self) -> TraceJSON:
        """Plain JSON: the documents (to rebuild it anywhere) and a flat span listing (to read)."""
        spans: list[SpanJSON] = []

        def emit(span: Span, depth: int) -> None:
            dur = span.duration
            spans.append(
                SpanJSON(
                    depth=depth,
                    id=span.id,
                    kind=span.kind,
                    service=span.service,
                    operation=span.operation,
                    resource=span.resource,
                    duration_ms=round(dur * 1000, 3) if dur is not None else None,
                    error=span.error,
                    fault=span.fault,
                    throttle=span.throttle,
                    cold_start=span.cold_start,
                    in_progress=span.in_progress,
                )
            )
            for child in span.children:
                emit(child, depth + 1)

        for root in self.roots:
            emit(root, 0)
        return TraceJSON(trace_id=self.trace_id, documents=self.documents, duration=self.duration, spans=spans)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Trace:
        return cls(str(data["trace_id"]), list(data.get("documents") or ()))

    def __repr__(self) -> str:
        return f"Trace({self.trace_id!r}, {len(self.spans)} spans)"


def _start_key(span: Span) -> tuple[float, str]:
    return (span.start if span.start is not None else float("inf"), span.id)


def _what(service: str, operation: str | None, resource: str | None) -> str:
    text = service_name(service) + (f" {operation}" if operation else "")
    return text + (f" on {resource}" if resource else "")


def _located(span: Span) -> str:
    where = span.parent.describe() if span.parent is not None else "no parent"
    return f"{span.describe()}  <- {where}"
