"""boto3 sessions that read botocore's data files through one loader per process.

A boto3 session has its own botocore loader, and a loader caches what it has
parsed: the endpoint and partition tables, the retry and default
configuration, each service model a client is built from. A run makes
several sessions (the lifecycle's, the tracing's, the tests' Stack), so
every one of them parsed the same JSON again; that parsing was most of the
cost of building a client. The loader holds only botocore's (and boto3's)
own data files, never credentials, profiles or regions, which stay per
session; botocore shares one loader between all the clients of a session
in the same way.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
import botocore.session

_lock = threading.Lock()
_loader: Any = None  # botocore.loaders.Loader: the first session's, with boto3's data path


def core_session(profile: str | None = None) -> botocore.session.Session:
    """A botocore session reading data files through the process's shared loader."""
    core = botocore.session.Session(profile=profile)
    with _lock:
        if _loader is not None:
            core.register_component("data_loader", _loader)
    return core


def session(core: botocore.session.Session | None = None, **kwargs: Any) -> boto3.Session:
    """``boto3.Session(**kwargs)`` whose data files come from the process's shared loader.

    ``core`` is a botocore session from :func:`core_session` (one with its own credentials set).
    """
    global _loader
    s = boto3.Session(botocore_session=core or core_session(), **kwargs)
    loader = s._session.get_component("data_loader")  # noqa: SLF001 - boto3 exposes its botocore session no other way
    with _lock:
        if _loader is None:
            _loader = loader
        # boto3 appends its own data path to the loader of every session it makes: keep one of each.
        paths = _loader.search_paths
        paths[:] = list(dict.fromkeys(paths))
    return s
