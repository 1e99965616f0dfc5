"""Expectation matching: subset semantics plus tag matchers (``!re``, ``!ge``...).

``match(expected, observed)`` returns every mismatch, each with the path where
it happened, so one failing run shows everything that is wrong, not the first
thing. Matchers are plain objects built by the YAML tags in ``yamlio.py``;
their arguments may hold templates, rendered before matching.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from harness.errors import TemplateError
from harness.scenarios.template_text import render_pattern


class _Missing:
    """The observed side of a key that is not there at all."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()

Renderer = Callable[[Any], Any]
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_$-]+")


@dataclass(frozen=True)
class Mismatch:
    """One difference between what was expected and what was observed."""

    path: str
    expected: str
    observed: Any
    note: str = ""

    def render(self) -> str:
        where = self.path or "<root>"
        seen = "nothing (the key is missing)" if self.observed is MISSING else short(self.observed)
        note = f" ({self.note})" if self.note else ""
        return f"{where}: expected {self.expected}, observed {seen}{note}"


def child_path(path: str, key: Any) -> str:
    """``path`` extended by a mapping key or a list index: ``body.items[0]``."""
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{path}[{key}]"
    text = str(key)
    if _PLAIN_KEY.fullmatch(text):
        return f"{path}.{text}" if path else text
    return f"{path}[{text!r}]"


def match(expected: Any, observed: Any, path: str = "", *, exact: bool = False) -> list[Mismatch]:
    """All mismatches between ``expected`` and ``observed`` (empty list: it matches).

    Mappings match as a subset (extra observed keys are fine) unless ``exact``;
    lists match element-wise and must have the same length; scalars compare by
    value, with ``1 == 1.0`` but ``1 != True`` and ``1 != "1"``.
    """
    if isinstance(expected, Matcher):
        if observed is MISSING and not expected.matches_missing:
            return [Mismatch(path, expected.describe(), MISSING)]
        return expected.check(observed, path, exact)
    if observed is MISSING:
        return [Mismatch(path, describe(expected), MISSING)]
    if isinstance(expected, Mapping):
        if not isinstance(observed, Mapping):
            return [Mismatch(path, "a mapping", observed, kind_of(observed))]
        out: list[Mismatch] = []
        for key, want in expected.items():
            out += match(
                want, observed.get(key, MISSING) if key in observed else MISSING, child_path(path, key), exact=exact
            )
        if exact:
            for key in observed:
                if key not in expected:
                    out.append(Mismatch(child_path(path, key), "no such key (exact match)", observed[key]))
        return out
    if isinstance(expected, list):
        if not isinstance(observed, list):
            return [Mismatch(path, "a list", observed, kind_of(observed))]
        out = []
        if len(expected) != len(observed):
            out.append(
                Mismatch(
                    path,
                    f"a list of {len(expected)} items",
                    observed,
                    f"{len(observed)} items; use !contains to look for one element",
                )
            )
        for i, (want, got) in enumerate(zip(expected, observed, strict=False)):
            out += match(want, got, child_path(path, i), exact=exact)
        return out
    if same_scalar(expected, observed):
        return []
    note = kind_of(observed) if _type_family(expected) != _type_family(observed) else ""
    return [Mismatch(path, describe(expected), observed, note)]


