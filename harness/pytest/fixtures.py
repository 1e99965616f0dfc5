"""The fixtures of the Python scenario API: what a test function gets to exercise the branch stack.

Every fixture is bound to the deployed stack and to the current test: ids
carry the run, the worker and the test (so parallel tests and runs never see
each other's data), Faker is seeded per test (the seed is printed on failure),
and HTTP calls to the stack's API reach the emulator on a local target.
The fixtures find the process's role object and import nothing above it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from harness.pytest.role import Role, role_of

if TYPE_CHECKING:  # requests, boto3 and faker load when a test asks for a fixture, not at plugin import
    from harness.clients import Api, Invoker
    from harness.event_watch import EventWatch
    from harness.stack import Stack, StackInfo


def _role(request: pytest.FixtureRequest) -> Role:
    role = role_of(request.config)
    if role is None:
        pytest.fail("the branchstack plugin is not configured in this session", pytrace=False)
    return role


@pytest.fixture(scope="session")
def stack_info(request: pytest.FixtureRequest) -> StackInfo:
    """The deployed stack's plain description (JSON-able)."""
    role = _role(request)
    if role.info is None:
        s = role.settings
        mode = s.stack if s else "?"
        paths = ", ".join(s.integration_paths) if s else "?"
        pytest.fail(
            f"this test needs the branch stack, but this session did not deploy it (stack={mode}).\n"
            f"  hint: put the test under one of the integration paths ({paths}), or run with --stack on",
            pytrace=False,
        )
    return role.info


@pytest.fixture
def trace(request: pytest.FixtureRequest, stack_info: StackInfo) -> Any:
    """This test's X-Ray trace: ``trace.trace_id``, ``trace.fetch()``, ``trace.wait_for_call(...)``."""
    role = _role(request)
    ctx = role.trace_contexts.get(request.node.nodeid)
    if role.tracing is None or ctx is None:
        pytest.fail("traces are off for this run (the endpoint target has no trace source)", pytrace=False)
    return role.tracing.test_trace(ctx)


@pytest.fixture
def logs(request: pytest.FixtureRequest, stack_info: StackInfo) -> Any:
    """The log lines of this test's function invocations: ``logs.lines()``, ``logs.wait_for(pattern)``."""
    found = _role(request).function_logs(request.node.nodeid)
    if found is None:
        pytest.fail("function logs are found through the trace, and traces are off for this run", pytrace=False)
    return found


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest, stack_info: StackInfo) -> Stack:
    """The deployed branch stack: name, stage, outputs, physical ids, ``client(service)``."""
    return _role(request).shared(stack_info)[0]


@pytest.fixture
def unique_id(request: pytest.FixtureRequest) -> str:
    """An id scoped to this run, worker and test: prefix every key a test writes with it."""
    return _role(request).test_identity(request.node)[0]


@pytest.fixture
def fake(request: pytest.FixtureRequest) -> Any:
    """Faker, seeded for this test (the seed is printed if the test fails)."""
    from harness.clients import make_faker

    return make_faker(_role(request).test_identity(request.node)[1])


@pytest.fixture
def invoke(stack: Stack) -> Invoker:
    """``invoke(function, payload, invocation_type=...)`` -> ``InvokeResult``."""
    from harness.clients import Invoker

    return Invoker(stack)


@pytest.fixture
def http(stack: Stack) -> Iterator[Api]:
    """``http.get/post/...(path, api="ApiUrl", json=...)`` against the stack's API."""
    import requests

    from harness.clients import Api

    with requests.Session() as session:
        yield Api(stack, session)


@pytest.fixture
def table(stack: Stack) -> Callable[[str], Any]:
    """``table("OrdersTable")`` -> a boto3 DynamoDB Table resource (logical id, output or name)."""
    from harness.clients import table_resource

    return lambda name: table_resource(stack, name)


@pytest.fixture
def eventually() -> Callable[..., Any]:
    """``eventually(fn, within=10)``: retry ``fn`` until it stops raising AssertionError."""
    from harness.scenarios import waiting

    return waiting.eventually


@pytest.fixture
def events(request: pytest.FixtureRequest, stack: Stack) -> EventWatch:
    """``events.listen(bus)``, ``events.wait_for(pattern, bus=...)``, ``events.wait_for_message(topic, pattern)``."""
    from harness.event_watch import EventWatch

    return EventWatch(stack, _role(request).event_listeners())
