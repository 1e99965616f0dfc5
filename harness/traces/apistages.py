"""The named stages of HTTP APIs, looked up once per API (labels the calls a test makes to them)."""

from __future__ import annotations

import threading
from typing import Any

from harness.traces.propagation import untraced


class HttpApiStages:
    """``stages(api_id)``: the named stages of an HTTP API (``$default`` aside), or ``None`` if unknown.

    ``stack`` is anything with ``client(name)`` (``harness.stack.Stack``).
    The lookup (``apigatewayv2 GetStages``) is the harness's own: it is not
    part of the test's trace. Answers, failures included, are kept for the run.
    """

    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self._known: dict[str, frozenset[str] | None] = {}
        self._lock = threading.Lock()

    def __call__(self, api_id: str) -> frozenset[str] | None:
        with self._lock:
            if api_id in self._known:
                return self._known[api_id]
        try:
            with untraced():
                client = self.stack.client("apigatewayv2")
                items = client.get_stages(ApiId=api_id).get("Items") or []
            found: frozenset[str] | None = frozenset(
                str(i["StageName"]) for i in items if i.get("StageName") and i["StageName"] != "$default"
            )
        except Exception:  # noqa: BLE001 - a label is best effort; the call is recorded either way
            found = None
        with self._lock:
            self._known[api_id] = found
        return found
