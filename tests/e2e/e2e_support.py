"""Helpers for the end-to-end tests (imported by ``conftest.py`` and the test modules).

* ``make_project`` (fixture in conftest.py): a throw-away git repository (own branch, one commit) with a
  ``[tool.harness]`` table and an integration test using the ``stack`` fixture.
* ``run``: runs pytest (or the ``harness`` console script) in such a project as
  a subprocess and returns ``Result(returncode, output, seconds)``. Its timeout
  is only a hang guard: on expiry the whole process tree is stopped by pid and
  the test fails with the output seen so far.
* ``emulator``: a MiniStack started the way the harness starts it, on a free
  loopback port, for tests using ``target=endpoint``; stopped by pid.

The pieces a throw-away project on the emulator needs (a clean environment,
the deploy command, git, starting MiniStack, the ``Emulator`` handle) are the
reliability matrix's, in ``reliability.support``; they are re-exported here.

Everything lives under ``tmp_path`` and every port is picked free, so these
tests can run in parallel under pytest-xdist.
"""

from __future__ import annotations

import contextlib
import subprocess
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from harness import procs
from reliability.support import (
    BROKEN_TEMPLATE,
    DEFAULT_TEST,
    HARNESS_CLI,
    MINIMAL_TEMPLATE,
    PYTEST,
    PYTEST_ALL_PLUGINS,
    PYTHON,
    REGION,
    TARGET_RE,
    VENV_BIN,
    Emulator,
    clean_env,
    deploy_argv,
    git,
    start_emulator,
    toml_list,
)

__all__ = [
    "BROKEN_TEMPLATE",
    "DEFAULT_TEST",
    "HARNESS_CLI",
    "MINIMAL_TEMPLATE",
    "PYTEST",
    "PYTEST_ALL_PLUGINS",
    "PYTHON",
    "REGION",
    "TARGET_RE",
    "VENV_BIN",
    "Emulator",
    "clean_env",
    "deploy_argv",
    "git",
    "start_emulator",
]


BRANCH = "feature/E2E-smoke"

#: Hang guard for one inner run. Each run takes a few seconds; this only
#: stops a hung run from hanging the suite.
RUN_TIMEOUT = 180.0

# --------------------------------------------------------------------------- projects

ProjectFactory = Callable[..., Path]


def project_factory(tmp_path: Path) -> ProjectFactory:
    """``factory(branch=..., tests={name: source}, template=..., extra_toml=..., deploy_command=...)`` -> project dir."""
    counter = iter(range(1000))

    def factory(
        *,
        branch: str = BRANCH,
        tests: Mapping[str, str] | None = None,
        template: Path = MINIMAL_TEMPLATE,
        extra_toml: str = "",
        name: str | None = None,
        deploy_command: Sequence[str] | None = None,
    ) -> Path:
        root = tmp_path / (name or f"project{next(counter)}")
        (root / "tests" / "integration").mkdir(parents=True)
        (root / "pyproject.toml").write_text(
            textwrap.dedent(
                f"""\
                [tool.harness]
                app = "mini"
                deploy-command = {toml_list(deploy_command or deploy_argv(template))}
                """
            )
            + extra_toml
        )
        for fname, source in (tests or {"test_it.py": DEFAULT_TEST}).items():
            (root / "tests" / "integration" / fname).write_text(textwrap.dedent(source))
        (root / ".gitignore").write_text("harness-report/\n")
        git(root, "init", "-q", "-b", branch)
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "e2e project")
        return root

    return factory


def bundle(directory: Path, *packages: str) -> None:
    """Copy installed packages into a function's folder (its bundle), as ``pip install -t`` would."""
    import importlib
    import shutil

    for name in packages:
        source = Path(importlib.import_module(name).__file__ or "")
        if source.name == "__init__.py":
            shutil.copytree(source.parent, directory / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, directory / source.name)


def code_zip(files: Mapping[str, str]) -> bytes:
    """A function's deployment package: a zip of ``files`` (name -> text)."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def zip_packages(z: Any, *packages: str) -> None:
    """Add installed packages to a function's zip (a ``zipfile.ZipFile``: its bundle)."""
    import importlib

    for name in packages:
        root = Path(importlib.import_module(name).__file__ or "").parent
        for path in root.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                z.write(path, f"{name}/{path.relative_to(root)}")


PACKAGE_DEPLOY = Path(__file__).resolve().parent / "stacks" / "package_deploy.sh"


