"""The Target protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from harness.errors import EmulatorDied

if TYPE_CHECKING:
    from harness.stack import TargetInfo

# Fixed dummy credentials for emulator targets. Never real secrets.
DUMMY_ACCESS_KEY = "test"
DUMMY_SECRET_KEY = "test"  # noqa: S105 - the emulator's documented dummy key
#: The embedded emulator's account: MiniStack's own, as the harness passes it no MINISTACK_ACCOUNT_ID and its
#: dummy key is not a 12-digit number (either would choose another).
EMULATOR_ACCOUNT = "000000000000"


class Target(Protocol):
    """A place to deploy to: the embedded emulator, an endpoint, or an account."""

    kind: str
    #: The emulator's process id while this run owns or attached to one; ``None`` for remote targets.
    pid: int | None
    #: True once ``start`` launched a new emulator for this run, until the first deploy onto it: no stack can be
    #: on it yet (harness.deployment reads it, and clears it).
    started_empty: bool

    @property
    def died(self) -> EmulatorDied | None:
        """The emulator's death, if it died while in use (remote targets never do)."""
        ...

    def start(self) -> TargetInfo:
        """Make the target usable (start or reach it) and describe it."""
        ...

    def check(self) -> None:
        """Raise ``TargetError`` if the target is no longer usable."""
        ...

    def env(self) -> dict[str, str]:
        """Standard AWS variables that send any SDK or CLI to this target."""
        ...

    def describe(self) -> str:
        """One line for the terminal."""
        ...

    def stop(self, *, keep: bool = False) -> None:
        """Release the target. ``keep`` leaves a started emulator running for the next run."""
        ...


def emulator_env(info: TargetInfo) -> dict[str, str]:
    """The variables that point an SDK or CLI at an emulator endpoint."""
    assert info["endpoint_url"]
    return {
        "AWS_ENDPOINT_URL": info["endpoint_url"],
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_KEY,
        "AWS_REGION": info["region"],
        "AWS_DEFAULT_REGION": info["region"],
    }


def emulator_info(kind: str, endpoint_url: str, region: str) -> TargetInfo:
    return {
        "kind": kind,
        "region": region,
        "endpoint_url": endpoint_url,
        "access_key_id": DUMMY_ACCESS_KEY,
        "secret_access_key": DUMMY_SECRET_KEY,
        "session_token": None,
        "profile": None,
    }
