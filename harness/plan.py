"""What a run will deploy, derived before anything starts: branch -> stage -> stack name, and the guards.

Also the expansion of a deploy or destroy command's argv words with the plan's values.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from harness.branch import BranchInfo, detect
from harness.errors import GuardError
from harness.naming import is_protected, pr_stage, stack_name, stage_from_branch
from harness.settings import Settings, default_app


@dataclass(frozen=True)
class Plan:
    """What this run will deploy, derived before anything is started."""

    branch: BranchInfo
    stage: str
    stack_name: str
    app: str
    run_id: str


def make_plan(settings: Settings, env: Mapping[str, str], *, pr_stages: bool = False) -> Plan:
    """Name the stage and stack for this branch; refuse protected stages."""
    branch = detect(env, settings.root)
    stage = pr_stage(branch.pr_number) if (pr_stages and branch.pr_number) else stage_from_branch(branch.branch)
    app = settings.app or default_app(settings.root)
    name = stack_name(settings.stack_name_pattern, app, stage)
    # The embedded emulator is private to this run: no production stack can
    # live there, so the guard protects shared targets (aws, endpoint) only.
    if is_protected(stage, settings.protected_stages) and settings.target != "local":
        raise GuardError(
            f"stage {stage!r} (branch {branch.branch!r} from {branch.source}) is protected: "
            f"the harness never deploys over or tears down {', '.join(settings.protected_stages)}",
            hint="run on a feature branch, or set HARNESS_BRANCH to a throwaway name",
        )
    return Plan(branch=branch, stage=stage, stack_name=name, app=app, run_id=uuid.uuid4().hex[:12])


def expand_argv(argv: tuple[str, ...] | list[str], values: Mapping[str, str]) -> list[str]:
    """Fill ``{stack_name}``, ``{stage}`` and ``{region}`` in argv words; ``{tags}`` alone becomes the tag words.

    Plain token replacement, not ``str.format``: other braces in the command
    stay as written. The values are harness-made (sanitized), and the words
    are never joined into a shell string.
    """
    tokens = {
        "{stack_name}": values.get("HARNESS_STACK_NAME", ""),
        "{stage}": values.get("HARNESS_STAGE", values.get("STAGE", "")),
        "{region}": values.get("AWS_REGION", ""),
    }
    out: list[str] = []
    for word in argv:
        if word == "{tags}":
            out.extend(values.get("HARNESS_STACK_TAGS", "").split())
            continue
        for token, value in tokens.items():
            word = word.replace(token, value)
        out.append(word)
    return out
