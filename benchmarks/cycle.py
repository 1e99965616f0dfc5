"""The floor of one whole cycle: what a branch-stack run cannot go below on this machine.

No harness run, no pytest, no AWS CLI: boto3 and requests, one step after the
other, each as tight as it can be:

1. boot the emulator exactly as the harness boots it (same command, same
   settings, ready when its readiness endpoint answers);
2. create the artifact bucket and upload the packaged template's artifacts
   (the zips ``aws cloudformation package`` made, read beforehand from the
   kept stack's bucket, untimed);
3. CreateStack of the same packaged template, polled every 20 ms until done;
4. the calls of the four reference scenarios (``benchmarks.floor``);
5. DeleteStack, polled every 20 ms until gone;
6. stop the emulator.

Usage: ``python -m benchmarks.cycle --artifacts DIR --template PACKAGED.yaml``
(``DIR`` holds ``<bucket>/<key>`` files). Prints one JSON line: seconds per
step and ``total`` (first step start to last step end).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

T0 = time.perf_counter()

import boto3  # noqa: E402 - after T0: imports count in the floor's whole process, not in its steps
import requests  # noqa: E402

from benchmarks.floor import run_calls  # noqa: E402

REGION = "us-east-1"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]


def _wait_stack(cfn: Any, stack_id: str, done: set[str], poll: float = 0.02) -> str:
    while True:
        status = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]
        if status in done or status.endswith(("_FAILED", "ROLLBACK_COMPLETE")):
            return status
        time.sleep(poll)


def cycle(artifacts: Path, template: str, stage: str) -> dict[str, float]:
    from harness.targets.local import launch  # the emulator, started exactly as the harness starts it

    steps: dict[str, float] = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-cycle-") as run_dir:
        emu = launch(Path(run_dir), region=REGION)
        try:
            steps["emulator boot"] = time.perf_counter() - start
            t = time.perf_counter()
            session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)  # noqa: S106
            s3 = session.client("s3", endpoint_url=emu.url)
            cfn = session.client("cloudformation", endpoint_url=emu.url)
            for bucket_dir in artifacts.iterdir():
                s3.create_bucket(Bucket=bucket_dir.name)
                for f in bucket_dir.rglob("*"):
                    if f.is_file():
                        s3.put_object(Bucket=bucket_dir.name, Key=str(f.relative_to(bucket_dir)), Body=f.read_bytes())
            steps["clients, bucket and artifact upload"] = time.perf_counter() - t
            t = time.perf_counter()
            name = f"orders-{stage}"
            stack_id = cfn.create_stack(
                StackName=name,
                TemplateBody=template,
                Capabilities=CAPABILITIES,
                Parameters=[{"ParameterKey": "Stage", "ParameterValue": stage}],
            )["StackId"]
            status = _wait_stack(cfn, stack_id, {"CREATE_COMPLETE"})
            if status != "CREATE_COMPLETE":
                raise SystemExit(f"cycle: CreateStack ended {status}")
            steps["CreateStack"] = time.perf_counter() - t
            t = time.perf_counter()
            desc = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
            outputs = {o["OutputKey"]: o["OutputValue"] for o in desc.get("Outputs") or []}
            ddb = session.client("dynamodb", endpoint_url=emu.url)
            with requests.Session() as http:
                run_calls(http, ddb, outputs, emu.url)
            steps["scenario calls (with their clients)"] = time.perf_counter() - t
            t = time.perf_counter()
            cfn.delete_stack(StackName=stack_id)
            status = _wait_stack(cfn, stack_id, {"DELETE_COMPLETE"})
            if status != "DELETE_COMPLETE":
                raise SystemExit(f"cycle: DeleteStack ended {status}")
            steps["DeleteStack"] = time.perf_counter() - t
        finally:
            t = time.perf_counter()
            emu.stop()
            steps["emulator stop"] = time.perf_counter() - t
    steps["total"] = time.perf_counter() - start
    steps["imports"] = start - T0
    return steps


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cycle")
    p.add_argument("--artifacts", type=Path, required=True)
    p.add_argument("--template", type=Path, required=True)
    p.add_argument("--stage", default="floor")
    args = p.parse_args(argv)
    print(json.dumps(cycle(args.artifacts, args.template.read_text(), args.stage)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
