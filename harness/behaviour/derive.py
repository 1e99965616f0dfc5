"""A scenario's behaviour, derived from its trace: what the stack did, counted, with no timing in it.

What is counted, and why (every rule keeps what varies with timing out):

* ``calls``: the calls the stack made (a call span under a function or a
  service segment: ``DynamoDB GetItem OrdersTable``), exactly, by service,
  operation and resource. Resources are named by logical id (or output name)
  through the stack's resources, never by physical name; an API route by its
  template (``/orders/{order_id}``), never by the path the test asked for.
* ``invocations``: function invocations per function (logical id).
* ``test``: the test's own calls, exactly, except waits: the harness's polling
  loop marks each attempt's calls (``propagation.poll_attempt``), and only the
  attempt that ended a wait is kept, with everything it caused. A wait that
  polls five times or once is the same behaviour.
* ``errors``: error / fault / throttle kinds per call or function.
* ``consumers``: queue and stream consumers the test's writes reached (their
  invocations link to the test's trace, ``emulator/stream_links``), as the set
  of calls each consumer function made, without counts: the poller batches
  records of several writes (and of tests running at once) into one
  invocation, so per-test counts would depend on timing.

Reported apart, never compared: cold starts (``Initialization``), the SDK's
own retries (``aws.retries`` of a call), and how many poll attempts were
folded away. Durations are not behaviour (see ``latency``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.traces.model import Span, Trace

#: A behaviour as stored: section -> key -> count (``consumers``: function -> sorted calls).
Behaviour = dict[str, Any]
SECTIONS = ("calls", "invocations", "test", "errors", "consumers")
_PARAM = re.compile(r"^\{[^}]*\}$")
#: Parts of a name a test makes at run time: the harness's unique id, hashes and uuids.
_UNIQUE = re.compile(r"t[0-9a-f]{6}-[A-Za-z0-9]+-[0-9a-f]{8}")
_HEX = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|(?<![0-9A-Za-z])(?=[0-9a-f]*[0-9])[0-9a-f]{8,}(?![0-9A-Za-z])"
)


@dataclass
class Apart:
    """What a run did that is not behaviour: counted, shown, never compared."""

    cold_starts: int = 0
    retries: int = 0
    polls_folded: int = 0
    #: Milliseconds per call or function key (``latency``), the folded polls left out.
    durations: dict[str, list[float]] = field(default_factory=dict)

    def add(self, other: Apart) -> None:
        self.cold_starts += other.cold_starts
        self.retries += other.retries
        self.polls_folded += other.polls_folded


@dataclass
class Names:
    """Physical names -> logical ids (or output names), and API route templates."""

    logical: dict[str, str] = field(default_factory=dict)
    routes: list[str] = field(default_factory=list)
    stacks: tuple[str, ...] = ()

    @classmethod
    def from_stack(
        cls,
        resources: Mapping[str, str],
        outputs: Mapping[str, str],
        routes: Iterable[str] = (),
        stacks: Iterable[str] = (),
    ) -> Names:
        logical: dict[str, str] = {}
        for key, value in outputs.items():  # outputs first: a resource's logical id wins over an output
            for variant in _variants(value):
                logical[variant] = key
        for key, physical in resources.items():
            name = key.split(":", 1)[-1]  # a stack set's "stack:LogicalId"
            for variant in _variants(physical):
                logical[variant] = name
        ordered = sorted(set(routes), key=lambda r: (r.count("{"), r))
        return cls(logical, ordered, tuple(sorted(set(stacks), key=len, reverse=True)))

    def resource(self, values: Iterable[str | None]) -> str | None:
        """The first of ``values`` known by a logical name; else the first value, generalized."""
        seen = [v for v in values if v]
        for value in seen:
            for variant in _variants(value):
                if variant in self.logical:
                    return self.logical[variant]
        return self.generalize(seen[0]) if seen else None

    def generalize(self, name: str) -> str:
        """A name the stack does not list (a test made it): its stack name, unique ids and hashes as placeholders."""
        for stack in self.stacks:
            name = name.replace(stack, "{stack}")
            for cut in range(len(stack) - 1, 9, -1):  # a test's name may hold a prefix of it (name[:40])
                if name.startswith(stack[:cut] + "-"):
                    name = "{stack}" + name[cut:]
                    break
        return _HEX.sub("{id}", _UNIQUE.sub("{unique}", name))

    def route(self, path: str) -> str:
        """The route template a request path matches (``/orders/abc`` -> ``/orders/{order_id}``)."""
        parts = path.rstrip("/").split("/") if path != "/" else [""]
        for template in self.routes:
            tparts = template.rstrip("/").split("/") if template != "/" else [""]
            if template.endswith("+}") and len(parts) >= len(tparts) - 1:
                tparts, cut = tparts[:-1], parts[: len(tparts) - 1]
                if all(t == p or _PARAM.match(t) for t, p in zip(tparts, cut, strict=True)):
                    return template
            elif len(tparts) == len(parts) and all(
                t == p or _PARAM.match(t) for t, p in zip(tparts, parts, strict=True)
            ):
                return template
        return path


def _variants(value: str) -> list[str]:
    """A physical id and the shorter names calls use for it: an ARN's or URL's last part."""
    out = [value]
    if value.startswith("arn:"):
        tail = value.split(":", 5)[-1]
        out += [tail, tail.rsplit("/", 1)[-1], tail.rsplit(":", 1)[-1]]
    elif value.startswith(("http://", "https://")):
        out.append(value.rstrip("/").rsplit("/", 1)[-1])
    return out


def call_key(span: Span, names: Names) -> str:
    """``DynamoDB GetItem OrdersTable``, ``API Gateway GET /orders/{order_id}``, ``HTTP GET host``."""
    if span.service == "API Gateway":
        return f"API Gateway {span.operation or ''} {names.route(span.resource or '/')}".replace("  ", " ")
    if span.service == "HTTP":
        host = re.sub(r"^[a-z]+://", "", span.resource or "").split("/", 1)[0]
        return f"HTTP {span.operation or ''} {host}".strip()
    resource = names.resource(span.resources)
    return " ".join(x for x in (span.service, span.operation, resource) if x)


def function_name(span: Span, names: Names) -> str:
    return names.resource(span.resources) or span.name


def _kinds(span: Span) -> list[str]:
    return [k for k in ("error", "fault", "throttle") if getattr(span, k)]


def _folded_polls(client: Span) -> set[str]:
    """Ids of the client's calls made by a wait's earlier attempts (kept: the attempt that ended it)."""
    last: dict[str, int] = {}
    for call in client.children:
        if call.poll is not None:
            last[call.poll[0]] = max(last.get(call.poll[0], 0), call.poll[1])
    return {c.id for c in client.children if c.poll is not None and c.poll[1] < last[c.poll[0]]}


def derive(trace: Trace, names: Names, consumers: Iterable[Trace] = ()) -> tuple[Behaviour, Apart]:
    """The behaviour of one test's trace (and the consumer traces linked to it), and what is kept apart."""
    counts: dict[str, Counter[str]] = {s: Counter() for s in ("calls", "invocations", "test")}
    errors: dict[str, set[str]] = {}
    apart = Apart()
    folded: set[str] = set()
    for client in trace.spans_of("client"):
        folded |= _folded_polls(client)
    apart.polls_folded = len(folded)

    def visit(span: Span, under_stack: bool) -> None:
        if span.id in folded:
            return
        apart.retries += int(span.aws.get("retries") or 0) if isinstance(span.aws.get("retries"), int) else 0
        key = None
        if span.kind == "call":
            key = call_key(span, names)
            counts["calls" if under_stack else "test"][key] += 1
            key = key if under_stack else f"test: {key}"
        elif span.kind == "function":
            apart.cold_starts += int(span.cold_start)
            key = f"Lambda {function_name(span, names)}"
            counts["invocations"][function_name(span, names)] += 1
        if key is not None and span.failed:
            errors.setdefault(key, set()).update(_kinds(span))
        if key is not None and span.duration is not None and not span.cold_start:
            apart.durations.setdefault(key, []).append(round(span.duration * 1000, 3))
        for child in span.children:
            visit(child, under_stack or span.kind in ("function", "service"))

    for root in trace.roots:
        visit(root, root.kind != "client")
    behaviour: Behaviour = {s: dict(sorted(c.items())) for s, c in counts.items() if c}
    if errors:
        behaviour["errors"] = {k: sorted(v) for k, v in sorted(errors.items())}
    reached = consumer_calls(consumers, names, apart)
    if reached:
        behaviour["consumers"] = reached
    return behaviour, apart


