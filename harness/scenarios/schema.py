"""Declarative shape checks for scenario mappings, with lines and hints.

A :class:`Field` says what one key accepts; :func:`check_mapping` applies a
table of them and raises :class:`SpecError` (message, line, hint) that the
loader turns into a ``ScenarioError`` carrying the file path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.errors import SpecError
from harness.scenarios.matchers import Matcher, is_number, kind_of
from harness.scenarios.templating import single_expression, suggest
from harness.scenarios.yamlio import line_of

_KIND_NAMES = {
    "str": "a string",
    "int": "a whole number",
    "number": "a number",
    "bool": "true or false",
    "mapping": "a mapping",
    "list": "a list",
    "any": "any value",
}


@dataclass(frozen=True)
class Field:
    """What one key accepts. ``kinds`` from: str int number bool mapping list any."""

    kinds: tuple[str, ...]
    required: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    example: str = ""
    # For a list of mappings: the table each entry is checked with (the list may not be empty).
    items: Mapping[str, Field] | None = None

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        return " or ".join(_KIND_NAMES[k] for k in self.kinds)


def field(
    *kinds: str,
    required: bool = False,
    choices: tuple[str, ...] = (),
    minimum: float | None = None,
    example: str = "",
    items: Mapping[str, Field] | None = None,
) -> Field:
    """Shorthand: ``field("str", required=True)``."""
    return Field(kinds, required=required, choices=choices, minimum=minimum, example=example, items=items)


def is_template(value: Any) -> bool:
    """A string that is exactly one ``{{ }}``: its type is only known when rendered."""
    return isinstance(value, str) and single_expression(value) is not None


def _fits(value: Any, kind: str) -> bool:
    if kind == "any":
        return not isinstance(value, Matcher)
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return is_number(value)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "mapping":
        return isinstance(value, Mapping)
    if kind == "list":
        return isinstance(value, list)
    raise AssertionError(f"unknown field kind {kind}")


def check_value(value: Any, spec: Field, *, what: str, line: int) -> None:
    """One value against its field spec."""
    if isinstance(value, Matcher):
        raise SpecError(
            f"{what}: {value.tag or 'a matcher'} only works inside `expect`",
            line,
            hint="use a plain value here; matchers compare observations",
        )
    scalar_kinds = {"str", "int", "number", "bool"}
    if is_template(value) and scalar_kinds & set(spec.kinds):
        return
    if not any(_fits(value, k) for k in spec.kinds):
        example = f"; e.g. {spec.example}" if spec.example else ""
        raise SpecError(
            f"{what} must be {spec.describe()}, not {kind_of(value)}",
            line,
            hint=f"write {what.rsplit('.', 1)[-1]}: <{spec.describe()}>{example}",
        )
    if spec.choices and isinstance(value, str) and value not in spec.choices:
        raise SpecError(f"{what} is {value!r}", line, hint=suggest(value, spec.choices, "valid values"))
    if spec.minimum is not None and is_number(value) and value < spec.minimum:
        raise SpecError(
            f"{what} must be >= {spec.minimum:g}, not {value}", line, hint=f"use a value of at least {spec.minimum:g}"
        )


def check_mapping(value: Any, fields: Mapping[str, Field], *, what: str, line: int, example: str = "") -> None:
    """``value`` is a mapping with only known keys, all required ones, each well-typed."""
    if not isinstance(value, Mapping):
        hint = f"write it like {example}" if example else f"use a mapping with keys: {', '.join(fields)}"
        raise SpecError(f"{what} must be a mapping, not {kind_of(value)}", line, hint=hint)
    for key in value:
        if key not in fields:
            key_line = value.key_line(key) if hasattr(value, "key_line") else line
            raise SpecError(f"unknown key {key!r} in {what}", key_line, hint=suggest(str(key), fields, "valid keys"))
    for key, spec in fields.items():
        if spec.required and key not in value:
            example_text = f" (e.g. {spec.example})" if spec.example else ""
            raise SpecError(
                f"{what} is missing required key {key!r}", line, hint=f"add {key}: <{spec.describe()}>{example_text}"
            )
    for key, item in value.items():
        check_value(item, fields[key], what=f"{what}.{key}", line=line_of(value, key, line))


def find_matcher(value: Any, line: int) -> tuple[Matcher, int] | None:
    """The first matcher anywhere in ``value`` (they are only allowed in ``expect``)."""
    if isinstance(value, Matcher):
        return value, getattr(value, "line", None) or line
    if isinstance(value, Mapping):
        for k, v in value.items():
            hit = find_matcher(v, line_of(value, k, line))
            if hit:
                return hit
    if isinstance(value, list):
        for i, v in enumerate(value):
            hit = find_matcher(v, line_of(value, i, line))
            if hit:
                return hit
    return None
