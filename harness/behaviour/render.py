"""The comparison for people: a terminal table, a Markdown summary (pull requests), an HTML section."""

from __future__ import annotations

import html
from collections.abc import Sequence

from tabulate import tabulate

from harness.behaviour.compare import CHANGED, NEW, SAME, UNCHECKED, Outcome
from harness.behaviour.derive import Apart

TITLE = "Behaviour snapshot"


def _apart(outcomes: Sequence[Outcome]) -> Apart:
    total = Apart()
    for o in outcomes:
        total.add(o.apart)
    return total


def headline(outcomes: Sequence[Outcome], mode: str) -> str:
    """``behaviour (gate): 2 of 29 scenarios changed, 1 new, 26 unchanged; apart: ...``."""
    n = {s: sum(1 for o in outcomes if o.state == s) for s in (CHANGED, NEW, SAME, UNCHECKED)}
    parts = [f"{n[CHANGED]} of {len(outcomes)} scenario{'s' if len(outcomes) != 1 else ''} changed"]
    parts += [f"{n[s]} {s}" for s in (NEW, UNCHECKED) if n[s]]
    parts.append(f"{n[SAME]} unchanged")
    a = _apart(outcomes)
    return (
        f"behaviour ({mode}): {', '.join(parts)}; not behaviour: {a.cold_starts} cold starts, "
        f"{a.retries} SDK retries, {a.polls_folded} poll attempts folded"
    )


def _rows(outcomes: Sequence[Outcome]) -> list[tuple[str, str, str]]:
    rows = []
    for o in outcomes:
        if o.state == CHANGED:
            rows += [(o.nodeid if i == 0 else "", CHANGED if i == 0 else "", c) for i, c in enumerate(o.changes)]
        elif o.state in (NEW, UNCHECKED):
            rows.append((o.nodeid, o.state, o.why))
    return rows


def terminal_table(outcomes: Sequence[Outcome]) -> str:
    rows = _rows(outcomes)
    if not rows:
        return "no differences from the behaviour snapshot"
    return tabulate(rows, headers=("scenario", "state", "difference"), tablefmt="simple")


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


def markdown(outcomes: Sequence[Outcome], mode: str, *, snapshot_hint: str) -> str:
    """The summary a pull request shows ($GITHUB_STEP_SUMMARY): differences first, then how to accept them."""
    lines = [f"## {TITLE}", "", headline(outcomes, mode), ""]
    changed = [o for o in outcomes if o.state == CHANGED]
    if changed:
        lines += ["| scenario | difference |", "|---|---|"]
        for o in changed:
            lines += [f"| `{_md(o.nodeid)}` | {_md(c)} |" for c in o.changes]
        lines += ["", f"If the change is intended: {snapshot_hint}."]
    others = [o for o in outcomes if o.state in (NEW, UNCHECKED)]
    if others:
        lines += ["", "| scenario | not compared |", "|---|---|"]
        lines += [f"| `{_md(o.nodeid)}` | {_md(o.state + ': ' + o.why)} |" for o in others]
    if not changed:
        lines += ["No scenario behaves differently from the committed snapshot."]
    return "\n".join(lines) + "\n"


def html_section(outcomes: Sequence[Outcome], mode: str) -> str:
    """The HTML report's section: one row per difference (every string escaped; styles in traces/html.py)."""
    esc = html.escape
    parts = [
        f'<section id="behaviour" class="behaviour"><h2>{TITLE}</h2>',
        f'<p class="summary">{esc(headline(outcomes, mode))}</p>',
    ]
    rows = []
    for o in outcomes:
        if o.state == CHANGED:
            rows += [
                (o.nodeid if i == 0 else "", o.state if i == 0 else "", c, "changed") for i, c in enumerate(o.changes)
            ]
        elif o.state in (NEW, UNCHECKED):
            rows.append((o.nodeid, o.state, o.why, "new"))
    if rows:
        parts.append(
            '<table class="index"><thead><tr><th>scenario</th><th>state</th><th>difference</th></tr></thead><tbody>'
        )
        parts += [
            f'<tr class="{cls}"><td>{esc(scenario)}</td><td>{esc(state)}</td><td><code>{esc(text)}</code></td></tr>'
            for scenario, state, text, cls in rows
        ]
        parts.append("</tbody></table>")
    else:
        parts.append("<p>No scenario behaves differently from the committed snapshot.</p>")
    parts.append("</section>")
    return "\n".join(parts)