def consumer_calls(traces: Iterable[Trace], names: Names, apart: Apart) -> dict[str, list[str]]:
    """Consumer function -> the set of calls it made (``[error]`` etc. appended when one failed)."""
    out: dict[str, set[str]] = {}
    for trace in traces:
        for fn in trace.spans_of("function"):
            apart.cold_starts += int(fn.cold_start)
            made = out.setdefault(function_name(fn, names), set())
            if fn.failed:
                made.add("(the function) [" + ", ".join(_kinds(fn)) + "]")
            for span in fn.walk():
                if span.kind == "call":
                    flags = _kinds(span)
                    made.add(call_key(span, names) + (f" [{', '.join(flags)}]" if flags else ""))
    return {fn: sorted(calls) for fn, calls in sorted(out.items())}


def linked_consumers(test_trace_ids: Iterable[str], others: Mapping[str, Trace]) -> dict[str, list[Trace]]:
    """Test trace id -> the consumer traces that link to it, directly or through another consumer."""
    links = {tid: {link for s in t.spans.values() for link in s.links} for tid, t in others.items()}
    out: dict[str, list[Trace]] = {}
    for test in test_trace_ids:
        reached: set[str] = set()
        frontier = {test}
        while frontier:
            step = {tid for tid, linked in links.items() if linked & frontier and tid not in reached}
            reached |= step
            frontier = step
        out[test] = [others[t] for t in sorted(reached)]
    return out
