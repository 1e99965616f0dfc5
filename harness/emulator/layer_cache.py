"""A Python layer is extracted once per emulator, not at every cold start, so its bytecode stays valid.

MiniStack 1.5.33 starts each Lambda runtime (``Worker._spawn``) in a fresh
folder: it writes the function's code zip and each layer's zip there and
extracts them (``code/``, ``layer_0/``, ...). ``zipfile`` gives every
extracted file the time of the extraction, so the compiled modules a layer
ships (pip writes ``__pycache__``) never match their sources, and the runtime
compiles every layer module it imports again, then writes the bytecode into a
folder deleted with the runtime. For the reference stack's X-Ray SDK layer
(256 files) each cold start of a function after a deploy spent about 20 ms of
the emulator's CPU extracting it and 40-60 ms of the function's compiling it
(on an idle machine; several times that on a loaded one).

The adaptation: a layer whose files are all under ``python/`` (a Python
layer: what the runtime sandbox puts on ``sys.path``) is extracted once per
content (the SHA-256 of its zip) into ``lambda-layers/`` of the emulator's
scratch folder, and the runtime's ``layer_N`` is a symbolic link to that
copy. The runtime still starts cold: a new process imports every module from
disk; its own code is extracted afresh as before (only layers are shared, and
only byte-identical ones), and the bytecode Python writes beside a layer's
sources at one cold start is valid at the next, as in any installed package.
Other layers (Node.js, ``bin/``, ``lib/``) and the code zip are extracted as
before. The copies go with the scratch folder when the emulator stops.

As on AWS, where ``/opt`` is read-only, a function should not write into its
layer: here such a write would be seen by later runtimes of any function with
the same layer.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import re
import shutil
import tempfile
import types
import zipfile
from pathlib import Path
from typing import Any, ClassVar

from harness.emulator import PINNED_VERSION, guard

NAME = "lambda-python-layers-extracted-once"
CACHE_DIR = "lambda-layers"
_LAYER_ZIP = re.compile(r"layer_\d+\.zip")


def python_layer(names: list[str]) -> bool:
    """Whether a layer's members are all under ``python/`` (a Python layer)."""
    return bool(names) and all(n.startswith("python/") for n in names)


class LayerZipFile(zipfile.ZipFile):
    """``zipfile.ZipFile`` whose ``extractall`` of a runtime's Python layer links the layer's one shared copy."""

    cache_root: ClassVar[Path] = Path(tempfile.gettempdir()) / CACHE_DIR

    def extractall(self, path: Any = None, members: Any = None, pwd: bytes | None = None) -> None:
        if not self._a_runtimes_python_layer(path, members, pwd):
            return super().extractall(path, members, pwd)
        layer_dir = Path(path)
        shared = self._shared_copy()
        layer_dir.rmdir()  # empty: made just before by the runtime's start
        layer_dir.symlink_to(shared, target_is_directory=True)
        return None

    def _a_runtimes_python_layer(self, path: Any, members: Any, pwd: bytes | None) -> bool:
        """``layer_N.zip`` extracted whole into the empty ``layer_N`` beside it, and a Python layer."""
        name = self.filename
        if path is None or members is not None or pwd is not None or not isinstance(name, str):
            return False
        source = Path(name)
        if not _LAYER_ZIP.fullmatch(source.name) or Path(path) != source.with_suffix(""):
            return False
        with contextlib.suppress(OSError):
            if not os.listdir(path):
                return python_layer(self.namelist())
        return False

    def _shared_copy(self) -> Path:
        """The layer's extracted copy for its content, made once (atomically: runtimes may start at once)."""
        root = type(self).cache_root
        digest = hashlib.sha256(Path(str(self.filename)).read_bytes()).hexdigest()
        shared = root / digest
        if shared.is_dir():
            return shared
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{digest[:16]}-", dir=root))
        try:
            super().extractall(staging)
            staging.chmod(0o755)  # as the runtime's own layer folder (mkdtemp makes it 0700)
            try:
                staging.rename(shared)
            except OSError:
                if not shared.is_dir():  # not a runtime that extracted the same layer first
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return shared


class _ZipfileModule(types.ModuleType):
    """``zipfile`` as the runtime module sees it: everything as is, but ``ZipFile`` is :class:`LayerZipFile`."""

    ZipFile = LayerZipFile

    def __getattr__(self, name: str) -> Any:
        return getattr(zipfile, name)


def apply(cache_root: Path | None = None) -> None:
    """Extract a Python layer once per emulator (see the module docstring). Raises AdaptationError if it cannot."""
    lr = guard.module("ministack.core.lambda_runtime", NAME)
    worker = getattr(lr, "Worker", None)
    spawn = getattr(worker, "_spawn", None)
    code = getattr(inspect.unwrap(spawn), "__code__", None) if callable(spawn) else None  # its original, if wrapped
    if code is None or not {"zipfile", "ZipFile", "extractall"} <= set(code.co_names):
        raise guard.AdaptationError(
            f"{NAME}: Worker._spawn no longer extracts with zipfile.ZipFile(...).extractall "
            f"(written for ministack {PINNED_VERSION})"
        )
    if not {"layer_", ".zip"} <= {c for c in code.co_consts if isinstance(c, str)}:
        raise guard.AdaptationError(
            f"{NAME}: Worker._spawn no longer extracts layers to layer_N beside layer_N.zip "
            f"(written for ministack {PINNED_VERSION})"
        )
    current = getattr(lr, "zipfile", None)
    if isinstance(current, _ZipfileModule):
        return  # applied already in this process
    if current is not zipfile:
        raise guard.AdaptationError(f"{NAME}: ministack.core.lambda_runtime.zipfile is not the zipfile module")
    tmp = Path(os.environ.get("TMPDIR") or tempfile.gettempdir())  # the launcher sets TMPDIR to the run folder
    LayerZipFile.cache_root = cache_root or tmp / CACHE_DIR
    lr.zipfile = _ZipfileModule("zipfile", zipfile.__doc__)
