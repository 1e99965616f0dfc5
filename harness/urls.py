"""Route AWS service URLs to an emulator, for the test process.

Tests written for a deployed stack call API Gateway at
``https://{api}.execute-api.{region}.amazonaws.com/{stage}/{path}``. On an
emulator target that host does not exist; MiniStack (and LocalStack) serve the
same API at ``{endpoint}/_aws/execute-api/{api}/{stage}/{path}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

EXECUTE_API = re.compile(r"^(?P<api>[a-z0-9]+)\.execute-api\.(?P<region>[a-z0-9-]+)\.amazonaws\.com$")


def to_emulator(url: str, endpoint_url: str | None) -> str:
    """The emulator URL for an execute-api URL; any other URL unchanged."""
    if not endpoint_url:
        return url
    parts = urlsplit(url)
    m = EXECUTE_API.match(parts.hostname or "")
    if not m:
        return url
    ep = urlsplit(endpoint_url)
    path = f"/_aws/execute-api/{m['api']}{parts.path or '/'}"
    return urlunsplit((ep.scheme, ep.netloc, path, parts.query, parts.fragment))


def route_requests(endpoint_url: str) -> Callable[[], None]:
    """Send ``requests`` calls for execute-api URLs to the emulator; returns an undo function.

    Tests written for a deployed SAM stack build
    ``https://{api}.execute-api.{region}.amazonaws.com/Prod/...`` from a stack
    output and call it with ``requests``. On an emulator target that host
    does not resolve, so the transport adapter rewrites the URL just before
    sending. Other URLs, and the ``aws`` target, are untouched.
    """
    from requests.adapters import HTTPAdapter

    original = HTTPAdapter.send

    def send(self: HTTPAdapter, request: Any, *args: Any, **kwargs: Any) -> Any:
        routed = to_emulator(request.url, endpoint_url)
        if routed != request.url:
            request.url = routed
            # The Host header must name the emulator, not execute-api.
            request.headers.pop("Host", None)
        return original(self, request, *args, **kwargs)

    HTTPAdapter.send = send  # type: ignore[method-assign]

    def undo() -> None:
        HTTPAdapter.send = original  # type: ignore[method-assign]

    return undo


def redact(url: str | None) -> str:
    """A URL fit to print: any user/password part replaced by ``***``."""
    if not url:
        return str(url)
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))
