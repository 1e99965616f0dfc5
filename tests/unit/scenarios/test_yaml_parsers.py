"""libyaml's parser and the pure-Python one read scenario files the same: data, lines, tags, errors.

Scenario files are parsed by libyaml when PyYAML has it; the pure-Python
parser is the reference (and words every syntax error). These tests compare
the two on every scenario file in the repository and on the cases where the
parsers' node details differ (libyaml marks a plain scalar's style "", not None).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.errors import ScenarioError
from harness.scenarios import yamlio
from harness.scenarios.yamlio import LocatedDict, LocatedList, ScenarioLoader, parse_yaml

ROOT = Path(__file__).resolve().parents[3]
FILES = sorted(
    p
    for pattern in ("scenarios/*.yaml", "tests/**/scenarios/**/*.yaml", "reference-cdk/scenarios/*.yaml")
    for p in ROOT.glob(pattern)
    if "node_modules" not in p.parts and "__snapshots__" not in p.parts
)

needs_libyaml = pytest.mark.skipif(yamlio.CParser is None, reason="PyYAML without libyaml")


def pure(text: str, path: str = "f.yaml") -> Any:
    loader = ScenarioLoader(text)
    loader.path = path
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def fast(text: str, path: str = "f.yaml") -> Any:
    parsed, data = yamlio._fast(text, path)
    assert parsed, "libyaml did not read it"
    return data


def located(data: Any) -> Any:
    """The data with every container's lines, for an exact comparison."""
    if isinstance(data, LocatedDict):
        items = {k: located(v) for k, v in data.items()}
        return ("map", data.line, data.key_lines, data.value_lines, items)
    if isinstance(data, LocatedList):
        return ("seq", data.line, data.item_lines, [located(v) for v in data])
    return (type(data).__name__, data)


def test_the_corpus_is_found() -> None:
    assert len(FILES) >= 20, FILES


@needs_libyaml
@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_scenario_file_reads_the_same_with_either_parser(path: Path) -> None:
    text = path.read_text()
    try:
        expected = located(pure(text, str(path)))
    except ScenarioError as exc:  # a malformed-corpus file: the same error, same line, either way
        with pytest.raises(ScenarioError) as got:
            parse_yaml(text, str(path))
        assert (got.value.render(), got.value.line) == (exc.render(), exc.line)
        return
    except yaml.MarkedYAMLError as exc:  # a syntax error: the reference parser's line and words
        with pytest.raises(ScenarioError) as got:
            parse_yaml(text, str(path))
        mark = exc.problem_mark or exc.context_mark
        assert mark is not None and got.value.line == mark.line + 1
        assert str(exc.problem) in got.value.render()
        return
    assert located(fast(text, str(path))) == expected


CASES = {
    "plain vs quoted tag arguments": 'a: !contains ""\nb: !exact "1"\nc: !exact 1\nd: !ge 2.5\ne: !len "3"\n',
    "block scalars and anchors": "base: &b {x: 1, y: [1, 2]}\nm:\n  <<: *b\n  y: 3\nt: |\n  line\n",
    "dates stay text, nulls and booleans resolve": "d: 2024-01-01\nn: ~\nt: true\nq: 'true'\n",
    "empty matchers in block and flow style": "a: !absent\nb: {c: !any }\nl: [!absent , 1]\n",
}


@needs_libyaml
@pytest.mark.parametrize("text", CASES.values(), ids=CASES.keys())
def test_node_details_read_the_same(text: str) -> None:
    assert located(fast(text)) == located(pure(text))


@needs_libyaml
def test_an_empty_plain_contains_is_refused_by_both_parsers() -> None:
    """libyaml marks a plain scalar's style "", which must not read as quoted."""
    text = "x: 1\nitems: !contains\n"
    for read in (fast, pure):
        with pytest.raises(ScenarioError, match="!contains needs the element") as exc:
            read(text)
        assert exc.value.line == 2


@needs_libyaml
def test_a_constructor_error_keeps_its_line_on_the_fast_path() -> None:
    text = "a: 1\nb:\n  c: 1\n  c: 2\n"
    with pytest.raises(ScenarioError, match="duplicate key 'c'") as exc:
        fast(text)
    assert exc.value.line == 4


@pytest.mark.parametrize(
    "text",
    ["a: [1, 2\n", "a: 1\n---\nb: 2\n", "a:\n\tb: 1\n", "a: b: c\n", "x: 1\n\x07\n"],
    ids=["unclosed flow", "two documents", "tab", "mapping in plain", "control character"],
)
def test_a_syntax_error_is_worded_by_the_pure_parser(text: str) -> None:
    """Whatever libyaml would say, the user sees the reference parser's message and line."""
    with pytest.raises(ScenarioError) as got:
        parse_yaml(text, "f.yaml")
    if "\x07" in text:
        assert "control character" in got.value.render()
        return
    with pytest.raises(yaml.MarkedYAMLError) as reference:
        pure(text)
    mark = reference.value.problem_mark or reference.value.context_mark
    assert got.value.line == mark.line + 1
    assert str(reference.value.problem) in got.value.render()
