"""Fixtures for the end-to-end tests: real emulator subprocesses, real pytest runs.

* ``make_project``: a throw-away git repository (own branch, one commit) with a
  ``[tool.harness]`` table and an integration test using the ``stack`` fixture.
* ``run``: runs pytest (or the ``harness`` console script) in such a project as
  a subprocess and returns ``Result(returncode, output, seconds)``; its timeout
  is only a hang guard. Any emulator a run printed and left alive is stopped
  by pid afterwards.
* ``emulator``: a MiniStack started the way the harness starts it, on a free
  loopback port, for tests using ``target=endpoint``; stopped by pid.

The helpers live in ``e2e_support.py``. Everything is under ``tmp_path`` and
every port is picked free, so these tests can run in parallel under xdist.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import Emulator, ProjectFactory, Runner, project_factory, start_emulator

from harness import procs


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end test running real emulator and pytest subprocesses")


_SHARED_SCOPES = ("module", "class", "package", "session")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the tests that share a fixture (a module's emulator, say) on one xdist worker.

    ``make test`` runs with ``--dist loadgroup``: a test with an ``xdist_group``
    mark goes where the rest of its group goes; any other test goes alone to
    whichever worker is free. So a file whose tests share an emulator starts it
    once, and the self-contained tests of a slow file spread over every worker
    instead of queueing behind each other. A test that uses a fixture of a wider
    scope than the function (defined in this folder) joins its file's group here,
    so new tests need no mark of their own.
    """
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None or item.get_closest_marker("xdist_group"):
            continue
        shared = any(
            d.scope in _SHARED_SCOPES and str(getattr(d, "baseid", "")).startswith("tests/e2e")
            for defs in info.name2fixturedefs.values()
            for d in defs
        )
        if shared:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
    if getattr(config.option, "loadgroup", False):  # an xdist worker of a --dist loadgroup run
        for item in items:
            _join_group(item)


def _join_group(item: pytest.Item) -> None:
    """Give a grouped test the id suffix ``@<group>`` by which the xdist scheduler sends a group to one worker.

    pytest-xdist 3.8 appends it in its own ``pytest_collection_modifyitems`` by
    writing ``item._nodeid``, which pytest 9.2's structured ids no longer read
    (pytest-xdist issue 1386): every test then went alone, and a module's
    fixture was set up again on each worker. This runs after it (``trylast``;
    the marks above came after it too), writes the suffix where the running
    pytest keeps the id, and fails loudly if that no longer takes effect.
    """
    marks = list(item.iter_markers("xdist_group"))
    if not marks:
        return
    group = "_".join(sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in marks}))
    if item.nodeid.endswith(f"@{group}"):
        return  # xdist's own suffix took effect
    wanted = f"{item.nodeid}@{group}"
    node_id = getattr(item, "_id", None)
    if node_id is not None and hasattr(type(node_id), "parse"):
        item._id = type(node_id).parse(wanted)  # type: ignore[attr-defined]
    else:
        item._nodeid = wanted  # type: ignore[attr-defined]
    if item.nodeid != wanted:
        raise RuntimeError(f"tests/e2e/conftest.py: cannot give {item.nodeid} its xdist group suffix @{group}")


@pytest.fixture
def make_project(tmp_path: Path) -> ProjectFactory:
    return project_factory(tmp_path)


@pytest.fixture
def run() -> Iterator[Runner]:
    runner = Runner()
    try:
        yield runner
    finally:
        runner.cleanup()


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    emu = start_emulator(tmp_path / "own-emulator")
    try:
        yield emu
    finally:
        procs.stop_tree(emu.pid)
