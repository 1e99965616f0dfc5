"""The process's environment: changed by one thread at a time, never while a harness thread builds a boto3 client.

botocore reads ``os.environ`` while it builds a session or a client; a proxy
lookup (``urllib.request.getproxies_environment``) iterates every variable.
A variable removed by another thread during that iteration raises
``KeyError`` in the middle of it (seen: the drift check's client, made on the
start's thread while the session exported the stack and, on aws, removed
``AWS_PROFILE``); one added raises "dictionary changed size during
iteration". Calls on a made client never read the environment.

So every change the harness makes to ``os.environ`` goes through
:func:`apply` (or :func:`replaced`), and every session and client the harness
builds is built holding :data:`LOCK`. The lock is reentrant: a client built
while the environment is replaced for it (``replaced``) takes it again.
Imported at plugin load: the standard library only.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping

#: Held while the environment changes and while a harness thread builds a boto3 session or client.
LOCK = threading.RLock()


def apply(changes: Mapping[str, str | None]) -> dict[str, str | None]:
    """Set each variable of ``changes`` (None: remove it); returns what they were before (None: unset)."""
    with LOCK:
        before = {k: os.environ.get(k) for k in changes}
        for k, v in changes.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        return before


def snapshot() -> dict[str, str]:
    """A copy of the environment, taken while no harness thread changes it."""
    with LOCK:
        return dict(os.environ)


@contextlib.contextmanager
def replaced(names: tuple[str, ...], values: Mapping[str, str]) -> Iterator[None]:
    """Within the block, the variables ``names`` are exactly those of ``values`` (the others removed), and no
    other harness thread changes the environment or builds a client; put back as they were after it."""
    with LOCK:
        before = apply({**dict.fromkeys(names), **{k: v for k, v in values.items() if k in names}})
        try:
            yield
        finally:
            apply(before)
