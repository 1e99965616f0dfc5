"""Helpers shared by the fault-matrix cases.

* ``Ctx``: where a case works (a temp folder), its random source, its log, and
  the registry of everything started (stopped by pid at the end, whatever happens).
* ``make_project``: a throw-away git project with a ``[tool.harness]`` table,
  deploying a tiny CloudFormation template with ``aws cloudformation deploy``'s steps through boto3.
* ``Session``: one real ``pytest`` (or ``harness``) subprocess whose output is
  read line by line with timestamps, so a case can act when a line appears
  (send a signal, kill the emulator) and measure how long the exit takes.
* ``Emulator``: a MiniStack started here, the way ``harness.targets.local``
  starts it, for the endpoint target: it outlives the sessions, so a case can
  inspect what a session left in it.
* ``leftovers`` / ``sweep`` / ``processes_with_env``: what is left afterwards.

Nothing here kills by name: processes are stopped by pid, emulators only when
their environment still says ``GATEWAY_PORT=<their port>``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import psutil
from botocore.config import Config

from harness import procs, tags
from harness.deploy import delete_stack, stack_status
from harness.errors import TargetError
from harness.lease import TABLE as LEASE_TABLE
from harness.naming import stage_from_branch
from harness.targets.local import launch

ROOT = Path(__file__).resolve().parent.parent
STACKS = ROOT / "tests" / "e2e" / "stacks"
MINIMAL_TEMPLATE = STACKS / "minimal" / "template.yaml"
BROKEN_TEMPLATE = STACKS / "broken" / "template.yaml"
MALFORMED = ROOT / "tests" / "unit" / "scenarios" / "malformed"
TEMPLATES = Path(__file__).resolve().parent / "templates"

VENV_BIN = Path(sys.executable).parent
PYTHON = str(VENV_BIN / "python")
HARNESS_CLI = str(VENV_BIN / "harness")
#: An inner pytest run with every plugin this environment has (no cache folder in the throw-away project).
PYTEST_ALL_PLUGINS = (PYTHON, "-m", "pytest", "-p", "no:cacheprovider")
#: How an inner pytest run starts: without the plugins of the harness's own dev tools installed in
#: the same environment (hypothesis, pytest-html and its pytest-metadata, allure-pytest, typeguard),
#: which no throw-away project uses and whose imports cost each inner run and each of its xdist
#: workers about 0.4 s of CPU. The tests of the harness beside them run with PYTEST_ALL_PLUGINS.
PYTEST = (
    *PYTEST_ALL_PLUGINS,
    *("-p", "no:hypothesispytest", "-p", "no:html", "-p", "no:html_fixtures", "-p", "no:metadata"),
    *("-p", "no:allure_pytest", "-p", "no:typeguard"),
)
REGION = "us-east-1"
APP = "mini"
BRANCH = "feature/Reliability"

#: Hang guard of one session; never a timing assertion.
RUN_TIMEOUT = 300.0

#: ``branchstack: target: started in 0.50s: MiniStack 1.5.33 pid 123 on http://127.0.0.1:4567 (...)``
TARGET_RE = re.compile(
    r"target: (?:started in [\d.]+s:|attached to kept) MiniStack \S+ pid (\d+) on http://127\.0\.0\.1:(\d+)"
)

_SCRUB_PREFIXES = ("HARNESS_", "AWS_", "CIRCLE", "GITHUB_", "CODEBUILD_", "CI_", "GITLAB_", "PYTEST_", "GIT_")
_SCRUB_EXACT = ("CI", "PYTHONPATH", "STAGE", "STACK_NAME")

CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8}, connect_timeout=5, read_timeout=60)


# --------------------------------------------------------------------------- results


@dataclass
class CaseResult:
    """One row of the table, plus the details under it."""

    number: int
    fault: str
    runs: int
    result: str
    figure: str
    ok: bool
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)


def median(values: Iterable[float]) -> float | None:
    vals = list(values)
    return statistics.median(vals) if vals else None


def secs(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


# --------------------------------------------------------------------------- context


class Registry:
    """Everything a case started: stopped by pid at the end, whatever happened."""

    def __init__(self) -> None:
        self.pids: list[int] = []  # sessions (process-group leaders)
        self.emulators: list[tuple[int, int]] = []  # (pid, port)
        self.closers: list[Callable[[], None]] = []

    def cleanup(self) -> None:
        for close in reversed(self.closers):
            with contextlib.suppress(Exception):
                close()
        self.closers.clear()
        for pid in self.pids:
            try:
                alive = psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
            except psutil.Error:
                alive = False
            if alive:
                procs.stop_tree(pid)
        self.pids.clear()
        for pid, port in self.emulators:
            if emulator_alive(pid, port):
                procs.stop_tree(pid)
        self.emulators.clear()


@dataclass
class Ctx:
    base: Path
    rng: random.Random
    quick: bool
    log: Callable[[str], None] = print
    registry: Registry = field(default_factory=Registry)
    #: A rig the signal cases (2, 3, 4) share instead of each starting its own (set by whoever owns it).
    rig: SignalRig | None = None
    _counter: Iterator[int] = field(default_factory=lambda: iter(range(1, 1_000_000)))

    def dir(self, name: str) -> Path:
        path = self.base / f"{name}-{next(self._counter)}"
        path.mkdir(parents=True)
        return path

    def emulator(self, name: str = "emulator", **env: str) -> Emulator:
        emu = start_emulator(self.dir(name), extra_env=env)
        self.registry.emulators.append((emu.pid, emu.port))
        self.registry.closers.append(emu.stop)
        return emu

    def session(self, project: Path, *args: str, **kwargs: Any) -> Session:
        kwargs.setdefault("log_path", self.base / f"session-{next(self._counter)}.log")
        s = Session(project, *args, **kwargs)
        self.registry.pids.append(s.proc.pid)
        return s

    def run(self, project: Path, *args: str, **kwargs: Any) -> Session:
        """Start a session and wait for it (hang guard ``RUN_TIMEOUT``)."""
        s = self.session(project, *args, **kwargs)
        s.finish()
        return s


# --------------------------------------------------------------------------- projects


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The outer environment without anything that would steer the inner run; venv bin first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB_PREFIXES) and k not in _SCRUB_EXACT}
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


#: ``aws cloudformation deploy``'s steps through boto3 (the same words, the same change set, stack and tags).
CFN_DEPLOY = STACKS / "sets" / "cfn_deploy.py"


def deploy_argv(template: Path, *, cli: bool = False) -> list[str]:
    """The throw-away projects' deploy command: ``aws cloudformation deploy`` of ``template`` in their words.

    Run by ``cfn_deploy.py`` (one interpreter with boto3, about 0.25 s less CPU than the AWS CLI's start-up,
    on every deploy of every session), unless ``cli``: the AWS CLI itself, for the runs whose subject it is.
    """
    words = [
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
    return ["aws", "cloudformation", "deploy", *words] if cli else [PYTHON, str(CFN_DEPLOY), *words]


def toml_list(words: Sequence[str]) -> str:
    return "[" + ", ".join('"' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for w in words) + "]"


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - argv list
        ["git", "-c", "user.name=rel", "-c", "user.email=rel@example.invalid", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        check=check,
        capture_output=True,
        text=True,
        env={**clean_env(), "GIT_CONFIG_NOSYSTEM": "1"},
        timeout=30,
    )


def make_project(
    root: Path,
    *,
    branch: str = BRANCH,
    files: Mapping[str, str] | None = None,
    template: Path = MINIMAL_TEMPLATE,
    deploy: Sequence[str] | None = None,
    extra_toml: str = "",
    app: str = APP,
) -> Path:
    """A git project (one commit on ``branch``) deploying ``template``; ``files`` are written dedented."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f'[tool.harness]\napp = "{app}"\ndeploy-command = {toml_list(deploy or deploy_argv(template))}\n' + extra_toml
    )
    for rel, source in (files or {"tests/integration/test_it.py": DEFAULT_TEST}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    (root / ".gitignore").write_text("harness-report/\n")
    git(root, "init", "-q", "-b", branch)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "reliability project")
    return root


