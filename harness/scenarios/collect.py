"""Pytest collection of scenario files: one test item per scenario.

The plugin's hook is one line::

    from harness.scenarios.collect import collect_scenario_file

    def pytest_collect_file(parent, file_path):
        return collect_scenario_file(parent, file_path)

(Import ``collect_scenario_file`` under that name: any ``pytest_*`` name
imported into a plugin or conftest module is taken for a hook by pluggy.)

A malformed file becomes a collection error that reads ``file:line: message``
plus a hint, without a traceback. A failing scenario shows its step,
expectation and observation, without a traceback of harness internals.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.errors import HarnessError, ScenarioError
from harness.scenarios.runtime import RUNTIME_FACTORY_KEY

if TYPE_CHECKING:  # the engine (yaml, the schema, the steps) loads when a scenario file is collected
    from _pytest._code.code import TerminalRepr

    from harness.scenarios.model import Scenario
    from harness.scenarios.report import StepResult

__all__ = [
    "RUNTIME_FACTORY_KEY",
    "ScenarioFile",
    "ScenarioItem",
    "collect_scenario_file",
    "is_scenario_file",
]

SUFFIXES = (".yaml", ".yml")
SCENARIO_DIR = "scenarios"
_TOP_KEY = re.compile(rb"^scenarios\s*:", re.M)


def is_scenario_file(file_path: Path, rootpath: Path | None = None) -> bool:
    """A ``.yaml``/``.yml`` file under a ``scenarios`` directory, or with a top-level ``scenarios:`` key."""
    if file_path.suffix not in SUFFIXES:
        return False
    try:
        relative = file_path.relative_to(rootpath) if rootpath else file_path
    except ValueError:
        relative = file_path
    if SCENARIO_DIR in relative.parts[:-1]:
        return True
    try:
        with file_path.open("rb") as fh:
            head = fh.read(65536)
    except OSError:
        return False
    return _TOP_KEY.search(head) is not None


def collect_scenario_file(parent: pytest.Collector, file_path: Path) -> ScenarioFile | None:
    """The body of the plugin's ``pytest_collect_file`` hook: a node for scenario files, else None."""
    if is_scenario_file(file_path, parent.config.rootpath):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


def _display_path(config: pytest.Config, path: Path) -> str:
    try:
        return os.path.relpath(path, config.rootpath)
    except ValueError:  # another drive on Windows
        return str(path)


class ScenarioFile(pytest.File):
    """A scenario YAML file; yields one :class:`ScenarioItem` per scenario."""

    def collect(self) -> Iterator[pytest.Item]:
        from harness.scenarios.loader import load_file

        try:
            document = load_file(self.path, display_path=_display_path(self.config, self.path))
        except ScenarioError as exc:
            # CollectError is printed as its message alone: no traceback.
            raise self.CollectError(exc.render()) from None
        for scenario in document.scenarios:
            item = ScenarioItem.from_parent(self, name=scenario.name, scenario=scenario)
            for mark in scenario.marks:
                item.add_marker(getattr(pytest.mark, mark.name)(*mark.args, **mark.kwargs))
            yield item


class ScenarioItem(pytest.Item):
    """One scenario; runs its steps in order against the runtime the plugin provides."""

    def __init__(self, *, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.step_results: list[StepResult] = []

    def runtest(self) -> None:
        factory = self.config.stash.get(RUNTIME_FACTORY_KEY, None)
        if factory is None:
            raise HarnessError(
                f"cannot run scenario {self.scenario.name!r}: no stack runtime is configured",
                hint="scenario files run under the branchstack plugin (pytest -p harness.pytest.plugin)",
            )
        from harness.scenarios.runner import run_scenario

        runtime = factory(self)
        self.step_results = []
        try:
            run_scenario(self.scenario, runtime, results=self.step_results)
        finally:
            self._record(self.step_results)

    def _record(self, results: list[StepResult]) -> None:
        from harness.scenarios.report import format_steps

        self.add_report_section("call", "steps", format_steps(results))
        for result in results:
            self.user_properties.append((f"step {result.index}", result.as_dict()))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str | TerminalRepr:
        # Harness errors carry all the context a user needs; their traceback is noise.
        if isinstance(excinfo.value, HarnessError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        # pytest expects a 0-based line here.
        return self.path, self.scenario.line - 1, f"scenario: {self.scenario.name}"
