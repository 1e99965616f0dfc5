"""Lambda invoke: one call for the Python ``invoke`` fixture and the scenario step, each decoding its own way."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest

from harness.clients import Invoker
from harness.scenarios.loader import load_text
from harness.scenarios.runner import run_scenario
from harness.stack import invoke_function

NOT_UTF8 = b"\xff\xfe not json"


class FakeLambda:
    def __init__(self, payload: bytes | None) -> None:
        self.payload = payload
        self.calls: list[dict[str, Any]] = []

    def invoke(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        response: dict[str, Any] = {"StatusCode": 200, "FunctionError": "Unhandled"}
        if self.payload is not None:
            response["Payload"] = io.BytesIO(self.payload)
        return response


def test_invoke_function_sends_what_it_is_given_and_reads_the_payload_once() -> None:
    fake = FakeLambda(b'{"ok": true}')
    response, raw = invoke_function(fake, "orders-fn", None, invocation_type="Event", qualifier="live")
    assert fake.calls == [{"FunctionName": "orders-fn", "InvocationType": "Event", "Qualifier": "live"}]
    assert raw == b'{"ok": true}' and response["StatusCode"] == 200
    assert invoke_function(FakeLambda(None), "f", b"{}")[1] == b""  # no payload in the answer


@pytest.fixture
def stack(make_runtime: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, FakeLambda]:
    runtime = make_runtime(resources={"OrdersFunction": "orders-test-OrdersFunction-1A"})
    fake = FakeLambda(NOT_UTF8)
    monkeypatch.setattr(runtime.stack, "client", lambda service: fake)
    return runtime, fake


def test_the_fixture_sends_no_payload_when_given_none_and_decodes_text_with_replacements(stack: Any) -> None:
    runtime, fake = stack
    result = Invoker(runtime.stack)("OrdersFunction")
    assert fake.calls == [{"FunctionName": "orders-test-OrdersFunction-1A", "InvocationType": "RequestResponse"}]
    assert result.payload == NOT_UTF8.decode("utf-8", errors="replace") and result.function_error == "Unhandled"


def test_the_step_sends_an_empty_object_and_decodes_bytes_as_base64(stack: Any) -> None:
    runtime, fake = stack
    encoded = base64.b64encode(NOT_UTF8).decode("ascii")
    text = (
        "scenarios:\n  - name: s\n    steps:\n      - invoke: {function: OrdersFunction}\n"
        f"        expect: {{payload: {encoded!r}, function_error: Unhandled}}\n"
    )
    [scenario] = load_text(text, "s.yaml").scenarios
    [result] = run_scenario(scenario, runtime)
    assert result.status == "passed", result.message
    assert fake.calls == [
        {"FunctionName": "orders-test-OrdersFunction-1A", "InvocationType": "RequestResponse", "Payload": b"{}"}
    ]