def stack_for(branch: str, app: str = APP) -> str:
    return f"{app}-{stage_from_branch(branch)}"


DEFAULT_TEST = """
import json
import os

import boto3


def test_table_and_function(stack):
    ddb = stack.client("dynamodb")
    table = stack.outputs["TableName"]
    ddb.put_item(TableName=table, Item={"pk": {"S": "rel"}})
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "rel"}})["Item"]["pk"]["S"] == "rel"
    resp = stack.client("lambda").invoke(FunctionName=stack.outputs["FunctionName"], Payload=b'{"n": 1}')
    assert "FunctionError" not in resp, resp["Payload"].read()
    assert json.loads(resp["Payload"].read()) == {"echo": {"n": 1}}


def test_sam_style_env():
    name = os.environ["AWS_SAM_STACK_NAME"]
    desc = boto3.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    assert desc["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
"""

#: Tests that keep the session busy for a few seconds (signal cases aim inside them).
BUSY_TESTS = """
import json
import time


def _churn(stack, seconds):
    ddb = stack.client("dynamodb")
    table = stack.outputs["TableName"]
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        ddb.put_item(TableName=table, Item={"pk": {"S": f"k{i % 20}"}})
        ddb.get_item(TableName=table, Key={"pk": {"S": f"k{i % 20}"}})
        i += 1


def test_a_churn(stack):
    _churn(stack, 1.5)


def test_b_lambda(stack):
    resp = stack.client("lambda").invoke(FunctionName=stack.outputs["FunctionName"], Payload=b'{"n": 2}')
    assert json.loads(resp["Payload"].read()) == {"echo": {"n": 2}}


def test_z_last(stack):
    _churn(stack, 1.0)
"""
LAST_TEST_RE = re.compile(r"test_z_last (PASSED|FAILED|ERROR)")


