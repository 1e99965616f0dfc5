"""Case 15: a deploy command that ignores the stack name it is given (the reference stack).

``make deploy STACK_NAME=orders-hard-coded``: a command-line variable beats the
``STACK_NAME`` the harness puts in the environment, as a deploy script with a
hard-coded ``--stack-name`` would. Runs on several branches against one shared
emulator (endpoint target), one after the other, so what a run leaves is seen
by the next. Each must fail naming the stack the command created instead, and
delete it (it carries the run's tags): nothing of either name may be left.
"""

from __future__ import annotations

from reliability import reference
from reliability.support import CaseResult, Ctx, endpoint_env, leftovers

NUMBER = 15
FAULT = "a deploy command that ignores STACK_NAME (hard-coded stack name), several branches on one emulator"
RUNS = 3
QUICK_RUNS = 2
FIXED = "orders-hard-coded"


def run(ctx: Ctx, runs: int) -> CaseResult:
    emu = ctx.emulator("c15-emulator")
    records = []
    for i in range(runs):
        branch = f"feature/rel-fixed-name-{i}"
        stack = reference.stack_for(branch)
        env, _report = reference.env_for(
            ctx, f"c15-{i}", branch, **endpoint_env(emu, HARNESS_DEPLOY_COMMAND=f"make deploy STACK_NAME={FIXED}")
        )
        s = ctx.run(reference.root(), reference.SCENARIO, env=env)
        named = s.grep(f"the deploy command created no stack named {stack}, but it did create {FIXED}")
        deleted = s.grep(f"teardown: deleting {FIXED}")
        left = leftovers(emu, FIXED) + leftovers(emu, stack)
        records.append(
            {
                "exit": s.returncode,
                "named": bool(named),
                "deleted": bool(deleted),
                "left": left,
                "tb": not s.no_traceback(),
            }
        )
        ctx.log(f"  c15 run {i + 1}/{runs}: exit {s.returncode}, named {bool(named)}, left {left}")
        if i == 0 and named:
            first_message = named[0].split("branchstack: ", 1)[-1]
    good = [r for r in records if r["exit"] == 1 and r["named"] and r["deleted"] and not r["left"] and not r["tb"]]
    return CaseResult(
        NUMBER,
        FAULT,
        runs,
        f"named and deleted in {len(good)} of {runs}; leaked = {sum(len(r['left']) for r in records)}",  # type: ignore[arg-type]
        f"exit codes: {', '.join(str(r['exit']) for r in records)}",
        len(good) == runs,
        notes=[f"the error: {first_message if records and records[0]['named'] else '(not printed)'}"],
    )
