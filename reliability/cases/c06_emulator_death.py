"""Case 6: the embedded emulator dies mid-run (SIGKILL of the pid printed in ``target: started ... pid N``).

Local target (the harness starts MiniStack). The kill lands at a random point
of the deploy or of the tests (which call DynamoDB in a loop, after a Lambda
invoke has started a runtime process beside the emulator). The session must
end within 10 s of the kill with a non-zero exit and say the emulator died;
no process whose environment has that ``GATEWAY_PORT`` may be left, nor any
deploy process.
"""

from __future__ import annotations

import os
import signal
import time

from reliability.support import (
    BRANCH,
    TARGET_RE,
    CaseResult,
    Ctx,
    count_by,
    deploy_processes,
    make_project,
    median,
    phase_at,
    processes_on,
    secs,
    stack_for,
    wait_until,
)

NUMBER = 6
FAULT = "emulator killed mid-run (SIGKILL of the MiniStack pid)"
RUNS = 10
QUICK_RUNS = 1
LIMIT = 10.0
EXIT_GUARD = 90.0

LOOP_TEST = """
import time


def test_keeps_calling(stack):
    stack.client("lambda").invoke(FunctionName=stack.outputs["FunctionName"], Payload=b"{}")
    ddb = stack.client("dynamodb")
    table = stack.outputs["TableName"]
    deadline = time.monotonic() + 8
    i = 0
    while time.monotonic() < deadline:
        ddb.put_item(TableName=table, Item={"pk": {"S": str(i % 50)}})
        i += 1
"""


def run(ctx: Ctx, runs: int) -> CaseResult:
    stack = stack_for(BRANCH)
    project = make_project(ctx.dir("c6"), files={"tests/integration/test_loop.py": LOOP_TEST})
    plan = ["deploy" if i % 3 == 0 else "tests" for i in range(runs)]
    ctx.rng.shuffle(plan)
    exits: list[float] = []
    slow: list[str] = []
    hung: list[str] = []
    strays: list[str] = []
    silent: list[str] = []
    zero: list[str] = []
    landed: list[str] = []
    for i, phase in enumerate(plan):
        s = ctx.session(project, "tests/integration", "-v")
        if s.wait_for(TARGET_RE, timeout=60) is None:
            s.finish()
            raise RuntimeError(f"no 'target: started ... pid N' line:\n{s.output[-2000:]}")
        pid, port = s.emulators()[0]
        ctx.registry.emulators.append((pid, port))
        if phase == "deploy":
            start = s.wait_for(r"branchstack: deploying ", timeout=60)
            delay = ctx.rng.uniform(0.1, 1.8)
        else:
            # The test starts right after this line (pytest -v prints the test's line only when it ends).
            start = s.wait_for(r"branchstack: stack \S+: \d+ resources", timeout=120)
            delay = ctx.rng.uniform(1.0, 6.5)
        if start is None or s.proc.poll() is not None:
            s.finish()
            raise RuntimeError(f"the session ended before the kill point:\n{s.output[-2000:]}")
        time.sleep(max(0.0, start + delay - time.monotonic()))
        before = processes_on(port)
        killed = time.monotonic()
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            s.finish()
            raise RuntimeError(f"the emulator pid {pid} was gone before the kill:\n{s.output[-2000:]}") from None
        where = phase_at(s, killed)
        landed.append(where)
        code = s.wait(EXIT_GUARD)
        if code is None:
            hung.append(f"run {i + 1} ({where})")
        s.finish()
        took = (s.ended or time.monotonic()) - killed
        exits.append(took)
        if took > LIMIT:
            slow.append(f"run {i + 1} ({where}): {took:.1f}s")
        if s.returncode == 0:
            zero.append(f"run {i + 1}")
        died = [line for line in s.output.splitlines() if "emulator" in line and "died" in line]
        if not died:
            silent.append(f"run {i + 1} ({where}): {s.output.splitlines()[-3:]}")
        gone = wait_until(lambda port=port: not processes_on(port) and not deploy_processes(stack), 10)
        if not gone:
            strays.append(f"run {i + 1}: {processes_on(port) + deploy_processes(stack)}")
        ctx.log(
            f"  c6 run {i + 1}/{runs}: killed pid {pid} in {where} (+{delay:.1f}s; {len(before)} processes on its "
            f"port), exit {s.returncode} after {took:.2f}s, strays {not gone}"
        )
    ok = not slow and not hung and not strays and not zero and not silent
    notes = [
        f"kills landed in: {count_by(landed)}",
        f"time from the kill to the session's exit: median {secs(median(exits))}, max {secs(max(exits))}",
    ]
    for label, items in (
        ("slower than 10 s", slow),
        ("hung", hung),
        ("processes left", strays),
        ("exit code 0", zero),
        ("no 'emulator ... died' line", silent),
    ):
        if items:
            notes.append(f"{label}: {items}")
    return CaseResult(
        NUMBER,
        FAULT,
        runs,
        f"session failed within {LIMIT:.0f} s in {runs - len(slow) - len(hung)} of {runs}; hung {len(hung)}; "
        f"stray processes {len(strays)}; exit != 0 in {runs - len(zero)} of {runs}",
        f"median kill-to-exit {secs(median(exits))} (max {secs(max(exits))})",
        ok,
        notes,
        data={"slow": len(slow), "hung": len(hung), "strays": len(strays), "zero": len(zero)},
    )