# --------------------------------------------------------------------------- sessions


class Session:
    """A pytest (or ``argv``) subprocess in its own process group, its output timestamped line by line."""

    def __init__(
        self,
        project: Path,
        *args: str,
        env: Mapping[str, str] | None = None,
        argv: Sequence[str] | None = None,
        timeout: float = RUN_TIMEOUT,
        log_path: Path | None = None,
    ) -> None:
        self.log_path = log_path
        self.argv = list(argv) if argv is not None else [*PYTEST, *args]
        self.project = project
        self.timeout = timeout
        self.lines: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._eof = False
        self.hung = False
        self.killed_at: float | None = None
        self.started = time.monotonic()
        self.proc = subprocess.Popen(  # noqa: S603 - argv list
            self.argv,
            cwd=project,
            env=clean_env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.returncode: int | None = None
        self.ended: float | None = None
        self.sig_status = ""

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                self.lines.append((time.monotonic(), line))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(line for _, line in self.lines)

    def grep(self, needle: str) -> list[str]:
        return [line for line in self.output.splitlines() if needle in line]

    def wait_for(self, pattern: str | re.Pattern[str], timeout: float = 120.0, after: int = 0) -> float | None:
        """Time (monotonic) of the first line from index ``after`` matching ``pattern``; None at EOF or timeout."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        i = after
        with self._cond:
            while True:
                while i < len(self.lines):
                    t, line = self.lines[i]
                    if rx.search(line):
                        return t
                    i += 1
                if self._eof:
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.5))

    def line_time(self, pattern: str | re.Pattern[str]) -> float | None:
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        with self._cond:
            for t, line in self.lines:
                if rx.search(line):
                    return t
        return None

    def output_before(self, t: float) -> str:
        with self._cond:
            return "\n".join(line for tt, line in self.lines if tt <= t)

    def send(self, sig: int) -> float:
        """Send ``sig`` to the session's main process only (like a CI runner does first). Returns the time.

        The process's signal masks right after (``sig_status``: /proc's SigPnd, SigBlk, SigIgn, SigCgt)
        explain a signal that had no effect.
        """
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)
        sent = time.monotonic()
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{self.proc.pid}/status").read_text().splitlines()
            self.sig_status = " ".join(
                x.replace("\t", "") for x in status if x.startswith(("SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt"))
            )
        return sent

    def kill_tree(self) -> float:
        """SIGKILL the session and every descendant at once (a container dying). Returns the time."""
        try:
            tree = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.Error:
            tree = []
        for p in tree:
            with contextlib.suppress(psutil.Error):
                p.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.killed_at = time.monotonic()
        return self.killed_at

    def wait(self, timeout: float) -> int | None:
        try:
            code = self.proc.wait(timeout=max(0.0, timeout))
        except subprocess.TimeoutExpired:
            return None
        if self.ended is None:
            self.ended = time.monotonic()
        self.returncode = code
        return code

    def finish(self, timeout: float | None = None) -> int:
        """Wait for the end (hang guard: stop the tree by pid and mark ``hung``)."""
        left = (timeout if timeout is not None else self.timeout) - (time.monotonic() - self.started)
        code = self.wait(left)
        if code is None:
            self.hung = True
            procs.stop_tree(self.proc.pid)
            code = self.proc.wait(10)
            self.ended = time.monotonic()
            self.returncode = code
        self._reader.join(10)
        if self.log_path is not None:
            with contextlib.suppress(OSError):
                self.log_path.write_text(
                    f"# {' '.join(self.argv)}\n# cwd {self.project}\n# exit {code}{' (hung)' if self.hung else ''}\n"
                    + self.output
                    + "\n"
                )
        return code

    @property
    def seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def emulators(self) -> list[tuple[int, int]]:
        return [(int(m.group(1)), int(m.group(2))) for m in TARGET_RE.finditer(self.output)]

    def no_traceback(self) -> bool:
        return "Traceback (most recent call last)" not in self.output


# --------------------------------------------------------------------------- emulator


@dataclass
class Emulator:
    pid: int
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, service: str, url: str | None = None) -> Any:
        """A client of ``service`` on the emulator (or ``url``), made once: the checks ask for them often."""
        key = (service, url or self.url)
        if key not in self._clients:
            self._clients[key] = boto3.client(
                service,
                endpoint_url=key[1],
                region_name=REGION,
                aws_access_key_id="test",
                aws_secret_access_key="test",  # noqa: S106 - the emulator's dummy key
                config=CLIENT_CONFIG,
            )
        return self._clients[key]

    def tree(self) -> list[psutil.Process]:
        try:
            p = psutil.Process(self.pid)
            return [p, *p.children(recursive=True)]
        except psutil.Error:
            return []

    def stop(self) -> None:
        if emulator_alive(self.pid, self.port):
            procs.stop_tree(self.pid)
        if self.proc is not None:
            with contextlib.suppress(Exception):
                self.proc.wait(5)


def start_emulator(base: Path, extra_env: Mapping[str, str] | None = None) -> Emulator:
    """Start MiniStack exactly as ``harness.targets.local`` does, on a free loopback port."""
    try:
        launched = launch(base, region=REGION, extra_env=extra_env)
    except TargetError as exc:
        raise RuntimeError(f"the emulator did not start: {exc.message}") from None
    return Emulator(pid=launched.pid, port=launched.port, log_path=launched.log_path, proc=launched.proc)


# --------------------------------------------------------------------------- processes


def emulator_alive(pid: int, port: int) -> bool:
    """``pid`` is still a live process whose environment says ``GATEWAY_PORT=<port>`` (not a reused pid)."""
    try:
        env = procs.environ_of(psutil.Process(pid))
    except psutil.Error:
        return False
    return env is not None and env.get("GATEWAY_PORT") == str(port)


def processes_with_env(match: Callable[[Mapping[str, str]], bool]) -> list[str]:
    """Live processes of this user whose environment satisfies ``match`` ("pid N: cmdline")."""
    me = os.getuid()
    found = []
    for p in psutil.process_iter(["pid", "uids", "cmdline"]):
        uids = p.info.get("uids")
        if uids is None or uids.real != me or p.pid == os.getpid():
            continue
        env = procs.environ_of(p)
        if env is not None and match(env):
            found.append(f"pid {p.pid}: {' '.join(p.info.get('cmdline') or [])[:160]}")
    return found


def processes_on(port: int) -> list[str]:
    return processes_with_env(lambda e: e.get("GATEWAY_PORT") == str(port))


def deploy_processes(stack: str) -> list[str]:
    """A deploy (or destroy) command of ``stack`` still running: the harness gives it HARNESS_STACK_NAME."""
    return processes_with_env(lambda e: e.get("HARNESS_STACK_NAME") == stack and "PYTEST_VERSION" not in e)


def wait_until(check: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(step)


# --------------------------------------------------------------------------- what is left


def list_stacks(emu: Emulator, *, include_deleted: bool = False) -> list[dict[str, Any]]:
    cfn = emu.client("cloudformation")
    out: list[dict[str, Any]] = []
    for page in cfn.get_paginator("list_stacks").paginate():
        for s in page["StackSummaries"]:
            if include_deleted or s["StackStatus"] != "DELETE_COMPLETE":
                out.append(s)
    return out


def resource_names(emu: Emulator) -> dict[str, list[str]]:
    """Names of the resources the cases' templates create, by kind."""
    names: dict[str, list[str]] = {}
    names["tables"] = [t for t in emu.client("dynamodb").list_tables()["TableNames"] if t != LEASE_TABLE]
    names["functions"] = [f["FunctionName"] for f in emu.client("lambda").list_functions()["Functions"]]
    names["roles"] = [r["RoleName"] for r in emu.client("iam").list_roles()["Roles"]]
    names["buckets"] = [b["Name"] for b in emu.client("s3").list_buckets().get("Buckets", [])]
    names["queues"] = list(emu.client("sqs").list_queues().get("QueueUrls", []))
    return names


