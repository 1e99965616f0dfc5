"""Every setting as a command-line option: in pytest's ``branchstack`` group and on the ``harness`` CLI."""

from __future__ import annotations

import argparse
from typing import Any, Protocol

from harness.settings.convert import TABLE
from harness.settings.table import SETTINGS, Setting


class _OptionAdder(Protocol):
    def __call__(self, *names: str, **kwargs: Any) -> object: ...


def _help(setting: Setting) -> str:
    text = f"{setting.help} [env {setting.env}; {TABLE} {setting.key}; default: {setting.describe_default()}]"
    return text.replace("%", "%%")


def _add_all(add: _OptionAdder) -> None:
    for setting in SETTINGS:
        kwargs: dict[str, Any] = {"dest": setting.name, "default": None, "help": _help(setting)}
        if setting.switch:
            kwargs["action"] = "store_true"
        else:
            kwargs["action"] = "store"
            kwargs["metavar"] = setting.shown_metavar()
        add(setting.flag, **kwargs)


class _PytestParser(Protocol):
    def getgroup(self, name: str, description: str = ..., after: str | None = ...) -> Any: ...


def add_pytest_options(parser: _PytestParser) -> None:
    """Register every setting's flag in the pytest option group ``branchstack``.

    All defaults are ``None``, so :func:`resolve` can tell "not given" apart.
    """
    group = parser.getgroup("branchstack", "branch stacks (harness settings)")
    _add_all(group.addoption)


def add_argparse_options(parser: argparse.ArgumentParser) -> None:
    """Register every setting's flag on the ``harness`` CLI, with the same dests."""
    group = parser.add_argument_group("branchstack", "harness settings")
    _add_all(group.add_argument)
