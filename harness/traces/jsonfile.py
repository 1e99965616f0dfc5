"""The trace files' JSON: one valid document, a line per item, written by the C encoder.

A trace file is read by people (a span per line, a segment document per line)
and by programs (``json.loads`` of the whole file). ``json.dumps`` with an
indent gives the first, but any indent makes Python encode with its
pure-Python encoder, about ten times slower than the C one: the trace files
took more of a run's end than anything else. So the layout is done here, the
outer levels one item per line, and each line is encoded compact::

    {
     "nodeid": "scenarios/orders.yaml::create then read an order",
     "documents": [
      {"id": "9a9ae0cd3655691c", "name": "dynamodb", ...},
      {"id": "78524225e727cd48", "name": "orders-create", ...}
     ],
     "spans": [
      {"depth": 0, "id": "...", "kind": "client", ...}
     ]
    }

The value is the one ``json.dumps(value, indent=1)`` gives; only the
whitespace differs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def dumps(value: Any, *, levels: int = 2, default: Callable[[Any], Any] | None = None) -> str:
    """``value`` as JSON text ending in a newline: the outer ``levels`` of objects and arrays one member or
    item per line (indented one space a level), everything below them compact on its line."""

    def lay(item: Any, depth: int) -> str:
        pad = " " * depth
        if depth < levels and isinstance(item, dict) and item and all(isinstance(k, str) for k in item):
            lines = (f"{pad} {json.dumps(k)}: {lay(v, depth + 1)}" for k, v in item.items())
            return "{\n" + ",\n".join(lines) + "\n" + pad + "}"
        if depth < levels and isinstance(item, list | tuple) and item:
            return "[\n" + ",\n".join(f"{pad} {lay(x, depth + 1)}" for x in item) + "\n" + pad + "]"
        return json.dumps(item, default=default)

    return lay(value, 0) + "\n"
