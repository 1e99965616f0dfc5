"""Stacks a deploy command created under another name than the one it was given.

A deploy command that ignores ``STACK_NAME`` / ``{stack_name}`` (a hard-coded
``--stack-name``, ``make deploy STACK_NAME=...``) still passes the tags the
harness handed it, so what it created carries this run's ``harness:run-id``.
The lifecycle finds those stacks when the expected one is missing, names them
in the deploy error and deletes them with the teardown: a run never leaves a
stack behind because the command chose its own name.
"""

from __future__ import annotations

from typing import Any

from harness import tags


def created_by_run(cfn: Any, run_id: str, expected: str) -> list[tuple[str, str]]:
    """(name, stack id) of every live stack tagged with ``run_id`` other than ``expected``."""
    from harness.inventory import list_stacks

    return [
        (r.name, r.stack_id)
        for r in list_stacks(cfn)
        if r.tags.get(tags.RUN_ID) == run_id and tags.is_managed(r.tags) and r.name != expected
    ]


def ignored_name_message(expected: str, found: list[tuple[str, str]]) -> str:
    names = ", ".join(name for name, _ in found)
    return (
        f"the deploy command created {names} instead of {expected}: it ignores the stack name it was given "
        f"(STACK_NAME / HARNESS_STACK_NAME in its environment, or {{stack_name}} in its argv); "
        "the harness deletes what it created with this run's tags"
    )
