"""Where the stack runs. One Protocol, one class per file.

``make_target(settings)`` picks the implementation; everything else in the
harness is target-agnostic and only sees ``TargetInfo`` and ``Target.env()``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from harness.targets.base import Target

if TYPE_CHECKING:
    from harness.errors import EmulatorDied
    from harness.settings import Settings

__all__ = ["Target", "make_target"]


def make_target(
    settings: Settings,
    run_dir: Path,
    on_death: Callable[[EmulatorDied], None] | None = None,
    *,
    attach_only: bool = False,
    extra_env: Mapping[str, str] | None = None,
) -> Target:
    """The target for ``settings``; ``attach_only`` never starts a new emulator."""
    if settings.target == "local":
        from harness.targets.local import LocalTarget

        return LocalTarget(settings, run_dir, on_death=on_death, attach_only=attach_only, extra_env=extra_env)
    if settings.target == "endpoint":
        from harness.targets.endpoint import EndpointTarget

        return EndpointTarget(settings)
    from harness.targets.aws import AwsTarget

    return AwsTarget(settings)
