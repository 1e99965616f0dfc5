"""The ``{{ }}`` syntax as text: finding templates, and the string forms a rendered value takes.

Kept apart from the template engine so the matchers (which render their
regex patterns) and the engine (which renders matchers) do not import each other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

TEMPLATE = re.compile(r"\{\{(.*?)\}\}", re.S)


def stringify(value: Any) -> str:
    """How a value reads when substituted into a longer string."""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def render_pattern(pattern: str, render_value: Callable[[Any], Any]) -> str:
    """Render a regex: substituted values are escaped so they match literally."""
    if "{{" not in pattern:
        return pattern
    return TEMPLATE.sub(lambda m: re.escape(stringify(render_value(m.group(0)))), pattern)


def placeholder_pattern(pattern: str) -> str:
    """The pattern with templates replaced by a literal, to compile it at collection time."""
    return TEMPLATE.sub("x", pattern)
