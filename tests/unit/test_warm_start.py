"""What a session builds before its first test: the Stack, a client per service of the stack, HTTP, Faker."""

from __future__ import annotations

import gc
import sys
import weakref
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

import harness.stack
from harness.phases import READ_BACK, Phases
from harness.pytest.role import Role
from harness.stack import StackInfo, services_of


def info(types: dict[str, str]) -> StackInfo:
    return {
        "name": "orders-x",
        "stage": "x",
        "branch": "x",
        "outputs": {},
        "resources": dict.fromkeys(types, "physical"),
        "resource_types": types,
        "tags": {},
        "target": {
            "kind": "local",
            "region": "us-east-1",
            "endpoint_url": "http://127.0.0.1:1",
            "access_key_id": "test",
            "secret_access_key": "test",
            "session_token": None,
            "profile": None,
        },
    }


REFERENCE = {
    "Orders": "AWS::DynamoDB::Table",
    "Fn": "AWS::Lambda::Function",
    "FnRole": "AWS::IAM::Role",
    "Mapping": "AWS::Lambda::EventSourceMapping",
    "Dlq": "AWS::SQS::Queue",
    "Api": "AWS::ApiGateway::RestApi",
}


class StubConfig:
    def __init__(self) -> None:
        self.cleanups: list[Any] = []

    def add_cleanup(self, fn: Any) -> None:
        self.cleanups.append(fn)


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    made: list[str] = []
    monkeypatch.setattr(harness.stack, "make_client", lambda session, target, service: made.append(service) or service)
    return made


def test_services_are_the_ones_tests_call_for_the_stacks_resource_types() -> None:
    assert services_of(info(REFERENCE)) == ["dynamodb", "lambda", "sqs"]
    assert services_of(info({"Bus": "AWS::Events::EventBus", "Sm": "AWS::StepFunctions::StateMachine"})) == [
        "events",
        "stepfunctions",
    ]
    assert services_of(info({})) == []


def test_a_process_about_to_run_tests_builds_stack_clients_http_and_faker_first(built: list[str]) -> None:
    role = Role(StubConfig())  # type: ignore[arg-type]
    role.info = info(REFERENCE)
    role.prepare(SimpleNamespace(items=["a test"]))  # type: ignore[arg-type]
    assert built == ["dynamodb", "lambda", "sqs"]
    assert role._shared is not None
    stack, http, fake = role._shared
    assert stack.client("dynamodb") == "dynamodb" and built.count("dynamodb") == 1  # the test reuses it
    assert http is not None and fake is not None
    assert READ_BACK in role.phases.seconds


@pytest.fixture
def unfrozen() -> Iterator[None]:
    frozen = gc.get_freeze_count() > 0
    gc.unfreeze()
    gc.disable()  # only the test's own collections: none between making garbage and the freeze
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()  # what the test froze goes back to the collector
        if frozen:  # and this test process's heap leaves it again, as the suite's conftest left it
            gc.collect()
            gc.freeze()


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_what_was_built_before_the_tests_leaves_the_collector_and_what_the_tests_make_does_not(
    built: list[str], unfrozen: None
) -> None:
    before = weakref.ref(Cycle())  # cyclic garbage made before the tests, never collected yet
    role = Role(StubConfig())  # type: ignore[arg-type]
    role.info = info(REFERENCE)
    role.prepare(SimpleNamespace(items=["a test"]))  # type: ignore[arg-type]
    assert gc.get_freeze_count() > 0
    gc.collect()
    assert before() is not None  # frozen: lives until the process ends
    during = weakref.ref(Cycle())  # a test's garbage
    gc.collect()
    assert during() is None


def test_nothing_is_frozen_without_tests_or_without_a_stack(built: list[str], unfrozen: None) -> None:
    Role(StubConfig()).prepare(SimpleNamespace(items=["a test"]))  # type: ignore[arg-type]
    assert gc.get_freeze_count() == 0


def test_nothing_is_built_without_tests_or_without_a_stack(built: list[str]) -> None:
    role = Role(StubConfig())  # type: ignore[arg-type]
    role.info = info(REFERENCE)
    role.prepare(SimpleNamespace(items=[]))  # type: ignore[arg-type]  # an xdist controller collects nothing
    other = Role(StubConfig())  # type: ignore[arg-type]
    other.prepare(SimpleNamespace(items=["a test"]))  # type: ignore[arg-type]  # a run without a stack
    assert built == [] and role._shared is None and other._shared is None


def test_phases_add_up_per_name_and_keep_their_order() -> None:
    ticks = iter([0.0, 1.0, 5.0, 5.5, 10.0, 12.0])
    phases = Phases(clock=lambda: next(ticks))
    with phases.measure("plan"):
        pass
    with pytest.raises(RuntimeError), phases.measure("teardown"):
        raise RuntimeError("measured anyway")
    with phases.measure("plan"):
        pass
    assert phases.as_dict() == {"plan": 3.0, "teardown": 0.5}
    assert list(phases.as_dict()) == ["plan", "teardown"]


