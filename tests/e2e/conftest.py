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
