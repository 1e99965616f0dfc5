"""Which local interpreter runs a function's declared Lambda runtime.

AWS runs a function declaring ``python3.9`` on Python 3.9. The emulator
(MiniStack 1.5.33) runs every Python function on its own interpreter, so a
function could use syntax or a standard library its runtime does not have.
:func:`resolve` finds a local ``pythonX.Y`` for a declared runtime: on
``PATH`` (``shutil.which("python3.9")``), then in pyenv's versions
(``$PYENV_ROOT/versions/3.9.*/bin``), each candidate asked for its version
(a pyenv shim answers for whichever version is active, not the one named).
When none is found the emulator's own interpreter runs the function, and the
run says so (``runtime-mismatch = warn``) or refuses it (``= error``).

``nodejs*`` functions run on the ``node`` found on ``PATH``, compared by major
version. ``provided*`` functions run their own bootstrap. Any other runtime
(java, dotnet, ruby) cannot run on the embedded emulator: without Docker
MiniStack answers its invocations with a canned mock, so it is reported as
unsupported, whatever the setting.

Pure functions of their inputs (``path``, ``pyenv_root``, ``probe``), so the
same answer is given in the harness (header, report) and in the emulator
process (which spawns the runtime), and tests control the lookup.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

PYTHON_RE = re.compile(r"^python(\d+)\.(\d+)$")
NODE_RE = re.compile(r"^nodejs(\d+)\.x$")
#: Environment variables the lookup reads (the emulator passes them on).
LOOKUP_ENV = ("PATH", "PYENV_ROOT")
#: Test-only override of the search path for interpreters (``PATH`` otherwise).
SEARCH_PATH_ENV = "HARNESS_RUNTIME_SEARCH_PATH"

Probe = Callable[[str], str | None]


@dataclass(frozen=True)
class Resolution:
    """How a declared runtime runs locally."""

    declared: str
    executable: str | None  # None: not runnable here at all
    used: str  # what runs it, e.g. "python3.9 (/usr/bin/python3.9)" or "Python 3.11.7 (emulator's)"
    exact: bool  # the declared version runs it
    supported: bool = True

    @property
    def mismatch(self) -> bool:
        return self.supported and not self.exact


def probe_version(executable: str) -> str | None:
    """``X.Y.Z`` of a Python or node executable (None if it does not run).

    For Python, followed by the interpreter's own path (``X.Y.Z /real/python3.Y``):
    a pyenv shim answers for the interpreter it would run, and running the
    interpreter itself spares every cold start the shim's own processes.
    """
    code = "import sys; print('%d.%d.%d' % sys.version_info[:3], sys.executable)"
    node = Path(executable).name.startswith("node")
    argv = [executable, "--version"] if node else [executable, "-c", code]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)  # noqa: S603
    except (OSError, subprocess.SubprocessError):
        return None
    text = out.stdout.strip().lstrip("v")
    version = text.split(" ", 1)[0]
    return text if out.returncode == 0 and re.fullmatch(r"\d+\.\d+\.\d+", version) else None


def _candidates(name: str, version: tuple[int, int], path: str | None, pyenv_root: str | None) -> list[str]:
    found: list[str] = []
    on_path = shutil.which(name, path=path)
    if on_path:
        found.append(on_path)
    root = Path(pyenv_root) if pyenv_root else None
    if root is not None and (root / "versions").is_dir():
        prefix = f"{version[0]}.{version[1]}."
        for entry in sorted((root / "versions").iterdir(), reverse=True):
            exe = entry / "bin" / name
            if entry.name.startswith(prefix) and exe.is_file() and os.access(exe, os.X_OK):
                found.append(str(exe))
    return found


def resolve(
    runtime: str,
    *,
    env: Mapping[str, str] | None = None,
    probe: Probe = probe_version,
    fallback: str = sys.executable,
) -> Resolution:
    """The local executable for ``runtime`` (see the module docstring)."""
    env = os.environ if env is None else env
    path = env.get(SEARCH_PATH_ENV) or env.get("PATH")
    pyenv_root = env.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    if SEARCH_PATH_ENV in env:
        pyenv_root = None  # a test-controlled lookup sees only its search path
    py = PYTHON_RE.match(runtime)
    if py:
        version = (int(py.group(1)), int(py.group(2)))
        here = f"Python {'.'.join(map(str, sys.version_info[:3]))} (the emulator's, {fallback})"
        for candidate in _candidates(f"python{version[0]}.{version[1]}", version, path, pyenv_root):
            answer = probe(candidate)
            found, _, real = (answer or "").partition(" ")
            exe = real or candidate
            if found and tuple(int(p) for p in found.split(".")[:2]) == version:
                gap = sdk_gap(version)
                if gap is not None:
                    return Resolution(runtime, fallback, f"{here}: Python {found} at {exe} cannot run {gap}", False)
                return Resolution(runtime, exe, f"Python {found} ({exe})", exact=True)
        return Resolution(runtime, fallback, f"{here}: no python{py.group(1)}.{py.group(2)} found", exact=False)
    node = NODE_RE.match(runtime)
    if node:
        exe = shutil.which("node", path=path)
        found = probe(exe) if exe else None
        if exe is None or found is None:
            return Resolution(runtime, None, "no node on PATH", exact=False, supported=False)
        return Resolution(runtime, exe, f"node {found} ({exe})", exact=found.split(".")[0] == node.group(1))
    if runtime.startswith("provided"):
        return Resolution(runtime, "bootstrap", "the function's own bootstrap", exact=True)
    return Resolution(
        runtime, None, "it needs Docker, which the embedded emulator does not use", exact=False, supported=False
    )


#: The AWS runtime's SDK as the sandbox provides it: import names and their distributions.
SDK_MODULES = {
    "boto3": "boto3",
    "botocore": "botocore",
    "s3transfer": "s3transfer",
    "jmespath": "jmespath",
    "dateutil": "python-dateutil",
    "urllib3": "urllib3",
    "six": "six",
}


@functools.lru_cache(maxsize=16)
def sdk_gap(version: tuple[int, int]) -> str | None:
    """None if the SDK runs on Python ``version``, else why not (from the packages' ``Requires-Python``)."""
    from packaging.specifiers import SpecifierSet

    for dist in SDK_MODULES.values():
        try:
            spec = metadata.metadata(dist).get("Requires-Python") or ""
        except metadata.PackageNotFoundError:
            continue
        if spec and not SpecifierSet(spec).contains(f"{version[0]}.{version[1]}.0", prereleases=True):
            return f"the runtime SDK ({dist} {metadata.version(dist)} needs Python {spec.strip()})"
    return None


@functools.lru_cache(maxsize=64)
def cached(runtime: str) -> Resolution:
    """:func:`resolve` with this process's environment, once per runtime."""
    return resolve(runtime)


#: In the emulator's environment: the folder holding the SDK (``SDK_MODULES``) every Python runtime is given.
SDK_ENV = "HARNESS_LAMBDA_SDK"
#: In the emulator's environment: the run's ``runtime-mismatch`` setting (``warn`` or ``error``).
MISMATCH_ENV = "HARNESS_RUNTIME_MISMATCH"


def interpreter(runtime: str) -> str | None:
    """The interpreter a Python ``runtime`` runs on in this emulator; None where the mismatch policy refuses it."""
    res = cached(runtime)
    if not res.exact and os.environ.get(MISMATCH_ENV) == "error":
        return None
    return res.executable or sys.executable


@dataclass(frozen=True)
class FunctionRuntime:
    """A deployed function and how its runtime runs here."""

    function: str
    resolution: Resolution

    def line(self) -> str:
        r = self.resolution
        if not r.supported:
            return f"{self.function}: runtime {r.declared} cannot run here: {r.used}"
        return f"{self.function}: declares {r.declared}, runs on {r.used}"


def check_functions(
    functions: Iterable[tuple[str, str]], resolver: Callable[[str], Resolution] = cached
) -> list[FunctionRuntime]:
    """(function, runtime) pairs whose runtime does not run as declared: mismatched or unsupported."""
    out = []
    for name, runtime in sorted(functions):
        res = resolver(runtime)
        if not res.exact:
            out.append(FunctionRuntime(name, res))
    return out
