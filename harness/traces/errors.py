"""Errors of the trace layer (part of the ``HarnessError`` family)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.traces.model import Trace


class TraceError(HarnessError):
    """Traces could not be collected or read."""


class TracesIncomplete(TraceError):
    """Some traces were still missing, or still in progress, when the deadline passed."""

    def __init__(
        self,
        *,
        source: str,
        within: float,
        missing: Iterable[str] = (),
        in_progress: Iterable[str] = (),
        unprocessed: Iterable[str] = (),
        not_accepted: Iterable[str] = (),
        detail: str = "",
        found: Mapping[str, Trace] | None = None,
    ) -> None:
        self.source = source
        self.within = within
        self.missing = sorted(missing)
        self.in_progress = sorted(in_progress)
        self.unprocessed = sorted(unprocessed)
        self.not_accepted = sorted(not_accepted)
        #: the traces that were complete before the deadline (a report keeps them)
        self.found: dict[str, Trace] = dict(found or {})
        lines = [f"traces from {source} were not complete within {within:g}s:"]
        if self.missing:
            lines.append(f"  missing ({len(self.missing)}): {', '.join(self.missing)}")
        if self.unprocessed:
            lines.append(f"  unprocessed by the service ({len(self.unprocessed)}): {', '.join(self.unprocessed)}")
        if self.in_progress:
            lines.append(f"  still in progress ({len(self.in_progress)}): {', '.join(self.in_progress)}")
        if self.not_accepted:
            lines.append(
                f"  present but not yet as expected ({len(self.not_accepted)}): {', '.join(self.not_accepted)}"
            )
        if detail:
            lines.append(f"  {detail}")
        super().__init__(
            "\n".join(lines),
            hint="X-Ray indexes traces some seconds after the calls; raise the trace deadline, "
            "or check that tracing is active and the calls carried the test's trace header",
        )
