"""Integration-test serverless AWS stacks on an ephemeral copy per git branch.

The pytest plugin (``harness.pytest.plugin``, entry point ``branchstack``) deploys the branch stack with the
team's own deploy command, runs scenarios against it, and tears it down.
"""

from __future__ import annotations

from harness.errors import HarnessError
from harness.stack import Stack, StackInfo

__all__ = ["HarnessError", "Stack", "StackInfo"]
__version__ = "0.1.0"
