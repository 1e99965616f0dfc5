"""Delete a stack through CloudFormation and prove it is gone.

Deletion is addressed by stack id (ARN) where known: after a delete,
``describe_stacks`` by *name* no longer finds the stack, but by id it returns
``DELETE_COMPLETE`` (or ``DELETE_FAILED`` with reasons), which is what the
botocore waiter needs to tell success from failure.
"""

from __future__ import annotations

import uuid
from typing import Any

import botocore.exceptions

from harness.deploy import failure_events, stack_status
from harness.errors import TeardownError


def delete_stack(cfn: Any, stack: str, *, delay: float, max_attempts: int) -> None:
    """Delete ``stack`` (name or id) and wait until CloudFormation says it is gone."""
    desc = stack_status(cfn, stack)
    if desc is None:
        return
    stack_id = desc["StackId"]
    if desc["StackStatus"] == "DELETE_COMPLETE":
        return
    token = f"harness-delete-{uuid.uuid4().hex}"
    cfn.delete_stack(StackName=stack_id, ClientRequestToken=token)
    try:
        cfn.get_waiter("stack_delete_complete").wait(
            StackName=stack_id, WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts}
        )
    except botocore.exceptions.WaiterError as exc:
        reasons = failure_events(cfn, stack_id)
        status = (exc.last_response or {}).get("Stacks", [{}])[0].get("StackStatus", "unknown")
        raise TeardownError(
            f"stack {desc['StackName']} was not deleted (status {status})"
            + ("".join(f"\n  {r}" for r in reasons) if reasons else ""),
            hint="empty or release the resources named above, then run `harness destroy` again",
        ) from None
