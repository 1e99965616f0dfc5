"""The behaviour check's stack names: API routes read ahead (while the run waits) or when the check runs."""

from __future__ import annotations

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
