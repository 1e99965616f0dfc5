"""The reference stack (``reference-stack/``: a packaged SAM app with API Gateway, a layer and
bundled dependencies, deployed by its own ``make deploy``) as the cases 12-15 run it.

Sessions run in the repository itself, as ``make integration`` does, each with its
own report folder (``HARNESS_REPORT_DIR``) and branch (``HARNESS_BRANCH``), so runs
never share an emulator or a stack unless a case wants them to.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import psutil

from reliability.support import ROOT, Ctx

APP = "orders"
#: One scenario through API Gateway, Lambda (with its layer) and DynamoDB: the quickest full path.
SCENARIO = "scenarios/test_sam_style.py"
#: The last line before the tests start (pytest -v prints a test's line only once it has ended).
TESTS_RUNNING = r"branchstack: drift"


def stack_for(branch: str) -> str:
    from harness.naming import stage_from_branch

    return f"{APP}-{stage_from_branch(branch)}"


def env_for(ctx: Ctx, name: str, branch: str, **extra: str) -> tuple[dict[str, str], Path]:
    """(environment, report folder) of a run of the reference stack on ``branch``."""
    report = ctx.dir(name)
    return {"HARNESS_REPORT_DIR": str(report), "HARNESS_BRANCH": branch, **extra}, report


def tree(pid: int) -> list[tuple[int, float, str]]:
    """(pid, start time, command) of ``pid`` and every descendant, to check them by pid later."""
    found = []
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []
    for p in procs:
        try:
            found.append((p.pid, p.create_time(), " ".join(p.cmdline())[:100]))
        except psutil.Error:
            continue
    return found


def alive(idents: list[tuple[int, float, str]]) -> list[tuple[int, float, str]]:
    """The processes of ``idents`` still running (same pid and start time, not a zombie)."""
    left = []
    for ident in idents:
        try:
            p = psutil.Process(ident[0])
            if p.create_time() == ident[1] and p.status() != psutil.STATUS_ZOMBIE:
                left.append(ident)
        except psutil.Error:
            continue
    return left


def gone_after(idents: list[tuple[int, float, str]], limit: float) -> tuple[float | None, list[str]]:
    """(seconds until every process of ``idents`` ended, or None) and what was still running at ``limit``."""
    started = time.monotonic()
    while True:
        left = alive(idents)
        waited = time.monotonic() - started
        if not left:
            return waited, []
        if waited > limit:
            return None, [f"pid {pid}: {cmd}" for pid, _, cmd in left]
        time.sleep(0.05)


def scratch_left(report: Path, until: float = 0.0) -> list[str]:
    """What is in the run's scratch folders (extracted Lambda code), waiting for them to go until ``until``.

    ``until`` is a ``time.monotonic()`` value: the emulator's group ends first and
    its scratch folder goes right after, so a check needs to give it that moment.
    """
    folder = report / "emulator-tmp"
    while True:
        left = [str(p) for p in folder.iterdir()] if folder.is_dir() else []
        if not left or time.monotonic() >= until:
            return left
        time.sleep(0.05)


def root() -> Path:
    return ROOT


def merged(*envs: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in envs:
        out.update(e)
    return out
