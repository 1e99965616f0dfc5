"""Matching semantics: subset, lists, every tag matcher, all mismatches with paths."""

from __future__ import annotations

from typing import Any

import pytest

from harness.scenarios.loader import load_text
from harness.scenarios.matchers import (
    MISSING,
    Absent,
    AnyValue,
    Between,
    Compare,
    Contains,
    Exact,
    Length,
    Mismatch,
    Regex,
    describe,
    match,
)
from harness.scenarios.yamlio import parse_yaml


def paths(mismatches: list[Mismatch]) -> list[str]:
    return [m.path for m in mismatches]


def test_subset_match_ignores_extra_keys() -> None:
    assert match({"status": 201}, {"status": 201, "headers": {}, "body": None}) == []


def test_missing_key_is_a_mismatch() -> None:
    [m] = match({"body": {"id": 1}}, {"body": {}})
    assert m.path == "body.id" and m.observed is MISSING
    assert "key is missing" in m.render()


def test_all_mismatches_are_reported_with_paths() -> None:
    expected = {"status": 201, "body": {"status": "CREATED", "items": [{"qty": 2}, {"qty": Compare("!ge", 1)}]}}
    observed = {"status": 500, "body": {"status": "FAILED", "items": [{"qty": 3}, {"qty": 0}]}}
    assert paths(match(expected, observed)) == ["status", "body.status", "body.items[0].qty", "body.items[1].qty"]


def test_scalar_types_are_strict_but_int_equals_float() -> None:
    assert match(1, 1.0) == []
    assert match(1, True) != []
    assert match(True, 1) != []
    assert match("1", 1) != []
    assert match(None, None) == []
    assert match(None, "") != []
    [m] = match({"status": 200}, {"status": "200"})
    assert m.note == "a string" and 'observed "200"' in m.render()


def test_lists_compare_element_wise_and_by_length() -> None:
    assert match([1, 2], [1, 2]) == []
    result = match([1, 2, 3], [1, 5])
    assert paths(result) == ["", "[1]"]
    assert "3 items" in result[0].expected and "!contains" in result[0].note


def test_type_mismatch_of_containers() -> None:
    assert match({"a": 1}, [1])[0].expected == "a mapping"
    assert match([1], {"a": 1})[0].expected == "a list"


def test_exact_rejects_extra_keys_at_every_level() -> None:
    expected = Exact({"a": 1, "b": {"c": 2}})
    assert match(expected, {"a": 1, "b": {"c": 2}}) == []
    result = match({"body": expected}, {"body": {"a": 1, "x": 0, "b": {"c": 2, "y": 0}}})
    assert paths(result) == ["body.b.y", "body.x"]


def test_regex_uses_search_and_requires_a_string() -> None:
    assert match(Regex("json"), "application/json; charset=utf-8") == []
    assert match(Regex("^[0-9a-f]{4}$"), "abcd") == []
    assert match(Regex("^x"), "yx") != []
    [m] = match(Regex("1"), 1)
    assert "not a string" in m.note


@pytest.mark.parametrize(
    ("op", "bound", "good", "bad"),
    [("!gt", 1, 2, 1), ("!ge", 1, 1, 0), ("!lt", 1, 0, 1), ("!le", 1, 1, 2), ("!ge", 0.5, 0.5, 0.49)],
)
def test_comparisons(op: str, bound: Any, good: Any, bad: Any) -> None:
    assert match(Compare(op, bound), good) == []
    assert paths(match({"n": Compare(op, bound)}, {"n": bad})) == ["n"]


def test_comparison_rejects_non_numbers_and_booleans() -> None:
    assert match(Compare("!ge", 1), "5") != []
    assert match(Compare("!ge", 0), True) != []


def test_between_is_inclusive() -> None:
    matcher = Between(1, 3)
    assert [match(matcher, n) == [] for n in (0, 1, 2, 3, 4)] == [False, True, True, True, False]


def test_absent_and_any() -> None:
    assert match({"item": Absent()}, {}) == []
    [m] = match({"item": Absent()}, {"item": {"id": 1}})
    assert m.path == "item"
    assert match({"x": AnyValue()}, {"x": None}) == []
    [m] = match({"x": AnyValue()}, {})
    assert m.observed is MISSING


def test_len() -> None:
    assert match(Length(2), [1, 2]) == []
    assert match(Length(3), "abc") == []
    assert match(Length(1), {"a": 1}) == []
    assert "length 1" in match(Length(2), [1])[0].note
    assert "no length" in match(Length(2), 5)[0].note


def test_contains() -> None:
    assert match(Contains({"sku": "A"}), [{"sku": "B", "qty": 1}, {"sku": "A", "qty": 2}]) == []
    assert match(Contains("ok"), "all ok here") == []
    assert "none of 1 items" in match(Contains({"sku": "C"}), [{"sku": "A"}])[0].note
    assert match(Contains("x"), 5)[0].note == "a number, not a list or string"


def test_matchers_from_yaml_tags() -> None:
    data = parse_yaml(
        """
expect:
  status: !between [200, 299]
  id: !re "^[0-9a-f]{32}$"
  items: !len 2
  tags: !contains blue
  total: !gt 0
  gone: !absent
  any: !any
  exact: !exact {a: 1}
""",
        "t.yaml",
    )["expect"]
    observed = {
        "status": 201,
        "id": "a" * 32,
        "items": [1, 2],
        "tags": ["red", "blue"],
        "total": 3,
        "any": None,
        "exact": {"a": 1},
    }
    assert match(data, observed) == []
    bad = {"status": 404, "id": "nope", "items": [], "tags": [], "total": 0, "gone": 1, "exact": {"a": 1, "b": 2}}
    assert sorted(paths(match(data, bad))) == sorted(
        ["status", "id", "items", "tags", "total", "gone", "any", "exact.b"]
    )


def test_describe_writes_matchers_as_tags() -> None:
    text = describe(
        {
            "status": 200,
            "id": Regex("^x"),
            "n": Compare("!ge", 1),
            "r": Between(1, 2),
            "gone": Absent(),
            "l": Length(1),
            "c": Contains("a"),
            "e": Exact({"a": 1}),
            "x": AnyValue(),
        }
    )
    assert text == (
        "{status: 200, id: !re '^x', n: !ge 1, r: !between [1, 2], gone: !absent, l: !len 1, "
        'c: !contains "a", e: !exact {a: 1}, x: !any}'
    )


def test_keys_needing_quotes_in_paths() -> None:
    [m] = match({"a b": 1}, {"a b": 2})
    assert m.path == "['a b']"


def test_expectation_with_templates_in_matcher_arguments() -> None:
    doc = load_text(
        """
scenarios:
  - name: t
    steps:
      - http: {api: Api}
        save: {n: body.n}
      - http: {api: Api}
        expect: {body: {n: !ge "{{ saved.n }}", id: !re "^{{ saved.n }}-"}}
"""
    )
    expect = doc.scenarios[0].steps[1].expect
    from harness.scenarios.templating import TemplateContext, render

    rendered = render(expect, TemplateContext(saved={"n": 1.5}))
    assert match(rendered, {"body": {"n": 2, "id": "1.5-x"}}) == []
    # The saved value is matched literally: "1.5" must not match "1x5".
    assert paths(match(rendered, {"body": {"n": 1, "id": "1x5-x"}})) == ["body.n", "body.id"]
