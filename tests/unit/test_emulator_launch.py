"""The emulator process defers the imports only its container paths use (harness.emulator.launch)."""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.emulator import launch

NAME = "harness_test_heavy_sdk"


@pytest.fixture
def heavy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A package whose import is recorded in ``sys.harness_test_imports``, with a submodule."""
    pkg = tmp_path / NAME
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        textwrap.dedent(
            """
            import sys
            sys.harness_test_imports.append(__name__)
            def from_env():
                return "client"
            """
        )
    )
    (pkg / "errors.py").write_text("class ImageNotFound(Exception):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "harness_test_imports", [], raising=False)
    yield pkg
    for mod in [m for m in sys.modules if m == NAME or m.startswith(NAME + ".")]:
        del sys.modules[mod]


def test_a_deferred_module_is_imported_at_its_first_attribute_read(heavy: Path) -> None:
    assert launch.defer_imports((NAME,)) == [NAME]
    # What MiniStack's lambda_svc does at its import: import_module reads __spec__, which loads nothing.
    lib = importlib.import_module(NAME)
    assert sys.harness_test_imports == []  # type: ignore[attr-defined]
    assert lib.from_env() == "client"
    assert sys.harness_test_imports == [NAME]  # type: ignore[attr-defined]
    assert sys.modules[NAME] is not lib and sys.modules[NAME].from_env is lib.from_env
    lib.from_env()
    assert sys.harness_test_imports == [NAME]  # type: ignore[attr-defined]  # once


def test_a_stand_in_dropped_from_sys_modules_still_loads_the_real_module(heavy: Path) -> None:
    launch.defer_imports((NAME,))
    lib = sys.modules.pop(NAME)
    assert lib.from_env() == "client" and sys.modules[NAME].from_env is lib.from_env


def test_a_submodule_import_loads_the_real_package_first(heavy: Path) -> None:
    launch.defer_imports((NAME,))
    errors = importlib.import_module(f"{NAME}.errors")
    assert sys.harness_test_imports == [NAME]  # type: ignore[attr-defined]
    assert issubclass(errors.ImageNotFound, Exception)


def test_a_failing_import_fails_where_it_is_used_and_again_on_the_next_read(heavy: Path) -> None:
    (heavy / "__init__.py").write_text("raise RuntimeError('broken SDK')\n")
    launch.defer_imports((NAME,))
    lib = importlib.import_module(NAME)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="broken SDK"):
            lib.from_env  # noqa: B018 - the read is the test


def test_an_absent_or_already_imported_module_is_left_as_it_is() -> None:
    assert launch.defer_imports(("harness_test_no_such_module",)) == []
    with pytest.raises(ImportError):
        importlib.import_module("harness_test_no_such_module")
    assert launch.defer_imports(("json",)) == []
    assert sys.modules["json"].dumps({}) == "{}"


def test_the_pinned_emulators_boot_imports_none_of_the_deferred_modules(tmp_path: Path) -> None:
    """The saving holds for the pinned MiniStack: with every adaptation applied (they import its Lambda
    service and CloudFormation's provisioners, which import every service), nothing deferred is loaded."""
    code = (
        "import sys; from harness.emulator import launch, adapt; deferred = launch.defer_imports(); "
        "adapt.apply_all(); from ministack.services import lambda_svc; "
        "print(len(deferred), lambda_svc._docker_available, 'requests' in sys.modules, "
        "sorted(n for n in deferred if not isinstance(sys.modules[n], launch._Deferred)))"
    )
    # As the launcher does (harness.targets.local.child_env): what the adaptations write (the runtime
    # sandbox's SDK links) goes into the test's folder, never the machine's temporary folder.
    env = {**os.environ, "TMPDIR": str(tmp_path), "STATE_DIR": str(tmp_path / "state")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, env=env)
    assert out.stdout.split() == [str(len(launch.DEFERRED)), "True", "False", "[]"], out.stderr
    assert (tmp_path / "lambda-sdk").is_dir()  # it did write, and there


def test_a_stand_in_forwards_writes_and_sees_the_real_modules_rebinding(heavy: Path) -> None:
    """A service's reset rebinds its module's globals: what holds the stand-in sees the new ones."""
    (heavy / "__init__.py").write_text(
        "import sys\nsys.harness_test_imports.append(__name__)\nstate = {}\n"
        "def reset():\n    global state\n    state = {}\n"
    )
    launch.defer_imports((NAME,))
    held = sys.modules[NAME]
    held.state["pool"] = 1
    real = sys.modules[NAME]
    assert real is not held and real.state == {"pool": 1}
    held.reset()
    assert held.state == {} and held.state is real.state
    held.extra = "patched"  # a monkeypatch through the stand-in reaches the real module
    assert real.extra == "patched"
    del held.extra
    assert not hasattr(real, "extra")


def test_a_deferred_submodule_is_its_packages_attribute_until_imported(heavy: Path) -> None:
    launch.defer_imports((f"{NAME}.errors",))
    package = sys.modules[NAME]
    assert isinstance(package.errors, launch._Deferred)
    assert issubclass(package.errors.ImageNotFound, Exception)
    assert not isinstance(package.errors, launch._Deferred)  # the import set the real one


def test_the_first_requests_imports_are_made_once_the_emulator_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    from ministack.core import responses

    loaded: list[str] = []
    monkeypatch.setattr(responses, "_service_model", loaded.append)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        waiting = launch.warm_first_request(port, timeout=30)
        waiting.join(0.2)
        assert waiting.is_alive() and loaded == []  # not listening yet: nothing imported
        server.listen()
        waiting.join(30)
    assert not waiting.is_alive() and loaded == ["cloudformation"]


def test_an_emulator_that_never_listens_is_not_warmed(monkeypatch: pytest.MonkeyPatch) -> None:
    from ministack.core import responses

    loaded: list[str] = []
    monkeypatch.setattr(responses, "_service_model", loaded.append)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        launch.warm_first_request(unused.getsockname()[1], timeout=0.1).join(5)
    assert loaded == []
