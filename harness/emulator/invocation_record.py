"""One Lambda invocation as the emulator adaptation saw it (``invocations``), and what ``lambda_segments`` builds from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The X-Ray daemon protocol's header line.
DAEMON_HEADER = b'{"format":"json","version":1}\n'


@dataclass
class Record:
    """One invocation, as the adaptation saw it."""

    function: str
    arn: str
    runtime: str
    request_id: str
    tracing: bool
    start: float
    end: float | None = None
    root: str | None = None
    parent: str | None = None
    lambda_id: str | None = None
    function_id: str | None = None
    init: tuple[float, float] | None = None
    invoke: tuple[float, float] | None = None
    init_error: dict[str, Any] | None = None
    timed_out: str | None = None
    error: dict[str, Any] | None = field(default=None)
    #: The traces that wrote the records this invocation processed (``stream_links``).
    links: list[dict[str, str]] = field(default_factory=list)
