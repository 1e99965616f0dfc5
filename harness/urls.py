"""Route AWS service URLs to an emulator, for the test process.

Tests written for a deployed stack call API Gateway at
``https://{api}.execute-api.{region}.amazonaws.com/{stage}/{path}``. On an
emulator target that host does not exist; MiniStack (and LocalStack) serve the
same API at ``{endpoint}/_aws/execute-api/{api}/{stage}/{path}``.
"""

from __future__ import annotations

import re
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
