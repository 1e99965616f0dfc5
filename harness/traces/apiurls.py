"""API Gateway URLs, on AWS and on an emulator, as the trace model reads them."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# A local-emulator execute-api URL: {endpoint}/_aws/execute-api/{api}/{stage}/{route}
_LOCAL_EXECUTE_API = re.compile(r"^/_aws/execute-api/(?P<api>[A-Za-z0-9]+)(?:/(?P<stage>[^/]*)(?P<route>/.*)?)?$")
_AWS_EXECUTE_API = re.compile(r"^(?P<api>[a-z0-9]+)\.execute-api\.[a-z0-9-]+\.amazonaws\.com$")


def execute_api_parts(url: str) -> tuple[str, str, str] | None:
    """``(api id, stage, route)`` of an API Gateway URL, on AWS or on an emulator; else ``None``.

    The stage is the first path segment (``""`` for the root): right for REST
    APIs; an HTTP API's ``$default`` stage is served from the root, see
    ``propagation.http_api_fields``.
    """
    parts = urlsplit(url)
    m = _AWS_EXECUTE_API.match(parts.hostname or "")
    if m:
        stage, _, route = (parts.path or "/").lstrip("/").partition("/")
        return m["api"], stage, "/" + route
    m = _LOCAL_EXECUTE_API.match(parts.path or "")
    if m:
        return m["api"], m["stage"] or "", m["route"] or "/"
    return None
