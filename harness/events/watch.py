"""Judging what arrived on a listener: which arrivals match a pattern, and is the count met.

The waiting itself is the caller's (the scenario engine's ``eventually``);
this module only says, for the arrivals so far, whether the wait is over
and what to show when it failed: the arrivals that did not match, each with
the first key that did not.

``count``: ``None`` waits for at least one match; ``0`` passes only when the
whole window passes with none; ``n`` waits for ``n`` and fails as soon as
more arrive.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.events.listeners import Arrival
from harness.events.pattern import mismatch

SHOWN = 5  # unmatched arrivals shown in a failure


@dataclass
class Outcome:
    matched: list[Any] = field(default_factory=list)
    unmatched: list[tuple[Any, str]] = field(default_factory=list)  # (body, why it did not match)
    count: int | None = None

    @property
    def done(self) -> bool:
        """The wait can stop: enough matched (or, for ``count: 0``, one matched and it failed already)."""
        if self.count is None:
            return bool(self.matched)
        return len(self.matched) >= self.count and (self.count > 0 or bool(self.matched))

    @property
    def passed(self) -> bool:
        if self.count is None:
            return bool(self.matched)
        return len(self.matched) == self.count

    def observation(self, kind: str = "event") -> dict[str, Any]:
        """``{events: [...], event: the first, count}`` (``messages``/``message`` for messages)."""
        first = self.matched[0] if self.matched else None
        return {f"{kind}s": list(self.matched), kind: first, "count": len(self.matched)}


def judge(
    arrivals: Iterable[Arrival], pattern: Mapping[str, Any] | None, *, since: float, count: int | None
) -> Outcome:
    """Sort the arrivals from ``since`` (the test's start) on into matched and not.

    A listener is the process's and outlives a test: what arrived before this test began was
    caused before it, so it is never this test's, whether or not it matches.
    """
    outcome = Outcome(count=count)
    for arrival in arrivals:
        if arrival.at < since:
            continue
        why = mismatch(pattern, arrival.body) if pattern else None
        if why is None:
            outcome.matched.append(arrival.body)
        else:
            outcome.unmatched.append((arrival.body, why))
    return outcome


def expected_words(count: int | None) -> str:
    if count is None:
        return "at least one match"
    return "no match" if count == 0 else f"exactly {count} match{'es' if count != 1 else ''}"


def failure_text(outcome: Outcome, what: str, source: str, within: float) -> tuple[str, str]:
    """(headline, appendix) of a failed wait: what was expected, what matched, what arrived instead."""
    got = len(outcome.matched)
    headline = f"expected {expected_words(outcome.count)} of the pattern on {source} within {within:g}s, {got} matched"
    lines = [f"matched {what}s:"] + [f"  {_short(m)}" for m in outcome.matched[:SHOWN]] if outcome.matched else []
    if outcome.unmatched:
        shown = outcome.unmatched[-SHOWN:]
        lines.append(
            f"{len(outcome.unmatched)} other {what}(s) arrived during the test and did not match"
            + (f" (the last {SHOWN})" if len(outcome.unmatched) > SHOWN else "")
            + ":"
        )
        lines += [f"  {_short(body)}\n    because {why}" for body, why in shown]
    elif not outcome.matched:
        lines.append(f"no {what} arrived on {source} during the test")
    return headline, "\n".join(lines)


def _short(value: Any, limit: int = 400) -> str:
    text = json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."
