"""Helpers for the end-to-end tests (imported by ``conftest.py`` and the test modules).

* ``make_project`` (fixture in conftest.py): a throw-away git repository (own branch, one commit) with a
  ``[tool.harness]`` table and an integration test using the ``stack`` fixture.
* ``run``: runs pytest (or the ``harness`` console script) in such a project as
  a subprocess and returns ``Result(returncode, output, seconds)``. Its timeout
  is only a hang guard: on expiry the whole process tree is stopped by pid and
  the test fails with the output seen so far.
* ``emulator``: a MiniStack started the way the harness starts it, on a free
  loopback port, for tests using ``target=endpoint``; stopped by pid.

Everything lives under ``tmp_path`` and every port is picked free, so these
tests can run in parallel under pytest-xdist.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psutil
import pytest

from harness import procs
from harness.errors import TargetError
from harness.targets.local import launch

E2E_DIR = Path(__file__).resolve().parent
MINIMAL_TEMPLATE = E2E_DIR / "stacks" / "minimal" / "template.yaml"
BROKEN_TEMPLATE = E2E_DIR / "stacks" / "broken" / "template.yaml"

# The interpreter running these tests is the project's venv: its bin dir holds
# `aws`, `harness` and the `python` the inner runs use.
VENV_BIN = Path(sys.executable).parent
PYTHON = str(VENV_BIN / "python")
HARNESS_CLI = str(VENV_BIN / "harness")

BRANCH = "feature/E2E-smoke"
REGION = "us-east-1"

#: Hang guard for one inner run. Each run takes a few seconds; this only
#: stops a hung run from hanging the suite.
RUN_TIMEOUT = 180.0

#: ``branchstack: target: started in 0.50s: MiniStack 1.5.33 pid 123 on http://127.0.0.1:4567 (...)``
TARGET_RE = re.compile(
    r"target: (?:started in [\d.]+s:|attached to kept) MiniStack \S+ pid (\d+) on http://127\.0\.0\.1:(\d+)"
)

# Variables of the outer environment that would change what the inner run
# does: harness settings, branch detection by CI systems, AWS accounts, and
# the outer pytest / xdist session.
_SCRUB_PREFIXES = (
    "HARNESS_",
    "AWS_",
    "CIRCLE",
    "GITHUB_",
    "CODEBUILD_",
    "CI_",
    "GITLAB_",
    "PYTEST_",
    "GIT_",
)
_SCRUB_EXACT = ("CI", "PYTHONPATH", "STAGE", "STACK_NAME")


# --------------------------------------------------------------------------- projects

DEFAULT_TEST = """
import json
import os

import boto3


def test_table_and_function(stack):
    ddb = stack.client("dynamodb")
    table = stack.outputs["TableName"]
    ddb.put_item(TableName=table, Item={"pk": {"S": "e2e"}})
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "e2e"}})["Item"]["pk"]["S"] == "e2e"
    resp = stack.client("lambda").invoke(FunctionName=stack.outputs["FunctionName"], Payload=b'{"n": 1}')
    assert "FunctionError" not in resp, resp["Payload"].read()
    assert json.loads(resp["Payload"].read()) == {"echo": {"n": 1}}


def test_sam_style_env():
    # Tests written for a deployed SAM stack run unchanged: plain boto3, stack name from env.
    name = os.environ["AWS_SAM_STACK_NAME"]
    desc = boto3.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    assert desc["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
"""


def deploy_argv(template: Path) -> list[str]:
    return [
        "aws",
        "cloudformation",
        "deploy",
        "--template-file",
        str(template),
        "--stack-name",
        "{stack_name}",
        "--no-fail-on-empty-changeset",
        "--capabilities",
        "CAPABILITY_IAM",
        "--tags",
        "{tags}",
    ]


def _toml_list(words: Sequence[str]) -> str:
    return "[" + ", ".join('"' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for w in words) + "]"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=e2e", "-c", "user.email=e2e@example.invalid", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        env={**clean_env(), "GIT_CONFIG_NOSYSTEM": "1"},
        timeout=30,
    )


ProjectFactory = Callable[..., Path]


def project_factory(tmp_path: Path) -> ProjectFactory:
    """``factory(branch=..., tests={name: source}, template=..., extra_toml=...)`` -> project dir."""
    counter = iter(range(1000))

    def factory(
        *,
        branch: str = BRANCH,
        tests: Mapping[str, str] | None = None,
        template: Path = MINIMAL_TEMPLATE,
        extra_toml: str = "",
        name: str | None = None,
    ) -> Path:
        root = tmp_path / (name or f"project{next(counter)}")
        (root / "tests" / "integration").mkdir(parents=True)
        (root / "pyproject.toml").write_text(
            textwrap.dedent(
                f"""\
                [tool.harness]
                app = "mini"
                deploy-command = {_toml_list(deploy_argv(template))}
                """
            )
            + extra_toml
        )
        for fname, source in (tests or {"test_it.py": DEFAULT_TEST}).items():
            (root / "tests" / "integration" / fname).write_text(textwrap.dedent(source))
        (root / ".gitignore").write_text("harness-report/\n")
        _git(root, "init", "-q", "-b", branch)
        _git(root, "add", "-A")
        _git(root, "commit", "-q", "-m", "e2e project")
        return root

    return factory


# --------------------------------------------------------------------------- running


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The outer environment without anything that would steer the inner run; venv bin first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB_PREFIXES) and k not in _SCRUB_EXACT}
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
    # No user AWS config can leak in (profiles, endpoints, credentials).
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


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
        return [PYTHON, "-m", "pytest", "-p", "no:cacheprovider", *args]

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


def _environ(p: psutil.Process) -> dict[str, str] | None:
    try:
        if p.status() == psutil.STATUS_ZOMBIE:
            return None
        return p.environ()
    except psutil.Error:
        return None


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
    env = _environ(p)
    return p if env is not None and _ours(env, port, project) else None


def processes_on(port: int, project: Path | None = None) -> list[str]:
    """Live processes whose environment says ``GATEWAY_PORT=<port>``: the emulator and its Lambda runtimes."""
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        env = _environ(p)
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


@dataclass
class Emulator:
    pid: int
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",  # noqa: S106 - the emulator's dummy key
        )


def start_emulator(base: Path) -> Emulator:
    """Start MiniStack exactly as ``harness.targets.local`` does, on a free loopback port."""
    try:
        launched = launch(base, region=REGION)
    except TargetError as exc:
        raise RuntimeError(f"the test emulator did not start: {exc.message}") from None
    return Emulator(pid=launched.pid, port=launched.port, log_path=launched.log_path)


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
