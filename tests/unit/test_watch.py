"""``pytest --watch``'s parts: which changes start a run, a run's arguments, the project's modules a run re-imports."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

from harness import settings as settings_mod
from harness.pytest.watch import Relevant, child_args, forget_project_modules, not_ignored


def _project(root: Path, table: str = "") -> Path:
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "pyproject.toml").write_text(f'[tool.harness]\napp = "shop"\n{table}')
    (root / ".gitignore").write_text(".build/\nharness-report/\n")
    return root


def _relevant(root: Path, *tests: str) -> Relevant:
    s = settings_mod.resolve({}, {}, root)
    return Relevant(root, s, [root / t for t in tests], cwd=root)


@pytest.mark.parametrize(
    ("rel", "counts"),
    [
        ("stack/functions/get/app.py", True),  # a deploy input (fingerprint-paths)
        ("stack/template.yaml", True),
        ("scenarios/orders.yaml", True),  # the session's own path
        ("scenarios/more/deep.yaml", True),
        ("conftest.py", True),  # the test configuration, wherever it is
        ("tests/unit/conftest.py", True),
        ("pyproject.toml", True),
        ("tests/unit/test_x.py", False),  # a test the session does not run
        ("README.md", False),  # outside the deploy's inputs
        ("harness-report/traces/index.json", False),  # the runs' own report
        ("stack/.aws-sam/build/template.yaml", False),  # build output
        ("stack/node_modules/x/index.js", False),
        ("stack/functions/get/__pycache__/app.cpython-311.pyc", False),
    ],
)
def test_with_fingerprint_paths_the_inputs_the_session_paths_and_the_test_configuration_count(
    tmp_path: Path, rel: str, counts: bool
) -> None:
    root = _project(tmp_path, 'fingerprint-paths = ["stack/**"]\n')
    assert _relevant(root, "scenarios")(str(root / rel)) is counts


@pytest.mark.parametrize(
    ("rel", "counts"),
    [
        ("template.yaml", True),
        ("src/app.py", True),
        ("Makefile", True),
        ("tests/integration/test_flow.py", True),
        ("tests/unit/test_app.py", False),  # the test side is no deploy input
        ("docs/design.md", False),
        ("README.md", False),
    ],
)
def test_without_fingerprint_paths_every_project_file_but_the_test_side_counts(
    tmp_path: Path, rel: str, counts: bool
) -> None:
    root = _project(tmp_path)
    assert _relevant(root, "tests/integration")(str(root / rel)) is counts


def test_a_path_outside_the_project_counts_only_under_the_session_paths(tmp_path: Path) -> None:
    root = _project(tmp_path / "app")
    elsewhere = tmp_path / "shared-scenarios"
    relevant = Relevant(root, settings_mod.resolve({}, {}, root), [elsewhere], cwd=root)
    assert relevant(str(elsewhere / "a.yaml"))
    assert not relevant(str(tmp_path / "other" / "template.yaml"))


def test_what_git_ignores_never_starts_a_run(tmp_path: Path) -> None:
    root = _project(tmp_path)
    paths = [str(root / ".build" / "packaged.yaml"), str(root / "template.yaml")]
    assert not_ignored(root, paths) == [str(root / "template.yaml")]
    assert not_ignored(root, []) == []


def test_outside_a_git_checkout_nothing_is_taken_for_ignored(tmp_path: Path) -> None:
    paths = [str(tmp_path / ".build" / "x"), str(tmp_path / "y")]
    assert not_ignored(tmp_path, paths) == paths


def test_each_run_keeps_the_stack_for_the_next_and_is_no_watch_itself() -> None:
    assert child_args(["scenarios", "--watch", "-q"], keep=False) == ["scenarios", "-q", "--keep-stack"]
    assert child_args(["--watch", "--keep-stack"], keep=True) == ["--keep-stack"]
    assert child_args(["--watch"], keep=True) == []  # keep-stack from the settings table or the environment


def test_a_run_re_imports_the_projects_modules_not_the_installed_ones_nor_the_harness(tmp_path: Path) -> None:
    def module(name: str, file: Path | None) -> types.ModuleType:
        m = types.ModuleType(name)
        if file is not None:
            m.__file__ = str(file)
        return m

    root = tmp_path / "project"
    venv = Path(sys.prefix)
    modules = {
        "conftest": module("conftest", root / "conftest.py"),
        "tests.helpers": module("tests.helpers", root / "tests" / "helpers.py"),
        "yaml": module("yaml", venv / "lib" / "yaml" / "__init__.py"),
        "harness.lifecycle": module("harness.lifecycle", root / "harness" / "lifecycle.py"),
        "elsewhere": module("elsewhere", tmp_path / "elsewhere.py"),
        "builtin": module("builtin", None),
    }
    assert sorted(forget_project_modules(root, modules)) == ["conftest", "tests.helpers"]
    assert sorted(modules) == ["builtin", "elsewhere", "harness.lifecycle", "yaml"]


def test_a_virtualenv_inside_the_project_is_installed_not_the_projects(tmp_path: Path) -> None:
    root = Path(sys.prefix).resolve().parent  # as a project's .venv is
    installed = types.ModuleType("yaml")
    installed.__file__ = str(Path(sys.prefix) / "lib" / "site-packages" / "yaml" / "__init__.py")
    own = types.ModuleType("conftest")
    own.__file__ = str(root / "conftest.py")
    modules = {"yaml": installed, "conftest": own}
    assert forget_project_modules(root, modules) == ["conftest"]
    assert list(modules) == ["yaml"]
