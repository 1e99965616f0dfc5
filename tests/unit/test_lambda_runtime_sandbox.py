"""The Lambda runtime sandbox's parts, without an emulator: interpreter lookup, SDK folder, worker script.

The end-to-end proof (a function cannot import what it does not bundle) is
``tests/e2e/test_lambda_parity_e2e.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from harness.emulator import runtimes, sandbox
from harness.emulator.invocations import INIT_MARKER
from harness.emulator.runtimes import SEARCH_PATH_ENV, FunctionRuntime, Resolution, resolve


def _exe(directory: Path, name: str) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_a_declared_python_runs_on_the_interpreter_found_for_it(tmp_path: Path) -> None:
    py312 = _exe(tmp_path, "python3.12")
    res = resolve("python3.12", env={SEARCH_PATH_ENV: str(tmp_path)}, probe=lambda exe: "3.12.1")
    assert res.exact and res.executable == str(py312) and not res.mismatch
    assert res.used == f"Python 3.12.1 ({py312})"


def test_a_shim_answering_for_another_version_is_not_taken(tmp_path: Path) -> None:
    _exe(tmp_path, "python3.12")  # a pyenv shim answers with the active version
    res = resolve("python3.12", env={SEARCH_PATH_ENV: str(tmp_path)}, probe=lambda exe: "3.11.7", fallback="/venv/py")
    assert res.mismatch and res.executable == "/venv/py"
    assert "no python3.12 found" in res.used


def test_pyenv_versions_are_searched(tmp_path: Path) -> None:
    bindir = tmp_path / "versions" / "3.12.4" / "bin"
    bindir.mkdir(parents=True)
    exe = _exe(bindir, "python3.12")
    env = {"PATH": str(tmp_path / "empty"), "PYENV_ROOT": str(tmp_path)}
    res = resolve("python3.12", env=env, probe=lambda e: "3.12.4")
    assert res.exact and res.executable == str(exe)


def test_an_interpreter_the_sdk_cannot_run_on_is_a_mismatch(tmp_path: Path) -> None:
    _exe(tmp_path, "python3.2")
    res = resolve("python3.2", env={SEARCH_PATH_ENV: str(tmp_path)}, probe=lambda e: "3.2.6")
    assert res.mismatch
    assert "cannot run the runtime SDK (boto3" in res.used


def test_runtimes_that_need_docker_are_unsupported() -> None:
    res = resolve("java21", env={SEARCH_PATH_ENV: "/nonexistent"})
    assert not res.supported and res.executable is None
    assert FunctionRuntime("orders-Fn", res).line() == (
        "orders-Fn: runtime java21 cannot run here: it needs Docker, which the embedded emulator does not use"
    )


def test_node_is_compared_by_major_version(tmp_path: Path) -> None:
    node = _exe(tmp_path, "node")
    env = {SEARCH_PATH_ENV: str(tmp_path)}
    assert resolve("nodejs20.x", env=env, probe=lambda e: "20.20.2").exact
    other = resolve("nodejs22.x", env=env, probe=lambda e: "20.20.2")
    assert other.mismatch and other.used == f"node 20.20.2 ({node})"
    assert not resolve("nodejs22.x", env={SEARCH_PATH_ENV: str(tmp_path / "none")}).supported


def test_check_functions_lists_only_what_does_not_run_as_declared() -> None:
    table = {
        "python3.12": Resolution("python3.12", "/p", "Python 3.12.1", exact=True),
        "python3.9": Resolution("python3.9", "/v", "Python 3.11.7 (the emulator's)", exact=False),
    }
    found = runtimes.check_functions([("b", "python3.9"), ("a", "python3.12")], table.__getitem__)
    assert [f.line() for f in found] == ["b: declares python3.9, runs on Python 3.11.7 (the emulator's)"]


def test_the_sdk_folder_links_the_installed_packages(tmp_path: Path) -> None:
    sdk = sandbox.build_sdk(tmp_path / "sdk")
    assert sorted(p.name for p in sdk.iterdir()) == sorted(
        ["boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py"]
    )
    assert all(p.is_symlink() for p in sdk.iterdir())
    assert sandbox.build_sdk(tmp_path / "sdk") == sdk  # idempotent


def test_the_shim_runs_the_interpreter_isolated(tmp_path: Path) -> None:
    shim = sandbox.shim(sys.executable, tmp_path)
    code = "import sys; print(sys.flags.isolated, sys.flags.no_site, any('site-packages' in p for p in sys.path))"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([shim, "-c", code], capture_output=True, text=True, check=True, env=env, timeout=30)
    assert out.stdout.split() == ["1", "1", "False"]


def test_the_worker_script_of_the_pinned_emulator_takes_the_edits() -> None:
    lr = pytest.importorskip("ministack.core.lambda_runtime")
    script = sandbox.worker_script(lr._PYTHON_WORKER_SCRIPT, lr.INVOKE_DEPTH_BOOTSTRAP)
    assert "_h_init_error(e)" in script and "_h_handler_error(e)" in script
    compile(script, "_worker.py", "exec")


def test_a_changed_worker_script_fails_loudly() -> None:
    with pytest.raises(sandbox.SandboxError, match="no longer starts with the invoke-depth bootstrap"):
        sandbox.worker_script("print(1)", "def _ms_install_invoke_depth(): pass\n")
    boot = "def _ms_install_invoke_depth(): pass\n"
    with pytest.raises(sandbox.SandboxError, match="0 copies of"):
        sandbox.worker_script(boot + "run()", boot)


def test_the_sandbox_path_and_error_classification(tmp_path: Path) -> None:
    """The prelude, run in a real isolated interpreter: sys.path as on AWS, AWS's init error types."""
    task, layer, sdk = tmp_path / "task", tmp_path / "layer_0", tmp_path / "sdk"
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for d in (task, layer / "python" / "lib" / version / "site-packages", sdk):
        d.mkdir(parents=True)
    (task / "app.py").write_text("import notbundled\n")
    script = (
        "def _ms_install_invoke_depth(): pass\n"
        + sandbox.PRELUDE
        + (
            "import importlib, json, os, sys\n"
            "def run():\n"
            "    module_name, handler_name = 'app', 'handler'\n"
            "    _ms_install_invoke_depth()\n"
            "    print(json.dumps(sys.path[:4]))\n"
            "    print(sorted(k for k in os.environ if k in ('VIRTUAL_ENV', 'HARNESS_X', 'KEEP')))\n"
            "    try:\n"
            "        importlib.import_module(module_name)\n"
            "    except Exception as e:\n"
            "        print(_h_init_error(e))\n"
            "run()\n"
        )
    )
    (tmp_path / "w.py").write_text(script)
    env = {
        "PATH": os.environ["PATH"],
        "HARNESS_LAMBDA_SDK": str(sdk),
        "_LAMBDA_LAYERS_DIRS": str(layer),
        "VIRTUAL_ENV": "/venv",
        "HARNESS_X": "secret-ish",
        "KEEP": "1",
    }
    shim = sandbox.shim(sys.executable, tmp_path / "bin")
    out = subprocess.run(
        [shim, str(tmp_path / "w.py")], cwd=task, capture_output=True, text=True, env=env, timeout=30, check=True
    )
    path_line, env_line, error_line = out.stdout.splitlines()
    assert env_line == "['KEEP']"  # the harness's and the emulator's variables are gone
    # the bundle, the layer's site-packages and python/ (as /opt/python...), the SDK; the layer's root is not
    assert path_line == f'["{task}", "{layer}/python/lib/{version}/site-packages", "{layer}/python", "{sdk}"]'
    assert error_line.startswith(INIT_MARKER)
    assert '"errorType": "Runtime.ImportModuleError"' in error_line
    assert "Unable to import module 'app': No module named 'notbundled'" in error_line


