"""Gap: an OpenAPI import keeps only type, httpMethod and uri of an integration.

AWS: importing an OpenAPI definition (``ImportRestApi``, CloudFormation's
``AWS::ApiGateway::RestApi`` ``Body``, SAM's ``DefinitionBody``) reads the
whole ``x-amazon-apigateway-integration`` object: ``credentials``,
``requestParameters``, ``requestTemplates``, ``passthroughBehavior``,
``contentHandling``, ``timeoutInMillis``, ``cacheKeyParameters``,
``connectionType``/``connectionId``, and ``responses`` (the integration
responses, keyed by selection pattern, ``default`` for none). It also reads
each operation's ``responses`` as method responses.
(docs: "x-amazon-apigateway-integration object", "x-amazon-apigateway-integration.responses object".)

MiniStack 1.5.33's ``apigateway_v1._import_operation`` passes only ``type``,
``httpMethod`` and ``uri`` to ``_put_integration``. An AWS-service
integration (API Gateway straight to SQS) then has no request template and
no integration response: every request answers 500, although the same
integration made with PutIntegration/PutIntegrationResponse works.

The adaptation: after ``_import_operation`` ran, the operation's integration
is put again with every field, then its integration responses and the
operation's method responses, through the emulator's own control-plane
functions (``_put_integration``, ``_put_integration_response``,
``_put_method_response``), exactly as the API calls would make them. Offered
upstream, it is the body of :func:`import_integration` inside
``_import_operation``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from harness.emulator import guard

NAME = "apigateway-openapi-integration-fields"

_MODULE = "ministack.services.apigateway_v1"
_IMPORT_PARAMS = ("api_id", "resource_id", "http_method", "operation", "scheme_map", "default_security")

#: OpenAPI field -> PutIntegration field (same names; listed to say which are read).
INTEGRATION_FIELDS = (
    "httpMethod",
    "uri",
    "credentials",
    "requestParameters",
    "requestTemplates",
    "passthroughBehavior",
    "contentHandling",
    "timeoutInMillis",
    "cacheNamespace",
    "cacheKeyParameters",
    "connectionType",
    "connectionId",
    "tlsConfig",
)
RESPONSE_FIELDS = ("responseParameters", "responseTemplates", "contentHandling")


def integration_data(integration: Mapping[str, Any]) -> dict[str, Any]:
    """The PutIntegration body an OpenAPI ``x-amazon-apigateway-integration`` object stands for."""
    data: dict[str, Any] = {k: integration[k] for k in INTEGRATION_FIELDS if integration.get(k) is not None}
    kind = integration.get("type")
    data["type"] = str(kind).upper() if kind else None
    if "timeoutInMillis" in data:
        data["timeoutInMillis"] = int(data["timeoutInMillis"])
    return data


def integration_responses(integration: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(status code, PutIntegrationResponse body)`` per entry of ``responses``; the key is the selection pattern."""
    out: list[tuple[str, dict[str, Any]]] = []
    for pattern, response in (integration.get("responses") or {}).items():
        if not isinstance(response, Mapping) or response.get("statusCode") is None:
            continue
        body = {k: response[k] for k in RESPONSE_FIELDS if response.get(k) is not None}
        body["selectionPattern"] = "" if pattern == "default" else str(pattern)
        out.append((str(response["statusCode"]), body))
    return out


def method_responses(operation: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(status code, PutMethodResponse body)`` per numeric entry of the operation's ``responses``."""
    out: list[tuple[str, dict[str, Any]]] = []
    for status, response in (operation.get("responses") or {}).items():
        if not str(status).isdigit():
            continue
        headers = (response or {}).get("headers") or {} if isinstance(response, Mapping) else {}
        params = {f"method.response.header.{name}": False for name in headers}
        out.append((str(status), {"responseParameters": params}))
    return out


def import_integration(apigw: Any, api_id: str, resource_id: str, http_method: str, operation: Any) -> None:
    """Put the operation's whole integration, its integration responses and its method responses."""
    if not isinstance(operation, Mapping):
        return
    for status, body in method_responses(operation):
        apigw._put_method_response(api_id, resource_id, http_method, status, body)
    integration = operation.get("x-amazon-apigateway-integration")
    if not isinstance(integration, Mapping):
        return
    apigw._put_integration(api_id, resource_id, http_method, integration_data(integration))
    for status, body in integration_responses(integration):
        apigw._put_integration_response(api_id, resource_id, http_method, status, body)


def apply() -> None:
    """Make the OpenAPI import keep every integration field, integration responses and method responses."""
    apigw = guard.module(_MODULE, NAME)
    original = guard.function(apigw, "_import_operation", _IMPORT_PARAMS, NAME)
    guard.function(apigw, "_put_integration", ("api_id", "resource_id", "http_method", "data"), NAME)
    for fn in ("_put_integration_response", "_put_method_response"):
        guard.function(apigw, fn, ("api_id", "resource_id", "http_method", "status_code", "data"), NAME)
    guard.calls_by_name(apigw, "_import_path_item", "_import_operation", NAME)
    if guard.adapted(original, NAME):
        return

    @functools.wraps(original)
    def _import_operation(
        api_id: str,
        resource_id: str,
        http_method: str,
        operation: Any,
        scheme_map: Any = None,
        default_security: Any = None,
    ) -> None:
        original(api_id, resource_id, http_method, operation, scheme_map, default_security)
        import_integration(apigw, api_id, resource_id, http_method, operation)

    apigw._import_operation = guard.mark(_import_operation, NAME)
