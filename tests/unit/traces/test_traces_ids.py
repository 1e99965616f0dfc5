from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.traces import ids


def test_trace_and_segment_ids_have_the_xray_shape() -> None:
    tid = ids.new_trace_id(now=0x6B043315)
    assert ids.is_trace_id(tid)
    assert tid.startswith("1-6b043315-")
    assert ids.trace_epoch(tid) == 0x6B043315
    sid = ids.new_segment_id()
    assert ids.is_segment_id(sid)
    assert len({ids.new_segment_id() for _ in range(1000)}) == 1000


def test_trace_epoch_refuses_garbage() -> None:
    with pytest.raises(ValueError, match="not an X-Ray trace id"):
        ids.trace_epoch("1-xyz")


def test_header_round_trip_keeps_unknown_fields() -> None:
    value = "Root=1-6b043315-23214c168721134c5ded6f95;Parent=f36c9e124ce71a85;Sampled=1;Lineage=a87bd80c:1"
    h = ids.parse_header(value)
    assert (h.root, h.parent, h.sampled) == ("1-6b043315-23214c168721134c5ded6f95", "f36c9e124ce71a85", True)
    assert h.extra == (("Lineage", "a87bd80c:1"),)
    assert h.render() == value


def test_header_value_and_parse_agree() -> None:
    tid, sid = ids.new_trace_id(), ids.new_segment_id()
    h = ids.parse_header(ids.header_value(tid, sid))
    assert (h.root, h.parent, h.sampled) == (tid, sid, True)
    assert ids.parse_header(ids.header_value(tid, sid, sampled=False)).sampled is False


@pytest.mark.parametrize("value", [None, "", ";;;", "Root", "Sampled=maybe", "garbage=;=x"])
def test_malformed_headers_parse_to_empty_fields(value: str | None) -> None:
    h = ids.parse_header(value)
    assert h.root is None and h.parent is None and h.sampled is None


@given(st.text())
def test_parse_never_raises(value: str) -> None:
    ids.parse_header(value).render()
