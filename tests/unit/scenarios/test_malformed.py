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


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_pytest_shows_a_clean_collection_error(pytester: pytest.Pytester, path: Path) -> None:
    meta = expectations(path)
    pytester.makeconftest(CONFTEST)
    target = pytester.path / "scenarios" / path.name
    target.parent.mkdir()
    shutil.copy(path, target)

    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:branchstack")

    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED, out
    result.assert_outcomes(errors=1)
    assert f"scenarios/{path.name}:{meta['line']}: " in out, out
    assert meta["message"] in out, out
    assert "hint: " + meta["hint"].split("\n")[0] in out or meta["hint"] in out, out
    assert "Traceback" not in out, out
    assert not _INTERNAL_FRAME.search(out), out
