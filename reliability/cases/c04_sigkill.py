"""Case 4: SIGKILL of the whole session (a CI container lost) at a random point.

Nothing of the harness runs after a SIGKILL, so the stack stays, tagged. Each
kill is on its own branch; half of them are followed at once by the next run
on the same branch (what does it say about the dead run's lease, and does it
end with the stack deleted?); the rest are left for ``harness gc``. Right after
the last kill, ``harness gc --yes`` runs against the emulator from a project
whose remote lacks the killed branches (``--orphan-grace 0``); the dead runs
were on this machine, so their leases must not hold it back. Only if it skipped
stacks as in use does it run again once the leases expired
(``harness.lease.LEASE_SECONDS``). Whatever is still there after that is
removed by a tag-based sweep of this script (``harness.tags`` +
``harness.deploy.delete_stack``) and counted; leaked after the sweep must be 0.
"""

from __future__ import annotations

import re
import time

from harness.lease import LEASE_SECONDS
from reliability.support import (
    HARNESS_CLI,
    Calibration,
    CaseResult,
    Ctx,
    Emulator,
    busy_project,
    calibrate,
    count_by,
    endpoint_env,
    fire_in_phase,
    force_clean,
    git,
    lease_state,
    leftovers,
    make_project,
    phase_at,
    phase_plan,
    secs,
    stack_for,
    tag_sweep,
    wait_stack_settled,
)

NUMBER = 4
FAULT = "SIGKILL of the session at a random point; recovery by the next run or `harness gc`"
RUNS = 20
QUICK_RUNS = 3

_LEASE_LINE = re.compile(r"branchstack: (lease: .*|reusing stack .*|deploy skipped.*|deleting .*ROLLBACK_COMPLETE.*)")


def _gc_summary(output: str) -> str | None:
    """gc's summary line: what it deleted, or that the next runs left it nothing to delete."""
    found = re.search(r"(\d+) deleted, (\d+) failed|nothing to delete \(\d+ skipped, \d+ kept\)", output)
    return found.group(0) if found else None


def _next_run_story(out: str) -> str:
    """How the next run reported the dead run, in its own words (shortened)."""
    said = []
    for line in out.splitlines():
        m = _LEASE_LINE.search(line)
        if m:
            said.append(re.sub(r"run [0-9a-f]{12}", "run <dead>", m.group(1))[:140])
        elif "still used by other runs" in line or ("teardown:" in line and "verified gone" in line):
            said.append(line.split("branchstack: ", 1)[-1][:140])
    return " / ".join(dict.fromkeys(said)) or "(nothing about the dead run)"


def _gc_project(ctx: Ctx) -> tuple[str, object]:
    """A project whose `origin` (a local bare repo) has only `main`: every killed branch is an orphan."""
    base = ctx.dir("c4-gc")
    remote = base / "origin.git"
    remote.mkdir()
    git(remote, "init", "-q", "--bare")
    project = make_project(base / "project", branch="main")
    git(project, "remote", "add", "origin", str(remote))
    git(project, "push", "-q", "origin", "main")
    return str(project), project


def _rig(ctx: Ctx) -> tuple[Emulator, dict[str, str], Calibration]:
    """The emulator, its environment and the phase times: a shared rig's (``ctx.rig``), or its own."""
    if ctx.rig is not None:
        return ctx.rig.emu, ctx.rig.env, ctx.rig.cal
    emu = ctx.emulator("c4-emulator")
    env = endpoint_env(emu)
    cal_project = busy_project(ctx, "c4-cal", branch="feature/kill-calibration")
    first = ctx.run(cal_project, "tests/integration", "-v", env=env)
    if first.returncode != 0:
        raise RuntimeError(f"the undisturbed session failed:\n{first.output[-3000:]}")
    return emu, env, calibrate(first)


