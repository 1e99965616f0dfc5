"""The imports made while the deploy runs: in a thread of their own, joined, and never hiding an import error."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.prewarm import AFTER_DEPLOY, Prewarm


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "pw_good.py").write_text("import threading\nIMPORTED_BY = threading.current_thread().name\n")
    (tmp_path / "pw_broken.py").write_text("raise RuntimeError('pw_broken is broken')\n")
    yield tmp_path
    for name in ("pw_good", "pw_broken"):
        sys.modules.pop(name, None)


def test_modules_are_imported_in_the_background_thread(modules: Path) -> None:
    ran: list[str] = []
    warm = Prewarm(["pw_good"], extra=[lambda: ran.append(threading.current_thread().name)]).start()
    warm.join()
    assert sys.modules["pw_good"].IMPORTED_BY == "branchstack-prewarm"
    assert ran == ["branchstack-prewarm"]
    assert warm.failed == []


def test_a_failing_import_is_recorded_and_still_fails_where_the_session_imports_it(modules: Path) -> None:
    warm = Prewarm(["pw_broken", "pw_good"], extra=[]).start()
    warm.join()
    assert warm.failed == ["pw_broken"]
    assert "pw_good" in sys.modules  # the rest went on
    with pytest.raises(RuntimeError, match="pw_broken is broken"):
        import pw_broken  # noqa: F401


def test_join_without_start_returns() -> None:
    Prewarm(["pw_never"], extra=[]).join()


def test_the_after_deploy_list_names_importable_modules() -> None:
    warm = Prewarm(AFTER_DEPLOY).start()
    warm.join()
    assert warm.failed == []


def test_hypothesis_s_constants_of_the_project_are_gathered_only_where_hypothesis_is_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hypothesis.internal.conjecture import providers

    from harness.prewarm import hypothesis_constants

    gathered: list[int] = []
    monkeypatch.setattr(providers, "_get_local_constants", lambda: gathered.append(len(sys.modules)))
    hypothesis_constants()
    assert gathered == [len(sys.modules)]  # what hypothesis's plugin would gather when collection ends
    monkeypatch.delitem(sys.modules, "hypothesis")
    hypothesis_constants()  # a project without hypothesis: it is not imported for this
    assert "hypothesis" not in sys.modules and len(gathered) == 1
