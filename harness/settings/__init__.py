"""One table of settings.

Every setting the harness reads is defined exactly once, as one short row in
:data:`~harness.settings.table.SETTINGS`: its name, default, converter and help;
its command-line flag, its key under ``[tool.harness]`` in ``pyproject.toml``
and its environment variable follow from the name. Everything else is derived
from that table:

* ``convert``: the converters that check and normalise a raw value;
* ``table``: the rows, the choices (Enums such as :class:`Target`) and the frozen :class:`Settings`;
* ``resolve``: :func:`resolve` (command line > environment > ``[tool.harness]`` > default);
* ``options``: the pytest and ``harness`` CLI options;
* ``render``: the README's Markdown table and ``harness settings``.

Commands (``deploy-command``, ``destroy-command``) are argv lists and are never
handed to a shell: in ``pyproject.toml`` they must be written as a list of
strings; on the command line or in the environment they are split with
:func:`shlex.split`.
"""

from __future__ import annotations

from harness.errors import Invalid
from harness.settings.convert import PYPROJECT, TABLE
from harness.settings.options import add_argparse_options, add_pytest_options
from harness.settings.resolve import EXPORTED_ENV, default_app, find_root, resolve
from harness.settings.table import (
    SETTINGS,
    DeployKind,
    Retained,
    Setting,
    Settings,
    StackMode,
    Target,
    setting_by_name,
)

__all__ = [
    "EXPORTED_ENV",
    "DeployKind",
    "PYPROJECT",
    "Retained",
    "SETTINGS",
    "TABLE",
    "Invalid",
    "Setting",
    "Settings",
    "StackMode",
    "Target",
    "add_argparse_options",
    "add_pytest_options",
    "default_app",
    "find_root",
    "resolve",
    "setting_by_name",
]