@pytest.mark.parametrize("handler", ["plain", "boto3"])
def test_botocore_is_imported_by_the_function_not_the_runtime_and_keeps_the_depth_handler(
    tmp_path: Path, handler: str
) -> None:
    """As on AWS, a cold start imports no SDK before the handler; a handler that imports boto3 still gets
    MiniStack's invoke-depth header handler in every Session it builds (the real bootstrap, the real SDK)."""
    from ministack.core.lambda_runtime import INVOKE_DEPTH_BOOTSTRAP

    task = tmp_path / "task"
    task.mkdir()
    (task / "app.py").write_text(
        "import boto3\nSESSION = boto3.session.Session(region_name='us-east-1')\n" if handler == "boto3" else "X = 1\n"
    )
    script = (
        INVOKE_DEPTH_BOOTSTRAP
        + sandbox.PRELUDE
        + (
            "import importlib, sys\n"
            "_ms_install_invoke_depth()\n"
            "print('botocore' in sys.modules)\n"
            "app = importlib.import_module('app')\n"
            "if hasattr(app, 'SESSION'):  # the handlers a call of its clients runs\n"
            "    calls = app.SESSION._session.get_component('event_emitter')._emitter._handlers\n"
            "    print(any(h.__name__ == '_ms_add_invoke_depth' for h in calls.prefix_search('before-call.s3.X')))\n"
            "else:\n"
            "    print('botocore' in sys.modules)\n"
        )
    )
    (tmp_path / "w.py").write_text(script)
    env = {"PATH": os.environ["PATH"], "HARNESS_LAMBDA_SDK": str(sandbox.build_sdk(tmp_path / "sdk"))}
    shim = sandbox.shim(sys.executable, tmp_path / "bin")
    out = subprocess.run(
        [shim, str(tmp_path / "w.py")], cwd=task, capture_output=True, text=True, env=env, timeout=60, check=True
    )
    before, after = out.stdout.split()
    assert before == "False"  # nothing of the SDK before the handler's module
    assert after == ("True" if handler == "boto3" else "False"), out.stderr  # the hook in place / still no SDK


