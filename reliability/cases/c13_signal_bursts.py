"""Case 13: bursts of Ctrl-C / SIGTERM during the tests (the reference stack, one shared emulator).

Each run sends 2 to 5 signals (SIGINT or SIGTERM, drawn at random) to the
session's process group, as a terminal's Ctrl-C does, spaced 10 ms to 1 s
apart, once its scenario is running. Every run must end with exit code 2, one
``received`` line per signal the process saw (a signal that lands while the same one is
still pending is merged into it, by the kernel and by Python's handler: at 10 ms spacing
a burst may arrive as fewer), no Python traceback, the teardown completed and
nothing of the stack left in the emulator.
"""

from __future__ import annotations

import os
import signal
import time

from reliability import reference
from reliability.support import CaseResult, Ctx, count_by, endpoint_env, leftovers

NUMBER = 13
FAULT = "bursts of 2-5 SIGINT/SIGTERM to the process group, 10 ms to 1 s apart, during the tests"
RUNS = 12
QUICK_RUNS = 3
SPACINGS = (0.01, 0.1, 0.5, 1.0)


def run(ctx: Ctx, runs: int) -> CaseResult:
    emu = ctx.emulator("c13-emulator")
    records = []
    for i in range(runs):
        count = 2 + i % 4
        spacing = SPACINGS[i % len(SPACINGS)] if i < len(SPACINGS) else ctx.rng.uniform(0.01, 1.0)
        sigs = [ctx.rng.choice((signal.SIGINT, signal.SIGTERM)) for _ in range(count)]
        branch = f"feature/rel-burst-{i}"
        stack = reference.stack_for(branch)
        env, _report = reference.env_for(ctx, f"c13-{i}", branch, **endpoint_env(emu))
        s = ctx.session(reference.root(), reference.SCENARIO, "-v", env=env)
        reached = s.wait_for(reference.TESTS_RUNNING, timeout=240)
        if reached is not None:
            time.sleep(ctx.rng.uniform(0.5, 2.0))  # into the scenario or the session's end
            if s.proc.poll() is not None:
                reached = None  # the session ended before the burst: nothing was sent
        if reached is not None:
            for k, sig in enumerate(sigs):
                if k:
                    time.sleep(spacing)
                try:
                    os.killpg(s.pid, sig)
                except ProcessLookupError:
                    break
        code = s.finish()
        out = s.output
        lines = [x for x in out.splitlines() if " received" in x and "SIG" in x and "branchstack:" in x]
        rec = {
            "count": count,
            "spacing": spacing,
            "signals": "+".join(signal.Signals(x).name[3:] for x in sigs),
            "reached": reached is not None,
            "exit": code,
            "lines": len(lines),
            "traceback": not s.no_traceback(),
            "torn_down": "verified gone" in out,
            "left": leftovers(emu, stack),
            "hung": s.hung,
        }
        records.append(rec)
        ctx.log(f"  c13 run {i + 1}/{runs}: {rec}")
    sent = [r for r in records if r["reached"]]
    good = [
        r
        for r in sent
        if r["exit"] == 2 and 1 <= r["lines"] <= r["count"] and not r["traceback"] and r["torn_down"] and not r["left"]
    ]
    return CaseResult(
        NUMBER,
        FAULT,
        runs,
        f"exit 2, no traceback, torn down, leaked 0: {len(good)} of {len(sent)}; "
        f"tracebacks {sum(1 for r in sent if r['traceback'])}; hung {sum(1 for r in sent if r['hung'])}",
        f"exit codes: {count_by(str(r['exit']) for r in sent)}; lines: {sum(int(r['lines']) for r in sent)} "  # type: ignore[call-overload]
        f"for {sum(int(r['count']) for r in sent)} signals sent",  # type: ignore[call-overload]
        bool(sent) and len(good) == len(sent),
        notes=[
            "runs (signals, spacing -> exit, lines): "
            + "; ".join(
                f"{r['signals']} @{float(r['spacing']) * 1000:.0f}ms -> {r['exit']}, {r['lines']}"  # type: ignore[arg-type]
                for r in records
            ),
            f"not reached (the session ended before the burst): {len(records) - len(sent)}",
        ],
    )
