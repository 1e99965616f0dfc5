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
    CaseResult,
    Ctx,
    Tallies,
    aftermath,
    count_by,
    fire_in_phase,
    median,
    new_stacks,
    phase_at,
    secs,
    signal_rig,
    stack_ids,
    wait_stack_settled,
)

NUMBER = 3
FAULT = "SIGTERM at a random point, SIGKILL 10 s later if still alive"
RUNS = 20
QUICK_RUNS = 3
GRACE = 10.0


def run(ctx: Ctx, runs: int) -> CaseResult:
    rig = signal_rig(ctx, "c3", runs)
    emu, stack = rig.emu, rig.stack
    issued = 0
    nothing = 0
    not_issued: list[str] = []
    killed = 0
    exits: list[float] = []
    found = Tallies()
    landed: list[str] = []
    from_output = 0
    for i, phase in enumerate(rig.plan):
        before = stack_ids(emu, stack)
        s = ctx.session(rig.project, "tests/integration", "-v", env=rig.env)
        reached, delay = fire_in_phase(s, rig.cal, phase, ctx.rng)
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
        after = aftermath(rig, s)
        ctx.log(
            f"  c3 run {i + 1}/{runs}: aimed {phase} +{delay:.2f}s, landed in {where}: exit {s.returncode}"
            f"{' after SIGKILL' if kill_time else ''}; {verdict}; settled {settled}; left {after.left}"
        )
        found.add(i + 1, where, s, after)
        time.sleep(0.2)
    with_stack = runs - nothing
    ok = not not_issued and not found.leaked and not found.strays
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
    notes.extend(found.notes())
    return CaseResult(
        NUMBER,
        FAULT,
        runs,
        f"deletion issued before the SIGKILL in {issued} of {with_stack} (+{nothing} with no stack yet); "
        f"SIGKILL needed {killed}; leaked = {len(found.leaked)}",
        f"median time to exit after SIGTERM {secs(median(exits))}",
        ok,
        notes,
        data={"not_issued": len(not_issued), "leaked": len(found.leaked), "killed": killed},
    )
