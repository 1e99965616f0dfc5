"""Case 12: SIGKILL of pytest on the local target (the reference stack), during the deploy or the tests.

Only the pytest process is killed (``kill -9 PID``, as a developer or an OOM
killer does), not its process group. The emulator, its Lambda runtimes and the
deploy command (``make deploy`` and its ``aws`` calls) are its descendants; each
is recorded by pid and start time just before the kill. Measured: how long until
none of them runs any more, what was still running 5 s after the kill, the
scratch folder of extracted Lambda code left 5 s after the kill, and what the next ``harness down``
in the same project says (and whether it finds anything to stop).
"""

from __future__ import annotations

import os
import re
import signal
import time

from reliability import reference
from reliability.support import HARNESS_CLI, CaseResult, Ctx, count_by, median, secs

NUMBER = 12
FAULT = "SIGKILL of pytest on the local target (reference stack), during the deploy or the tests"
RUNS = 6
QUICK_RUNS = 2
LIMIT = 5.0  # seconds after the kill by which nothing of the run may run


def _one(ctx: Ctx, i: int, phase: str) -> dict[str, object]:
    branch = f"feature/rel-kill-local-{i}"
    env, report = reference.env_for(ctx, f"c12-{i}", branch)
    s = ctx.session(reference.root(), reference.SCENARIO, "-v", env=env)
    marker = r"branchstack:   \| " if phase == "deploy" else reference.TESTS_RUNNING
    reached = s.wait_for(marker, timeout=240)
    if reached is not None and phase == "deploy":
        s.wait_for(r"branchstack:   \| .*(Uploading|Waiting|package)", timeout=ctx.rng.uniform(0.5, 3.0))
    elif reached is not None:
        time.sleep(ctx.rng.uniform(0.5, 2.0))  # into the scenario (it runs for seconds)
    if reached is None or s.proc.poll() is not None:
        s.finish()
        return {"i": i, "phase": phase, "reached": False, "out": s.output[-1500:]}
    idents = reference.tree(s.pid)
    os.kill(s.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    s.finish()
    seconds, left = reference.gone_after(idents[1:], LIMIT)
    if left:  # stop what the kill left, by pid, before the next run
        reference.gone_after(idents[1:], 30)
    scratch = reference.scratch_left(report, until=killed_at + LIMIT)
    down = ctx.run(reference.root(), argv=[HARNESS_CLI, "down"], env=env)
    return {
        "i": i,
        "phase": phase,
        "reached": True,
        "processes": len(idents) - 1,
        "commands": sorted({_command_name(cmd) for _, _, cmd in idents[1:]}),
        "seconds": seconds,
        "left": left,
        "scratch": scratch,
        "down": re.sub(
            r" \(state file [^)]*\)", "", " / ".join(x.split("harness: ", 1)[-1] for x in down.output.splitlines()[-2:])
        ),
        "down_stopped": "stopped" in down.output and "nothing to stop" not in down.output,
    }


def _command_name(cmd: str) -> str:
    """``python -m harness.x`` -> harness.x; ``python -I -S .../harness/lifeline.py`` -> lifeline.py; else the
    program's name."""
    words = cmd.split()
    if " -m " in cmd:
        return words[words.index("-m") + 1]
    script = next((w for w in words[1:4] if w.endswith(".py")), None)
    return (script or words[0]).rsplit("/", 1)[-1]


def run(ctx: Ctx, runs: int) -> CaseResult:
    phases = ["deploy" if i % 2 else "tests" for i in range(runs)]
    records = []
    for i, phase in enumerate(phases):
        rec = _one(ctx, i, phase)
        records.append(rec)
        ctx.log(
            f"  c12 run {i + 1}/{runs}: {phase}: {rec.get('processes', '?')} processes, gone in "
            f"{secs(rec.get('seconds'))}; left {len(rec.get('left', []))}; scratch {len(rec.get('scratch', []))}"
        )
    killed = [r for r in records if r["reached"]]
    left = [r for r in killed if r["left"]]
    scratch = [r for r in killed if r["scratch"]]
    orphans_found = [r for r in killed if r["down_stopped"]]
    times = [float(r["seconds"]) for r in killed if r["seconds"] is not None]  # type: ignore[arg-type]
    ok = bool(killed) and not left and not scratch and not orphans_found
    notes = [
        f"kills landed in: {count_by(str(r['phase']) for r in killed)}; not reached (session ended first): "
        f"{len(records) - len(killed)}",
        "processes of the run at the kill (besides pytest): "
        + ", ".join(f"{r['processes']} ({' '.join(r['commands'])})" for r in killed),  # type: ignore[arg-type]
        f"time from the kill until none of them ran: median {secs(median(times))}, max {secs(max(times, default=None))}",
        "still running 5 s after the kill: " + ("; ".join(f"run {r['i']}: {r['left']}" for r in left) or "none"),
        f"scratch folders (extracted Lambda code) left 5 s after the kill: {sum(len(r['scratch']) for r in killed)}",  # type: ignore[arg-type]
        "the next `harness down` in the project said: " + "; ".join(dict.fromkeys(str(r["down"]) for r in killed)),
    ]
    return CaseResult(
        NUMBER,
        FAULT,
        runs,
        f"processes left 5 s after the kill: {sum(len(r['left']) for r in killed)} (of "  # type: ignore[arg-type]
        f"{sum(int(r['processes']) for r in killed)} in {len(killed)} runs); scratch folders left "  # type: ignore[call-overload]
        f"{len(scratch)}; orphans found by the next `harness down` {len(orphans_found)}",
        f"median kill-to-gone {secs(median(times))} (max {secs(max(times, default=None))})",
        ok,
        notes=notes,
    )
