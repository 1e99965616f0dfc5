"""A Python function's cold start forks from a runtime that has imported the SDK, not a new interpreter.

MiniStack 1.5.33 starts every function runtime as a new process (the runtime
sandbox's interpreter, see ``sandbox``), and most handlers begin with
``import boto3``: about 0.3 s of CPU at every cold start here (the first
invocation of a function, every update of its code, every extra concurrent
runtime), in every test run. It is the same import each time, of the same
files: the SDK the sandbox gives every function.

The adaptation (``lambda-runtime-warm-start``): per interpreter, one warm
runtime (``_warm_runtime.py``, the emulator's child) imports the SDK once and
forks a function's runtime on request; the emulator starts a small launcher
(``_warm_client.py``) where it started the interpreter, and the launcher hands
the warm runtime its streams, folder and environment. The forked runtime runs
the same worker script and prelude with the same ``sys.path`` (the function's
code, its layers, the SDK, the standard library), so what a function can
import is unchanged; it finds the SDK's modules already imported. Where the
function's code or layers hold a module of the same name as one the SDK
import looked up (a bundled ``boto3`` or ``urllib3``, ``awscrt``...), that copy
must win as on AWS: that runtime is started afresh instead. So is a cold start
that finds no warm runtime listening (not started yet, or gone); one that finds
it still importing the SDK waits for it.

Left as it is: runtimes forked from one warm runtime share its string hash seed
(on AWS each runtime has its own); ``random`` reseeds itself at the fork.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shlex
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

from harness.emulator import guard
from harness.emulator import runtimes as runtime_lookup

NAME = "lambda-runtime-warm-start"
WARM_RUNTIME = Path(__file__).with_name("_warm_runtime.py")
CLIENT = Path(__file__).with_name("_warm_client.py")
RESOURCE_TYPE = "AWS::Lambda::Function"

_lock = threading.Lock()
_runtimes: dict[str, subprocess.Popen[bytes]] = {}
_prepared: set[str] = set()  # runtimes whose warm runtime a created function has started (once each)
_enabled = False


def address(executable: str, emulator_pid: int) -> str:
    """The abstract socket name of ``executable``'s warm runtime in the emulator ``emulator_pid``."""
    return f"harness-lambda-{emulator_pid}-{hashlib.sha256(executable.encode()).hexdigest()[:16]}"


def launcher(executable: str) -> str:
    """What the interpreter's shim runs after ``executable -I -S``: the launcher and its address."""
    return f"{shlex.quote(str(CLIENT))} {shlex.quote(address(executable, os.getpid()))}"


def ensure(executable: str, sdk: str) -> None:
    """Start ``executable``'s warm runtime unless one runs. It listens at once and imports the SDK after: a
    launcher that connects meanwhile waits for that import; one that finds nobody listening starts afresh."""
    with _lock:
        proc = _runtimes.get(executable)
        if proc is not None and proc.poll() is None:
            return
        _runtimes[executable] = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [executable, "-I", "-S", str(WARM_RUNTIME), address(executable, os.getpid()), sdk, str(os.getpid())],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            # The emulator's own environment, as every runtime it starts has: a forked runtime shows its warm
            # runtime's in /proc (what tools that find an emulator's processes by GATEWAY_PORT read), whatever
            # os.environ it is given. -I keeps the PYTHON* variables out of the interpreter.
            env=dict(os.environ),
        )


def enabled() -> bool:
    """Whether the adaptation is applied in this process (the emulator)."""
    return _enabled


def _prepare(runtime: Any) -> None:
    """Start the warm runtime a new function of ``runtime`` will start from (in the background)."""
    if not (_enabled and isinstance(runtime, str) and runtime.startswith("python")):
        return
    with _lock:  # once per runtime: a warm runtime that died since is started again at the next spawn (ensure)
        if runtime in _prepared:
            return
        _prepared.add(runtime)

    def start() -> None:
        exe = runtime_lookup.interpreter(runtime)
        if exe is not None:
            ensure(exe, os.environ[runtime_lookup.SDK_ENV])

    threading.Thread(target=start, name=f"warm-runtime-{runtime}", daemon=True).start()


def apply() -> None:
    """Fork Python runtimes from a warm runtime per interpreter; start it when a Python function is created.

    The runtime sandbox's shims run the launcher (``sandbox`` asks :func:`enabled`); without the sandbox
    (no ``HARNESS_LAMBDA_SDK``) or without pidfds and descriptor passing this adaptation does nothing.
    """
    global _enabled
    if not (os.environ.get(runtime_lookup.SDK_ENV) and hasattr(os, "pidfd_open") and hasattr(socket, "send_fds")):
        return
    lambda_svc = guard.module("ministack.services.lambda_svc", NAME)
    api_create = guard.function(lambda_svc, "_create_function", ("data",), NAME)
    guard.calls_by_name(lambda_svc, "handle_request", "_create_function", NAME)
    cfn_create = guard.cfn_handler(
        RESOURCE_TYPE, "create", "_lambda_create", ("logical_id", "props", "stack_name"), NAME
    )
    _enabled = True
    if guard.adapted(api_create, NAME):
        return

    @functools.wraps(api_create)
    def _create_function(data: dict[str, Any]) -> Any:
        _prepare(data.get("Runtime") if isinstance(data, dict) else None)
        return api_create(data)

    @functools.wraps(cfn_create)
    def _lambda_create(logical_id: str, props: Any, stack_name: str) -> Any:
        _prepare(props.get("Runtime") if isinstance(props, dict) else None)
        return cfn_create(logical_id, props, stack_name)

    lambda_svc._create_function = guard.mark(_create_function, NAME)
    guard.replace_cfn_handler(RESOURCE_TYPE, "create", "_lambda_create", guard.mark(_lambda_create, NAME))
