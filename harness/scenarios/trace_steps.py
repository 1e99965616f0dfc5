"""``expect_trace``: a step that checks the test's X-Ray trace so far.

It has no action of its own: it reads the trace of everything the scenario
caused until now (``StepRuntime.trace``, the plugin's ``TraceHandle``), waiting
up to ``within`` seconds for the expected calls and failed spans to arrive,
then checks every expectation and reports all that are unmet at once, with
the trace rendered as a tree::

    - expect_trace:
        within: 10
        calls:
          - {service: Lambda, operation: Invoke, count: 1}
          - {service: DynamoDB, operation: PutItem, resource: OrdersTableName, count: ">=1"}
        no_errors: true                       # or: errors: [{service: Lambda}]
        max_duration: 5                       # seconds, the whole trace so far
        forbidden: [{service: DynamoDB, operation: Scan}]

``resource`` is resolved like every other step's names (logical id, output,
else a physical name as is); an ARN also matches by its last part.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.errors import TraceError, TracesIncomplete, closest
from harness.scenarios.actions import Observation, Pending, StepContext, StepError, action, number_arg, resolve_ref
from harness.scenarios.matchers import Mismatch
from harness.scenarios.schema import SpecError, check_mapping, is_template
from harness.scenarios.schema import field as f
from harness.scenarios.yamlio import line_of
from harness.stack import table_name_of
from harness.traces import model as trace_model
from harness.traces.model import Span, Trace, service_name

KINDS = ("error", "fault", "throttle")
CHECKS = ("calls", "no_errors", "errors", "max_duration", "forbidden")
# Every canonical service name the trace model knows (``dynamodb`` -> ``DynamoDB``...).
KNOWN_SERVICES = tuple(sorted(set(trace_model.SERVICES.values())))  # one package family

_SERVICE = f("str", required=True, example="service: DynamoDB")
CALL_FIELDS = {"service": _SERVICE, "operation": f("str"), "resource": f("str"), "count": f("int", "str", minimum=0)}
ERROR_FIELDS = {"service": _SERVICE, "operation": f("str"), "resource": f("str"), "kind": f("str", choices=KINDS)}
FORBIDDEN_FIELDS = {"service": _SERVICE, "operation": f("str"), "resource": f("str")}
_LIST_FIELDS = {"calls": CALL_FIELDS, "errors": ERROR_FIELDS, "forbidden": FORBIDDEN_FIELDS}
_LIST_EXAMPLES = {
    "calls": "calls: [{service: DynamoDB, operation: PutItem, count: 1}]",
    "errors": "errors: [{service: Lambda}]",
    "forbidden": "forbidden: [{service: DynamoDB, operation: Scan}]",
}
_COUNT = re.compile(r"^\s*(>=|<=|==|=|>|<)?\s*(\d+)\s*$")
_COUNT_WORDS = {"==": "exactly", ">=": "at least", ">": "more than", "<=": "at most", "<": "fewer than"}
_COUNT_HINT = 'count is a number (exactly) or a comparison as a string: ">=1", ">2", "<=3", "<4", "==2"'


def parse_count(value: Any) -> tuple[str, int] | None:
    """``2`` -> ``("==", 2)``; ``">=1"`` -> ``(">=", 1)``; anything else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return ("==", value) if value >= 0 else None
    if isinstance(value, str):
        m = _COUNT.match(value)
        if m:
            op = m.group(1) or "=="
            return ("==" if op == "=" else op, int(m.group(2)))
    return None


def _compare(n: int, op: str, want: int) -> bool:
    return {"==": n == want, ">=": n >= want, ">": n > want, "<=": n <= want, "<": n < want}[op]


# -- validation (collection time) -------------------------------------------------------


def _check_service(entry: Mapping[str, Any], what: str, line: int) -> None:
    raw = entry.get("service")
    if not isinstance(raw, str) or is_template(raw):
        return
    canonical = service_name(raw)
    if canonical != raw.strip() or canonical in KNOWN_SERVICES:
        return
    close = closest(canonical, KNOWN_SERVICES)
    close += [s for s in KNOWN_SERVICES if s.lower() == canonical.lower()]
    if close:
        raise SpecError(
            f"{what}.service {raw!r} is not a service name a trace uses",
            line,
            hint=f"did you mean {close[-1]!r}? services are named as X-Ray names them: " + ", ".join(KNOWN_SERVICES),
        )