def packaged_project(
    stack: Path, root: Path, tests: Mapping[str, str], *, app: str, bundles: Mapping[str, Sequence[str]] = {}
) -> Path:
    """A throw-away project deploying ``stack`` as a SAM/Makefile app does: each function's folder is packaged.

    ``stack`` holds ``template.yaml`` and the functions' folders (``Code: <folder>``);
    ``bundles`` maps a folder to the installed packages copied into it (its bundle).
    The deploy command is ``sh package_deploy.sh`` (``aws cloudformation package`` + ``deploy``).
    """
    import shutil

    shutil.copytree(stack, root, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PACKAGE_DEPLOY, root / "package_deploy.sh")
    for folder, packages in bundles.items():
        bundle(root / folder, *packages)
    (root / "tests" / "integration").mkdir(parents=True, exist_ok=True)
    for fname, source in tests.items():
        (root / "tests" / "integration" / fname).write_text(textwrap.dedent(source))
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [tool.harness]
            app = "{app}"
            deploy-command = {toml_list(["sh", "package_deploy.sh"])}
            """
        )
    )
    (root / ".gitignore").write_text("harness-report/\npackaged.yaml\n")
    git(root, "init", "-q", "-b", BRANCH)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "e2e project")
    return root


# --------------------------------------------------------------------------- running


@dataclass
class Result:
    returncode: int
    output: str
    seconds: float
    emulators: list[tuple[int, int]] = field(default_factory=list)  # (pid, port) printed by the run

    def lines(self, needle: str) -> list[str]:
        return [line for line in self.output.splitlines() if needle in line]


def emulators_in(output: str) -> list[tuple[int, int]]:
    return [(int(m.group(1)), int(m.group(2))) for m in TARGET_RE.finditer(output)]


class Runner:
    """Runs pytest / the harness CLI in a project; remembers every emulator it saw for cleanup."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, Path]] = []

    def pytest_argv(self, *args: str) -> list[str]:
        return [*PYTEST, *args]

    def __call__(
        self,
        project: Path,
        *args: str,
        env: Mapping[str, str] | None = None,
        argv: Sequence[str] | None = None,
        timeout: float = RUN_TIMEOUT,
    ) -> Result:
        """Run ``pytest <args>`` (or ``argv``) with cwd = ``project``."""
        cmd = list(argv) if argv is not None else self.pytest_argv(*args)
        started = time.monotonic()
        proc = subprocess.Popen(  # noqa: S603 - argv list
            cmd,
            cwd=project,
            env=clean_env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            raw, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            procs.stop_tree(proc.pid)
            raw, _ = proc.communicate()
            output = raw.decode("utf-8", "replace")
            self._remember(output, project)
            pytest.fail(f"hang guard: {cmd} did not finish within {timeout:.0f}s; output:\n{output}", pytrace=False)
        output = raw.decode("utf-8", "replace")
        result = Result(proc.returncode, output, time.monotonic() - started, emulators_in(output))
        self._remember(output, project)
        return result

    def _remember(self, output: str, project: Path) -> None:
        for pid, port in emulators_in(output):
            self.seen.append((pid, port, project))

    def cleanup(self) -> None:
        """Stop any emulator a run printed that is still alive (only if it is still that emulator)."""
        for pid, port, project in self.seen:
            if emulator_process(pid, port, project) is not None:
                procs.stop_tree(pid)


# --------------------------------------------------------------------------- processes


def _ours(env: Mapping[str, str], port: int, project: Path | None) -> bool:
    if env.get("GATEWAY_PORT") != str(port):
        return False
    # The harness puts the emulator's TMPDIR inside the project; a process of
    # another (parallel) test that happens to reuse the port is not ours.
    tmpdir = env.get("TMPDIR")
    return project is None or not tmpdir or tmpdir.startswith(str(project))


def emulator_process(pid: int, port: int, project: Path | None = None) -> psutil.Process | None:
    """``pid`` if it is still a live emulator process on ``port`` (not a zombie, not a reused pid)."""
    try:
        p = psutil.Process(pid)
    except psutil.Error:
        return None
    env = procs.environ_of(p)
    return p if env is not None and _ours(env, port, project) else None


def processes_on(port: int, project: Path | None = None) -> list[str]:
    """Live processes whose environment says ``GATEWAY_PORT=<port>``: the emulator and its Lambda runtimes."""
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        env = procs.environ_of(p)
        if env is not None and _ours(env, port, project):
            found.append(f"pid {p.pid}: {' '.join(p.info.get('cmdline') or [])}")
    return found


def wait_gone(pid: int, port: int, project: Path | None = None, timeout: float = 10.0) -> bool:
    """Whether the emulator ``pid`` and every process with its port are gone (waits briefly for exits)."""
    deadline = time.monotonic() + timeout
    while True:
        if emulator_process(pid, port, project) is None and not processes_on(port, project):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


# --------------------------------------------------------------------------- emulator


def stacks_named(emu: Emulator, name: str) -> list[tuple[str, str]]:
    """(name, status) of every stack the emulator lists under ``name``, deleted ones included."""
    out = []
    for page in emu.client("cloudformation").get_paginator("list_stacks").paginate():
        out.extend((s["StackName"], s["StackStatus"]) for s in page["StackSummaries"] if s["StackName"] == name)
    return out


def no_traceback(output: str) -> None:
    with contextlib.suppress(ValueError):
        at = output.index("Traceback")
        pytest.fail(f"a Python traceback was printed:\n{output[max(0, at - 500) :]}", pytrace=False)
