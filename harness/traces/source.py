"""The TraceSource protocol: where a run's traces are read from.

Two implementations, one per file: ``local_source.LocalSource`` (the
harness's own UDP daemon, for the embedded emulator) and
``aws_source.XRayApiSource`` (the X-Ray API, for an account or an endpoint
that serves it). Both return ``model.Trace`` objects built from the same
segment documents, merged with the test's own client segment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from harness.traces.model import Trace

#: A condition a trace must meet before ``fetch`` returns it (e.g. "has a DynamoDB call").
Accept = Callable[[Trace], bool]
ClientDocuments = Mapping[str, Sequence[Mapping[str, Any]]]


class TraceSource(Protocol):
    kind: str

    def fetch(
        self,
        trace_ids: Sequence[str],
        *,
        within: float,
        client_documents: ClientDocuments | None = None,
        accept: Accept | None = None,
    ) -> dict[str, Trace]:
        """The traces of ``trace_ids``, each complete (no segment in progress) and accepted.

        ``client_documents`` maps a trace id to the test's own segment
        documents, which become the root of that trace. Raises
        ``TracesIncomplete`` listing every id still missing, in progress or
        not accepted when ``within`` seconds have passed.
        """
        ...