def _validate(args: Mapping[str, Any], line: int) -> None:
    if not any(k in args for k in CHECKS):
        raise SpecError(
            "expect_trace checks nothing",
            line,
            hint="give at least one of: " + ", ".join(CHECKS) + "; e.g. expect_trace: {calls: [{service: Lambda}]}",
        )
    if args.get("no_errors") is True and args.get("errors"):
        raise SpecError(
            "expect_trace has both `no_errors: true` and `errors`",
            line_of(args, "errors", line),
            hint="`errors` lists the failed spans a failing path must show; drop one of the two",
        )
    for key, fields in _LIST_FIELDS.items():
        if key not in args:
            continue
        entries = args[key]
        kline = line_of(args, key, line)
        if not entries:
            raise SpecError(
                f"expect_trace.{key} is empty", kline, hint=f"list at least one, e.g. {_LIST_EXAMPLES[key]}"
            )
        for i, entry in enumerate(entries):
            what = f"expect_trace.{key}[{i}]"
            eline = line_of(entries, i, kline)
            check_mapping(entry, fields, what=what, line=eline, example=_LIST_EXAMPLES[key].split(": ", 1)[1][1:-1])
            _check_service(entry, what, line_of(entry, "service", eline))
            if "count" in entry and not is_template(entry["count"]) and parse_count(entry["count"]) is None:
                raise SpecError(f"{what}.count is {entry['count']!r}", line_of(entry, "count", eline), hint=_COUNT_HINT)


# -- checks (run time) ------------------------------------------------------------------


@dataclass
class _Target:
    """What one entry asks for: a service, optionally an operation and a resource (all its names)."""

    service: str
    operation: str | None
    resource: str | None
    names: tuple[str, ...]

    def matches(self, span: Span) -> bool:
        if not span.matches(self.service, self.operation):
            return False
        return self.resource is None or any(n in span.resources for n in self.names)

    def text(self) -> str:
        words = [service_name(self.service), *([self.operation] if self.operation else [])]
        if self.resource is not None:
            shown = self.names[0] if self.names else self.resource
            words.append(f"on {self.resource}" + (f" ({shown})" if shown != self.resource else ""))
        return " ".join(words)


def _names(value: str) -> tuple[str, ...]:
    """A resolved name and the shorter names it may appear under in a span (ARN and URL tails)."""
    out = [value]
    if value.startswith("arn:"):
        rest = value.split(":", 5)[-1]
        if ":table/" in value:
            out.append(table_name_of(value))
        out += [rest.rsplit("/", 1)[-1], rest.rsplit(":", 1)[-1]]
    elif value.startswith(("http://", "https://")):
        out.append(value.rstrip("/").rsplit("/", 1)[-1])
    return tuple(dict.fromkeys(n for n in out if n))


def _target(entry: Mapping[str, Any], ctx: StepContext, what: str) -> _Target:
    service = entry.get("service")
    if not isinstance(service, str) or not service.strip():
        raise StepError(f"{what}.service must be a non-empty string, got {service!r}")
    operation = entry.get("operation")
    resource = entry.get("resource")
    names: tuple[str, ...] = ()
    if resource is not None:
        resource = str(resource)
        names = _names(resolve_ref(ctx, resource, f"{what}.resource"))
    return _Target(service, str(operation) if operation is not None else None, resource, names)


def _listing(spans: Sequence[Span], limit: int = 6) -> str:
    if not spans:
        return "none"
    shown = "; ".join(s.describe() for s in spans[:limit])
    return shown + (f"; … (+{len(spans) - limit} more)" if len(spans) > limit else "")


@dataclass
class _Check:
    """One expectation: ``waits`` if more spans arriving can satisfy it (calls, errors)."""

    path: str
    waits: bool

    def mismatch(self, trace: Trace) -> Mismatch | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def ok(self, trace: Trace) -> bool:
        return self.mismatch(trace) is None


@dataclass
class _Calls(_Check):
    target: _Target
    op: str
    want: int

    def mismatch(self, trace: Trace) -> Mismatch | None:
        found = [s for s in trace.spans_of("call") if self.target.matches(s)]
        if _compare(len(found), self.op, self.want):
            return None
        same = [s for s in trace.spans_of("call") if s.matches(self.target.service)]
        return Mismatch(
            self.path,
            f"{_COUNT_WORDS[self.op]} {self.want} call(s) to {self.target.text()}",
            len(found),
            f"calls to {service_name(self.target.service)}: {_listing(same)}",
        )


@dataclass
class _Forbidden(_Check):
    target: _Target

    def mismatch(self, trace: Trace) -> Mismatch | None:
        found = [s for s in trace.spans_of("call") if self.target.matches(s)]
        if not found:
            return None
        return Mismatch(self.path, f"no call to {self.target.text()}", len(found), _listing(found))


@dataclass
class _NoErrors(_Check):
    def mismatch(self, trace: Trace) -> Mismatch | None:
        failed = trace.failed_spans()
        if not failed:
            return None
        return Mismatch(self.path, "no failed span (error, fault or throttle)", len(failed), _listing(failed))


