"""Shared helpers for the scenario engine tests: a fake clock and runtimes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
import requests
from faker import Faker

from harness.scenarios.runtime import StepRuntime
from harness.stack import Stack, StackInfo
from tests.unit.fakes import FakeClock

# The YAML files here are test data (some deliberately broken), not scenarios to collect.
collect_ignore_glob = ["*.yaml", "*.yml"]

REGION = "us-east-1"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def stack_info(outputs: dict[str, str] | None = None, resources: dict[str, str] | None = None) -> StackInfo:
    return {
        "name": "orders-test",
        "stage": "test",
        "branch": "test",
        "outputs": outputs or {},
        "resources": resources or {},
        "resource_types": {},
        "tags": {},
        "target": {
            "kind": "aws",
            "region": REGION,
            "endpoint_url": None,
            "access_key_id": "testing",
            "secret_access_key": "testing",
            "session_token": None,
            "profile": None,
        },
    }


RuntimeFactory = Callable[..., StepRuntime]


@pytest.fixture
def make_runtime(clock: FakeClock) -> Iterator[RuntimeFactory]:
    """Build a ``StepRuntime`` over a stack with the given outputs/resources."""
    sessions: list[requests.Session] = []

    def make(
        outputs: dict[str, str] | None = None,
        resources: dict[str, str] | None = None,
        stack: Any = None,
        env: dict[str, str] | None = None,
        seed: int = 1234,
    ) -> StepRuntime:
        session = requests.Session()
        sessions.append(session)
        fake = Faker()
        fake.seed_instance(seed)
        if stack is None:
            boto = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
            stack = Stack(stack_info(outputs, resources), session=boto)
        return StepRuntime(
            stack=stack,
            unique="t3f9a2-gw0-1a2b3c",
            fake=fake,
            seed=seed,
            resolve_url=lambda url: url,
            http=session,
            env=env if env is not None else {},
            clock=clock,
            sleep=clock.sleep,
        )

    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials so nothing can reach a real account."""
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