def run(ctx: Ctx, runs: int) -> CaseResult:
    emu, env, cal = _rig(ctx)
    plan = phase_plan(ctx.rng, runs, ("deploy", "tests", "teardown"))
    records: list[dict[str, object]] = []
    last_kill = time.monotonic()
    for i, phase in enumerate(plan):
        branch = f"feature/kill-{i}"
        stack = stack_for(branch)
        project = busy_project(ctx, f"c4-{i}", branch=branch)
        s = ctx.session(project, "tests/integration", "-v", env=env)
        reached, delay = fire_in_phase(s, cal, phase, ctx.rng)
        if reached is None or s.proc.poll() is not None:
            where = "after the session ended"
            s.finish()
        else:
            t = s.kill_tree()
            where = phase_at(s, t)
            s.finish()
            last_kill = time.monotonic()
        settled = wait_stack_settled(emu, stack)
        left = leftovers(emu, stack)
        lease = lease_state(emu, stack)
        rec: dict[str, object] = {
            "i": i,
            "stack": stack,
            "where": where,
            "left": left,
            "lease": lease.get("phase") if lease else None,
            "recovery": "next run" if i % 2 == 0 else "gc",
        }
        if rec["recovery"] == "next run":
            s2 = ctx.run(project, "tests/integration", "-v", env=env)
            last_kill = max(last_kill, time.monotonic()) if s2.grep("still used by other runs") else last_kill
            rec["next_exit"] = s2.returncode
            rec["next_seconds"] = s2.seconds
            rec["story"] = _next_run_story(s2.output)
            rec["after_next"] = leftovers(emu, stack)
        ctx.log(
            f"  c4 run {i + 1}/{runs}: killed in {where} (+{delay:.2f}s; stack {settled}, lease "
            f"{rec['lease']}), left {len(left)}"
            + (
                f"; next run exit {rec['next_exit']} in {rec['next_seconds']:.0f}s, left {len(rec['after_next'])}: "  # type: ignore[arg-type]
                f"{rec['story']}"
                if "story" in rec
                else ""
            )
        )
        records.append(rec)

    # harness gc right away: the dead runs' leases name processes of this machine that have ended.
    _, gc_root = _gc_project(ctx)
    gc_argv = [HARNESS_CLI, "gc", "--yes", "--orphan-grace", "0", "--target", "endpoint", "--endpoint-url", emu.url]
    gc = ctx.run(gc_root, argv=gc_argv)  # type: ignore[arg-type]
    early_skips = len(re.findall(r"in use", gc.output))
    gc_deleted = _gc_summary(gc.output)
    first_gc = gc_deleted or "no summary line"
    if early_skips:
        wait = last_kill + LEASE_SECONDS + 5 - time.monotonic()
        if wait > 0:
            ctx.log(f"  c4: {early_skips} skipped as in use; waiting {wait:.0f}s for the leases to expire")
            time.sleep(wait)
        gc = ctx.run(gc_root, argv=gc_argv)  # type: ignore[arg-type]
        gc_deleted = _gc_summary(gc.output)
    ctx.log(f"  c4: harness gc --yes exit {gc.returncode}: {gc.output.strip().splitlines()[-1:]}")
    after_gc = {str(r["stack"]): leftovers(emu, str(r["stack"])) for r in records}
    swept = tag_sweep(emu)
    after_sweep = {str(r["stack"]): leftovers(emu, str(r["stack"])) for r in records}
    leaked_after_sweep = {k: v for k, v in after_sweep.items() if v}
    for r in records:
        force_clean(emu, str(r["stack"]))

    left_by_kill = sum(1 for r in records if r["left"])
    next_runs = [r for r in records if r["recovery"] == "next run"]
    next_cleaned = [r for r in next_runs if r["left"] and not r["after_next"]]
    next_left = [r for r in next_runs if r["after_next"]]
    gc_needed = [k for k, v in after_gc.items() if v]
    gc_ok = gc.returncode == 0 and gc_deleted is not None
    stories = count_by(str(r["story"]) for r in next_runs)
    notes = [
        f"kills landed in: {count_by(str(r['where']) for r in records)}",
        f"stack (or its resources) left by the kill: {left_by_kill} of {runs}; lease items left: "
        f"{count_by(str(r['lease']) for r in records)}",
        f"next run on the same branch, started at once ({len(next_runs)} runs): left nothing in "
        f"{len(next_runs) - len(next_left)}, of which {len(next_cleaned)} had a stack to clean up; left the stack in "
        f"{len(next_left)}; median {secs(sorted(float(r['next_seconds']) for r in next_runs)[len(next_runs) // 2] if next_runs else None)}",  # type: ignore[arg-type]
        f"what the next runs printed: {stories or 'n/a'}",
        f"`harness gc --yes --orphan-grace 0` right after the last kill: {first_gc}; {early_skips} stack(s) "
        f"skipped as 'in use' by the dead runs' leases"
        + (f" (run again after the {LEASE_SECONDS:.0f}s expiry: exit {gc.returncode})" if early_skips else "")
        + f"; stacks still there after gc: {len(gc_needed)}",
        f"tag-based sweep of this script afterwards: {swept or 'nothing to do'}",
    ]
    if next_left:
        notes.append(
            "runs whose next run left the stack: "
            + "; ".join(f"kill {r['i'] + 1} in {r['where']}: {r['story']}" for r in next_left)
        )
    if not gc_ok:
        notes.append(f"harness gc output: {gc.output[-1500:]}")
    ok = not leaked_after_sweep and not gc_needed and gc_ok
    return CaseResult(
        NUMBER,
        FAULT,
        runs,
        f"left by the kill {left_by_kill} of {runs}; removed by the next run {len(next_cleaned)}, "
        f"left by it {len(next_left)}; `harness gc` removed the rest: {'yes' if not gc_needed else 'no'}; "
        f"leaked after sweep = {len(leaked_after_sweep)}",
        f"next run waited for a dead run's lease in {sum(1 for r in next_runs if 'waiting' in str(r['story']))} of "
        f"{len(next_runs)}; gc skipped {early_skips} as in use",
        ok,
        notes,
        data={"leaked_after_sweep": len(leaked_after_sweep), "gc_needed": len(gc_needed)},
    )