def same_scalar(a: Any, b: Any) -> bool:
    """Scalar equality without Python's ``True == 1`` and with ``1 == 1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if is_number(a) and is_number(b):
        return bool(a == b)
    return type(a) is type(b) and a == b


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _type_family(value: Any) -> str:
    return "number" if is_number(value) else type(value).__name__


def kind_of(value: Any) -> str:
    """A human name for the type of an observed value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if is_number(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


class Matcher:
    """A YAML tag in ``expect`` that matches by rule instead of equality."""

    tag: ClassVar[str] = ""
    # Whether the matcher is satisfied by a key that is not there (``!absent``).
    matches_missing: ClassVar[bool] = False

    def check(self, observed: Any, path: str, exact: bool) -> list[Mismatch]:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def values(self) -> Iterable[Any]:
        """The arguments that may contain templates (for validation and rendering)."""
        return ()

    def render(self, render: Renderer) -> Matcher:
        """A copy with templates in the arguments rendered."""
        return self


@dataclass(frozen=True)
class Regex(Matcher):
    """``!re "pattern"``: the observed string contains a match (``re.search``)."""

    pattern: str
    line: int | None = field(default=None, compare=False)
    tag: ClassVar[str] = "!re"

    def check(self, observed: Any, path: str, exact: bool) -> list[Mismatch]:
        if not isinstance(observed, str):
            return [Mismatch(path, self.describe(), observed, f"{kind_of(observed)}, not a string")]
        if re.search(self.pattern, observed) is None:
            return [Mismatch(path, self.describe(), observed)]
        return []

    def describe(self) -> str:
        return f"a string matching /{self.pattern}/"

    def values(self) -> Iterable[Any]:
        return (self.pattern,)

    def render(self, render: Renderer) -> Matcher:
        # Values substituted into a pattern are matched literally, not as regex.
        return replace(self, pattern=render_pattern(self.pattern, render))


_OPS: dict[str, tuple[str, Callable[[Any, Any], bool]]] = {
    "!gt": (">", lambda a, b: a > b),
    "!ge": (">=", lambda a, b: a >= b),
    "!lt": ("<", lambda a, b: a < b),
    "!le": ("<=", lambda a, b: a <= b),
}


def _bound(value: Any, tag: str) -> Any:
    if not is_number(value):
        raise TemplateError(f"{tag} needs a number, but its argument is {short(value)}")
    return value


@dataclass(frozen=True)
class Compare(Matcher):
    """``!gt n``, ``!ge n``, ``!lt n``, ``!le n``: numeric comparison."""

    op: str
    bound: Any
    line: int | None = field(default=None, compare=False)

    def check(self, observed: Any, path: str, exact: bool) -> list[Mismatch]:
        if not is_number(observed):
            return [Mismatch(path, self.describe(), observed, f"{kind_of(observed)}, not a number")]
        if not _OPS[self.op][1](observed, _bound(self.bound, self.op)):
            return [Mismatch(path, self.describe(), observed)]
        return []

    def describe(self) -> str:
        return f"a number {_OPS[self.op][0]} {short(self.bound)}"

    def values(self) -> Iterable[Any]:
        return (self.bound,)

    def render(self, render: Renderer) -> Matcher:
        return replace(self, bound=_bound(render(self.bound), self.op))


@dataclass(frozen=True)
class Between(Matcher):
    """``!between [low, high]``: a number in the closed interval."""

    low: Any
    high: Any
    line: int | None = field(default=None, compare=False)
    tag: ClassVar[str] = "!between"

    def check(self, observed: Any, path: str, exact: bool) -> list[Mismatch]:
        if not is_number(observed):
            return [Mismatch(path, self.describe(), observed, f"{kind_of(observed)}, not a number")]
        if not _bound(self.low, self.tag) <= observed <= _bound(self.high, self.tag):
            return [Mismatch(path, self.describe(), observed)]
        return []

    def describe(self) -> str:
        return f"a number between {short(self.low)} and {short(self.high)}"

    def values(self) -> Iterable[Any]:
        return (self.low, self.high)

    def render(self, render: Renderer) -> Matcher:
        return replace(self, low=_bound(render(self.low), self.tag), high=_bound(render(self.high), self.tag))


@dataclass(frozen=True)
class Absent(Matcher):
    """``!absent``: the key is not there (``get`` of a missing item has no ``item``)."""

    line: int | None = field(default=None, compare=False)
    tag: ClassVar[str] = "!absent"
    matches_missing: ClassVar[bool] = True

    def check(self, observed: Any, path: str, exact: bool) -> list[Mismatch]:
        if observed is MISSING:
            return []
        return [Mismatch(path, self.describe(), observed)]

    def describe(self) -> str:
        return "no such key (!absent)"


@dataclass(frozen=True)
class AnyValue(Matcher):
    """``!any``: the key is present, with any value (null included)."""

    line: int | None = field(default=None, compare=False)
    tag: ClassVar[str] = "!any"

    def check(self, observed: Any, path: str, exact: bool) -> list[Mismatch]:
        return []

    def describe(self) -> str:
        return "any value (!any)"


@dataclass(frozen=True)
class Length(Matcher):
    """``!len n``: a list, string or mapping with exactly n elements."""

    length: Any
    line: int | None = field(default=None, compare=False)
    tag: ClassVar[str] = "!len"

    def check(self, observed: Any, path: str, exact: bool) -> list[Mismatch]:
        if not isinstance(observed, list | str | Mapping):
            return [Mismatch(path, self.describe(), observed, f"{kind_of(observed)} has no length")]
        if len(observed) != self.length:
            return [Mismatch(path, self.describe(), observed, f"length {len(observed)}")]
        return []

    def describe(self) -> str:
        return f"length {short(self.length)}"

    def values(self) -> Iterable[Any]:
        return (self.length,)

    def render(self, render: Renderer) -> Matcher:
        value = render(self.length)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise TemplateError(f"!len needs a whole number >= 0, but its argument is {short(value)}")
        return replace(self, length=value)


@dataclass(frozen=True)
class Contains(Matcher):
    """``!contains x``: a list with an element matching x, or a string containing x."""

    element: Any
    line: int | None = field(default=None, compare=False)
    tag: ClassVar[str] = "!contains"

    def check(self, observed: Any, path: str, exact: bool) -> list[Mismatch]:
        if isinstance(observed, list):
            if any(not match(self.element, item, exact=exact) for item in observed):
                return []
            return [Mismatch(path, self.describe(), observed, f"none of {len(observed)} items matches")]
        if isinstance(observed, str) and isinstance(self.element, str):
            return [] if self.element in observed else [Mismatch(path, self.describe(), observed)]
        return [Mismatch(path, self.describe(), observed, f"{kind_of(observed)}, not a list or string")]

    def describe(self) -> str:
        return f"a list or string containing {describe(self.element)}"

    def values(self) -> Iterable[Any]:
        return (self.element,)

    def render(self, render: Renderer) -> Matcher:
        return replace(self, element=render(self.element))


@dataclass(frozen=True)
class Exact(Matcher):
    """``!exact {...}``: like plain matching, but no extra keys anywhere below."""

    value: Any
    line: int | None = field(default=None, compare=False)
    tag: ClassVar[str] = "!exact"

    def check(self, observed: Any, path: str, exact: bool) -> list[Mismatch]:
        return match(self.value, observed, path, exact=True)

    def describe(self) -> str:
        return f"exactly {describe(self.value)}"

    def values(self) -> Iterable[Any]:
        return (self.value,)

    def render(self, render: Renderer) -> Matcher:
        return replace(self, value=render(self.value))


def matcher_repr(m: Matcher) -> str:
    """How a matcher is written in YAML, for failure messages."""
    if isinstance(m, Regex):
        return f"!re {m.pattern!r}"
    if isinstance(m, Compare):
        return f"{m.op} {describe(m.bound)}"
    if isinstance(m, Between):
        return f"!between [{describe(m.low)}, {describe(m.high)}]"
    if isinstance(m, Length):
        return f"!len {describe(m.length)}"
    if isinstance(m, Contains):
        return f"!contains {describe(m.element)}"
    if isinstance(m, Exact):
        return f"!exact {describe(m.value)}"
    return m.tag


def describe(value: Any, limit: int = 300) -> str:
    """A one-line, YAML-flow-like rendering of an expected value (matchers as tags)."""
    text = _describe(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(value: Any) -> str:
    if isinstance(value, Matcher):
        return matcher_repr(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_describe(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_describe(v) for v in value) + "]"
    return json.dumps(value, default=str, ensure_ascii=False)


def short(value: Any, limit: int = 160) -> str:
    """A compact rendering of an observed value for one mismatch line (same quoting as expected)."""
    text = _describe(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
