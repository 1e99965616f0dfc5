"""Dotted paths into observed data: ``body.items[0].qty``.

``save`` and templates (``saved.order.items[0]``) address values with the same
small grammar, so both report a missing key or index the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from harness.errors import PathError

Segment = str | int

_TOKEN = re.compile(r"\.?(?P<name>[A-Za-z0-9_$-]+)|\[(?P<index>-?\d+)\]")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_$-]+")


def parse_path(text: str) -> tuple[Segment, ...]:
    """Split ``body.items[0].qty`` into ``("body", "items", 0, "qty")``."""
    if not isinstance(text, str) or not text.strip():
        raise PathError("a path must be a non-empty string like body.order_id")
    text = text.strip()
    segments: list[Segment] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        # A leading dot, a dot before an index, or two dots in a row are typos.
        if m is None or (m.group("name") and (pos == 0) == text.startswith(".", pos)):
            raise PathError(f"malformed path {text!r} at character {pos + 1}; write it like body.items[0].qty")
        segments.append(m.group("name") if m.group("name") is not None else int(m.group("index")))
        pos = m.end()
    if not isinstance(segments[0], str):
        raise PathError(f"malformed path {text!r}: it must start with a field name, not an index")
    return tuple(segments)


def format_path(segments: Sequence[Segment]) -> str:
    """The inverse of :func:`parse_path`; keys that need it are bracket-quoted."""
    out = ""
    for seg in segments:
        if isinstance(seg, int):
            out += f"[{seg}]"
        elif _PLAIN_KEY.fullmatch(seg):
            out += f".{seg}" if out else seg
        else:
            out += f"[{seg!r}]"
    return out


def get_path(value: Any, segments: Sequence[Segment], *, root: str = "") -> Any:
    """Follow ``segments`` into ``value``; a :class:`PathError` names where it stopped.

    ``root`` is how ``value`` itself is named in messages (``saved.order``).
    """
    walked: list[Segment] = []

    def named(extra: Sequence[Segment] = ()) -> str:
        below = format_path([*walked, *extra])
        if not root:
            return below or "the value"
        return f"{root}{below}" if below.startswith("[") or not below else f"{root}.{below}"

    for seg in segments:
        if isinstance(seg, int):
            if not isinstance(value, list):
                raise PathError(f"{named()} is {_kind(value)}, not a list, so [{seg}] does not apply")
            if not -len(value) <= seg < len(value):
                raise PathError(f"{named([seg])}: index out of range ({named()} has {len(value)} items)")
            value = value[seg]
        else:
            if not isinstance(value, Mapping):
                raise PathError(f"{named()} is {_kind(value)}, not a mapping, so .{seg} does not apply")
            if seg not in value:
                keys = ", ".join(sorted(map(str, value))) or "(none)"
                raise PathError(f"{named([seg])}: no such key; {named()} has keys: {keys}")
            value = value[seg]
        walked.append(seg)
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string"}.get(
        type(value), f"a {type(value).__name__}"
    )
