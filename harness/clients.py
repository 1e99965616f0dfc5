"""The objects of the Python scenario API: Lambda invoke, HTTP calls to the stack's API, DynamoDB tables.

The fixtures in ``harness.pytest.fixtures`` hand them to test functions; they
are plain classes bound to a :class:`~harness.stack.Stack`, usable without pytest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from harness.stack import Stack, invoke_function
from harness.urls import to_emulator


def make_faker(seed: int) -> Any:
    from faker import Faker

    fake = Faker()
    fake.seed_instance(seed)
    return fake


@dataclass(frozen=True)
class InvokeResult:
    """A Lambda invocation: HTTP status, decoded payload, and the function error if any."""

    status: int
    payload: Any
    function_error: str | None
    raw: Mapping[str, Any]

    @property
    def body(self) -> Any:
        """For API Gateway proxy responses: the decoded ``body``."""
        if isinstance(self.payload, dict) and isinstance(self.payload.get("body"), str):
            try:
                return json.loads(self.payload["body"])
            except ValueError:
                return self.payload["body"]
        return None


class Invoker:
    """``invoke(function, payload)``: call a function of the stack by logical id, output or name."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def __call__(
        self,
        function: str,
        payload: Any = None,
        *,
        invocation_type: str = "RequestResponse",
        qualifier: str | None = None,
    ) -> InvokeResult:
        resp, raw = invoke_function(
            self.stack.client("lambda"),
            self.stack.resolve(function),
            None if payload is None else json.dumps(payload).encode(),
            invocation_type=invocation_type,
            qualifier=qualifier,
        )
        try:
            decoded: Any = json.loads(raw) if raw else None
        except ValueError:
            decoded = raw.decode("utf-8", errors="replace")
        return InvokeResult(resp["StatusCode"], decoded, resp.get("FunctionError"), resp)


class Api:
    """HTTP calls to an API of the stack, addressed by the output that holds its base URL."""

    def __init__(
        self, stack: Stack, session: requests.Session, default_api: str = "ApiUrl", timeout: float = 30
    ) -> None:
        self.stack = stack
        self.session = session
        self.default_api = default_api
        self.timeout = timeout

    def url(self, path: str, api: str | None = None) -> str:
        base = self.stack.output(api or self.default_api)
        joined = base.rstrip("/") + "/" + path.lstrip("/")
        return to_emulator(joined, self.stack.endpoint_url)

    def request(self, method: str, path: str, *, api: str | None = None, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        return self.session.request(method, self.url(path, api), **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)


def table_resource(stack: Stack, name: str) -> Any:
    """A boto3 DynamoDB ``Table`` resource for a logical id, output or table name."""
    import boto3

    from harness.stack import CLIENT_CONFIG, boto3_session, table_name_of

    value = table_name_of(stack.resolve(name))
    session: boto3.Session = boto3_session(stack.info["target"])
    return session.resource("dynamodb", endpoint_url=stack.endpoint_url, config=CLIENT_CONFIG).Table(value)
