"""The behaviour check's stack names: API routes read ahead (while the run waits) or when the check runs."""

from __future__ import annotations

import time
from typing import Any

from harness.pytest.behaviour import names_for, routes_for

INFO: Any = {
    "name": "orders-b1",
    "resources": {"Api": "abc123", "Table": "orders-b1-Table-1"},
    "resource_types": {"Api": "AWS::ApiGateway::RestApi", "Table": "AWS::DynamoDB::Table"},
    "outputs": {},
}


class Client:
    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        self.asked: list[str] = []

    def __call__(self, service: str) -> Any:
        self.asked.append(service)
        return self

    def get_paginator(self, name: str) -> Any:
        assert name == "get_resources"
        return self

    def paginate(self, restApiId: str) -> Any:  # noqa: N803 - botocore's parameter name
        assert restApiId == "abc123"
        return [{"items": [{"path": p} for p in self.paths]}]


def test_routes_read_ahead_are_the_ones_the_check_would_read_and_it_reads_no_more() -> None:
    client = Client(["/orders", "/orders/{order_id}"])
    ahead = routes_for(INFO, client)
    assert ahead == ["/orders", "/orders/{order_id}"] and client.asked == ["apigateway"]
    later = Client(["/changed"])
    assert names_for(INFO, later, ahead) != names_for(INFO, later, ["/changed"])  # the routes make the names
    later.asked.clear()
    assert names_for(INFO, later, ahead) == names_for(INFO, Client(ahead))
    assert later.asked == []  # read ahead: the check sends no call of its own


def test_without_routes_read_ahead_the_check_reads_them() -> None:
    client = Client(["/orders/{order_id}"])
    assert names_for(INFO, client) == names_for(INFO, Client(["/orders/{order_id}"]), ["/orders/{order_id}"])
    assert client.asked == ["apigateway"]


def _controller(client: Client, info: Any, behaviour: str = "report") -> Any:
    from types import SimpleNamespace

    from harness.pytest.controller import Controller

    c = object.__new__(Controller)
    c.settings = SimpleNamespace(behaviour=behaviour)
    c.tracing = SimpleNamespace(collector=object())
    c.lifecycle = SimpleNamespace(client=client)
    c.info, c.api_routes, c._routes_thread = info, None, None
    return c


def test_routes_are_read_on_a_thread_once_the_stack_is_known_and_the_end_only_waits_for_them() -> None:
    client = Client(["/orders", "/orders/{order_id}"])
    c = _controller(client, INFO)
    c._read_routes_ahead(INFO)
    assert c._routes_thread is not None and c._routes_thread.name == "harness-api-routes"
    c._routes_read()  # the session's end: waits for the thread
    assert c.api_routes == ["/orders", "/orders/{order_id}"] and client.asked == ["apigateway"]
    c._routes_read()
    assert client.asked == ["apigateway"]  # read once


def test_no_routes_are_read_for_a_stack_without_an_api_nor_with_the_behaviour_check_off() -> None:
    no_api = {**INFO, "resource_types": {"Table": "AWS::DynamoDB::Table"}}
    client = Client(["/orders"])
    c = _controller(client, no_api)
    c._read_routes_ahead(no_api)
    c._routes_read()
    assert c._routes_thread is None and c.api_routes == [] and client.asked == []
    off = _controller(client, INFO, behaviour="off")
    off._read_routes_ahead(INFO)
    assert off._routes_thread is None and client.asked == []


def test_the_routes_read_ahead_are_in_before_the_first_test() -> None:
    """The session waits for them with the checks after the deploy: no request of theirs waits in the target's
    queue beside a test's."""
    from types import SimpleNamespace

    from harness.phases import Phases

    class Slow(Client):
        def paginate(self, restApiId: str) -> Any:  # noqa: N803 - botocore's parameter name
            time.sleep(0.2)  # a target that answers late: the test must not start before it has
            return super().paginate(restApiId)

    client = Slow(["/orders"])
    c = _controller(client, INFO)
    c._read_routes_ahead(INFO)
    thread = c._routes_thread
    assert thread is not None
    c.starting, c.phases = SimpleNamespace(wait=lambda: None), Phases()
    c.finish_start()
    assert not thread.is_alive() and c._routes_thread is None and c.api_routes == ["/orders"]
