"""Rules of the house that a linter does not check (STYLE.md), over the source of ``harness/``."""

from __future__ import annotations

import ast
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[2] / "harness"


def test_no_import_is_renamed_to_a_private_name_to_dodge_a_clash() -> None:
    """``import x as _x`` hides a clash of names instead of removing it: rename one of them, or import the module.

    An import made only for its side effect (a module that registers scenario steps, marked ``noqa: F401``)
    names nothing it uses, so its private name dodges nothing.
    """
    found = []
    for path in sorted(HARNESS.rglob("*.py")):
        text = path.read_text()
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom) and "F401" not in lines[node.lineno - 1]:
                found.extend(
                    f"{path.relative_to(HARNESS.parent)}:{node.lineno}: {a.name} as {a.asname}"
                    for a in node.names
                    if a.asname and a.asname.startswith("_")
                )
    assert found == []
