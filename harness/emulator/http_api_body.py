"""Adaptation: CloudFormation's ``AWS::ApiGatewayV2::Api`` imports its OpenAPI ``Body``.

The gap (MiniStack 1.5.33): the resource's create and update handlers read
``Name``, ``ProtocolType``, ``CorsConfiguration``... and ignore ``Body``. On
AWS, ``Body`` is an inline OpenAPI document that CloudFormation imports like
``ImportApi`` / ``ReimportApi``: every operation becomes a route, every
``x-amazon-apigateway-integration`` an integration. A SAM ``HttpApi`` (the
implicit ``ServerlessHttpApi`` or an ``AWS::Serverless::HttpApi``) is exactly
that: its routes exist only in ``Body``, so without the import every request
answers 404.

The adaptation wraps the two handlers in ``_RESOURCE_HANDLERS``: after the
original created (or updated) the API record, the document's operations are
imported through the service's own ``CreateIntegration`` / ``CreateRoute``
code (an update first removes the routes and integrations of the previous
import, as ``ReimportApi`` overwrites). What it maps, as AWS documents for
HTTP APIs:

* ``paths.{path}.{method}`` -> route ``"{METHOD} {path}"``;
  ``x-amazon-apigateway-any-method`` -> ``ANY``; the path ``$default`` -> the
  ``$default`` route;
* ``x-amazon-apigateway-integration``: ``type`` (upper-cased), ``uri``,
  ``httpMethod``, ``payloadFormatVersion``, ``timeoutInMillis``,
  ``connectionType``, ``requestParameters``, ``responseParameters``;
* ``x-amazon-apigateway-cors`` -> the API's CORS configuration (unless the
  resource has its own ``CorsConfiguration``), ``info.title`` -> its name
  (unless ``Name`` is set).

Not imported (``harness.fidelity`` names them before the tests run):
authorizers (``security`` + ``x-amazon-apigateway-authorizer``), AWS-service
integrations (``integrationSubtype``, ``credentials``) and ``BodyS3Location``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

from harness.emulator import guard

NAME = "cloudformation-http-api-imports-body"
RESOURCE_TYPE = "AWS::ApiGatewayV2::Api"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
ANY_METHOD = "x-amazon-apigateway-any-method"
INTEGRATION = "x-amazon-apigateway-integration"
CORS = "x-amazon-apigateway-cors"
#: x-amazon-apigateway-integration key -> CreateIntegration field, copied as they are.
INTEGRATION_FIELDS = {
    "uri": "integrationUri",
    "httpMethod": "integrationMethod",
    "payloadFormatVersion": "payloadFormatVersion",
    "timeoutInMillis": "timeoutInMillis",
    "connectionType": "connectionType",
    "requestParameters": "requestParameters",
    "responseParameters": "responseParameters",
    "description": "description",
}
CORS_FIELDS = ("allowOrigins", "allowCredentials", "exposeHeaders", "maxAge", "allowMethods", "allowHeaders")

#: (attribute, exact parameter names) of what the adaptation calls or wraps.
SERVICE_CALLS = (
    ("_create_route", ("api_id", "data")),
    ("_create_integration", ("api_id", "data")),
)
CREATE = ("_apigw_v2_api_create", ("logical_id", "props", "stack_name"))
UPDATE = ("_apigw_v2_api_update", ("physical_id", "old_props", "new_props", "stack_name", "logical_id"))


# -- the import itself (pure: the service calls are passed in) -------------------


def operations(body: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(route key, operation) for every operation of an OpenAPI document, in document order."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    for path, item in (body.get("paths") or {}).items():
        if not isinstance(item, Mapping):
            continue
        for method, op in item.items():
            if not isinstance(op, Mapping):
                continue
            if method == ANY_METHOD:
                verb = "ANY"
            elif method.lower() in HTTP_METHODS:
                verb = method.upper()
            else:
                continue  # parameters, summary, servers...
            out.append(("$default" if path == "$default" else f"{verb} {path}", op))
    return out


def integration_request(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A CreateIntegration request for one ``x-amazon-apigateway-integration`` object."""
    data: dict[str, Any] = {"integrationType": str(spec.get("type", "aws_proxy")).upper()}
    for key, field in INTEGRATION_FIELDS.items():
        if spec.get(key) is not None:
            data[field] = spec[key]
    return data


def cors_configuration(body: Mapping[str, Any]) -> dict[str, Any] | None:
    cors = body.get(CORS)
    if not isinstance(cors, Mapping):
        return None
    return {k: cors[k] for k in CORS_FIELDS if k in cors} or None


