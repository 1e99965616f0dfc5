"""The cases of the fault matrix, one module each (``NUMBER``, ``FAULT``, ``RUNS``, ``QUICK_RUNS``, ``run``)."""

from __future__ import annotations

import importlib
from types import ModuleType

MODULES = (
    "c01_exceptions",
    "c02_sigint",
    "c03_sigterm",
    "c04_sigkill",
    "c05_cfn_failures",
    "c06_emulator_death",
    "c07_bad_input",
    "c08_secrets",
    "c09_network",
    "c10_transient",
    "c11_load",
    "c12_sigkill_local",
    "c13_signal_bursts",
    "c14_kept_ownership",
    "c15_ignored_stack_name",
)


def load(number: int) -> ModuleType:
    return importlib.import_module(f"reliability.cases.{MODULES[number - 1]}")