def leftovers(emu: Emulator, stack: str) -> list[str]:
    """Everything of ``stack`` still in the emulator: the stack (any status but DELETE_COMPLETE) and its resources."""
    found = [f"stack {s['StackName']} {s['StackStatus']}" for s in list_stacks(emu) if s["StackName"] == stack]
    for kind, names in resource_names(emu).items():
        found.extend(f"{kind[:-1]} {n}" for n in names if stack in n or stack.lower() in n)
    return found


def lease_state(emu: Emulator, stack: str) -> dict[str, Any] | None:
    """The harness lease item of ``stack`` (None if absent or no lease table)."""
    import json

    try:
        item = emu.client("dynamodb").get_item(TableName=LEASE_TABLE, Key={"stack": {"S": stack}}).get("Item")
    except botocore.exceptions.ClientError:
        return None
    return json.loads(item["state"]["S"]) if item else None


def drop_lease(emu: Emulator, stack: str) -> None:
    with contextlib.suppress(botocore.exceptions.ClientError):
        emu.client("dynamodb").delete_item(TableName=LEASE_TABLE, Key={"stack": {"S": stack}})


def tag_sweep(emu: Emulator, *, url: str | None = None) -> list[str]:
    """Delete every stack carrying the harness's managed-by tag (found by its tags, as ``harness gc`` would).

    Uses ``harness.tags`` to recognise the stacks and ``harness.deploy.delete_stack``
    to delete them; a DELETE_FAILED stack is deleted again retaining the resources
    that failed (reported). Returns what was done.
    """
    cfn = emu.client("cloudformation", url)
    done: list[str] = []
    for page in cfn.get_paginator("describe_stacks").paginate():
        for desc in page["Stacks"]:
            if desc["StackStatus"] == "DELETE_COMPLETE" or not tags.is_managed(tags.tag_dict(desc)):
                continue
            name, sid = desc["StackName"], desc["StackId"]
            try:
                if desc["StackStatus"] == "DELETE_FAILED":
                    failed = [
                        r["LogicalResourceId"]
                        for r in cfn.list_stack_resources(StackName=sid)["StackResourceSummaries"]
                        if r["ResourceStatus"] == "DELETE_FAILED"
                    ]
                    cfn.delete_stack(StackName=sid, RetainResources=failed)
                    done.append(f"deleted {name} (was DELETE_FAILED; retained {', '.join(failed) or 'nothing'})")
                else:
                    delete_stack(cfn, sid, delay=0.5, max_attempts=120)
                    done.append(f"deleted {name} (was {desc['StackStatus']})")
            except Exception as exc:  # noqa: BLE001 - report and go on
                done.append(f"could not delete {name}: {exc}")
    return done


