"""Case 14: a kept emulator and stack belong to whoever kept them (the reference stack).

Per run: ``harness up``, ``harness deploy`` (its stdout alone, as ``eval`` reads
it), then a plain ``pytest`` of a scenario (no ``--keep-stack``) in the same
project. Afterwards the kept stack must still be deployed and answer through API
Gateway, and the kept emulator must still run; the plain run's header must say
whose they are. Then ``harness destroy`` must remove both, and a second
``harness destroy`` find nothing to do (exit 0).
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request

import psutil

from reliability import reference
from reliability.support import HARNESS_CLI, CaseResult, Ctx, clean_env

NUMBER = 14
FAULT = "kept emulator and stack (`harness up`, `harness deploy`), then a plain `pytest`, then `harness destroy`"
RUNS = 2
QUICK_RUNS = 1


def _api_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - the emulator's loopback URL
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def _stack_status(endpoint: str, stack: str) -> str:
    import boto3

    cfn = boto3.client(
        "cloudformation",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    try:
        return str(cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"])
    except Exception:  # noqa: BLE001 - gone (or the emulator is)
        return "gone"


def _one(ctx: Ctx, i: int) -> dict[str, object]:
    branch = f"feature/rel-kept-{i}"
    stack = reference.stack_for(branch)
    env, report = reference.env_for(ctx, f"c14-{i}", branch)
    up = ctx.run(reference.root(), argv=[HARNESS_CLI, "up"], env=env)
    deploy = subprocess.run(  # noqa: S603 - stdout alone, as `eval "$(harness deploy)"` reads it
        [HARNESS_CLI, "deploy"], cwd=reference.root(), env=clean_env(env), capture_output=True, text=True, timeout=600
    )
    exports = dict(re.findall(r"^export (\w+)=(\S+)$", deploy.stdout, flags=re.M))
    stdout_clean = all(line.startswith(("#", "export ")) for line in deploy.stdout.splitlines())
    state = json.loads((report / "emulator.json").read_text()) if (report / "emulator.json").exists() else {}
    pid = int(state.get("pid", 0))
    plain = ctx.run(reference.root(), reference.SCENARIO, "-v", env=env)
    endpoint = exports.get("AWS_ENDPOINT_URL", "")
    after_plain = _stack_status(endpoint, stack)
    api = _api_status(f"{endpoint}/_localstack/health")
    emulator_running = bool(pid) and psutil.pid_exists(pid)
    destroy = ctx.run(reference.root(), argv=[HARNESS_CLI, "destroy"], env=env)
    again = ctx.run(reference.root(), argv=[HARNESS_CLI, "destroy"], env=env)
    gone = not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    header = [
        line.split("branchstack: ", 1)[-1][:400]
        for line in plain.output.splitlines()
        if "kept by" in line or "as found" in line
    ]
    return {
        "i": i,
        "up": up.returncode,
        "deploy": deploy.returncode,
        "stdout_clean": stdout_clean and "AWS_SAM_STACK_NAME" in exports,
        "plain": plain.returncode,
        "after_plain": after_plain,
        "emulator_running": emulator_running,
        "health": api,
        "header": header,
        "destroy": destroy.returncode,
        "destroyed": "verified gone" in destroy.output and gone,
        "again": (again.returncode, "nothing to destroy" in again.output),
    }


def run(ctx: Ctx, runs: int) -> CaseResult:
    records = [_one(ctx, i) for i in range(runs)]
    for r in records:
        ctx.log(f"  c14 run {int(r['i']) + 1}/{runs}: {r}")  # type: ignore[call-overload]
    kept = [r for r in records if r["after_plain"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE") and r["emulator_running"]]
    destroyed = [r for r in records if r["destroyed"] and r["destroy"] == 0]
    clean = [r for r in records if r["stdout_clean"] and r["deploy"] == 0 and r["plain"] == 0]
    nothing = [r for r in records if r["again"] == (0, True)]
    ok = len(kept) == len(destroyed) == len(clean) == len(nothing) == runs
    return CaseResult(
        NUMBER,
        FAULT,
        runs,
        f"stack and emulator left as found by the plain run in {len(kept)} of {runs}; removed by "
        f"`harness destroy` in {len(destroyed)} of {runs}; a second destroy exits 0 in {len(nothing)} of {runs}",
        f"`harness deploy` stdout only `export` lines in {len(clean)} of {runs}",
        ok,
        notes=[
            "what the plain run said about them: "
            + " / ".join(dict.fromkeys(str(x) for r in records for x in r["header"])),  # type: ignore[attr-defined]
            "after the plain run: "
            + ", ".join(f"stack {r['after_plain']}, emulator health {r['health']}" for r in records),
        ],
    )
