"""A Python function's cold start forked from the warm runtime sees what a fresh runtime sees.

The same functions on two emulators as the harness starts them: one with every
adaptation (``lambda-runtime-warm-start`` included), one with that adaptation
left out (each runtime a new interpreter, as before). What the handler can see
of its process (path, environment, folder, what it can import, how an init
error is reported) must be the same; where it comes from must not: the first
is a child of the warm runtime, the second of the emulator.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from e2e_support import Emulator, code_zip, processes_on, start_emulator

from harness.emulator import OFF_VARIABLE, warm_start

pytestmark = pytest.mark.e2e

ROLE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}

# What a handler can see of its runtime; paths under the emulator's scratch folder are made relative to it.
LOOK = """
import importlib, os, sys
import boto3
import botocore.loaders

CLIENT = boto3.client("sts")


def handler(event, context):
    def rel(p):
        task = os.path.realpath(os.environ["LAMBDA_TASK_ROOT"])
        p = os.path.realpath(p)
        if p.startswith(task):
            return p.replace(task, "<task>")
        scratch = os.path.dirname(os.path.dirname(task))
        return p.replace(scratch, "<scratch>") if p.startswith(scratch) else p

    def importable(name):
        try:
            importlib.import_module(name)
            return True
        except ImportError:
            return False

    return {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "path": [rel(p) for p in sys.path],
        "cwd_is_task_root": os.getcwd() == os.environ["LAMBDA_TASK_ROOT"],
        "argv0": os.path.basename(sys.argv[0]),
        "main": sys.modules["__main__"].__name__,
        "flags": [sys.flags.isolated, sys.flags.no_site],
        "env": sorted(k for k in os.environ if not k.startswith("_X_AMZN")),
        "environb": sorted(k.decode() for k in os.environb if not k.startswith(b"_X_AMZN")),
        "mine": os.environ.get("MINE"),
        "boto3": rel(boto3.__file__),
        "pytest": importable("pytest"),
        "harness": importable("harness"),
        "requests": importable("requests"),
        # the SDK's data (parsed once by the warm runtime, see _sdk_data.py): what a session finds in it
        "services": len(boto3.session.Session().get_available_services()),
        "resources": boto3.session.Session().get_available_resources(),
        "partition": boto3.session.Session().get_partition_for_region("cn-north-1"),
        "loader": botocore.loaders.JSONFileLoader.load_file.__qualname__,
        "handler_error": None,
    }
