"""An emulator someone else runs (LocalStack in Docker, a shared MiniStack)."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from harness.errors import EmulatorDied, TargetError
from harness.stack import TargetInfo
from harness.targets.base import emulator_env, emulator_info
from harness.urls import redact

if TYPE_CHECKING:
    from harness.settings import Settings

HEALTH_PATHS = ("/_localstack/health", "/_ministack/health")


class EndpointTarget:
    kind = "endpoint"

    pid: int | None = None  # no emulator process of ours
    started_empty = False
    died: EmulatorDied | None = None  # a remote target does not die under the run

    def __init__(self, settings: Settings) -> None:
        assert settings.endpoint_url, "settings validation requires endpoint-url for this target"
        self.settings = settings
        self.url: str = settings.endpoint_url.rstrip("/")

    def info(self) -> TargetInfo:
        return emulator_info("endpoint", self.url, self.settings.region)

    def start(self) -> TargetInfo:
        self.check()
        return self.info()

    def check(self) -> None:
        last: Exception | None = None
        for path in HEALTH_PATHS:
            try:
                with urllib.request.urlopen(self.url + path, timeout=3):  # noqa: S310 - user-configured endpoint
                    return
            except urllib.error.HTTPError:
                return  # it answers HTTP: reachable, health path just differs
            except (OSError, urllib.error.URLError) as exc:
                last = exc
        raise TargetError(
            f"the endpoint {redact(self.url)} is not reachable: {type(last).__name__}",
            hint="start the emulator there, or fix --endpoint-url",
        )

    def env(self) -> dict[str, str]:
        return emulator_env(self.info())

    def describe(self) -> str:
        return f"endpoint {redact(self.url)} in {self.settings.region}"

    def stop(self, *, keep: bool = False) -> None:
        return None
