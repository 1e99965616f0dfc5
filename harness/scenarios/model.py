"""The validated contents of a scenario file, ready to run.

Values keep their raw form (templates unrendered, matchers unbound); the
runner renders them per step. Every object knows its file line for errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.scenarios.paths import Segment


@dataclass(frozen=True)
class MarkSpec:
    """A pytest mark to apply to a scenario: ``smoke`` or ``{xfail: {reason: ...}}``."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Save:
    """``save: {name: path}``: keep part of a step's observation for later steps."""

    name: str
    path: tuple[Segment, ...]
    text: str
    line: int


@dataclass(frozen=True)
class Step:
    """One action, its expectation and what it saves. ``index`` counts from 1."""

    index: int
    name: str
    action: str
    args: Any
    line: int
    expect: Any = None
    has_expect: bool = False
    expect_line: int | None = None
    saves: tuple[Save, ...] = ()


@dataclass(frozen=True)
class Scenario:
    """A named sequence of steps; ``vars`` merges file-level and scenario-level vars."""

    name: str
    path: str
    line: int
    steps: tuple[Step, ...]
    vars: Mapping[str, Any] = field(default_factory=dict)
    marks: tuple[MarkSpec, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class ScenarioDocument:
    """One scenario file."""

    path: str
    scenarios: tuple[Scenario, ...]
