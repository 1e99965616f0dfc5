"""A Lambda Python runtime like AWS's: its interpreter, its bundle, its layers, the runtime's SDK.

On AWS a Python function sees the standard library of its declared Python,
its deployment package (``/var/task``), its layers (``/opt/python`` and
``/opt/python/lib/pythonX.Y/site-packages``) and the SDK the runtime ships
(``/var/runtime``: boto3, botocore and their dependencies), in that order on
``sys.path``. MiniStack 1.5.33 starts every Python function with its own
interpreter (``sys.executable``) and environment, so a function sees the
harness's whole virtualenv: it can import pytest, requests or anything else
it never bundled, on a Python it never declared.

The adaptation (``sandbox_python_runtimes``) replaces the emulator's choice
of runtime binary and worker script:

* the binary is a small shell shim that ``exec``s the interpreter resolved by
  ``harness.emulator.runtimes`` for the declared runtime with ``-I -S``
  (isolated: no ``PYTHON*`` variables, no user site; no ``site``: no
  site-packages and no ``.pth`` hooks such as editable installs);
* the worker script gets a prelude that, once the worker has read its
  configuration and before anything is imported, sets ``sys.path`` to
  ``[task root, layer site-packages, layer python dirs, SDK, stdlib]`` (a
  layer's own root is not on the path, as ``/opt`` is not on AWS), and removes
  the harness's and the emulator's variables from the environment;
* the runtime ends with the emulator, however the emulator ends (killed by
  SIGKILL or the OOM killer included) and even mid-invocation: the prelude
  waits on a pidfd of the emulator (``HARNESS_EMULATOR_PID``) in a low-level
  thread. ``PR_SET_PDEATHSIG`` would not do: it fires when the emulator's
  *thread* that started the runtime ends, and MiniStack starts warm runtimes
  from short-lived threads (an asynchronous invoke's);
* init errors are classified as the AWS runtime classifies them
  (``Runtime.ImportModuleError``, ``Runtime.UserCodeSyntaxError``,
  ``Runtime.HandlerNotFound``, else the exception's class), and an unhandled
  exception is logged as AWS logs it (``[ERROR] ValueError: boom`` and the
  traceback from the handler's frame); ``invocations`` turns both into AWS's
  error payload;
* the worker flushes the handler's output and marks its end on stderr before
  each response, when ``invoke_log_end`` gives it a mark to write.

The SDK is the harness's own installed boto3/botocore/s3transfer/jmespath/
python-dateutil/urllib3/six, linked (symlinks, no copy, no network) into one
directory at the emulator's start. These are newer than the SDK AWS bundles in
its runtimes (AWS updates those on its own schedule); a function that needs a
particular version should bundle it, which wins over the runtime's SDK here as
on AWS. An interpreter older than those packages support (e.g. Python 3.9 for
boto3 >= 1.41) is not used: the function runs on the emulator's interpreter and
the run reports the mismatch.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import shlex
import stat
import threading
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.emulator import PINNED_VERSION, warm_start
from harness.emulator import runtimes as runtime_lookup

NAME = "lambda-runtime-sandbox"
SDK_ENV = runtime_lookup.SDK_ENV
EMULATOR_ENV = "HARNESS_EMULATOR_PID"
MISMATCH_ENV = runtime_lookup.MISMATCH_ENV


class SandboxError(RuntimeError):
    """A function's runtime cannot be started as configured (its message reaches the invocation's error)."""


def sdk_versions() -> dict[str, str]:
    """Distribution -> installed version, for the SDK the sandbox provides."""
    return {dist: metadata.version(dist) for dist in runtime_lookup.SDK_MODULES.values()}


def build_sdk(dest: Path) -> Path:
    """Link the installed SDK modules into ``dest`` (idempotent, offline). Returns ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for module in runtime_lookup.SDK_MODULES:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise SandboxError(f"the Lambda runtime SDK needs {module}, which is not installed with the harness")
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        link = dest / source.name
        if link.is_symlink() and Path(os.readlink(link)) == source:
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(source)
    return dest


