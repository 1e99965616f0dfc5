"""The markdown report: machine, table (fault, runs, result, figure), details per case."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import sys
from collections.abc import Sequence
from importlib import metadata

from reliability.support import CaseResult


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> str:
    return (
        f"{os.cpu_count()} CPUs ({platform.machine()}, {platform.system()} {platform.release()}), "
        f"Python {platform.python_version()}, MiniStack {_version('ministack')}, botocore {_version('botocore')}, "
        f"awscli {_version('awscli')}, pytest {_version('pytest')}, pytest-xdist {_version('pytest-xdist')}"
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


INTRO = [
    "# Reliability matrix",
    "",
    "Every row is real pytest sessions of the harness in throw-away git projects (a tiny CloudFormation",
    "template deployed with `aws cloudformation deploy`'s steps through boto3, `cfn_deploy.py`), on MiniStack emulators started by the matrix",
    "(endpoint target, inspected after each session) or by the harness itself (local target).",
    "Cases 12-15 run the reference stack instead (`reference-stack/`: a packaged SAM app with API Gateway,",
    "a layer and bundled dependencies, deployed by its own `make deploy`), from the repository itself.",
    "Regenerate with `make reliability` (or `.venv/bin/python -m reliability`; `--quick` for small counts,",
    "`--cases 1,2 --merge` to re-run some rows). The code is in `reliability/`, one module per row.",
    "",
]
TABLE_HEAD = ["| # | fault | runs | result | figure | pass |", "|---|---|---|---|---|---|"]
_ROW = re.compile(r"^\| (\d+) \|")
_SECTION = re.compile(r"^### (\d+)\. ")


def row(r: CaseResult) -> str:
    return (
        f"| {r.number} | {_cell(r.fault)} | {r.runs} | {_cell(r.result)} | {_cell(r.figure)} | "
        f"{'yes' if r.ok else '**no**'} |"
    )


def section(r: CaseResult) -> list[str]:
    lines = [
        f"### {r.number}. {r.fault}",
        "",
        f"{r.runs} runs in {r.seconds / 60:.1f} min. {r.result}. {r.figure}.",
        "",
    ]
    lines += [f"- {note}" for note in r.notes]
    return [*lines, ""]


def _parse(text: str) -> tuple[list[str], dict[int, str], dict[int, list[str]]]:
    """(header lines after the intro, table rows by case, detail sections by case) of an earlier report."""
    lines = text.splitlines()
    header: list[str] = []
    rows: dict[int, str] = {}
    sections: dict[int, list[str]] = {}
    current: int | None = None
    for line in lines:
        if (m := _SECTION.match(line)) is not None:
            current = int(m.group(1))
            sections[current] = [line]
        elif current is not None:
            sections[current].append(line)
        elif (m := _ROW.match(line)) is not None:
            rows[int(m.group(1))] = line
        elif line.startswith("- ") and not rows:
            header.append(line)
    return header, rows, sections


def render(
    results: Sequence[CaseResult],
    *,
    command: str,
    seed: int,
    total_seconds: float,
    started: dt.datetime,
    previous: str | None = None,
    load: tuple[float, float] | None = None,
) -> str:
    """The report; with ``previous`` (an earlier report), its other rows are kept and these replaced.

    ``load``: the 1-minute load average at the start and at the end (times depend on it).
    """
    loads = f"; load average {load[0]:.1f} at the start, {load[1]:.1f} at the end" if load else ""
    header = [
        f"- date: {started.strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine()}",
        f"- command: `{command}` (seed {seed})",
        f"- total run time: {total_seconds / 60:.1f} min{loads}",
    ]
    rows = {r.number: row(r) for r in results}
    sections = {r.number: section(r) for r in results}
    if previous:
        old_header, old_rows, old_sections = _parse(previous)
        numbers = ", ".join(str(r.number) for r in results)
        header = [x for x in old_header if not x.startswith("- machine:")]
        header += [
            f"- re-run: case(s) {numbers} on {started.strftime('%Y-%m-%d %H:%M UTC')} with `{command}` "
            f"(seed {seed}, {total_seconds / 60:.1f} min{loads})",
            f"- machine: {machine()}",
        ]
        rows = {**old_rows, **rows}
        sections = {**old_sections, **sections}
    lines = [*INTRO, *header, "", *TABLE_HEAD]
    lines += [rows[n] for n in sorted(rows)]
    lines += ["", "## Details", ""]
    for n in sorted(sections):
        body = sections[n]
        while body and not body[-1].strip():
            body = body[:-1]
        lines += [*body, ""]
    return "\n".join(lines).rstrip() + "\n"


def command_line() -> str:
    return "python -m reliability" + ("" if len(sys.argv) <= 1 else " " + " ".join(sys.argv[1:]))