def force_clean(emu: Emulator, stack: str) -> list[str]:
    """Make the emulator clean of ``stack`` for the next iteration: tag sweep, lease, leftover resources."""
    done = tag_sweep(emu)
    drop_lease(emu, stack)
    names = resource_names(emu)
    for t in names["tables"]:
        if stack in t:
            with contextlib.suppress(Exception):
                emu.client("dynamodb").delete_table(TableName=t)
                done.append(f"deleted table {t}")
    for f in names["functions"]:
        if stack in f:
            with contextlib.suppress(Exception):
                emu.client("lambda").delete_function(FunctionName=f)
                done.append(f"deleted function {f}")
    for q in names["queues"]:
        if stack in q:
            with contextlib.suppress(Exception):
                emu.client("sqs").delete_queue(QueueUrl=q)
                done.append(f"deleted queue {q}")
    return done


def wait_stack_settled(emu: Emulator, stack: str, timeout: float = 30.0) -> str | None:
    """Wait until no stack of that name is ``*_IN_PROGRESS``; its final status (None if none)."""
    cfn = emu.client("cloudformation")
    deadline = time.monotonic() + timeout
    while True:
        desc = stack_status(cfn, stack)
        status = desc["StackStatus"] if desc else None
        if status is None or not status.endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            return status
        time.sleep(0.3)


