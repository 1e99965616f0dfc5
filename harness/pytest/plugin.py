"""The ``branchstack`` pytest plugin (the ``pytest11`` entry point). Hooks only wire.

At configure time the process gets its one role object, registered as a
plugin and kept under one stash key: a :class:`Controller` (the process that
owns the run) or a :class:`Worker` (a pytest-xdist worker). Besides that, this
module registers the options, the fixtures and the collector of YAML scenarios.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import settings as settings_mod
from harness.pytest import watch
from harness.pytest.controller import Controller
from harness.pytest.fixtures import (
    events,
    eventually,
    fake,
    http,
    invoke,
    logs,
    stack,
    stack_info,
    table,
    trace,
    unique_id,
)
from harness.pytest.role import ROLE_KEY, Role, role_of
from harness.pytest.worker import Worker
from harness.scenarios.collect import collect_scenario_file
from harness.scenarios.runtime import RUNTIME_FACTORY_KEY, StepRuntime

__all__ = [
    "events",
    "eventually",
    "fake",
    "http",
    "invoke",
    "logs",
    "stack",
    "stack_info",
    "table",
    "trace",
    "unique_id",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    settings_mod.add_pytest_options(parser)
    watch.add_option(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    # --watch: this process only watches; every run is a session of its own (harness.pytest.watch).
    return watch.run(config) if watch.wanted(config) else None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.stash[RUNTIME_FACTORY_KEY] = _scenario_runtime
    role: Role = Worker(config) if hasattr(config, "workerinput") else Controller(config)
    config.stash[ROLE_KEY] = role
    config.pluginmanager.register(role, f"branchstack-{type(role).__name__.lower()}")
    _register_report_extras(config)


def _register_report_extras(config: pytest.Config) -> None:
    """pytest-html / Allure parts: imported and registered only when a report of theirs is asked for."""
    if config.getoption("htmlpath", None) or config.getoption("allure_report_dir", None):
        from harness.pytest import report_extras

        report_extras.register(config)


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    return collect_scenario_file(parent, file_path)


def _scenario_runtime(item: pytest.Item) -> StepRuntime:
    role = role_of(item.config)
    assert role is not None, "the branchstack plugin is configured"
    return role.scenario_runtime(item)
