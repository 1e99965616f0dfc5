"""The process's environment is never changed while a harness thread builds a boto3 session or client.

botocore iterates ``os.environ`` while it builds a client (the proxy lookup);
a variable removed meanwhile by another thread raised ``KeyError:
'AWS_PROFILE'`` in the drift check's client on the aws target, while the
session exported the stack. Each test holds a build open at botocore's own
``creating-client-class`` event (or holds the lock as a build would) and
changes the environment from another thread the way the session does: the
change must wait until the build ends.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness import boto_sessions, environment
from harness.branch import BranchInfo
from harness.plan import Plan
from harness.pytest.role import Role
from harness.settings import resolve
from harness.stack import make_client
from harness.stackops import StackOps

VAR = "HARNESS_TEST_ENVIRONMENT_RACE"
TARGET: Any = {"endpoint_url": "http://127.0.0.1:9", "region": "us-east-1"}
BLOCKED = 0.3  # how long the change is given to get through while the build is held open


class StubConfig:
    def add_cleanup(self, fn: Any) -> None:
        pass


@pytest.fixture(autouse=True)
def clean_var() -> Iterator[None]:
    os.environ[VAR] = "before"
    yield
    os.environ.pop(VAR, None)


def _session() -> Any:
    return boto_sessions.session(aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1")  # noqa: S106


def _change_during_build(session: Any, build: Callable[[], Any], change: Callable[[], Any]) -> tuple[bool, str | None]:
    """Run ``build``; while botocore builds the client, ``change`` on another thread.

    Returns (whether the change had ended while the build was still open, the variable at that moment).
    """
    seen: dict[str, Any] = {}

    def inside(**_: Any) -> None:
        if "thread" in seen:
            return
        seen["thread"] = t = threading.Thread(target=change)
        t.start()
        t.join(BLOCKED)
        seen["ended"], seen["value"] = not t.is_alive(), os.environ.get(VAR)

    session.events.register("creating-client-class", inside)
    build()
    seen["thread"].join(5)
    assert not seen["thread"].is_alive()
    return seen["ended"], seen["value"]


def _role_removes_var() -> None:
    Role(StubConfig()).set_env({VAR: None})  # type: ignore[arg-type]


def test_a_client_made_by_make_client_is_never_built_while_the_session_changes_the_environment() -> None:
    session = _session()
    ended, value = _change_during_build(session, lambda: make_client(session, TARGET, "sqs"), _role_removes_var)
    assert (ended, value) == (False, "before")
    assert VAR not in os.environ  # the change happened, once the client was built


def test_a_stackops_client_of_its_own_config_is_never_built_while_the_environment_changes(tmp_path: Path) -> None:
    from botocore.config import Config

    session = _session()
    settings = resolve({"target": "endpoint", "endpoint_url": "http://127.0.0.1:9"}, {}, tmp_path)
    plan = Plan(BranchInfo("feature/x", "test"), "feature-x", "app-feature-x", "app", "run1")
    target: Any = SimpleNamespace(session=lambda: session, env=dict)
    ops = StackOps(settings, plan, target, TARGET, {}, tmp_path, print)
    ended, value = _change_during_build(
        session, lambda: ops.client("cloudformation", config=Config(retries={"max_attempts": 2})), _role_removes_var
    )
    assert (ended, value) == (False, "before")


def test_a_session_is_never_built_while_the_environment_changes() -> None:
    with environment.LOCK:  # as a build on another thread holds it
        t = threading.Thread(target=_session)
        t.start()
        t.join(BLOCKED)
        assert t.is_alive()
    t.join(5)
    assert not t.is_alive()


def test_set_env_and_restore_env_wait_for_a_build_and_put_back_what_was_there() -> None:
    role = Role(StubConfig())  # type: ignore[arg-type]
    with environment.LOCK:
        t = threading.Thread(target=role.set_env, args=({VAR: None, VAR + "_NEW": "x"},))
        t.start()
        t.join(BLOCKED)
        assert t.is_alive() and os.environ[VAR] == "before"
    t.join(5)
    assert VAR not in os.environ and os.environ[VAR + "_NEW"] == "x"
    role.set_env({VAR: "second"})  # the first value saved is the one put back
    role.restore_env()
    assert os.environ[VAR] == "before" and VAR + "_NEW" not in os.environ


def test_replaced_holds_exactly_the_given_variables_of_the_names_and_puts_every_one_back() -> None:
    os.environ.pop(VAR + "_B", None)
    with environment.replaced((VAR, VAR + "_B"), {VAR + "_B": "b", "NOT_NAMED": "n"}):
        assert VAR not in os.environ and os.environ[VAR + "_B"] == "b" and "NOT_NAMED" not in os.environ
    assert os.environ[VAR] == "before" and VAR + "_B" not in os.environ


def test_many_clients_built_beside_many_changes_raise_nothing() -> None:
    """The race as it happened: clients built on one thread while another removes and adds variables."""
    session, errors, built, stop = _session(), [], [], threading.Event()

    def build() -> None:
        try:
            while not stop.is_set():
                make_client(session, TARGET, "sqs")
                built.append(1)
        except Exception as exc:  # noqa: BLE001 - the failure this test looks for
            errors.append(exc)

    t = threading.Thread(target=build)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns as often as they can: the race shows within the loop
    t.start()
    role = Role(StubConfig())  # type: ignore[arg-type]
    try:
        i = 0
        while len(built) < 40 and not errors and t.is_alive():
            i += 1
            role.set_env({VAR: None, f"{VAR}_{i % 50}": "x"})
            role.restore_env()
    finally:
        stop.set()
        t.join(10)
        sys.setswitchinterval(switch)
    assert errors == []