# --------------------------------------------------------------------------- phases


PHASES = ("startup", "deploy", "tests", "teardown")
DEPLOYING_RE = re.compile(r"branchstack: deploying ")
READY_RE = re.compile(r"branchstack: stack \S+: \d+ resources")
TEARDOWN_RE = re.compile(r"branchstack: teardown: |test_z_last (PASSED|FAILED|ERROR)")
#: pytest's last line ("=== 3 passed in 3.57s ==="): after it the run's work is done and reported.
FINISHED_RE = re.compile(r"^=+ .*\bin [\d.]+s\b.* =+$", re.M)


@dataclass
class Calibration:
    """When each phase begins and how long it lasts, from one undisturbed session."""

    deploying: float
    ready: float
    last_test: float
    done: float
    total: float

    def window(self, phase: str) -> tuple[re.Pattern[str] | None, float]:
        """(marker after which the phase runs, its length in seconds)."""
        if phase == "startup":
            return None, self.deploying
        if phase == "deploy":
            return DEPLOYING_RE, max(0.2, self.ready - self.deploying)
        if phase == "tests":
            return READY_RE, max(0.2, self.last_test - self.ready)
        return LAST_TEST_RE, max(0.2, self.done - self.last_test)


def calibrate(s: Session) -> Calibration:
    """Phase times of a finished, undisturbed session that ran ``BUSY_TESTS``."""
    t0 = s.started
    deploying = (s.line_time(DEPLOYING_RE) or t0) - t0
    ready = (s.line_time(READY_RE) or t0) - t0
    last = (s.line_time(LAST_TEST_RE) or t0) - t0
    done = (s.line_time(r"verified gone|LEFT BEHIND|teardown left") or (s.ended or t0)) - t0
    return Calibration(deploying, ready, last, done, s.seconds)


def finished_before(s: Session, t: float) -> bool:
    """Whether the session had printed pytest's last line by time ``t``: a signal from then on may land
    after Python stopped running signal handlers (interpreter shutdown), where nothing can act on it."""
    return bool(FINISHED_RE.search(s.output_before(t)))


def phase_at(s: Session, t: float) -> str:
    """The phase the session was in at time ``t``, judged from the lines it had printed."""
    before = s.output_before(t)
    if TEARDOWN_RE.search(before):
        return "teardown"
    if READY_RE.search(before):
        return "tests"
    if DEPLOYING_RE.search(before):
        return "deploy"
    return "startup"


def fire_in_phase(s: Session, cal: Calibration, phase: str, rng: random.Random) -> tuple[float | None, float]:
    """Wait for the phase's marker, then a random part of its length. Returns (time reached, planned delay)."""
    marker, length = cal.window(phase)
    delay = rng.uniform(0.0, length)
    if marker is None:
        start = s.started
    else:
        start = s.wait_for(marker, timeout=180.0)
        if start is None:
            return None, delay
    left = start + delay - time.monotonic()
    if left > 0:
        time.sleep(left)
    return time.monotonic(), delay


def phase_plan(rng: random.Random, runs: int, phases: Sequence[str] = PHASES) -> list[str]:
    """``runs`` phases spread evenly over ``phases`` (shuffled)."""
    plan = [phases[i % len(phases)] for i in range(runs)]
    rng.shuffle(plan)
    return plan


def count_by(items: Iterable[str]) -> str:
    counts: dict[str, int] = {}
    for x in items:
        counts[x] = counts.get(x, 0) + 1
    return ", ".join(f"{k} x{v}" for k, v in counts.items())


def stack_ids(emu: Emulator, name: str) -> dict[str, str]:
    """Stack id -> status of every stack ever named ``name`` in the emulator (deleted ones too)."""
    return {s["StackId"]: s["StackStatus"] for s in list_stacks(emu, include_deleted=True) if s["StackName"] == name}


