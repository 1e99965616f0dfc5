"""Settings of the test processes themselves (every tier): what they share to run faster.

* **One botocore model loader per data path.** botocore parses a service's model
  (a JSON file of up to a few megabytes) once per ``Session``; the tests make
  hundreds of sessions (each moto test, each CLI call, each runtime), and parsing
  their models again was about a third of the unit tier's CPU. The loader is
  shared as the default session shares it between its own clients; what a
  client does with the model is unchanged.
* **The collector skips what was imported before the tests.** The modules loaded
  while collecting (boto3, moto, botocore models) live until the process ends;
  ``gc.freeze()`` keeps the cyclic collector from walking them again on every
  full collection (and on each ``gc.collect()`` that pytest runs when a nested
  session ends). Garbage made by the tests is still collected.
"""

from __future__ import annotations

import gc
from typing import Any

import botocore.loaders
import botocore.session
import pytest

_real_create_loader = botocore.session.create_loader
_loaders: dict[str | None, botocore.loaders.Loader] = {}


class _Paths(list[str]):
    """A shared loader's search paths: boto3 appends its own folder for each new session; once is enough."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


def _shared_loader(search_path_string: str | None = None) -> Any:
    loader = _loaders.get(search_path_string)
    if loader is None:
        loader = _real_create_loader(search_path_string)
        loader._search_paths = _Paths(loader.search_paths)
        _loaders[search_path_string] = loader
    return loader


botocore.session.create_loader = _shared_loader


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    gc.freeze()
