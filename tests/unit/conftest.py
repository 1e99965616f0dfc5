"""Fixtures the unit tests share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A boto3 session on moto's in-memory AWS (dummy keys, us-east-1)."""
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


@pytest.fixture(autouse=True)
def serial_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's backends are not thread-safe: one request at a time, as a real service would serve them.

    Code under test that calls AWS from several threads (``harness gc`` deletes a few stacks at a
    time, the leak probe and the listener sweep work side by side) otherwise meets, now and then,
    errors no service gives (``RuntimeError: OrderedDict mutated during iteration``).
    """
    import threading

    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.Lock()
    real = BotocoreStubber.process_request

    def one_at_a_time(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return real(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", one_at_a_time)
