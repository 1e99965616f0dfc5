"""The installed distributions, read once by a process that forks runs (``pytest --watch``'s fork server).

Every pytest start walks every installed distribution, several times:
pluggy for the ``pytest11`` entry points, pytest for the files of each
plugin's distribution (to rewrite their asserts), pytest-metadata for each
plugin's name and version. ``importlib.metadata`` reads and parses them
afresh each time (some 40 ms of a watched run's start here, before its
deploy command starts).

:func:`remember` reads them once, in the fork server, and makes
``importlib.metadata.distributions()`` hand out those (their metadata, files
and entry points parsed once: every distribution's entry points, and the
metadata and files of pytest's plugins, ahead; anything else on first use)
for as long as nothing changes on ``sys.path``:
once a folder of it changes (a package installed, upgraded or removed), every
call reads afresh again, as before.
"""

from __future__ import annotations

import functools
import importlib.metadata as md
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

PLUGINS = "pytest11"  # the entry-point group of pytest plugins

_original: Callable[..., Iterable[md.Distribution]] | None = None


class ReadOnce(md.PathDistribution):
    """A distribution whose metadata, files and entry points are parsed on first use, then kept."""

    @functools.cached_property
    def metadata(self) -> Any:  # type: ignore[override]
        return super().metadata

    @functools.cached_property
    def files(self) -> Any:  # type: ignore[override]
        return super().files

    @functools.cached_property
    def entry_points(self) -> Any:  # type: ignore[override]
        return super().entry_points


def _folders() -> dict[str, int | None]:
    found: dict[str, int | None] = {}
    for entry in sys.path:
        try:
            found[entry] = os.stat(entry or ".").st_mtime_ns
        except OSError:
            found[entry] = None
    return found


def remember() -> None:
    """Read the installed distributions now; ``importlib.metadata.distributions()`` returns them while
    ``sys.path`` and its folders are as they are now. Idempotent."""
    global _original
    if _original is not None:
        return
    original = md.distributions
    kept = [ReadOnce(d._path) if type(d) is md.PathDistribution else d for d in original()]  # type: ignore[attr-defined]
    for dist in kept:  # parsed here, once, not in each run: what every pytest start reads
        try:
            if any(ep.group == PLUGINS for ep in dist.entry_points):  # a plugin's name, version and files
                dist.metadata  # noqa: B018 - read for its cache
                dist.files  # noqa: B018
        except Exception:  # noqa: BLE001, S112 - a broken distribution fails as it would in the run
            continue
    seen = _folders()

    def distributions(**kwargs: Any) -> Iterator[md.Distribution]:
        if kwargs or _folders() != seen:
            return iter(original(**kwargs))
        return iter(kept)

    _original = original
    md.distributions = distributions  # type: ignore[assignment]


def forget() -> None:
    """Undo :func:`remember` (tests)."""
    global _original
    if _original is not None:
        md.distributions = _original  # type: ignore[assignment]
        _original = None
