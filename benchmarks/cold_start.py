"""What the Lambda runtime sandbox costs per cold start: ``python -m benchmarks.cold_start``.

Three embedded emulators are started the way the harness starts them: one with
every adaptation (each cold start forked from the warm runtime, see
``harness.emulator.warm_start``), one without the warm start (each runtime a new
interpreter) and one without the sandbox either (``HARNESS_EMULATOR_ADAPTATIONS_OFF``:
the function runs on the emulator's interpreter and environment, as before the
sandbox). In rounds, alternating the order,
each creates fresh functions (Python, active tracing, a boto3 client built at
import like the reference stack's functions) and invokes each twice: the first
``Invoke`` is a cold start (a new runtime process), the second a warm one.
Wall time of ``Invoke`` as the client sees it. Writes
``docs/benchmarks-lambda-cold-start.md``; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import boto3

from harness import procs
from harness.targets.local import launch

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "benchmarks-lambda-cold-start.md"
REGION = "us-east-1"
CODE = """
import os
import boto3

TABLE = boto3.client("dynamodb")


def handler(event, context):
    return {"ok": True}
"""
OFF = "HARNESS_EMULATOR_ADAPTATIONS_OFF"
WARM, COLD, BEFORE = "sandbox, warm start", "sandbox, each runtime a new interpreter", "no sandbox (before)"
MODES = {
    WARM: {},
    COLD: {OFF: "lambda-runtime-warm-start"},
    BEFORE: {OFF: "lambda-runtime-sandbox,lambda-runtime-warm-start"},
}


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", CODE)
    return buf.getvalue()


def _client(url: str, service: str) -> Any:
    return boto3.client(
        service, endpoint_url=url, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )


def measure(mode_env: dict[str, str], functions: int, tag: str) -> tuple[list[float], list[float]]:
    """(cold, warm) Invoke wall times in seconds for ``functions`` fresh functions on a fresh emulator."""
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
        launched = launch(Path(tmp), region=REGION, extra_env=mode_env)
        try:
            iam, lam = _client(launched.url, "iam"), _client(launched.url, "lambda")
            trust = {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
            role = iam.create_role(RoleName="bench", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
            code = _zip()
            cold, warm = [], []
            for i in range(functions):
                name = f"bench-{tag}-{i}"
                lam.create_function(
                    FunctionName=name,
                    Runtime=f"python{sys.version_info.major}.{sys.version_info.minor}",
                    Handler="app.handler",
                    Role=role,
                    Code={"ZipFile": code},
                    TracingConfig={"Mode": "Active"},
                )
                for into in (cold, warm):
                    started = time.perf_counter()
                    resp = lam.invoke(FunctionName=name, Payload=b"{}")
                    into.append(time.perf_counter() - started)
                    if "FunctionError" in resp:
                        raise SystemExit(f"{name} failed: {resp['Payload'].read()!r}")
            return cold, warm
        finally:
            procs.stop_tree(launched.pid)


def _row(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"| {name} | {statistics.median(ms):.0f} ms | {min(ms):.0f} ms | {max(ms):.0f} ms | {len(ms)} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--functions", type=int, default=6, help="fresh functions per emulator and round")
    args = parser.parse_args(argv)
    results: dict[str, tuple[list[float], list[float]]] = {m: ([], []) for m in MODES}
    started, load = time.monotonic(), os.getloadavg()
    for r in range(args.rounds):
        order = list(MODES) if r % 2 == 0 else list(reversed(MODES))
        for mode in order:
            cold, warm = measure(MODES[mode], args.functions, f"r{r}")
            results[mode][0].extend(cold)
            results[mode][1].extend(warm)
            print(f"round {r + 1}: {mode}: cold median {statistics.median(cold) * 1000:.0f} ms", flush=True)
    med = {mode: statistics.median(cold) for mode, (cold, _warm) in results.items()}
    lines = [
        "# Benchmark: what a Python cold start costs, with the runtime sandbox and its warm start",
        "",
        f"Generated by `python -m benchmarks.cold_start` (see its docstring); do not edit by hand. "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {args.rounds} rounds x {args.functions} fresh functions "
        f"per mode, modes alternating; load average at start {load[0]:.2f}, run time "
        f"{(time.monotonic() - started) / 60:.1f} min. Python {sys.version.split()[0]}; shared 2-CPU machine.",
        "",
        "| Invoke (client wall time) | median | min | max | samples |",
        "|---|---|---|---|---|",
    ]
    for mode, (cold, warm) in results.items():
        lines += [_row(f"cold start, {mode}", cold), _row(f"warm, {mode}", warm)]
    lines += [
        "",
        f"Cold start with the sandbox (each runtime a new interpreter) / without: **{med[COLD] / med[BEFORE]:.2f}x**; "
        f"with the warm start / without it: **{med[WARM] / med[COLD]:.2f}x** (medians). The first function of each "
        "emulator is invoked right after its creation, while the warm runtime still imports the SDK: it waits for it.",
        "",
    ]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