def test_the_interpreter_behind_a_shim_is_the_one_run(tmp_path: Path) -> None:
    """A pyenv shim is asked once; every cold start then runs the interpreter it named, not the shim."""
    _exe(tmp_path, "python3.12")
    res = resolve(
        "python3.12", env={SEARCH_PATH_ENV: str(tmp_path)}, probe=lambda e: "3.12.1 /opt/py/3.12.1/bin/python3.12"
    )
    assert res.exact and res.executable == "/opt/py/3.12.1/bin/python3.12"


def test_probe_reports_version_and_real_path() -> None:
    answer = runtimes.probe_version(sys.executable)
    assert answer is not None
    version, real = answer.split(" ", 1)
    assert version == ".".join(map(str, sys.version_info[:3])) and Path(real).exists()


#: Starts the runtime (the prelude, then a handler that never returns) as MiniStack does, prints its pid, waits.
_EMULATOR_STAND_IN = """
import os, subprocess, sys, threading
env = {**os.environ, "HARNESS_EMULATOR_PID": str(os.getpid())}
child = subprocess.Popen([sys.argv[1], sys.argv[2]], env=env)
print(child.pid, flush=True)
threading.Event().wait()
"""


def _ended(p: psutil.Process) -> bool:
    try:
        return p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_busy_runtime_ends_with_the_emulator_that_started_it(tmp_path: Path) -> None:
    """The emulator SIGKILLed alone (as the OOM killer does) while a handler runs: the runtime ends too."""
    script = tmp_path / "w.py"
    script.write_text(
        "def _ms_install_invoke_depth(): pass\n"
        + sandbox.PRELUDE
        + "import time\nprint('in the handler', flush=True)\ntime.sleep(120)  # the handler\n"
    )
    shim = sandbox.shim(sys.executable, tmp_path / "bin")
    emulator = subprocess.Popen(
        [sys.executable, "-c", _EMULATOR_STAND_IN, shim, str(script)], stdout=subprocess.PIPE, text=True
    )
    assert emulator.stdout is not None
    runtime = psutil.Process(int(emulator.stdout.readline()))
    try:
        assert emulator.stdout.readline().strip() == "in the handler"  # the runtime (its stdout is the emulator's)
        assert runtime.is_running() and runtime.status() != psutil.STATUS_ZOMBIE
        emulator.kill()
        emulator.wait(10)
        # Its parent gone, the runtime is init's to reap, which may take seconds: ended is a zombie or gone.
        deadline = time.monotonic() + 30  # hang guard: without the prelude's pidfd it would sleep its 120 s
        while not _ended(runtime) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _ended(runtime), runtime
    finally:
        if runtime.is_running():
            runtime.kill()


def test_a_runtime_started_after_its_emulator_ended_ends_at_once(tmp_path: Path) -> None:
    script = tmp_path / "w.py"
    script.write_text(
        "def _ms_install_invoke_depth(): pass\n" + sandbox.PRELUDE + "import time\ntime.sleep(120)  # the handler\n"
    )
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(10)
    env = {"PATH": os.environ["PATH"], "HARNESS_EMULATOR_PID": str(gone.pid)}
    out = subprocess.run(  # the pid is gone, or someone else's (not this runtime's parent)
        [sandbox.shim(sys.executable, tmp_path / "bin"), str(script)], env=env, timeout=30, check=False
    )
    assert out.returncode == 1


def test_functions_starting_cold_at_once_share_the_shim_without_a_race(tmp_path: Path) -> None:
    """Concurrent cold starts used to share one temporary file: one writer's rename left the other without it."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    for round_ in range(40):
        folder = tmp_path / str(round_)  # a fresh folder: every thread finds no shim and writes it
        start = threading.Barrier(8)

        def write(_: int, folder: Path = folder, start: threading.Barrier = start) -> str:
            start.wait()
            return sandbox.shim(sys.executable, folder)

        with ThreadPoolExecutor(8) as pool:
            paths = set(pool.map(write, range(8)))
        assert len(paths) == 1 and Path(paths.pop()).read_text().startswith("#!/bin/sh\nexec ")
        assert [p.name for p in folder.iterdir() if p.suffix == ".tmp"] == []
