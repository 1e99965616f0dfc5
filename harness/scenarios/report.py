"""Failure and progress text for scenarios: what ran, what was expected, what came back.

Messages are built for a human reading a CI log: scenario and step first, the
mismatches (all of them, each with its path), then expected and observed
(truncated so a large body cannot drown the log), then how to replay.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.scenarios.matchers import Mismatch, describe
from harness.scenarios.model import Scenario, Step

MAX_STRING = 300
MAX_ITEMS = 20
MAX_LINES = 60


@dataclass
class StepResult:
    """How one step went: ``passed``, ``failed``, ``error`` or ``not run``."""

    index: int
    name: str
    action: str
    line: int
    status: str
    duration: float = 0.0
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "action": self.action,
            "line": self.line,
            "status": self.status,
            "duration": round(self.duration, 6),
        }


def _clip(value: Any) -> Any:
    """Shorten long strings and lists inside a value, keeping its structure."""
    if isinstance(value, str):
        return value if len(value) <= MAX_STRING else value[:MAX_STRING] + f"… (+{len(value) - MAX_STRING} chars)"
    if isinstance(value, dict):
        return {k: _clip(v) for k, v in value.items()}
    if isinstance(value, list):
        head = [_clip(v) for v in value[:MAX_ITEMS]]
        return head + ([f"… (+{len(value) - MAX_ITEMS} more items)"] if len(value) > MAX_ITEMS else [])
    return value


def format_observation(value: Any) -> str:
    """Pretty JSON of an observation, truncated in depth of strings, lists and lines."""
    clipped = _clip(value)
    compact = json.dumps(clipped, default=str, ensure_ascii=False)
    if len(compact) <= 100:
        return compact
    text = json.dumps(clipped, indent=2, default=str, ensure_ascii=False)
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        lines = lines[:MAX_LINES] + [f"… (+{len(lines) - MAX_LINES} more lines)"]
    return "\n".join(lines)


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def step_heading(scenario: Scenario, step: Step, action_text: str) -> str:
    """``scenario 'x' (file:line)`` / ``step 2/3 'read it back' (line 12): http GET ...``."""
    return (
        f"scenario {scenario.name!r} ({scenario.path}:{scenario.line})\n"
        f"step {step.index}/{len(scenario.steps)} {step.name!r} (line {step.line}): {action_text}"
    )


def replay_line(seed: int, unique: str) -> str:
    return f"faker seed: {seed}   unique: {unique}"


def expectation_message(
    *,
    scenario: Scenario,
    step: Step,
    action_text: str,
    expected: Any,
    has_expect: bool,
    observation: Any,
    mismatches: Sequence[Mismatch],
    seed: int,
    unique: str,
    headline: str = "",
    appendix: str = "",
) -> str:
    """The full text of an ``ExpectationFailed`` for one step (``appendix``: more context, e.g. a trace tree)."""
    parts = [step_heading(scenario, step, action_text)]
    if headline:
        parts.append(headline)
    plural = "mismatch" if len(mismatches) == 1 else "mismatches"
    parts.append(f"{len(mismatches)} {plural}:")
    parts += [f"  - {m.render()}" for m in mismatches]
    if has_expect:
        parts.append("expected:\n" + _indent(describe(expected, limit=2000)))
    parts.append("observed:\n" + _indent(format_observation(observation)))
    if appendix:
        parts.append(appendix)
    parts.append(replay_line(seed, unique))
    return "\n".join(parts)


def error_message(*, scenario: Scenario, step: Step, action_text: str, error: str, seed: int, unique: str) -> str:
    """The text of a step that could not run (AWS, HTTP or template error)."""
    return "\n".join([step_heading(scenario, step, action_text), error, replay_line(seed, unique)])


def format_steps(results: Sequence[StepResult]) -> str:
    """One line per step: index, name, status, duration."""
    if not results:
        return "(no steps ran)"
    width = max(len(r.name) for r in results)
    lines = []
    for r in results:
        took = f"{r.duration:7.3f}s" if r.status != "not run" else ""
        lines.append(f"{r.index:>3}. {r.name:<{width}}  {r.action:<11} {r.status:<8} {took}".rstrip())
    return "\n".join(lines)
