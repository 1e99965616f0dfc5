"""Running the measured commands: one at a time, timed, logged, stopped by pid.

Every command runs in its own session (process group), with its output in a
log file. On a timeout or an interrupt the group is sent SIGTERM (the harness
turns it into an orderly teardown), then SIGKILL; only processes this module
started are ever signalled.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VENV_BIN = Path(__file__).resolve().parent.parent / ".venv" / "bin"

# Outer variables that would steer the measured runs (settings, CI branch
# detection, accounts, an outer pytest).
_SCRUB_PREFIXES = ("HARNESS_", "AWS_", "CIRCLE", "GITHUB_", "CODEBUILD_", "CI_", "GITLAB_", "PYTEST_", "BENCH_")
# `make bench`'s own make variables: a measured `make test` runs as a developer starts it, not as a
# sub-make (which would print "Entering directory" lines into every nested make's output).
_SCRUB_EXACT = ("CI", "STAGE", "STACK_NAME", "PYTEST_ADDOPTS", "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")


def clean_env(extra: Mapping[str, str] | None = None, *, hypothesis_dir: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB_PREFIXES) and k not in _SCRUB_EXACT}
    if hypothesis_dir is not None:
        # The property scenarios' example database: private to the benchmark, so a
        # failure here is not replayed in everyone's next run (and theirs not here).
        env["HYPOTHESIS_STORAGE_DIRECTORY"] = str(hypothesis_dir)
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass
class Run:
    argv: list[str]
    returncode: int
    wall: float
    cpu: float  # user + system seconds of the command's whole (reaped) process tree
    log: Path
    load: tuple[float, float, float]  # load average when it started

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def text(self) -> str:
        return self.log.read_text(errors="replace")


class Interrupted(Exception):
    pass


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _stop_group(proc: subprocess.Popen[Any], grace: float = 20.0) -> None:
    """SIGTERM to the command's own process group, then SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)  # the group this module created (start_new_session)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log: Path,
    timeout: float,
) -> Run:
    log.parent.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    cpu0 = _children_cpu()
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(  # noqa: S603 - argv list, never a shell
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop_group(proc)
            code = -999
        except KeyboardInterrupt:
            _stop_group(proc)
            raise
        wall = time.perf_counter() - started
    return Run(list(argv), code, wall, _children_cpu() - cpu0, log, load)
