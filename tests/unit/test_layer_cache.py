"""A Python layer extracted once per emulator (harness/emulator/layer_cache.py), without an emulator.

Each case does what MiniStack's ``Worker._spawn`` does at a cold start: a fresh
folder, the layer's zip written there as ``layer_N.zip``, an empty ``layer_N``
made beside it, then ``zipfile.ZipFile(zip).extractall(layer_N)``.
"""

from __future__ import annotations

import functools
import io
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from harness.emulator import layer_cache
from harness.emulator.layer_cache import LayerZipFile
from harness.errors import AdaptationError


def layer_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


PY_LAYER = layer_zip({"python/shared_mod/__init__.py": "VALUE = 41 + 1\n", "python/plain.py": "X = 1\n"})


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "scratch" / layer_cache.CACHE_DIR
    monkeypatch.setattr(LayerZipFile, "cache_root", root)
    return root


def cold_start(base: Path, data: bytes, n: int = 0) -> Path:
    """A runtime's start, as far as its layer: returns its ``layer_N``."""
    base.mkdir(parents=True, exist_ok=True)
    layer_dir, lzip = base / f"layer_{n}", base / f"layer_{n}.zip"
    layer_dir.mkdir()
    lzip.write_bytes(data)
    with LayerZipFile(lzip) as zf:
        zf.extractall(layer_dir)
    return layer_dir


def import_in_runtime(layer_dir: Path) -> None:
    """A runtime's import of the layer's module, as the sandbox runs it (isolated: bytecode is written)."""
    code = "import sys; sys.path.insert(0, sys.argv[1]); import shared_mod; assert shared_mod.VALUE == 42"
    subprocess.run([sys.executable, "-I", "-S", "-c", code, str(layer_dir / "python")], check=True)  # noqa: S603


def test_a_python_layer_is_extracted_once_and_its_bytecode_stays_valid(tmp_path: Path, cache: Path) -> None:
    first = cold_start(tmp_path / "runtime-1", PY_LAYER)
    assert first.is_symlink() and (first / "python" / "plain.py").read_text() == "X = 1\n"
    import_in_runtime(first)
    pyc = next((first / "python" / "shared_mod" / "__pycache__").iterdir())
    written = pyc.stat()

    second = cold_start(tmp_path / "runtime-2", PY_LAYER)  # the next cold start, after a deploy
    assert second.resolve() == first.resolve()
    import_in_runtime(second)
    again = next((second / "python" / "shared_mod" / "__pycache__").iterdir()).stat()
    # Not compiled again: Python writes a recompiled module's bytecode to a new file it renames over the old.
    assert (again.st_ino, again.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)
    assert [p.name for p in cache.iterdir()] == [first.resolve().name]


def test_a_runtimes_folder_removed_leaves_the_shared_copy(tmp_path: Path, cache: Path) -> None:
    import shutil

    layer_dir = cold_start(tmp_path / "runtime", PY_LAYER)
    shared = layer_dir.resolve()
    shutil.rmtree(tmp_path / "runtime")  # what the emulator does when a runtime ends or starts again
    assert (shared / "python" / "plain.py").is_file()


def test_another_layer_content_gets_its_own_copy(tmp_path: Path, cache: Path) -> None:
    one = cold_start(tmp_path / "r1", PY_LAYER)
    other = cold_start(tmp_path / "r2", layer_zip({"python/plain.py": "X = 2\n"}))
    assert one.resolve() != other.resolve()
    assert (other / "python" / "plain.py").read_text() == "X = 2\n"


@pytest.mark.parametrize(
    "files",
    [
        {"nodejs/node_modules/a/index.js": "module.exports = 1\n"},
        {"python/plain.py": "X = 1\n", "bin/tool": "#!/bin/sh\n"},
    ],
)
def test_other_layers_are_extracted_in_place_as_shipped(tmp_path: Path, cache: Path, files: dict[str, str]) -> None:
    layer_dir = cold_start(tmp_path / "runtime", layer_zip(files))
    assert not layer_dir.is_symlink()
    assert sorted(str(p.relative_to(layer_dir)) for p in layer_dir.rglob("*") if p.is_file()) == sorted(files)
    assert not cache.exists()


def test_the_functions_code_is_extracted_afresh(tmp_path: Path, cache: Path) -> None:
    base = tmp_path / "runtime"
    (base / "code").mkdir(parents=True)
    (base / "code.zip").write_bytes(layer_zip({"python/app.py": "X = 1\n"}))  # even one shaped like a layer
    with LayerZipFile(base / "code.zip") as zf:
        zf.extractall(base / "code")
    assert not (base / "code").is_symlink() and (base / "code" / "python" / "app.py").is_file()
    assert not cache.exists()


def test_runtimes_starting_cold_at_once_share_one_complete_copy(tmp_path: Path, cache: Path) -> None:
    many = layer_zip({f"python/m{i}.py": f"X = {i}\n" for i in range(200)})
    errors: list[BaseException] = []
    dirs: list[Path] = []

    def start(i: int) -> None:
        try:
            dirs.append(cold_start(tmp_path / f"runtime-{i}", many))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({d.resolve() for d in dirs}) == 1
    assert len(list(dirs[0].glob("python/*.py"))) == 200
    assert [p.name for p in cache.iterdir()] == [dirs[0].resolve().name]  # no staging folder left


def test_a_broken_layer_fails_as_shipped_and_leaves_no_copy(tmp_path: Path, cache: Path) -> None:
    data = bytearray(PY_LAYER)
    start = data.index(b"VALUE")
    data[start : start + 5] = b"XXXXX"  # the member's CRC no longer matches
    with pytest.raises(zipfile.BadZipFile):
        cold_start(tmp_path / "runtime", bytes(data))
    assert list(cache.iterdir()) == []


def test_the_adaptation_applies_to_the_pinned_emulator_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lr = pytest.importorskip("ministack.core.lambda_runtime")
    monkeypatch.setattr(lr, "zipfile", zipfile)  # put back after the test
    monkeypatch.setattr(LayerZipFile, "cache_root", LayerZipFile.cache_root)
    original = lr.Worker._spawn

    @functools.wraps(original)
    def timed_spawn(self: object) -> None:  # as the invocation record wraps it
        original(self)

    monkeypatch.setattr(lr.Worker, "_spawn", timed_spawn)
    layer_cache.apply(tmp_path / "cache")
    patched = lr.zipfile
    assert patched.ZipFile is LayerZipFile and LayerZipFile.cache_root == tmp_path / "cache"
    # what the runtime's start uses besides ZipFile is zipfile's own
    assert (patched.BadZipFile, patched.ZipInfo) == (zipfile.BadZipFile, zipfile.ZipInfo)
    layer_cache.apply(tmp_path / "other")
    assert lr.zipfile is patched


def test_the_adaptation_refuses_a_changed_runtime_start(monkeypatch: pytest.MonkeyPatch) -> None:
    lr = pytest.importorskip("ministack.core.lambda_runtime")

    def _spawn(self: object) -> None:
        os.makedirs("code")

    monkeypatch.setattr(lr.Worker, "_spawn", _spawn)
    with pytest.raises(AdaptationError, match="no longer extracts with zipfile"):
        layer_cache.apply()