def new_stacks(emu: Emulator, name: str, before: Mapping[str, str]) -> dict[str, str]:
    """Stacks named ``name`` created since ``before`` was taken (id -> status)."""
    return {k: v for k, v in stack_ids(emu, name).items() if k not in before}


def busy_project(ctx: Ctx, name: str, **kwargs: Any) -> Path:
    return make_project(ctx.dir(name), files={"tests/integration/test_busy.py": BUSY_TESTS}, **kwargs)


def endpoint_env(emu: Emulator, **extra: str) -> dict[str, str]:
    return {"HARNESS_TARGET": "endpoint", "HARNESS_ENDPOINT_URL": emu.url, **extra}


# --------------------------------------------------------------------------- signal cases (2 and 3)


@dataclass
class SignalRig:
    """An endpoint emulator, a busy project on ``BRANCH`` and its calibrated phase times."""

    emu: Emulator
    env: dict[str, str]
    stack: str
    project: Path
    cal: Calibration
    plan: list[str]


def signal_rig(ctx: Ctx, name: str, runs: int) -> SignalRig:
    """Start the emulator, run one undisturbed session to time its phases, plan ``runs`` signal points.

    With ``ctx.rig`` set, its emulator, project and calibration are used, with a plan of its own:
    each signalled run of a case is cleaned up before the next, so the cases can follow each other
    on it (the fast tests do; the matrix gives each case its own).
    """
    if ctx.rig is not None:
        return dataclasses.replace(ctx.rig, plan=phase_plan(ctx.rng, runs, ("deploy", "tests", "teardown")))
    emu = ctx.emulator(f"{name}-emulator")
    env = endpoint_env(emu)
    project = busy_project(ctx, name)
    first = ctx.run(project, "tests/integration", "-v", env=env)
    if first.returncode != 0:
        raise RuntimeError(f"the undisturbed session failed:\n{first.output[-3000:]}")
    plan = phase_plan(ctx.rng, runs, ("deploy", "tests", "teardown"))
    return SignalRig(emu, env, stack_for(BRANCH), project, calibrate(first), plan)


@dataclass
class Aftermath:
    """What one signalled session left: stack resources, a lease item, deploy processes."""

    left: list[str]
    lease: dict[str, Any] | None
    strays: list[str]
    cut_short: bool  # a KeyboardInterrupt traceback through the harness's teardown


CUT_SHORT_NOTE = (
    "the signal cut the harness's teardown short (a KeyboardInterrupt traceback through session._teardown): "
    "{n} runs: {runs}"
)


def aftermath(rig: SignalRig, s: Session) -> Aftermath:
    """Inspect the emulator once the session is over (and clean up for the next run)."""
    out = s.output
    cut = "in _teardown" in out and not any(x in out for x in ("verified gone", "LEFT BEHIND", "left things behind"))
    wait_stack_settled(rig.emu, rig.stack)
    wait_until(lambda: not deploy_processes(rig.stack), 10)
    left = leftovers(rig.emu, rig.stack)
    lease = lease_state(rig.emu, rig.stack)
    strays = deploy_processes(rig.stack)
    if left or lease:
        force_clean(rig.emu, rig.stack)
    return Aftermath(left, lease, strays, cut)


@dataclass
class Tallies:
    """Per-run findings of a signal case, by kind."""

    cut_short: list[str] = field(default_factory=list)
    leaked: list[str] = field(default_factory=list)
    leases: list[str] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)

    def add(self, run: int, where: str, s: Session, after: Aftermath) -> None:
        if after.cut_short:
            self.cut_short.append(f"run {run} (exit {s.returncode})")
        if after.left:
            self.leaked.append(f"run {run} ({where}): {after.left}; last lines: {s.output.splitlines()[-3:]}")
        if after.lease:
            self.leases.append(f"run {run} ({where}): {after.lease.get('phase')}")
        if after.strays:
            self.strays.append(f"run {run}: {after.strays}")

    def notes(self) -> list[str]:
        out = []
        if self.leases:
            out.append(f"lease items left (the next run on the branch waits for or prunes them): {self.leases}")
        if self.cut_short:
            out.append(CUT_SHORT_NOTE.format(n=len(self.cut_short), runs=self.cut_short))
        if self.leaked:
            out.append(f"leaks: {self.leaked}")
        if self.strays:
            out.append(f"deploy processes left: {self.strays}")
        return out