"""


def _role(emu: Emulator) -> str:
    iam = emu.client("iam")
    name = f"warm-{uuid.uuid4().hex[:6]}"
    return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(ROLE_POLICY))["Role"]["Arn"])


def _function(emu: Emulator, files: dict[str, str], **extra: Any) -> str:
    name = f"warm-{uuid.uuid4().hex[:8]}"
    emu.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=_role(emu),
        Handler="app.handler",
        Code={"ZipFile": code_zip(files)},
        Timeout=30,
        **extra,
    )
    return name


def _listening(emu: Emulator, timeout: float = 30.0) -> None:
    """Wait until the emulator's warm runtime listens (it starts beside the function's creation)."""
    name = "@" + warm_start.address("", emu.pid).rsplit("-", 1)[0] + "-"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if name in Path("/proc/net/unix").read_text():
            return
        time.sleep(0.02)
    raise AssertionError(f"no warm runtime listens at {name}*")


def _invoke(emu: Emulator, name: str) -> tuple[str | None, Any]:
    resp = emu.client("lambda").invoke(FunctionName=name, Payload=b"{}")
    return resp.get("FunctionError"), json.loads(resp["Payload"].read() or b"null")


def _cmdline(pid: int) -> str:
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return ""


def _ended(pid: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emu = start_emulator(tmp_path_factory.mktemp("warm"))
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emu = start_emulator(tmp_path_factory.mktemp("fresh"), extra_env={OFF_VARIABLE: warm_start.NAME})
    try:
        yield emu
    finally:
        emu.stop()


def test_a_forked_runtime_sees_what_a_fresh_one_sees(warm: Emulator, fresh: Emulator) -> None:
    seen = {}
    for label, emu in (("warm", warm), ("fresh", fresh)):
        name = _function(emu, {"app.py": LOOK}, Environment={"Variables": {"MINE": "mine"}})
        if emu is warm:
            _listening(emu)
        error, payload = _invoke(emu, name)
        assert error is None, payload
        seen[label] = payload
    warm_seen, fresh_seen = seen["warm"], seen["fresh"]
    assert "_warm_runtime.py" in _cmdline(warm_seen["ppid"]), "the warm emulator's runtime was not forked"
    assert fresh_seen["ppid"] == fresh.pid
    for key in ("pid", "ppid"):
        warm_seen.pop(key), fresh_seen.pop(key)
    # the warm runtime's loaders read the SDK's data it parsed; a fresh runtime's parse their own
    assert (warm_seen.pop("loader"), fresh_seen.pop("loader")) == (
        "share.<locals>.shared_load_file",
        "JSONFileLoader.load_file",
    )
    assert warm_seen == fresh_seen
    # and what both see is the sandbox: the function's code, the SDK, no harness or test packages
    assert warm_seen["path"][:2] == ["<task>", "<scratch>/lambda-sdk"]
    assert warm_seen["boto3"].endswith("site-packages/boto3/__init__.py")  # the SDK folder links the installed one
    assert not warm_seen["pytest"] and not warm_seen["harness"] and not warm_seen["requests"]
    assert warm_seen["mine"] == "mine" and warm_seen["cwd_is_task_root"] and warm_seen["main"] == "__main__"
    assert warm_seen["argv0"] == "_worker.py" and warm_seen["flags"] == [1, 1]
    assert not [k for k in warm_seen["env"] if k.startswith(("HARNESS_", "MINISTACK_"))]
    assert warm_seen["env"] == warm_seen["environb"]


def test_init_errors_are_reported_alike(warm: Emulator, fresh: Emulator) -> None:
    for files in ({"app.py": "import notbundled\n"}, {"app.py": "def handler(e, c):\n    raise ValueError('boom')\n"}):
        got = []
        for emu in (warm, fresh):
            error, payload = _invoke(emu, _function(emu, files))
            got.append((error, payload.get("errorType"), payload.get("errorMessage")))
        assert got[0] == got[1], got
        assert got[0][0] == "Unhandled"


def test_a_function_that_bundles_its_own_sdk_gets_its_copy_from_a_fresh_runtime(warm: Emulator) -> None:
    files = {
        "app.py": "import os, boto3\ndef handler(e, c):\n    return {'boto3': boto3.MINE, 'ppid': os.getppid()}\n",
        "boto3/__init__.py": "MINE = 'bundled'\n",
    }
    error, payload = _invoke(warm, _function(warm, files))
    assert error is None, payload
    assert payload["boto3"] == "bundled"
    assert payload["ppid"] == warm.pid  # started afresh by the emulator (its launcher exec'd the interpreter)


def test_a_forked_runtime_ends_with_its_launcher_and_with_the_emulator(tmp_path: Path) -> None:
    emu = start_emulator(tmp_path / "emu")
    try:
        names = [_function(emu, {"app.py": LOOK}) for _ in range(2)]
        _listening(emu)
        first = _invoke(emu, names[0])[1]
        runtime, warm_runtime = first["pid"], first["ppid"]
        launchers = [p.pid for p in psutil.Process(emu.pid).children() if "_warm_client.py" in _cmdline(p.pid)]
        assert len(launchers) == 1, launchers
        launcher = launchers[0]
        os.kill(launcher, signal.SIGKILL)  # as the emulator ends a runtime (a timeout, an idle reap)
        assert _ended(runtime), "the runtime outlived its launcher"
        second = _invoke(emu, names[1])[1]
        assert second["ppid"] == warm_runtime
        os.kill(emu.pid, signal.SIGKILL)  # the OOM killer's way
        assert _ended(warm_runtime), "the warm runtime outlived the emulator"
        assert _ended(second["pid"]), "a forked runtime outlived the emulator"
    finally:
        emu.stop()


def test_the_warm_runtime_and_its_runtimes_are_found_by_the_emulator_s_port(warm: Emulator) -> None:
    """Tools find an emulator's processes by ``GATEWAY_PORT`` in their environment (``processes_on``): the
    warm runtime and the runtimes forked from it are among them, as every runtime the emulator starts."""
    name = _function(warm, {"app.py": LOOK})
    _listening(warm)
    seen = _invoke(warm, name)[1]
    found = " ".join(processes_on(warm.port))
    assert f"pid {seen['ppid']}: " in found and f"pid {seen['pid']}: " in found, found


# Output on stdout and stderr, a last line without a newline, and (when asked) a line from a thread after return.
NOISY = """
import sys, threading, time


def handler(event, context):
    n = event["n"]
    print("out %d" % n)
    sys.stderr.write("err %d partial" % n)
    if event.get("late"):
        threading.Thread(target=lambda: (time.sleep(0.3), print("late %d" % n, flush=True))).start()
    return n
"""


def _tail(emu: Emulator, name: str, event: dict[str, Any]) -> str:
    import base64

    resp = emu.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event).encode(), LogType="Tail")
    assert "FunctionError" not in resp, resp["Payload"].read()
    return base64.b64decode(resp["LogResult"]).decode()


def test_each_invocation_s_log_is_its_own_output_and_never_the_end_mark(warm: Emulator) -> None:
    """``lambda-invoke-log-end``: the emulator takes a Python worker's log up to the mark its worker writes
    after each invocation, instead of waiting for its stderr to go quiet."""
    name = _function(warm, {"app.py": NOISY})
    first = _tail(warm, name, {"n": 1, "late": True})
    assert "out 1" in first and "err 1 partial" in first, first
    time.sleep(0.6)  # the thread's line comes after the invocation ended: in the next one's log, as on AWS
    second = _tail(warm, name, {"n": 2})
    assert "late 1" in second and "out 2" in second and "err 2 partial" in second, second
    assert "out 1" not in second
    silent = _function(warm, {"app.py": "def handler(event, context):\n    return 'quiet'\n"})
    assert [_invoke(warm, silent) for _ in range(2)] == [(None, "quiet")] * 2
    events = warm.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    logged = "\n".join(e["message"] for e in events)
    assert "out 1" in logged and "late 1" in logged
    for text in (first, second, logged):
        assert "harness-invocation-end" not in text
