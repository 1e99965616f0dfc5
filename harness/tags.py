"""The tags every harness-managed stack carries.

They make a stack findable (by ``harness ls``/``gc`` and by the next run after
a hard kill) and they are the only licence to delete: the harness never
deletes a stack without ``harness:managed-by``.

Values are reduced to characters that are valid in a CloudFormation tag *and*
inert in a shell word (``[A-Za-z0-9_.:/=+@-]``): a deploy command may append
``$HARNESS_STACK_TAGS`` to its ``--tags`` in a recipe line.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

MANAGED_BY = "harness:managed-by"
MANAGER = "branchstack"
BRANCH = "harness:branch"
STAGE = "harness:stage"
COMMIT = "harness:commit"
RUN_ID = "harness:run-id"
CREATED_AT = "harness:created-at"
EXPIRES_AT = "harness:expires-at"
FINGERPRINT = "harness:fingerprint"
#: The app of the stack set (several stacks of one deploy share app and stage).
APP = "harness:app"
#: The name of a deploy without a stack (deploy-kind tagged): its run's stack name, the key of its lease.
DEPLOYMENT = "harness:deployment"

_UNSAFE = re.compile(r"[^A-Za-z0-9_.:/=+@-]")


def safe_value(value: str, limit: int = 200) -> str:
    """A tag value that is valid for CloudFormation and inert in a shell word."""
    return _UNSAFE.sub("_", value)[:limit] or "_"


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class StackTags:
    branch: str
    stage: str
    commit: str | None
    run_id: str
    created_at: dt.datetime
    ttl_hours: float
    fingerprint: str | None = None
    app: str | None = None
    deployment: str | None = None  # only for a deploy without a stack

    def as_dict(self) -> dict[str, str]:
        return {
            MANAGED_BY: MANAGER,
            BRANCH: safe_value(self.branch),
            STAGE: self.stage,
            COMMIT: safe_value(self.commit or "unknown"),
            RUN_ID: safe_value(self.run_id),
            CREATED_AT: iso(self.created_at),
            EXPIRES_AT: iso(self.created_at + dt.timedelta(hours=self.ttl_hours)),
            **({FINGERPRINT: self.fingerprint} if self.fingerprint else {}),
            **({APP: safe_value(self.app)} if self.app else {}),
            **({DEPLOYMENT: safe_value(self.deployment)} if self.deployment else {}),
        }

    def as_cli(self) -> str:
        """``Key=Value`` words for ``aws cloudformation deploy --tags`` / ``sam deploy --tags``."""
        return " ".join(f"{k}={v}" for k, v in self.as_dict().items())

    def as_cfn(self) -> list[dict[str, str]]:
        return [{"Key": k, "Value": v} for k, v in self.as_dict().items()]


#: CloudFormation's limit on the tags of one stack.
MAX_STACK_TAGS = 50


def merged(existing: dict[str, str], ours: dict[str, str], *, stack: str) -> dict[str, str]:
    """The stack's tags with the harness's added (ours win on a shared key), within CloudFormation's limit.

    Raises ``DeployError`` naming the counts when they cannot fit: the update
    would fail half-way through the run otherwise.
    """
    out = {**existing, **ours}
    if len(out) > MAX_STACK_TAGS:
        from harness.errors import DeployError

        mine = len(set(ours) - set(existing))
        raise DeployError(
            f"stack {stack} has {len(existing)} tags; the harness's {mine} more would make {len(out)}, over "
            f"CloudFormation's limit of {MAX_STACK_TAGS} tags on a stack, so it cannot be tagged as managed",
            hint=f"the harness needs {len(ours)} tags to find and delete the stack: give it at most "
            f"{MAX_STACK_TAGS - len(ours)} tags of its own",
        )
    return out


def is_managed(tags: dict[str, str]) -> bool:
    return tags.get(MANAGED_BY) == MANAGER


def tag_dict(stack_description: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {t["Key"]: t["Value"] for t in stack_description.get("Tags") or []}