def import_body(
    api_id: str,
    body: Mapping[str, Any],
    create_integration: Callable[[str, dict[str, Any]], Any],
    create_route: Callable[[str, dict[str, Any]], Any],
) -> list[str]:
    """Create one integration and one route per operation; return the route keys created."""
    created = []
    for route_key, op in operations(body):
        route: dict[str, Any] = {"routeKey": route_key}
        spec = op.get(INTEGRATION)
        if isinstance(spec, Mapping):
            integration = _answer(create_integration(api_id, integration_request(spec)), "CreateIntegration")
            route["target"] = f"integrations/{integration['integrationId']}"
        if op.get("operationId"):
            route["operationName"] = op["operationId"]
        _answer(create_route(api_id, route), f"CreateRoute {route_key}")
        created.append(route_key)
    return created


def _answer(response: Any, what: str) -> dict[str, Any]:
    """The JSON body of a MiniStack handler's ``(status, headers, body)`` answer; raises on an error status."""
    status, _headers, raw = response
    payload = json.loads(raw) if raw else {}
    if status >= 400:
        raise ValueError(f"{RESOURCE_TYPE} Body import: {what} failed ({status}): {payload}")
    return payload if isinstance(payload, dict) else {}


# -- wiring into the emulator ------------------------------------------------------


def _body(props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    body = props.get("Body")
    if isinstance(body, str):  # the documented JSON-string form
        body = json.loads(body)
    return body if isinstance(body, Mapping) else None


def _apply_document(service: Any, api_id: str, props: Mapping[str, Any]) -> None:
    body = _body(props)
    if body is None:
        return
    api = service._apis.get(api_id)
    if api is not None:
        title = (body.get("info") or {}).get("title")
        if title and not props.get("Name"):
            api["name"] = title
        cors = cors_configuration(body)
        if cors and not props.get("CorsConfiguration"):
            api["corsConfiguration"] = cors
    import_body(api_id, body, service._create_integration, service._create_route)


def _clear_import(service: Any, api_id: str) -> None:
    """What ReimportApi overwrites: the routes and integrations of the previous document."""
    service._routes.get(api_id, {}).clear()
    service._integrations.get(api_id, {}).clear()


def apply() -> None:
    """Make CloudFormation's ``AWS::ApiGatewayV2::Api`` import its ``Body`` (routes and integrations).

    Raises ``AdaptationError`` if a wrapped handler or a called service
    function is missing or changed shape, or if the original create already
    reads ``Body`` (the gap is closed upstream: drop this adaptation).
    """
    service = guard.module("ministack.services.apigateway", NAME)
    for attr, params in SERVICE_CALLS:
        guard.function(service, attr, params, NAME)
    for attr in ("_apis", "_routes", "_integrations"):
        if not hasattr(service, attr):
            raise guard.AdaptationError(f"{NAME}: ministack.services.apigateway.{attr} is missing")
    create = guard.cfn_handler(RESOURCE_TYPE, "create", *CREATE, NAME)
    update = guard.cfn_handler(RESOURCE_TYPE, "update", *UPDATE, NAME)
    if guard.adapted(create, NAME):
        return  # applied already in this process
    if "Body" in create.__code__.co_consts:
        raise guard.AdaptationError(
            f"{NAME}: the {RESOURCE_TYPE} create handler reads Body already; "
            "the emulator closed this gap, remove the adaptation"
        )

    @functools.wraps(create)
    def adapted_create(logical_id: str, props: dict[str, Any], stack_name: str) -> Any:
        physical_id, attrs = create(logical_id, props, stack_name)
        _apply_document(service, physical_id, props)
        return physical_id, attrs

    @functools.wraps(update)
    def adapted_update(
        physical_id: str,
        old_props: dict[str, Any],
        new_props: dict[str, Any],
        stack_name: str,
        logical_id: str | None = None,
    ) -> Any:
        # A replacement (ProtocolType changed) goes through the adapted create.
        new_id, attrs = update(physical_id, old_props, new_props, stack_name, logical_id)
        if new_id == physical_id and _body(new_props) != _body(old_props):
            _clear_import(service, new_id)
            _apply_document(service, new_id, new_props)
        return new_id, attrs

    guard.replace_cfn_handler(RESOURCE_TYPE, "create", CREATE[0], guard.mark(adapted_create, NAME))
    guard.replace_cfn_handler(RESOURCE_TYPE, "update", UPDATE[0], guard.mark(adapted_update, NAME))
