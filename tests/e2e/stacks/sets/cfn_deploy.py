"""``aws cloudformation deploy``'s steps through boto3, checking the stack every half second.

The AWS CLI checks a stack's create or update at once, then every 30 s. The
emulator finishes a custom resource (a Lambda answering its response URL) or a
nested stack a moment after that first check, so each such deploy waited out
the 30 s. Same words as the CLI::

    python cfn_deploy.py --template-file T --stack-name S [--parameter-overrides K=V ...]
        [--capabilities C ...] [--tags K=V ...] [--no-fail-on-empty-changeset]
"""

from __future__ import annotations

import argparse
import sys
import time

import boto3
from botocore.exceptions import ClientError, WaiterError

POLL = {"Delay": 0.5, "MaxAttempts": 600}


def pairs(words: list[str], key: str, value: str) -> list[dict[str, str]]:
    return [dict(zip((key, value), w.split("=", 1), strict=True)) for w in words]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--template-file", required=True)
    p.add_argument("--stack-name", required=True)
    p.add_argument("--parameter-overrides", nargs="*", default=[])
    p.add_argument("--capabilities", nargs="*", default=[])
    p.add_argument("--tags", nargs="*", default=[])
    p.add_argument("--no-fail-on-empty-changeset", action="store_true")
    a = p.parse_args()
    cfn = boto3.client("cloudformation")
    try:
        status = cfn.describe_stacks(StackName=a.stack_name)["Stacks"][0]["StackStatus"]
        kind = "CREATE" if status == "REVIEW_IN_PROGRESS" else "UPDATE"
    except ClientError:
        kind = "CREATE"
    with open(a.template_file) as f:
        body = f.read()
    change_set = cfn.create_change_set(
        StackName=a.stack_name,
        ChangeSetName=f"deploy-{time.time_ns()}",
        ChangeSetType=kind,
        TemplateBody=body,
        Parameters=pairs(a.parameter_overrides, "ParameterKey", "ParameterValue"),
        Capabilities=a.capabilities,
        Tags=pairs(a.tags, "Key", "Value"),
    )["Id"]
    print("Waiting for changeset to be created..", flush=True)
    try:
        cfn.get_waiter("change_set_create_complete").wait(ChangeSetName=change_set, WaiterConfig=POLL)
    except WaiterError:
        reason = cfn.describe_change_set(ChangeSetName=change_set).get("StatusReason", "")
        if a.no_fail_on_empty_changeset and ("didn't contain changes" in reason or "No updates" in reason):
            print(f"No changes to deploy. Stack {a.stack_name} is up to date")
            return 0
        print(f"Failed to create the changeset: {reason}", file=sys.stderr)
        return 255
    cfn.execute_change_set(ChangeSetName=change_set)
    print("Waiting for stack create/update to complete", flush=True)
    try:
        cfn.get_waiter(f"stack_{kind.lower()}_complete").wait(StackName=a.stack_name, WaiterConfig=POLL)
    except WaiterError as exc:
        print(f"Failed to create/update the stack {a.stack_name}: {exc}", file=sys.stderr)
        return 255
    print(f"Successfully created/updated stack - {a.stack_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
