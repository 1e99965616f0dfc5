"""Integration-test serverless AWS stacks on an ephemeral copy per git branch.

The pytest plugin (``harness.pytest.plugin``, entry point ``branchstack``) deploys the branch stack with the
team's own deploy command, runs scenarios against it, and tears it down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.stack import Stack, StackInfo

__all__ = ["HarnessError", "Stack", "StackInfo"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # ``harness.stack`` loads boto3: imported on first use, so the plugin's own import stays free.
    if name in ("Stack", "StackInfo"):
        from harness import stack

        return getattr(stack, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
