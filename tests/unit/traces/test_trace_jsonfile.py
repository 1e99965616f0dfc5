from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from harness.traces import jsonfile

_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
_values = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
)


@given(value=_values, levels=st.integers(0, 4))
def test_the_text_is_the_value_json_gives_whatever_the_layout(value: Any, levels: int) -> None:
    text = jsonfile.dumps(value, levels=levels)
    assert json.loads(text) == json.loads(json.dumps(value, indent=1))
    assert text.endswith("\n")


def test_the_outer_levels_are_one_item_a_line_and_below_them_compact() -> None:
    trace = {
        "trace_id": "1-a-b",
        "documents": [{"id": "1", "subsegments": [{"id": "2"}]}, {"id": "3"}],
        "spans": [{"depth": 0}, {"depth": 1}],
        "empty": [],
        "when": object(),
    }
    assert jsonfile.dumps(trace, default=lambda o: "when") == (
        "{\n"
        ' "trace_id": "1-a-b",\n'
        ' "documents": [\n'
        '  {"id": "1", "subsegments": [{"id": "2"}]},\n'
        '  {"id": "3"}\n'
        " ],\n"
        ' "spans": [\n'
        '  {"depth": 0},\n'
        '  {"depth": 1}\n'
        " ],\n"
        ' "empty": [],\n'
        ' "when": "when"\n'
        "}\n"
    )
    assert jsonfile.dumps([{"a": [1]}, {"b": 2}], levels=1) == '[\n {"a": [1]},\n {"b": 2}\n]\n'
