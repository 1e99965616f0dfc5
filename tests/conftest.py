"""Settings of the test processes themselves (every tier): what they share to run faster.

* **One botocore model loader per data path.** botocore parses a service's model
  (a JSON file of up to a few megabytes) once per ``Session``; the tests make
  hundreds of sessions (each moto test, each CLI call, each runtime), and parsing
  their models again was about a third of the unit tier's CPU. The loader is
  shared as the default session shares it between its own clients; what a
  client does with the model is unchanged.
* **One registration of botocore's built-in event handlers.** Each new ``Session``
  registers its 140-odd built-in handlers one by one (an alias lookup and a
  signature check each; about 10 ms, a tenth of the unit tier's CPU over its few
  hundred sessions). A session now starts from a copy of an emitter that already
  holds them, made the same way botocore copies a session's emitter for each
  client; it is made again whenever the list of built-in handlers changes (moto
  appends its own when imported).
* **The collector skips what was imported before the tests.** The modules loaded
  while collecting (boto3, moto, botocore models) live until the process ends;
  ``gc.freeze()`` keeps the cyclic collector from walking them again on every
  full collection (and on each ``gc.collect()`` that pytest runs when a nested
  session ends). Garbage made by the tests is still collected.
* **Fewer collections while the tests run.** What the tests import later (moto's
  backends, a nested session's plugins) stays in the collector, and with the
  default thresholds (a young collection every 700 allocations) a full
  collection walked it a few dozen times per process (about 2 s of CPU each);
  the youngest generation's threshold is raised tenfold after collection, so
  collections run a tenth as often. A test that needs its garbage gone calls
  ``gc.collect()``, as before.
* **MiniStack's state folder is the run's.** Importing MiniStack's Cognito service
  (the CloudFormation provisioners, STS and tagging import it) writes a signing key
  into ``STATE_DIR``, by default ``/tmp/ministack-state``, shared by the machine and
  left behind. The tests that import MiniStack in-process get a folder of this
  session's (inherited by xdist workers and subprocesses), removed at its end.
"""

from __future__ import annotations

import copy
import gc
import os
import shutil
import tempfile
from typing import Any

import botocore.handlers
import botocore.hooks
import botocore.loaders
import botocore.session
import pytest

_OWN_STATE_DIR = None if "STATE_DIR" in os.environ else tempfile.mkdtemp(prefix="ministack-state-")
if _OWN_STATE_DIR is not None:
    os.environ["STATE_DIR"] = _OWN_STATE_DIR


def pytest_unconfigure(config: pytest.Config) -> None:
    if _OWN_STATE_DIR is not None:
        shutil.rmtree(_OWN_STATE_DIR, ignore_errors=True)


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

_real_register_builtin_handlers = botocore.session.Session._register_builtin_handlers
_builtin_emitters: dict[tuple[int, ...], botocore.hooks.HierarchicalEmitter] = {}


def _register_builtin_handlers(self: botocore.session.Session, events: Any) -> None:
    """The built-in handlers, copied from the first session that registered the same list, into a new session."""
    emitter = self._original_handler
    if not (events is self._events and events._emitter is emitter and _empty(emitter)):
        _real_register_builtin_handlers(self, events)  # a session given its own event hooks
        return
    key = tuple(map(id, botocore.handlers.BUILTIN_HANDLERS))
    if key not in _builtin_emitters:
        _real_register_builtin_handlers(self, events)
        _builtin_emitters[key] = copy.copy(emitter)
        return
    ready = copy.copy(_builtin_emitters[key])
    ready._lookup_cache = {}  # its own, as a fresh emitter's
    self._original_handler = events._emitter = ready


def _empty(emitter: Any) -> bool:
    return (
        type(emitter) is botocore.hooks.HierarchicalEmitter
        and not emitter._unique_id_handlers
        and not emitter._handlers._root["children"]
    )


_register_builtin_handlers.__wrapped__ = _real_register_builtin_handlers  # type: ignore[attr-defined]
botocore.session.Session._register_builtin_handlers = _register_builtin_handlers


#: The youngest generation's threshold while the tests run (CPython's default: 700).
YOUNG_THRESHOLD = 7000


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])
