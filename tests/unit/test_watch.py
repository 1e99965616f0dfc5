"""``pytest --watch``'s parts: which changes start a run, a run's arguments, the project's modules a run re-imports."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from harness import settings as settings_mod
from harness.pytest.watch import Relevant, Watcher, child_args, forget_project_modules


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
        ("stack/functions/get/.app.py.swp", False),  # an editor's swap file while the file is edited
        ("stack/functions/get/app.py~", False),
        ("stack/functions/get/.#app.py", False),
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


def _watcher(root: Path, *tests: str) -> Watcher:
    ticks = iter(range(10_000))
    return Watcher(root, _relevant(root, *tests), clock=lambda: next(ticks) * 0.05, sleep=lambda _: None)


def _write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)


def test_the_watcher_sees_an_edit_a_new_file_in_a_new_folder_a_removal_and_a_save_by_rename(tmp_path: Path) -> None:
    root = _project(tmp_path, 'fingerprint-paths = ["stack/**"]\n')
    _write(root, "stack/app.py", "x = 1\n")
    _write(root, "scenarios/a.yaml", "scenarios: []\n")
    w = _watcher(root, "scenarios")
    assert w.changes() == set()

    _write(root, "stack/app.py", "x = 2\n")
    assert w.next_batch() == ["stack/app.py"]
    _write(root, "stack/functions/new/handler.py", "def handler(e, c): pass\n")  # a new folder below an input's
    assert w.next_batch() == ["stack/functions/new/handler.py"]
    (root / "scenarios" / "a.yaml").unlink()
    assert w.next_batch() == ["scenarios/a.yaml"]
    tmp = root / "stack" / ".app.py.swp-new"
    tmp.write_text("x = 3\n")
    os.replace(tmp, root / "stack" / "app.py")  # as editors save: a new copy renamed over the file
    assert w.next_batch() == ["stack/app.py"]
    assert w.changes() == set()


def test_the_watcher_ignores_what_git_ignores_the_report_and_files_that_do_not_count(tmp_path: Path) -> None:
    root = _project(tmp_path, 'fingerprint-paths = ["stack/**"]\n')
    _write(root, "stack/app.py", "x = 1\n")
    w = _watcher(root, "scenarios")
    _write(root, ".build/packaged.yaml", "Resources: {}\n")  # ignored build output
    _write(root, "stack/.build/app.zip", "zip")
    _write(root, "harness-report/traces/index.json", "{}")  # the run's own report
    _write(root, "README.md", "docs\n")  # tracked, but no input and not a test
    _write(root, "stack/__pycache__/app.cpython-311.pyc", "")
    assert w.changes() == set()
    _write(root, "stack/app.py", "x = 2\n")
    assert w.changes() == {str(root / "stack" / "app.py")}


def test_a_batch_grows_while_the_changes_go_on_and_no_longer_than_the_settling_limit(tmp_path: Path) -> None:
    root = _project(tmp_path, 'fingerprint-paths = ["stack/**"]\n')
    for n in range(3):
        _write(root, f"stack/f{n}.py", "x = 1\n")
    looks: list[int] = []

    def sleep(_: float) -> None:  # a save of one file per look, three looks long
        looks.append(1)
        if len(looks) <= 3:
            _write(root, f"stack/f{len(looks) - 1}.py", f"x = {len(looks) + 1}\n")

    w = Watcher(root, _relevant(root), sleep=sleep)
    assert w.next_batch() == ["stack/f0.py", "stack/f1.py", "stack/f2.py"]

    ticks = iter(range(10_000))
    endless = Watcher(root, _relevant(root), clock=lambda: next(ticks) * 1.0, sleep=lambda _: None)
    _write(root, "stack/f0.py", "x = 9\n")
    endless.changes = lambda: {str(root / "stack" / "f0.py")}  # type: ignore[method-assign]  # never settles
    assert endless.next_batch() == ["stack/f0.py"]  # it stops growing at SETTLE_MAX


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


@pytest.mark.parametrize("with_hypothesis_plugin", [True, False])
def test_the_fork_servers_warm_up_imports_what_a_run_imports(with_hypothesis_plugin: bool) -> None:
    """What a run imports is imported once, in the server: the lifecycle, the AWS SDK's models, the installed
    distributions; hypothesis (imported by its pytest plugin at collection's end) where that plugin is loaded."""
    code = (
        ("import _hypothesis_pytestplugin\n" if with_hypothesis_plugin else "") + "import sys\n"
        "from harness import installed\n"
        "from harness.pytest.watch import warm\n"
        "warm('us-east-1')\n"
        "print(sorted(m for m in ('hypothesis', 'harness.lifecycle', 'tabulate', 'faker') if m in sys.modules),"
        " installed._original is not None)\n"
    )
    expected = ["faker", "harness.lifecycle", "tabulate"]
    if with_hypothesis_plugin:
        expected = ["faker", "harness.lifecycle", "hypothesis", "tabulate"]
    assert _first_line(code) == f"{expected} True"


def test_the_fork_servers_warm_up_does_once_what_each_run_did_beside_its_deploy() -> None:
    """hypothesis's constants of the modules imported so far and the Lambda runtimes the templates name: a run
    forked after finds both in the process's caches."""
    code = (
        "import _hypothesis_pytestplugin, sys\n"
        "from harness.emulator import runtimes\n"
        "from harness.pytest.watch import warm\n"
        "warm('us-east-1', lambda: ['python3.11', 'python3.11'])\n"
        "from hypothesis.internal.conjecture import providers\n"
        "print(runtimes.cached.cache_info().currsize, id(sys.modules['harness.lifecycle']) in providers._seen_modules)\n"
    )
    assert _first_line(code) == "1 True"


def _first_line(code: str) -> str:
    """The first line ``code`` prints in a fresh interpreter (which must succeed)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.split("\n")[0]


def test_each_module_s_file_is_placed_once_per_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fork server's dry run places its modules' files; a run forked after resolves none of them again."""
    root = tmp_path / "project"
    own = types.ModuleType("conftest")
    own.__file__ = str(root / "conftest.py")
    assert forget_project_modules(root, {"conftest": own}) == ["conftest"]  # the dry run, on a copy

    def no_resolve(self: Path, strict: bool = False) -> Path:
        if str(self) == own.__file__:
            raise AssertionError("resolved again")
        return Path(os.path.realpath(self))

    monkeypatch.setattr(Path, "resolve", no_resolve)
    modules = {"conftest": own}
    assert forget_project_modules(root, modules) == ["conftest"] and not modules
