"""Version-guarded adaptations of MiniStack internals, applied in its process.

Each adaptation names the emulator gap it covers. ``apply_all`` refuses to run
against any version other than ``PINNED_VERSION``: an adaptation written for
one version must never be silently applied to, or silently skipped on,
another. ``tests/e2e/test_emulator_adaptations.py`` fails loudly when one no
longer applies.
"""

from __future__ import annotations

from importlib import metadata

from harness.emulator import PINNED_VERSION


class AdaptationError(RuntimeError):
    """The installed emulator is not the version these adaptations were written for."""


def installed_version() -> str:
    try:
        return metadata.version("ministack")
    except metadata.PackageNotFoundError as exc:
        raise AdaptationError(
            "ministack is not installed; install the harness with its local extra: "
            f"pip install 'pytest-branchstack[local]' (pins ministack=={PINNED_VERSION})"
        ) from exc


def check_version() -> str:
    version = installed_version()
    if version != PINNED_VERSION:
        raise AdaptationError(
            f"ministack {version} is installed but the harness is pinned to {PINNED_VERSION}; "
            f"run: pip install ministack=={PINNED_VERSION}"
        )
    return version


ADAPTATIONS: list[tuple[str, object]] = []


def apply_all() -> list[str]:
    """Apply every adaptation; return their names."""
    check_version()
    applied = []
    for name, fn in ADAPTATIONS:
        fn()  # type: ignore[operator]
        applied.append(name)
    return applied