@dataclass
class _Error(_Check):
    target: _Target
    kind: str | None

    def mismatch(self, trace: Trace) -> Mismatch | None:
        failed = trace.failed_spans()
        found = [s for s in failed if self.target.matches(s) and (self.kind is None or getattr(s, self.kind))]
        if found:
            return None
        kind = f"{self.kind} " if self.kind else "failed "
        return Mismatch(self.path, f"a {kind}span of {self.target.text()}", 0, f"failed spans: {_listing(failed)}")


@dataclass
class _MaxDuration(_Check):
    seconds: float

    def mismatch(self, trace: Trace) -> Mismatch | None:
        took = trace.duration
        if took is None or took <= self.seconds:
            return None
        slowest = trace.slowest()
        note = "seconds" + (f"; slowest call: {slowest.describe()}" if slowest is not None else "")
        return Mismatch(self.path, f"a trace of at most {self.seconds:g}s", round(took, 3), note)


def _checks(args: Mapping[str, Any], ctx: StepContext) -> list[_Check]:
    checks: list[_Check] = []
    for i, entry in enumerate(args.get("calls") or ()):
        path = f"calls[{i}]"
        parsed = parse_count(entry.get("count", ">=1"))
        if parsed is None:
            raise StepError(f"expect_trace.{path}.count is {entry.get('count')!r}", hint=_COUNT_HINT)
        checks.append(_Calls(path, True, _target(entry, ctx, f"expect_trace.{path}"), *parsed))
    for i, entry in enumerate(args.get("errors") or ()):
        path = f"errors[{i}]"
        checks.append(_Error(path, True, _target(entry, ctx, f"expect_trace.{path}"), entry.get("kind")))
    for i, entry in enumerate(args.get("forbidden") or ()):
        path = f"forbidden[{i}]"
        checks.append(_Forbidden(path, False, _target(entry, ctx, f"expect_trace.{path}")))
    if args.get("no_errors") is True:
        checks.append(_NoErrors("no_errors", False))
    limit = number_arg(args, "max_duration", None)
    if limit is not None:
        checks.append(_MaxDuration("max_duration", False, limit))
    return checks


def observe(trace: Trace) -> Observation:
    """What ``expect``/``save`` of an ``expect_trace`` step see."""
    return {
        "trace_id": trace.trace_id,
        "duration": round(trace.duration, 6) if trace.duration is not None else None,
        "calls": [" ".join(x for x in (s.service, s.operation, s.resource) if x) for s in trace.spans_of("call")],
        "errors": [s.describe() for s in trace.failed_spans()],
        "cold_starts": [s.name for s in trace.cold_starts()],
    }


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


@action(
    "expect_trace",
    fields={
        "within": f("number", minimum=0),
        "calls": f("list", items=CALL_FIELDS, example=_LIST_EXAMPLES["calls"]),
        "no_errors": f("bool"),
        "errors": f("list", items=ERROR_FIELDS),
        "max_duration": f("number", minimum=0),
        "forbidden": f("list", items=FORBIDDEN_FIELDS),
    },
    observes=("trace_id", "duration", "calls", "errors", "cold_starts"),
    example="expect_trace: {within: 10, calls: [{service: DynamoDB, operation: PutItem, count: 1}], no_errors: true}",
    summary=lambda a: "expect_trace",
    validate=_validate,
)
def run_expect_trace(args: dict[str, Any], ctx: StepContext) -> Observation:
    """Wait (up to ``within``) for the expected calls and failed spans, then check everything."""
    test_trace = ctx.runtime.trace
    if test_trace is None:
        raise StepError(
            "expect_trace needs this test's trace, but traces are off in this run",
            hint="traces are collected on the local emulator and on aws (X-Ray); the endpoint target has none",
        )
    ctx.detail = f"trace {test_trace.trace_id}"
    checks = _checks(args, ctx)
    waiting = [c for c in checks if c.waits]
    last: list[Trace] = []

    def accept(trace: Trace) -> bool:
        last[:] = [trace]
        return all(c.ok(trace) for c in waiting)

    within = number_arg(args, "within", None)
    headline = ""
    try:
        trace = test_trace.fetch(within=within, accept=accept if waiting else None)
    except TracesIncomplete as exc:
        if not last:
            raise StepError(exc.message, hint=exc.hint) from None
        trace = last[0]
        headline = f"not met within {exc.within:g}s; the trace as it was then"
    except TraceError as exc:
        raise StepError(exc.message, hint=exc.hint) from None
    observation = observe(trace)
    mismatches = [m for c in checks if (m := c.mismatch(trace)) is not None]
    if mismatches:
        raise Pending(
            observation,
            mismatches,
            headline=headline or f"trace {trace.trace_id} does not meet the expectations",
            appendix="trace so far:\n" + _indent(trace.render()),
        )
    return observation