def shim(executable: str, directory: Path, launcher: str = "") -> str:
    """An executable that runs ``executable -I -S [launcher]`` with its arguments (MiniStack passes one argv word)."""
    directory.mkdir(parents=True, exist_ok=True)
    name = "python-" + "".join(c if c.isalnum() or c in ".-" else "_" for c in executable.strip("/"))
    path = directory / name
    text = f'#!/bin/sh\nexec {shlex.quote(executable)} -I -S {launcher + " " if launcher else ""}"$@"\n'
    if not path.exists() or path.read_text() != text:
        # One temporary file per writer: two functions starting cold at once both write the shim.
        tmp = path.with_name(f"{name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(text)
        tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        tmp.replace(path)
    return str(path)


# The prelude runs inside the function's process, right after MiniStack's
# invoke-depth bootstrap (which defines ``_ms_install_invoke_depth``, called by
# the worker once its sys.path is set up and before the handler is imported).
PRELUDE = r"""
import os as _h_os, sys as _h_sys
_H_STDLIB = list(_h_sys.path)  # -I -S: the interpreter's standard library only
_H_SDK = _h_os.environ.pop("HARNESS_LAMBDA_SDK", "")
_H_EMULATOR = _h_os.environ.pop("HARNESS_EMULATOR_PID", "")
_H_LOG_END = _h_os.environ.pop("HARNESS_LAMBDA_LOG_END", "")
for _h_var in [_v for _v in _h_os.environ if _v.startswith(("HARNESS_", "MINISTACK_", "PYTHON", "S3_DATA"))
               or _v in ("VIRTUAL_ENV", "GATEWAY_PORT", "BIND_HOST", "AUTH", "IOT_MTLS_ENABLED", "SFTP_ENABLED")]:
    del _h_os.environ[_h_var]


def _h_sandbox_path():
    layers = [d for d in _h_os.environ.get("_LAMBDA_LAYERS_DIRS", "").split(_h_os.pathsep) if d]
    version = "python%d.%d" % _h_sys.version_info[:2]
    path = [_h_os.getcwd()]  # the worker runs in the function's code directory
    path += [_h_os.path.join(d, "python", "lib", version, "site-packages") for d in reversed(layers)]
    path += [_h_os.path.join(d, "python") for d in reversed(layers)]
    path += [_H_SDK] if _H_SDK else []
    _h_sys.path[:] = [p for p in path if _h_os.path.isdir(p)] + _H_STDLIB


def _h_end_with_the_emulator():
    # The runtime ends with the emulator that started it, however the emulator ends (SIGKILL
    # included) and even in the middle of an invocation: the kernel makes a pidfd readable when
    # its process ends. Where there is no pidfd (old kernel or Python), an idle runtime still
    # ends on its closed stdin and a busy one when its handler returns.
    if not _H_EMULATOR.isdigit() or not hasattr(_h_os, "pidfd_open"):
        return
    try:
        fd = _h_os.pidfd_open(int(_H_EMULATOR))
    except ProcessLookupError:
        _h_os._exit(1)
    except OSError:
        return
    if _h_os.getppid() != int(_H_EMULATOR):  # that pid is someone else's now: the emulator is gone
        _h_os._exit(1)
    import _thread, select

    def wait():
        select.select([fd], [], [])
        _h_os._exit(1)

    _thread.start_new_thread(wait, ())  # a low-level thread: not in the function's threading.enumerate()


_h_end_with_the_emulator()
_h_install_invoke_depth = _ms_install_invoke_depth


class _HAfterImport:
    # Runs ``then`` right after the module ``name`` is first executed, whoever imports it. AWS's
    # runtime imports no SDK before the handler; MiniStack's worker imports botocore.handlers on
    # every cold start (about 0.17 s of CPU here) to add its invoke-depth handler. Added right after
    # botocore.handlers runs, the handler is in place before any botocore Session copies that list.
    def __init__(self, name, then):
        self.name, self.then = name, then

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        _h_sys.meta_path.remove(self)
        import importlib.machinery
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and hasattr(spec.loader, "exec_module"):
            run, then = spec.loader.exec_module, self.then

            def exec_module(module):  # on this module's own loader only
                run(module)
                parent, _, child = module.__name__.rpartition(".")
                if parent:  # what the import sets next, set first: ``then`` may reach it through its package
                    setattr(_h_sys.modules[parent], child, module)
                then()

            spec.loader.exec_module = exec_module
        return spec


def _ms_install_invoke_depth():
    _h_sandbox_path()
    if "botocore.handlers" in _h_sys.modules:
        _h_install_invoke_depth()
    else:
        _h_sys.meta_path.insert(0, _HAfterImport("botocore.handlers", _h_install_invoke_depth))


def _h_end_of_invocation(request_id):
    # The invocation's output is all written: what the handler printed or logged is flushed, then the mark
    # the emulator's drain of this worker's stderr waits for (``invoke_log_end``), before the response.
    for stream in (_h_sys.stdout, _h_sys.stderr, _h_sys.__stderr__):
        try:
            stream.flush()
        except Exception:
            pass
    if _H_LOG_END:
        try:
            _h_os.write(2, ("%s %s\n" % (_H_LOG_END, request_id)).encode())
        except OSError:
            pass


def _h_init_error(e):
    import json, traceback
    names = _h_sys._getframe(1).f_locals
    module, handler = names.get("module_name", "?"), names.get("handler_name", "?")
    if isinstance(e, ImportError):
        kind, message, trace = "Runtime.ImportModuleError", "Unable to import module '%s': %s" % (module, e), ""
    elif isinstance(e, SyntaxError):
        kind, message = "Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (module, e)
        trace = '  File "%s" Line %s\n    %s' % (e.filename, e.lineno, (e.text or "").strip())
    elif isinstance(e, AttributeError) and module in _h_sys.modules and not hasattr(_h_sys.modules[module], handler):
        kind, message, trace = "Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (handler, module), ""
    else:
        kind, message = type(e).__name__, str(e)
        trace = "".join(traceback.format_tb(e.__traceback__.tb_next)).rstrip()
    return "HARNESS_INIT_ERROR" + json.dumps({"errorType": kind, "errorMessage": message, "trace": trace})


def _h_handler_error(e):
    import traceback
    frames = "".join(traceback.format_tb(e.__traceback__.tb_next)).rstrip()
    first = str(e).splitlines()[0] if str(e) else ""
    return "[ERROR] %s: %s\nTraceback (most recent call last):\n%s" % (type(e).__name__, first, frames)
"""

#: (what MiniStack's worker script says, what the sandbox's says instead); each must occur exactly once.
WORKER_EDITS = (
    ('{"status": "error", "error": str(e)}', '{"status": "error", "error": _h_init_error(e)}'),
    ('"trace": traceback.format_exc()', '"trace": _h_handler_error(e)'),
    (
        "        _real_stdout.flush()\n\nrun()",
        '        _h_end_of_invocation(_ms_ctx.get("request_id", ""))\n        _real_stdout.flush()\n\nrun()',
    ),
)


def worker_script(original: str, bootstrap: str) -> str:
    """MiniStack's Python worker script with the sandbox's prelude and error reporting."""
    if not original.startswith(bootstrap):
        raise SandboxError("the Python worker script no longer starts with the invoke-depth bootstrap")
    rest = original[len(bootstrap) :]
    for old, new in WORKER_EDITS:
        if rest.count(old) != 1:
            raise SandboxError(f"the Python worker script has {rest.count(old)} copies of {old!r}, expected 1")
        rest = rest.replace(old, new)
    return bootstrap + PRELUDE + rest


def _interpreter(runtime: str, tmp: Path) -> str:
    """The shim running ``runtime``'s interpreter; SandboxError when the mismatch policy refuses it."""
    executable = runtime_lookup.interpreter(runtime)
    if executable is None:
        raise SandboxError(
            f"runtime-mismatch = error: no local interpreter runs {runtime} ({runtime_lookup.cached(runtime).used}); "
            f"install Python {runtime.removeprefix('python')} or set runtime-mismatch = warn"
        )
    if not warm_start.enabled():
        return shim(executable, tmp / "lambda-interpreters")
    warm_start.ensure(executable, os.environ[SDK_ENV])
    return shim(executable, tmp / "lambda-interpreters", warm_start.launcher(executable))


def _checked(module: Any, attr: str, params: tuple[str, ...]) -> Callable[..., Any]:
    from harness.errors import AdaptationError

    fn = getattr(module, attr, None)
    if fn is None or tuple(inspect.signature(fn).parameters) != params:
        raise AdaptationError(
            f"runtime sandbox: {module.__name__}.{attr} is missing or changed shape "
            f"(expected ({', '.join(params)}) as in ministack {PINNED_VERSION})"
        )
    return fn  # type: ignore[no-any-return]


def sandbox_python_runtimes() -> None:
    """Run Python functions in the sandbox (see the module docstring). Raises AdaptationError if it cannot apply."""
    from harness.errors import AdaptationError

    lr = importlib.import_module("ministack.core.lambda_runtime")
    original = _checked(lr, "_detect_runtime_binary", ("runtime",))
    if getattr(original, "__harness_adapted__", False):
        return
    spawn = inspect.unwrap(getattr(getattr(lr, "Worker", None), "_spawn", None) or (lambda: None))
    if spawn is None or "_detect_runtime_binary" not in spawn.__code__.co_names:
        raise AdaptationError("runtime sandbox: Worker._spawn no longer calls _detect_runtime_binary by name")
    try:
        script = worker_script(lr._PYTHON_WORKER_SCRIPT, lr.INVOKE_DEPTH_BOOTSTRAP)
    except (AttributeError, SandboxError) as exc:
        raise AdaptationError(f"runtime sandbox: {exc} (written for ministack {PINNED_VERSION})") from None
    tmp = Path(os.environ.get("TMPDIR") or "/tmp")  # noqa: S108 - the launcher sets TMPDIR to the run folder
    os.environ[SDK_ENV] = str(build_sdk(tmp / "lambda-sdk"))
    os.environ[EMULATOR_ENV] = str(os.getpid())  # the runtimes end with this process (see the prelude)

    @functools.wraps(original)
    def detect_runtime_binary(runtime: str) -> tuple[str, str]:
        if not runtime.startswith("python"):
            return original(runtime)  # type: ignore[no-any-return]
        return _interpreter(runtime, tmp), script

    detect_runtime_binary.__harness_adapted__ = True  # type: ignore[attr-defined]
    lr._detect_runtime_binary = detect_runtime_binary