def test_the_step_runner_is_imported_before_the_first_scenario(
    built: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from harness.scenarios.collect import ScenarioItem

    monkeypatch.delitem(sys.modules, "harness.scenarios.runner", raising=False)
    role = Role(StubConfig())  # type: ignore[arg-type]
    role.info = info(REFERENCE)
    role.prepare(SimpleNamespace(items=["a Python test"]))  # type: ignore[arg-type]
    assert "harness.scenarios.runner" not in sys.modules  # no scenario, no engine
    role = Role(StubConfig())  # type: ignore[arg-type]
    role.info = info(REFERENCE)
    role.prepare(SimpleNamespace(items=[ScenarioItem.__new__(ScenarioItem)]))  # type: ignore[arg-type]
    assert "harness.scenarios.runner" in sys.modules


def test_a_stack_ready_after_collection_is_prepared_for_at_the_test_loop_once(built: list[str]) -> None:
    """A run of scenario files only: collection ends before the stack's start; the loop's start builds."""
    role = Role(StubConfig())  # type: ignore[arg-type]
    items = SimpleNamespace(items=["a test"])
    role.prepare(items)  # type: ignore[arg-type]  # collection finished, the stack still starting
    assert built == [] and role._shared is None
    role.info = info(REFERENCE)
    role.prepare(items)  # type: ignore[arg-type]  # the test loop starts
    assert built == ["dynamodb", "lambda", "sqs"] and role._shared is not None
    role.prepare(items)  # type: ignore[arg-type]
    assert built == ["dynamodb", "lambda", "sqs"]  # warmed once


def test_the_controller_waits_for_the_stack_then_prepares_before_the_first_test() -> None:
    from harness.pytest.controller import Controller

    calls: list[str] = []
    stub = SimpleNamespace(
        stack_ready=lambda: calls.append("ready"),
        prepare=lambda s: calls.append(f"prepare {s}"),
        finish_start=lambda: calls.append("checks"),
    )
    Controller.pytest_runtestloop(stub, "session")  # type: ignore[arg-type]
    assert calls == ["ready", "prepare session", "checks"]  # the build runs beside the checks, both before a test


class Raises:
    """Cyclic garbage whose finalizer raises: pytest reports it as an unraisable exception."""

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        raise RuntimeError("finalizer of a test's garbage")


def test_at_the_end_the_tests_garbage_is_collected_and_reported_before_the_rest_leaves_the_collector(
    built: list[str], unfrozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    role = Role(StubConfig())  # type: ignore[arg-type]
    role.info = info(REFERENCE)
    role.release_heap()  # no tests prepared: nothing collected, nothing frozen
    assert gc.get_freeze_count() == 0
    role.prepare(SimpleNamespace(items=["a test"]))  # type: ignore[arg-type]
    gc.unfreeze()
    reported: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: reported.append(u.exc_value))
    garbage = weakref.ref(Raises())
    kept = Cycle()
    role.release_heap()
    assert garbage() is None and [str(e) for e in reported] == ["finalizer of a test's garbage"]
    assert gc.get_freeze_count() > 0 and kept.me is kept
    del kept
    gc.collect()  # what is left was frozen: pytest's collections and the exit's no longer walk it
    assert [str(e) for e in reported] == ["finalizer of a test's garbage"]


def test_clients_made_ahead_on_the_emulator_are_the_ones_the_tests_stack_hands_out(built: list[str]) -> None:
    from harness.stack import SERVICE_OF_TYPE

    role = Role(StubConfig())  # type: ignore[arg-type]
    role.info = info(REFERENCE)
    role.make_clients_ahead(role.info["target"])  # while the session waits for the stack
    assert built == sorted(set(SERVICE_OF_TYPE.values()))
    role.prepare(SimpleNamespace(items=["a test"]))  # type: ignore[arg-type]
    assert built == sorted(set(SERVICE_OF_TYPE.values()))  # nothing made again
    assert role._shared is not None and role._shared[0]._session is role.clients_ahead.session  # type: ignore[union-attr]
    role._shared[0].client("logs")  # a service no resource type names: made when first asked, once
    role._shared[0].client("logs")
    assert built.count("logs") == 1


def test_clients_are_not_made_ahead_on_aws_nor_handed_to_a_stack_of_another_target(built: list[str]) -> None:
    role = Role(StubConfig())  # type: ignore[arg-type]
    aws = {**info(REFERENCE)["target"], "kind": "aws", "access_key_id": None, "secret_access_key": None}
    role.make_clients_ahead(aws)  # type: ignore[arg-type]  # credentials come from the run's identity, set later
    assert built == [] and role.clients_ahead is None
    role.make_clients_ahead(info(REFERENCE)["target"])
    other = info(REFERENCE)
    other["target"] = {**other["target"], "endpoint_url": "http://127.0.0.1:2"}
    role.info = other
    made_ahead = len(built)
    role.prepare(SimpleNamespace(items=["a test"]))  # type: ignore[arg-type]
    assert built[made_ahead:] == ["dynamodb", "lambda", "sqs"]  # its own, for its own endpoint
