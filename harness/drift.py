"""Drift detection after a deploy: has anything of the stack been changed by hand?

CloudFormation compares each resource's live configuration with the template.
Detection is asynchronous on AWS (seconds to a minute) and synchronous on the
emulator; either way the result is reported, never fatal: drift is news for
the developer, not a test failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.config import Config

from harness.aws_errors import AWS_ERRORS, explain
from harness.stack import CLIENT_CONFIG as STACK_CLIENT_CONFIG

DRIFTED = ("MODIFIED", "DELETED")

#: Drift detection is reported, never fatal: it is not worth botocore's full retry budget.
CLIENT_CONFIG = STACK_CLIENT_CONFIG.merge(Config(retries={"mode": "standard", "max_attempts": 2}))


def detect(
    cfn: Any,
    stack: str,
    *,
    within: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    identity: str | None = None,
) -> tuple[str, list[str]]:
    """(summary, drifted resources as lines). Never raises for an AWS error: it is reported, named."""
    try:
        detection_id = cfn.detect_stack_drift(StackName=stack)["StackDriftDetectionId"]
        deadline = clock() + within
        delay = 0.1  # on an emulator detection is done in a moment; on AWS the pauses grow to 5 s
        while True:
            status = cfn.describe_stack_drift_detection_status(StackDriftDetectionId=detection_id)
            if status["DetectionStatus"] != "DETECTION_IN_PROGRESS":
                break
            if clock() >= deadline:
                return f"drift detection still running after {within:.0f}s (id {detection_id})", []
            sleep(delay)
            delay = min(delay * 1.5, 5.0)
        lines: list[str] = []
        token: str | None = None
        while True:  # not pageable in botocore: follow NextToken by hand
            kwargs: dict[str, Any] = {"StackName": stack, "StackResourceDriftStatusFilters": list(DRIFTED)}
            if token:
                kwargs["NextToken"] = token
            page = cfn.describe_stack_resource_drifts(**kwargs)
            for d in page["StackResourceDrifts"]:
                changed = ", ".join(p.get("PropertyPath", "?") for p in d.get("PropertyDifferences") or [])
                lines.append(
                    f"{d['LogicalResourceId']} ({d['ResourceType']}): {d['StackResourceDriftStatus']}"
                    + (f" [{changed}]" if changed else "")
                )
            token = page.get("NextToken")
            if not token:
                break
        state = status.get("StackDriftStatus", "UNKNOWN")
        reason = status.get("DetectionStatusReason")
        return f"drift: {state}" + (f" ({reason})" if reason else ""), lines
    except AWS_ERRORS as exc:
        return f"drift detection not available: {explain(exc, identity=identity, call=_call(exc))}", []
    except (KeyError, TypeError) as exc:  # an answer that parsed, but is not what CloudFormation sends
        who = identity or "the run's credentials"
        return (
            f"drift detection not available: cloudformation:DetectStackDrift failed for {who}: "
            f"the endpoint's answer is not an AWS response (no {exc})",
            [],
        )


def _call(exc: BaseException) -> str:
    """The drift call that failed (a response that could not be parsed carries no operation name)."""
    op = getattr(exc, "operation_name", None)
    return f"cloudformation:{op}" if op else "cloudformation:DetectStackDrift"
