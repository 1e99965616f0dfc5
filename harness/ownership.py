"""Whose emulator and stack a run is using, and what it may do with them.

A run owns what it started. What it found kept (an emulator left by
``harness up``, ``harness deploy`` or ``--keep-stack``; a stack kept by
``harness deploy`` or ``--keep-stack``) it uses and leaves as it found it:
only ``harness destroy`` and ``harness down`` remove kept things. These
helpers let the lifecycle ask any target about it; only the local target
(the embedded emulator) has kept processes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Who keeps a stack (and its emulator) a session kept: named in the lease and the emulator's state file.
KEEP_STACK_KEEPER = "pytest --keep-stack"
#: Who keeps the stack (and names the emulator) between the runs of ``pytest --watch``: the watch, which ends them.
WATCH_KEEPER = "pytest --watch"


def set_keeper(target: Any, keeper: str) -> None:
    """Name who keeps the target's emulator if this run keeps it (written to its state file)."""
    if hasattr(target, "keeper"):
        target.keeper = keeper


def swept(target: Any) -> list[str]:
    """What the target's orphan sweep stopped before it started (one line each)."""
    return list(getattr(target, "swept", []) or [])


def adopt(target: Any) -> None:
    """Take over a kept emulator so the teardown stops it (``harness destroy``)."""
    take = getattr(target, "adopt", None)
    if take is not None:
        take()


def left_as_found(target: Any) -> bool:
    """Whether the target is someone else's kept emulator, which this run leaves running."""
    return bool(getattr(target, "attached", False)) and not getattr(target, "owned", True)


def kept_by_words(kept: Mapping[str, Any]) -> str:
    """'kept by `harness deploy` (run abc) at ...'."""
    run = f" (run {kept['run']})" if kept.get("run") else ""
    at = f" at {kept['at']}" if kept.get("at") else ""
    return f"kept by `{kept.get('by') or 'an earlier run'}`{run}{at}"


def kept_stack_line(stack: str, kept: Mapping[str, Any]) -> str:
    return (
        f"stack {stack} is {kept_by_words(kept)}: this run uses it and leaves it deployed "
        "(`harness destroy` removes it)"
    )
