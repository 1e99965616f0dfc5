"""The CloudFormation and Step Functions adaptations' pure parts, and their loud failure (no emulator).

The red-without / green-with proof on the pinned MiniStack is
``tests/e2e/test_corpus_adaptations_e2e.py``.
"""

from __future__ import annotations

import json
import sys
import types
from typing import Any

import pytest

from harness.emulator import adapt, http_api_body, kinesis_encryption, sfn_history
from harness.emulator.guard import AdaptationError


def test_operations_map_to_route_keys() -> None:
    body = {
        "paths": {
            "/items/{id}": {"parameters": [], "get": {}, "DELETE": {}, "summary": "x"},
            "/{proxy+}": {"x-amazon-apigateway-any-method": {}},
            "$default": {"x-amazon-apigateway-any-method": {}},
        }
    }
    assert [k for k, _ in http_api_body.operations(body)] == [
        "GET /items/{id}",
        "DELETE /items/{id}",
        "ANY /{proxy+}",
        "$default",
    ]


def test_integration_request_copies_the_documented_fields() -> None:
    spec = {"type": "aws_proxy", "uri": "arn:u", "httpMethod": "POST", "payloadFormatVersion": "2.0", "x": 1}
    assert http_api_body.integration_request(spec) == {
        "integrationType": "AWS_PROXY",
        "integrationUri": "arn:u",
        "integrationMethod": "POST",
        "payloadFormatVersion": "2.0",
    }


def test_import_body_links_each_route_to_its_integration() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    def create_integration(api_id: str, data: dict[str, Any]) -> Any:
        calls.append(("integration", data))
        return 201, {}, json.dumps({"integrationId": f"i{len(calls)}"}).encode()

    def create_route(api_id: str, data: dict[str, Any]) -> Any:
        calls.append(("route", data))
        return 201, {}, b"{}"

    body = {"paths": {"/a": {"get": {"operationId": "getA", "x-amazon-apigateway-integration": {"uri": "u"}}}}}
    assert http_api_body.import_body("api", body, create_integration, create_route) == ["GET /a"]
    assert calls[1] == ("route", {"routeKey": "GET /a", "target": "integrations/i1", "operationName": "getA"})


def test_import_body_fails_the_resource_when_the_service_refuses() -> None:
    def refuse(api_id: str, data: dict[str, Any]) -> Any:
        return 400, {}, b'{"message": "bad"}'

    body = {"paths": {"/a": {"get": {"x-amazon-apigateway-integration": {"uri": "u"}}}}}
    with pytest.raises(ValueError, match="CreateIntegration failed"):
        http_api_body.import_body("api", body, refuse, refuse)


def test_cors_from_the_document() -> None:
    body = {"x-amazon-apigateway-cors": {"allowOrigins": ["*"], "maxAge": 5, "other": 1}}
    assert http_api_body.cors_configuration(body) == {"allowOrigins": ["*"], "maxAge": 5}
    assert http_api_body.cors_configuration({}) is None


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"StreamEncryption": {"EncryptionType": "KMS", "KeyId": "k"}}, ("KMS", "k")),
        ({}, ("NONE", None)),
        ({"StreamEncryption": {"EncryptionType": "NONE"}}, ("NONE", None)),
    ],
)
def test_stream_encryption_from_properties(props: dict[str, Any], expected: tuple[str, str | None]) -> None:
    stream: dict[str, Any] = {"EncryptionType": "KMS", "KeyId": "old"}
    kinesis_encryption.apply_encryption(stream, props)
    assert (stream["EncryptionType"], stream.get("KeyId")) == expected


@pytest.mark.parametrize(
    ("arn", "split"),
    [
        ("arn:aws:states:::lambda:invoke", ("lambda", "invoke")),
        ("arn:aws:states:::lambda:invoke.waitForTaskToken", ("lambda", "invoke.waitForTaskToken")),
        ("arn:aws:states:::aws-sdk:dynamodb:putItem", ("aws-sdk:dynamodb", "putItem")),
        ("arn:aws-us-gov:states:::sqs:sendMessage", ("sqs", "sendMessage")),
        ("arn:aws:lambda:us-east-1:123456789012:function:f", None),
        ("arn:aws:states:us-east-1:123456789012:activity:a", None),
    ],
)
def test_service_integration_arns_split_as_aws_records_them(arn: str, split: tuple[str, str] | None) -> None:
    assert sfn_history.split_resource(arn) == split


def _fake_provisioners(monkeypatch: pytest.MonkeyPatch, create: Any) -> None:
    def update(physical_id: Any, old_props: Any, new_props: Any, stack_name: Any, logical_id: Any = None) -> Any:
        return physical_id, {}

    module = types.ModuleType("ministack.services.cloudformation.provisioners")
    module._RESOURCE_HANDLERS = {"AWS::ApiGatewayV2::Api": {"create": create, "update": update}}  # type: ignore[attr-defined]
    module._apigw_v2_api_create = create  # type: ignore[attr-defined]
    module._apigw_v2_api_update = update  # type: ignore[attr-defined]
    service = types.ModuleType("ministack.services.apigateway")
    for attr in ("_create_route", "_create_integration"):
        setattr(service, attr, lambda api_id, data: (201, {}, b"{}"))
    service._apis, service._routes, service._integrations = {}, {}, {}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ministack.services.cloudformation.provisioners", module)
    monkeypatch.setitem(sys.modules, "ministack.services.apigateway", service)


def test_a_changed_handler_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_provisioners(monkeypatch, lambda logical_id, props: None)
    with pytest.raises(AdaptationError, match=r"create takes \(logical_id, props\), expected"):
        http_api_body.apply()


def test_a_closed_gap_asks_for_the_adaptation_to_go(monkeypatch: pytest.MonkeyPatch) -> None:
    def create(logical_id: Any, props: Any, stack_name: Any) -> Any:
        return props.get("Body"), {}

    _fake_provisioners(monkeypatch, create)
    with pytest.raises(AdaptationError, match="reads Body already"):
        http_api_body.apply()


def test_they_are_registered() -> None:
    names = [name for name, _ in adapt.ADAPTATIONS]
    for name in (
        "cloudformation-http-api-imports-body",
        "cloudformation-kinesis-stream-encryption",
        "stepfunctions-history-service-integrations",
    ):
        assert name in names
