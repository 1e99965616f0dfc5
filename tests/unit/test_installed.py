"""The installed distributions read once (harness.installed): the same answers, read again once sys.path changes."""

from __future__ import annotations

import importlib.metadata as md
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import installed


@pytest.fixture
def remembered() -> Iterator[None]:
    installed.remember()
    try:
        yield
    finally:
        installed.forget()


def _names(dists: object) -> list[str]:
    return sorted(str(d.metadata["Name"]) for d in dists)  # type: ignore[attr-defined]


def test_the_same_distributions_parsed_once(remembered: None) -> None:
    first, second = list(md.distributions()), list(md.distributions())

    assert _names(first) == _names(installed._original())  # type: ignore[misc]  # what a fresh read finds
    assert [id(d) for d in first] == [id(d) for d in second]
    pytest_dist = next(d for d in first if d.metadata["Name"] == "pytest")
    assert pytest_dist.metadata is pytest_dist.metadata and pytest_dist.files is pytest_dist.files
    assert "pytest11" in {ep.group for d in first for ep in d.entry_points}  # the plugins pytest loads


def test_a_package_installed_later_is_read_afresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    installed.remember()
    try:
        kept = {id(d) for d in md.distributions()}
        assert kept == {id(d) for d in md.distributions()}

        info = site / "newpkg-1.0.dist-info"  # installed into a folder of sys.path: its mtime changes
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: newpkg\nVersion: 1.0\n")
        assert "newpkg" in _names(md.distributions())
        assert not kept & {id(d) for d in md.distributions()}
    finally:
        installed.forget()


def test_a_new_folder_on_sys_path_is_read_afresh(
    remembered: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = {id(d) for d in md.distributions()}
    monkeypatch.syspath_prepend(str(tmp_path))
    assert not kept & {id(d) for d in md.distributions()}


def test_a_filtered_call_reads_afresh_and_forget_restores_importlib() -> None:
    original = md.distributions
    installed.remember()
    try:
        kept = {id(d) for d in md.distributions()}
        assert not kept & {id(d) for d in md.distributions(name="pytest")}
    finally:
        installed.forget()
    assert md.distributions is original
