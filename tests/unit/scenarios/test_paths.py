"""Dotted paths: parsing, formatting, lookups and their error messages."""

from __future__ import annotations

import pytest

from harness.scenarios.paths import PathError, format_path, get_path, parse_path


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("body", ("body",)),
        ("body.order_id", ("body", "order_id")),
        ("body.items[0].qty", ("body", "items", 0, "qty")),
        ("messages[-1]", ("messages", -1)),
        ("headers.content-type", ("headers", "content-type")),
        ("a[0][1]", ("a", 0, 1)),
    ],
)
def test_parse_and_format_round_trip(text: str, segments: tuple) -> None:
    assert parse_path(text) == segments
    assert format_path(segments) == text


@pytest.mark.parametrize("text", ["", " ", ".a", "a.", "a..b", "a[x]", "[0]", "a b", "a[0]b", "a.[0]"])
def test_malformed_paths(text: str) -> None:
    with pytest.raises(PathError):
        parse_path(text)


def test_get_path_follows_keys_and_indices() -> None:
    data = {"body": {"items": [{"qty": 2}, {"qty": 3}]}}
    assert get_path(data, parse_path("body.items[1].qty")) == 3
    assert get_path(data, parse_path("body.items[-1].qty")) == 3


def test_get_path_missing_key_names_the_keys_present() -> None:
    with pytest.raises(PathError, match=r"body.order: no such key; body has keys: id, status"):
        get_path({"body": {"id": 1, "status": "x"}}, parse_path("body.order"))


def test_get_path_index_out_of_range() -> None:
    with pytest.raises(PathError, match=r"messages\[2\]: index out of range \(messages has 1 items\)"):
        get_path({"messages": [1]}, parse_path("messages[2]"))


def test_get_path_wrong_container() -> None:
    with pytest.raises(PathError, match="body is a string, not a mapping"):
        get_path({"body": "oops"}, parse_path("body.id"))
    with pytest.raises(PathError, match="not a list"):
        get_path({"body": {}}, parse_path("body[0]"))
