"""Every malformed file is a clean collection error: file:line, message, hint, no traceback."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.scenarios.loader import load_file

pytest_plugins = ["pytester"]

CORPUS = Path(__file__).parent / "malformed"
FILES = sorted(CORPUS.glob("*.yaml"))
_META = re.compile(r"^# expect-(line|message|hint): (.*)$", re.M)
# A frame of the harness's own code, as pytest would print it in a traceback.
_INTERNAL_FRAME = re.compile(r"harness[/\\][\w/\\]+\.py")

CONFTEST = """
from harness.scenarios import collect


def pytest_collect_file(parent, file_path):
    return collect.collect_scenario_file(parent, file_path)
"""


def expectations(path: Path) -> dict[str, str]:
    meta = {key: value.strip() for key, value in _META.findall(path.read_text())}
    for key, value in meta.items():
        # Values may be quoted to make the header readable; quotes are not part of it.
        if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"":
            meta[key] = value[1:-1]
    assert set(meta) == {"line", "message", "hint"}, f"{path.name} needs expect-line/message/hint headers"
    return meta


def test_corpus_is_big_enough() -> None:
    assert len(FILES) >= 15


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_loader_reports_line_message_and_hint(path: Path) -> None:
    meta = expectations(path)
    with pytest.raises(ScenarioError) as info:
        load_file(path, display_path=path.name)
    err = info.value
    assert err.line == int(meta["line"]), str(err)
    assert meta["message"] in err.message, str(err)
    assert meta["hint"] in (err.hint or ""), str(err)
    assert str(err).startswith(f"{path.name}:{meta['line']}: ")


def test_pytest_shows_a_clean_collection_error_for_every_file(pytester: pytest.Pytester) -> None:
    """One pytest session collects the whole corpus: each file's own error section names its line, message and
    hint, and no section shows a traceback or a frame of the harness (every file is checked, all failures said)."""
    pytester.makeconftest(CONFTEST)
    (pytester.path / "scenarios").mkdir()
    for path in FILES:
        shutil.copy(path, pytester.path / "scenarios" / path.name)

    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:branchstack")

    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED, out
    result.assert_outcomes(errors=len(FILES))
    assert "Traceback" not in out, out
    assert not _INTERNAL_FRAME.search(out), out
    sections = error_sections(result.stdout.lines)
    assert sorted(sections) == sorted(path.name for path in FILES), out
    failures = [problem for path in FILES if (problem := section_problem(path, sections[path.name]))]
    assert not failures, "\n\n".join(failures)


_SECTION = re.compile(r"^_+ ERROR collecting scenarios/(\S+) _+$")


def error_sections(lines: list[str]) -> dict[str, str]:
    """File name -> the text of its ``ERROR collecting`` section (up to the next header or separator line)."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        header = _SECTION.match(line)
        if header:
            current = sections.setdefault(header.group(1), [])
        elif line.startswith(("_", "=")):
            current = None
        elif current is not None:
            current.append(line)
    return {name: "\n".join(text) for name, text in sections.items()}


def section_problem(path: Path, section: str) -> str | None:
    """What the section of ``path`` lacks of its file's expected line, message and hint (None: nothing)."""
    meta = expectations(path)
    missing = [
        f"{what} {want!r}"
        for what, want, ok in (
            (
                "location",
                f"scenarios/{path.name}:{meta['line']}: ",
                f"scenarios/{path.name}:{meta['line']}: " in section,
            ),
            ("message", meta["message"], meta["message"] in section),
            ("hint", meta["hint"], "hint: " + meta["hint"].split("\n")[0] in section or meta["hint"] in section),
        )
        if not ok
    ]
    return f"{path.name}: its section lacks {', '.join(missing)}:\n{section}" if missing else None
