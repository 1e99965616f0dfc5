"""Case 2: SIGINT (Ctrl-C) at a random point of the deploy, the tests or the teardown.

One undisturbed session first measures when each phase starts and how long it
lasts; each run then waits for its phase's marker line and a random part of
that phase before sending SIGINT to the pytest process. Afterwards: exit code
non-zero, nothing of the stack left in the (endpoint) emulator, no lease item,
no deploy process. The figure is the time from the signal to the exit.
"""

from __future__ import annotations

import signal

from reliability.support import (
    CaseResult,
    Ctx,
    Tallies,
    aftermath,
    count_by,
    finished_before,
    fire_in_phase,
    median,
    phase_at,
    secs,
    signal_rig,
)

NUMBER = 2
FAULT = "SIGINT at a random point of deploy, tests, teardown"
RUNS = 20
QUICK_RUNS = 3
EXIT_GUARD = 60.0


def run(ctx: Ctx, runs: int) -> CaseResult:
    rig = signal_rig(ctx, "c2", runs)
    cal = rig.cal
    exits: list[float] = []
    found = Tallies()
    landed: list[str] = []
    zero: list[str] = []
    hung: list[str] = []
    codes: list[int] = []
    killed_by: list[str] = []
    late = 0
    for i, phase in enumerate(rig.plan):
        s = ctx.session(rig.project, "tests/integration", "-v", env=rig.env)
        reached, delay = fire_in_phase(s, cal, phase, ctx.rng)
        if reached is None or s.proc.poll() is not None:
            late += 1
            s.finish()
            where = "after the session ended"
        else:
            sent = s.send(signal.SIGINT)
            where = "after the session ended" if finished_before(s, sent) else phase_at(s, sent)
            code = s.wait(EXIT_GUARD)
            if code is None:
                hung.append(f"run {i + 1} ({where})")
            s.finish()
            exits.append((s.ended or sent) - sent)
        landed.append(where)
        codes.append(s.returncode or 0)
        if s.returncode == 0 and where != "after the session ended":
            zero.append(f"run {i + 1} ({where}; signal masks right after the SIGINT: {s.sig_status or 'n/a'})")
        if (s.returncode or 0) < 0:
            tail = [x.strip() for x in s.output.splitlines() if x.strip()][-4:]
            killed_by.append(f"run {i + 1} ({where}), exit {s.returncode}; last lines: {tail}")
        after = aftermath(rig, s)
        ctx.log(
            f"  c2 run {i + 1}/{runs}: aimed {phase} +{delay:.2f}s, landed in {where}: exit {s.returncode} "
            f"after {exits[-1] if exits else 0:.2f}s, left {after.left}, lease {after.lease and after.lease.get('phase')}"
        )
        found.add(i + 1, where, s, after)
    signalled = runs - late
    ok = not found.leaked and not hung and not zero and not found.strays
    notes = [
        f"phases the signal landed in: {count_by(landed)}",
        f"exit codes: {count_by(str(c) for c in codes)}",
        f"calibration: deploy starts {cal.deploying:.1f}s after launch and lasts {cal.ready - cal.deploying:.1f}s; "
        f"tests {cal.last_test - cal.ready:.1f}s; teardown {cal.done - cal.last_test:.1f}s; session {cal.total:.1f}s",
        f"time from SIGINT to exit: median {secs(median(exits))}, max {secs(max(exits) if exits else None)}",
    ]
    if killed_by:
        notes.append(
            "KeyboardInterrupt escaped pytest (the process ended by the signal itself, so nothing after that "
            f"point ran): {killed_by}"
        )
    if hung:
        notes.append(f"no exit within {EXIT_GUARD:.0f}s: {hung}")
    if zero:
        notes.append(f"exit code 0 although signalled: {zero}")
    notes.extend(found.notes())
    return CaseResult(
        NUMBER,
        FAULT,
        runs,
        f"leaked = {len(found.leaked)} of {runs}; exit != 0 in {signalled - len(zero)} of {signalled} signalled; "
        f"hung {len(hung)}; lease items left {len(found.leases)}",
        f"median time to exit {secs(median(exits))} (max {secs(max(exits) if exits else None)})",
        ok,
        notes,
        data={"leaked": len(found.leaked), "hung": len(hung), "zero_exit": len(zero), "median_exit": median(exits)},
    )
