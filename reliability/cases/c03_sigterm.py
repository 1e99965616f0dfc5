"""Case 3: SIGTERM (how CI cancels a job) at a random point, SIGKILL 10 s later if still alive.

Same phase aiming as case 2. The question is whether the stack's deletion was
issued before the SIGKILL: judged from the emulator (every stack this session
created is DELETE_COMPLETE or gone once the session is dead; nothing of the
harness runs after a SIGKILL) and from the session output (``teardown:
deleting`` printed before the SIGKILL). A session killed before its deploy
created any stack has nothing to delete; it is counted apart.
"""

from __future__ import annotations

import signal
import time

from reliability.support import (
    BRANCH,
    CaseResult,
    Ctx,
    busy_project,
    calibrate,
    count_by,
    deploy_processes,
    endpoint_env,
    fire_in_phase,
    force_clean,
    lease_state,
    leftovers,
    median,
    new_stacks,
    phase_at,
    phase_plan,
    secs,
    stack_for,
    stack_ids,
    wait_stack_settled,
    wait_until,
)

NUMBER = 3
FAULT = "SIGTERM at a random point, SIGKILL 10 s later if still alive"
RUNS = 20
QUICK_RUNS = 3
GRACE = 10.0


def run(ctx: Ctx, runs: int) -> CaseResult:
    emu = ctx.emulator("c3-emulator")
    env = endpoint_env(emu)
    stack = stack_for(BRANCH)
    project = busy_project(ctx, "c3")
    first = ctx.run(project, "tests/integration", "-v", env=env)
    if first.returncode != 0:
        raise RuntimeError(f"the undisturbed session failed:\n{first.output[-3000:]}")
    cal = calibrate(first)
    plan = phase_plan(ctx.rng, runs, ("deploy", "tests", "teardown"))
    issued = 0
    nothing = 0
    not_issued: list[str] = []
    killed = 0
    exits: list[float] = []
    landed: list[str] = []
    leaked: list[str] = []
    leases: list[str] = []
    strays: list[str] = []
    cut_short: list[str] = []
    from_output = 0
    for i, phase in enumerate(plan):
        before = stack_ids(emu, stack)
        s = ctx.session(project, "tests/integration", "-v", env=env)
        reached, delay = fire_in_phase(s, cal, phase, ctx.rng)
        kill_time = None
        if reached is None or s.proc.poll() is not None:
            s.finish()
            where = "after the session ended"
        else:
            sent = s.send(signal.SIGTERM)
            where = phase_at(s, sent)
            if s.wait(GRACE) is None:
                kill_time = s.kill_tree()
                killed += 1
            s.finish()
            exits.append((kill_time or s.ended or sent) - sent)
        landed.append(where)
        out = s.output
        if "in _teardown" in out and not any(x in out for x in ("verified gone", "LEFT BEHIND", "left things behind")):
            cut_short.append(f"run {i + 1} (exit {s.returncode})")
        # After a SIGKILL nothing of the harness runs: what the emulator shows now was issued before it.
        settled = wait_stack_settled(emu, stack)
        created = new_stacks(emu, stack, before)
        deleting_line = s.line_time(r"branchstack: teardown: deleting")
        said = deleting_line is not None and (kill_time is None or deleting_line < kill_time)
        from_output += said
        if not created:
            nothing += 1
            verdict = "no stack was created: nothing to delete"
        elif all(st == "DELETE_COMPLETE" for st in created.values()):
            issued += 1
            verdict = "deletion issued" + (" (and printed)" if said else " (not printed)")
        else:
            not_issued.append(f"run {i + 1} ({where}): {created}")
            verdict = f"NOT deleted: {created}"
        wait_until(lambda: not deploy_processes(stack), 10)
        left = leftovers(emu, stack)
        lease = lease_state(emu, stack)
        stray = deploy_processes(stack)
        ctx.log(
            f"  c3 run {i + 1}/{runs}: aimed {phase} +{delay:.2f}s, landed in {where}: exit {s.returncode}"
            f"{' after SIGKILL' if kill_time else ''}; {verdict}; settled {settled}; left {left}"
        )
        if left:
            leaked.append(f"run {i + 1} ({where}): {left}")
        if lease:
            leases.append(f"run {i + 1} ({where}): {lease.get('phase')}")
        if stray:
            strays.append(f"run {i + 1}: {stray}")
        if left or lease:
            force_clean(emu, stack)
        time.sleep(0.2)
    with_stack = runs - nothing
    ok = not not_issued and not leaked and not strays
    notes = [
        f"phases the signal landed in: {count_by(landed)}",
        f"deletion issued before the SIGKILL in {issued} of {with_stack} runs that had created a stack "
        f"({nothing} runs were stopped before any stack existed); `teardown: deleting` printed before the "
        f"SIGKILL in {from_output} runs",
        f"SIGKILL needed (still alive {GRACE:.0f}s after SIGTERM): {killed} of {runs}",
        f"time from SIGTERM to exit: median {secs(median(exits))}, max {secs(max(exits) if exits else None)}",
    ]
    if not_issued:
        notes.append(f"deletion not issued: {not_issued}")
    if leases:
        notes.append(f"lease items left: {leases}")
    if cut_short:
        notes.append(
            "the signal cut the harness's teardown short (a KeyboardInterrupt traceback through session._teardown): "
            f"{len(cut_short)} runs: {cut_short}; the KeyboardInterrupt escapes pytest_sessionfinish, pytest prints "
            "a raw traceback and the process ends by the signal"
        )
    if leaked:
        notes.append(f"leaks: {leaked}")
    if strays:
        notes.append(f"deploy processes left: {strays}")
    return CaseResult(
        NUMBER,
        FAULT,
        runs,
        f"deletion issued before the SIGKILL in {issued} of {with_stack} (+{nothing} with no stack yet); "
        f"SIGKILL needed {killed}; leaked = {len(leaked)}",
        f"median time to exit after SIGTERM {secs(median(exits))}",
        ok,
        notes,
        data={"not_issued": len(not_issued), "leaked": len(leaked), "killed": killed},
    )
