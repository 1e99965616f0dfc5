"""Load and validate a scenario file into :mod:`model` objects.

Everything a user can get wrong is checked here, at collection time, and
reported as a ``ScenarioError`` with file, line and a hint: YAML syntax, the
shape of every mapping, step actions, matcher arguments, template roots,
undefined vars, ``saved`` names used before they are saved, ``save`` paths.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from harness.errors import ScenarioError
from harness.scenarios.matchers import Matcher
from harness.scenarios.model import MarkSpec, Save, Scenario, ScenarioDocument, Step
from harness.scenarios.paths import PathError, parse_path
from harness.scenarios.schema import SpecError, check_mapping, find_matcher
from harness.scenarios.schema import field as f
from harness.scenarios.steps import ACTIONS, check_action_args
from harness.scenarios.templating import ROOTS, TemplateError, check_template_string, suggest
from harness.scenarios.yamlio import LocatedDict, line_of, parse_yaml

TOP_FIELDS = {"vars": f("mapping"), "scenarios": f("list", required=True)}
SCENARIO_FIELDS = {
    "name": f("str", required=True, example="name: create then read an order"),
    "description": f("str"),
    "marks": f("list"),
    "vars": f("mapping"),
    "steps": f("list", required=True),
}
STEP_META = ("name", "expect", "save")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MARK = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOP_EXAMPLE = "scenarios:\n  - name: ...\n    steps:\n      - http: {api: ApiUrl, path: /health}"
# Roots usable in vars: they are rendered once, before any step runs.
_VAR_ROOTS = tuple(r for r in ROOTS if r not in ("saved", "vars"))


def load_file(path: str | os.PathLike[str], *, display_path: str | None = None) -> ScenarioDocument:
    """Read and validate a scenario file; errors name ``display_path`` (default: ``path``)."""
    shown = display_path or os.fspath(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ScenarioError(f"cannot read the file: {exc.strerror or exc}", path=shown) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ScenarioError("the file is not UTF-8 text", path=shown, line=line, hint="save it as UTF-8") from None
    return load_text(text, shown)


def load_text(text: str, path: str = "<string>") -> ScenarioDocument:
    """Validate scenario YAML given as text (``path`` is only used in messages)."""
    data = parse_yaml(text, path)
    try:
        return _document(data, path)
    except SpecError as exc:
        raise ScenarioError(exc.message, path=path, line=exc.line, hint=exc.hint) from None
    except TemplateError as exc:  # pragma: no cover - always wrapped with a line below
        raise ScenarioError(exc.message, path=path, hint=exc.hint) from None


def _document(data: Any, path: str) -> ScenarioDocument:
    if data is None:
        raise SpecError("the file is empty", 1, hint="a scenario file starts with `scenarios:`, e.g.\n" + _TOP_EXAMPLE)
    line = getattr(data, "line", 1)
    check_mapping(data, TOP_FIELDS, what="the top level", line=line, example=_TOP_EXAMPLE)
    file_vars = _vars(data.get("vars"), line_of(data, "vars", line), {})
    scenarios = data["scenarios"]
    if not scenarios:
        raise SpecError("`scenarios` is empty", line_of(data, "scenarios", line), hint="add at least one scenario")
    seen: dict[str, int] = {}
    out: list[Scenario] = []
    for i, raw in enumerate(scenarios):
        sline = line_of(scenarios, i, line)
        scenario = _scenario(raw, sline, path, file_vars)
        if scenario.name in seen:
            raise SpecError(
                f"duplicate scenario name {scenario.name!r} (first on line {seen[scenario.name]})",
                line_of(raw, "name", sline),
                hint="scenario names are test ids; make each unique",
            )
        seen[scenario.name] = sline
        out.append(scenario)
    return ScenarioDocument(path=path, scenarios=tuple(out))


def _vars(raw: Any, line: int, inherited: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(inherited)
    if raw is None:
        return merged
    if not isinstance(raw, Mapping):
        raise SpecError("vars must be a mapping of names to values", line, hint="e.g. vars: {sku: ABC-1}")
    for name, value in raw.items():
        vline = line_of(raw, name, line)
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise SpecError(
                f"var name {name!r} is not a plain name",
                vline,
                hint="use letters, digits and underscores, starting with a letter",
            )
        _check_templates(value, vline, roots=_VAR_ROOTS)
        merged[name] = value
    # Keep the lines for runtime errors while rendering.
    located = LocatedDict(merged)
    located.line = line
    located.key_lines = {}
    located.value_lines = {**getattr(inherited, "value_lines", {}), **{k: line_of(raw, k, line) for k in raw}}
    return located


def _scenario(raw: Any, line: int, path: str, file_vars: Mapping[str, Any]) -> Scenario:
    check_mapping(raw, SCENARIO_FIELDS, what="a scenario", line=line, example="{name: ..., steps: [...]}")
    line = getattr(raw, "line", line)
    name = raw["name"].strip()
    if not name:
        raise SpecError("scenario name is empty", line_of(raw, "name", line), hint="give it a descriptive name")
    if "::" in name or "\n" in name:
        raise SpecError(
            f"scenario name {name!r} contains '::' or a newline",
            line_of(raw, "name", line),
            hint="these break pytest test ids; rephrase the name",
        )
    scenario_vars = _vars(raw.get("vars"), line_of(raw, "vars", line), file_vars)
    marks = tuple(_mark(m, line_of(raw["marks"], i, line)) for i, m in enumerate(raw.get("marks") or []))
    steps_raw = raw["steps"]
    if not steps_raw:
        raise SpecError(
            f"scenario {name!r} has no steps",
            line_of(raw, "steps", line),
            hint="add at least one step, e.g. - http: {api: ApiUrl, path: /health}",
        )
    saved: list[str] = []
    steps = []
    for i, step_raw in enumerate(steps_raw):
        step = _step(step_raw, i + 1, line_of(steps_raw, i, line), scenario_vars, saved)
        saved += [s.name for s in step.saves]
        steps.append(step)
    return Scenario(
        name=name,
        path=path,
        line=line,
        steps=tuple(steps),
        vars=scenario_vars,
        marks=marks,
        description=str(raw.get("description", "")),
    )


def _mark(raw: Any, line: int) -> MarkSpec:
    hint = "marks are names (smoke) or one-key mappings ({xfail: {reason: flaky upstream}})"
    if isinstance(raw, str):
        name, args, kwargs = raw, (), {}
    elif isinstance(raw, Mapping) and len(raw) == 1:
        name, value = next(iter(raw.items()))
        if isinstance(value, Mapping):
            args, kwargs = (), dict(value)
        elif isinstance(value, list):
            args, kwargs = tuple(value), {}
        elif name in ("skip", "xfail", "skipif"):
            args, kwargs = (), {"reason": value}
        else:
            args, kwargs = (value,), {}
    else:
        raise SpecError(f"invalid mark {raw!r}", line, hint=hint)
    if not isinstance(name, str) or not _MARK.fullmatch(name):
        raise SpecError(f"invalid mark name {name!r}", line, hint=hint)
    return MarkSpec(name, args, kwargs)


def _step(raw: Any, index: int, line: int, vars: Collection[str], saved: Collection[str]) -> Step:
    if not isinstance(raw, Mapping):
        raise SpecError(
            f"step {index} must be a mapping with one action",
            line,
            hint="e.g. - name: create\n    http: {api: ApiUrl, method: POST, path: /orders}",
        )
    line = getattr(raw, "line", line)
    actions = [k for k in raw if k in ACTIONS]
    unknown = [k for k in raw if k not in ACTIONS and k not in STEP_META]
    if unknown:
        key = unknown[0]
        raise SpecError(
            f"unknown step key {key!r} in step {index}",
            raw.key_line(key) if hasattr(raw, "key_line") else line,
            hint=suggest(str(key), [*ACTIONS, *STEP_META], "valid keys (actions: " + ", ".join(ACTIONS) + ")"),
        )
    if not actions:
        raise SpecError(f"step {index} has no action", line, hint="add one of: " + ", ".join(ACTIONS))
    if len(actions) > 1:
        raise SpecError(
            f"step {index} has {len(actions)} actions ({', '.join(actions)})",
            line,
            hint="a step does exactly one thing; split it into one step per action",
        )
    name_ = actions[0]
    spec = ACTIONS[name_]
    args = raw[name_]
    aline = line_of(raw, name_, line)
    if args is None:
        args = {}
    check_action_args(name_, args, aline)
    hit = find_matcher(args, aline)
    if hit:
        raise SpecError(
            f"{hit[0].tag or 'a matcher'} only works inside `expect`",
            hit[1],
            hint=f"`{name_}` takes plain values; compare the result in the step's expect",
        )
    _check_templates(args, aline, vars=vars, saved=saved)
    fields = spec.observed_fields(args)

    step_name = raw.get("name")
    if step_name is not None and (not isinstance(step_name, str) or not step_name.strip()):
        raise SpecError(
            f"step {index} name must be a non-empty string",
            line_of(raw, "name", line),
            hint="name it after what it checks, or leave `name` out for a default",
        )
    has_expect = "expect" in raw
    expect = raw.get("expect")
    eline = line_of(raw, "expect", line)
    if has_expect:
        _check_expect(expect, eline, name_, fields, args)
        _check_templates(expect, eline, vars=vars, saved=saved)
    elif name_ == "wait" and "until" in args:
        raise SpecError(
            f"step {index}: wait.until needs an `expect` to know when to stop",
            line,
            hint="add a step-level expect, e.g. expect: {item: {status: SHIPPED}}",
        )

    saves = _saves(raw.get("save"), line_of(raw, "save", line), name_, fields) if "save" in raw else ()
    return Step(
        index=index,
        name=(step_name or spec.summary(args)).strip(),
        action=name_,
        args=args,
        line=line,
        expect=expect,
        has_expect=has_expect,
        expect_line=eline if has_expect else None,
        saves=saves,
    )


def _check_expect(expect: Any, line: int, action: str, fields: tuple[str, ...], args: Mapping[str, Any]) -> None:
    if action == "wait" and "seconds" in args:
        raise SpecError(
            "wait: {seconds} observes nothing, so it cannot have an expect",
            line,
            hint="use wait: {until: {...}, within: N} with this expect instead",
        )
    if not fields:
        raise SpecError(
            f"`{action}` observes nothing, so it cannot have an expect",
            line,
            hint="read the result back with get/query/expect_item and put the expect there",
        )
    if expect is None:
        raise SpecError("expect is empty", line, hint=f"expect a mapping of: {', '.join(fields)}")
    if isinstance(expect, Matcher):
        return
    if not isinstance(expect, Mapping):
        raise SpecError(
            f"expect must be a mapping of {', '.join(fields)}", line, hint=f"e.g. expect: {{{fields[0]}: ...}}"
        )
    for key in expect:
        if key not in fields:
            raise SpecError(
                f"`{action}` observes no field {key!r}",
                expect.key_line(key) if hasattr(expect, "key_line") else line,
                hint=suggest(str(key), fields, "fields"),
            )


def _saves(raw: Any, line: int, action: str, fields: tuple[str, ...]) -> tuple[Save, ...]:
    if not isinstance(raw, Mapping) or not raw:
        raise SpecError(
            "save must map names to paths in the observation", line, hint="e.g. save: {order_id: body.order_id}"
        )
    if not fields:
        raise SpecError(
            f"`{action}` observes nothing, so there is nothing to save",
            line,
            hint="save from a step that reads (get, query, http, invoke, receive, expect_item)",
        )
    out = []
    for name, text in raw.items():
        sline = line_of(raw, name, line)
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise SpecError(
                f"save name {name!r} is not a plain name",
                sline,
                hint="use letters, digits and underscores; later steps use {{ saved.<name> }}",
            )
        try:
            path = parse_path(text) if isinstance(text, str) else None
        except PathError as exc:
            raise SpecError(
                f"save.{name}: {exc}", sline, hint=f"paths start with one of: {', '.join(fields)}"
            ) from None
        if path is None:
            raise SpecError(f"save.{name} must be a path string", sline, hint=f"e.g. save: {{{name}: {fields[0]}}}")
        if path[0] not in fields:
            raise SpecError(
                f"save.{name}: `{action}` observes no field {path[0]!r}",
                sline,
                hint=suggest(str(path[0]), fields, "fields"),
            )
        out.append(Save(name, path, text, sline))
    return tuple(out)


def _check_templates(value: Any, line: int, **kwargs: Any) -> None:
    """Every template in ``value`` (keys, values, matcher arguments) is checked."""
    if isinstance(value, str):
        if "{{" in value:
            try:
                check_template_string(value, **kwargs)
            except TemplateError as exc:
                raise SpecError(exc.message, line, hint=exc.hint) from None
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _check_templates(k, line_of(value, k, line), **kwargs)
            _check_templates(v, line_of(value, k, line), **kwargs)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_templates(v, line_of(value, i, line), **kwargs)
    elif isinstance(value, Matcher):
        for v in value.values():
            _check_templates(v, getattr(value, "line", None) or line, **kwargs)
