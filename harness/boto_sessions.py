"""boto3 sessions that read botocore's data files through one loader per process (per data path).

A boto3 session has its own botocore loader, and a loader caches what it has
parsed: the endpoint and partition tables, the retry and default
configuration, each service model a client is built from. A run makes
several sessions (the lifecycle's, the tracing's, the tests' Stack), so
every one of them parsed the same JSON again; that parsing was most of the
cost of building a client. The loader holds only botocore's (and boto3's)
own data files, never credentials, profiles or regions, which stay per
session; botocore shares one loader between all the clients of a session
in the same way. Sessions whose configured ``data_path`` differs get
loaders of their own.
"""

from __future__ import annotations

from typing import Any

import boto3
import botocore.session

from harness import environment

_loaders: dict[Any, Any] = {}  # data_path -> botocore.loaders.Loader (the first session's, with boto3's folder)


def session(core: botocore.session.Session | None = None, **kwargs: Any) -> boto3.Session:
    """``boto3.Session(botocore_session=core, **kwargs)`` reading data files through the shared loader.

    ``core``: a botocore session of the caller's (e.g. with refreshable credentials set); by default a new one.
    """
    with environment.LOCK:  # botocore reads the environment while it builds a session
        s = boto3.Session(botocore_session=core, **kwargs)
        own = s._session  # noqa: SLF001 - boto3 exposes its botocore session no other way
        key = own.get_config_variable("data_path")
        shared = _loaders.setdefault(key, own.get_component("data_loader"))
    if shared is not own.get_component("data_loader"):
        own.register_component("data_loader", shared)
    return s


def warm(services: tuple[str, ...], region: str) -> None:
    """Parse what building a client of each of ``services`` reads (endpoints, partitions, its model) into the
    shared loader, so the next clients of any session are built from memory. Builds throwaway clients only:
    no request is made, no credential is looked up. A failure is left for the real client to raise."""
    try:
        s = session(aws_access_key_id="warm", aws_secret_access_key="warm", region_name=region)  # noqa: S106
        for service in services:
            with environment.LOCK:  # botocore reads the environment while it builds a client
                s.client(service, endpoint_url="http://127.0.0.1:9")
    except Exception:  # noqa: BLE001 - only a cache: the client the run builds says what is wrong
        pass
