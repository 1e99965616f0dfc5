"""Free until needed: what the plugin costs a run that needs no stack.

Two measurements, each taken in the round's own interleaved pairs:

* the plugin's own import, with pytest imported first (as in a real run):
  ``time.perf_counter`` around ``import harness.pytest.plugin`` in a fresh
  interpreter;
* a one-test unit run, ``pytest tests/unit/test_naming.py::<one test>``, with
  the plugin and with ``-p no:branchstack``, alternating which goes first;
  wall time and the child's CPU time (user + system).

Both measure what a user's install gets: compiled modules cached. ``pip
install`` of the wheel compiles the package's bytecode, and pytest caches the
test modules it rewrites; here the package is installed in editable mode, so
each round first compiles it (``compileall``, untimed) and runs the pair once
untimed, and the measured processes may write bytecode
(``PYTHONDONTWRITEBYTECODE`` is removed from their environment).
"""

from __future__ import annotations

import resource
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

IMPORT_SNIPPET = (
    "import time, pytest; t, c = time.perf_counter(), time.process_time(); import harness.pytest.plugin; "
    "print(time.perf_counter() - t, time.process_time() - c)"
)
ONE_TEST = "tests/unit/test_naming.py::test_leading_digit_gets_b_prefix"
#: Pairs per round: the with/without gap (about 30 ms of 0.8 s) is smaller than one pair's spread on a
#: shared machine, so the median needs a few of them.
PAIRS = 5


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _timed(argv: list[str], cwd: Path, env: Mapping[str, str]) -> tuple[float, float, str]:
    """(wall, CPU of the child, stdout) of one command; raises on failure."""
    cpu0 = _cpu()
    t = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=300, check=False)  # noqa: S603
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stdout[-500:]} {done.stderr[-500:]}")
    return wall, _cpu() - cpu0, done.stdout


def plugin_import(python: str, cwd: Path, env: Mapping[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of ``import harness.pytest.plugin`` after ``import pytest``, in a fresh interpreter.

    On a loaded machine the wall includes waiting for a CPU; the CPU time does not.
    """
    wall, cpu = _timed([python, "-c", IMPORT_SNIPPET], cwd, env)[2].strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def one_test_pair(python: str, cwd: Path, env: Mapping[str, str], first_with: bool) -> dict[str, float]:
    """One pair: the one-test run with and without the plugin, in the order given."""
    base = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", ONE_TEST]
    out: dict[str, float] = {}
    for which in ("with", "without") if first_with else ("without", "with"):
        argv = base if which == "with" else [*base, "-p", "no:branchstack"]
        wall, cpu, _ = _timed(argv, cwd, env)
        out[f"{which}_wall"], out[f"{which}_cpu"] = wall, cpu
    return out


def installed_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` where Python may cache compiled modules, as on a machine that does not turn that off."""
    return {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}


def compile_once(python: str, cwd: Path, env: Mapping[str, str]) -> None:
    """What an install leaves: the package compiled, pytest's rewritten test module cached (untimed)."""
    _timed([python, "-m", "compileall", "-q", "harness"], cwd, env)
    one_test_pair(python, cwd, env, first_with=True)


def measure_round(bench: Any, k: int, pairs: int = PAIRS) -> None:
    """``pairs`` interleaved pairs of each, into the bench's samples (medians of the round's pairs)."""
    from benchmarks.runner import PYTHON, ROOT, clean_env

    env = installed_env(clean_env())
    imports: list[tuple[float, float]] = []
    ratios_wall: list[float] = []
    ratios_cpu: list[float] = []
    try:
        compile_once(PYTHON, ROOT, env)
        for i in range(pairs):
            imports.append(plugin_import(PYTHON, ROOT, env))
            p = one_test_pair(PYTHON, ROOT, env, first_with=(k + i) % 2 == 0)
            bench.res.add("startup.with_wall", p["with_wall"])
            bench.res.add("startup.without_wall", p["without_wall"])
            ratios_wall.append(p["with_wall"] / p["without_wall"])
            ratios_cpu.append(p["with_cpu"] / p["without_cpu"])
    except (RuntimeError, subprocess.SubprocessError) as exc:
        bench.res.failures.append(f"start-up round {k}: {exc}")
        return
    for wall, cpu in imports:
        bench.res.add("startup.plugin_import", wall)
        bench.res.add("startup.plugin_import_cpu", cpu)
    for v in ratios_wall:
        bench.res.add("startup.ratio_wall", v)
    for v in ratios_cpu:
        bench.res.add("startup.ratio_cpu", v)
    median = sorted(imports)[len(imports) // 2]
    bench.say(f"  start-up: {pairs} pairs, import median {median[0] * 1000:.0f} ms ({median[1] * 1000:.0f} ms CPU)")


def _python(python: str, args: list[str], cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """One untimed profiling run of ``python args`` with compiled modules cached; never raises on its exit code."""
    return subprocess.run(  # noqa: S603
        [python, *args], cwd=cwd, env=installed_env(env), capture_output=True, text=True, timeout=120, check=False
    )


def import_profile(python: str, cwd: Path, env: Mapping[str, str]) -> dict[str, float]:
    """Cumulative ms of what ``import harness.pytest.plugin`` imports directly, the slowest first (``-X importtime``, pytest imported first)."""
    done = _python(python, ["-X", "importtime", "-c", "import pytest; import harness.pytest.plugin"], cwd, env)
    before_plugin = True
    found: dict[str, float] = {}
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[0].startswith("import time:"):
            continue
        name = parts[2].rstrip()
        mod = name.strip()
        if before_plugin and mod == "pytest":
            before_plugin = False
            continue
        if before_plugin:
            continue
        try:
            cumulative = int(parts[1]) / 1000
        except ValueError:
            continue
        depth = (len(name) - len(name.lstrip()) - 1) // 2  # 0: the plugin itself; 1: what it imports
        if depth == 1:
            found[mod] = found.get(mod, 0.0) + cumulative
    return dict(sorted(found.items(), key=lambda kv: -kv[1])[:12])


HOOKS_SNIPPET = r"""
import cProfile, pstats, sys, pytest
prof = cProfile.Profile()
prof.enable()
try:
    pytest.main(["-q", "-p", "no:cacheprovider", sys.argv[1]])
finally:
    prof.disable()
stats = pstats.Stats(prof)
own = {}
for (path, line, name), (_, _, _, cum, callers) in stats.stats.items():
    if "/harness/" not in path:
        continue
    where = path.rsplit("/harness/", 1)[1]
    if name == "<module>" and where != "pytest/plugin.py":
        continue  # imported by the plugin module or by a hook: inside their time already
    if name != "<module>" and not any("pluggy" in c[0] or "_pytest" in c[0] for c in callers):
        continue  # only what pytest calls (hooks, fixtures), not what they or the test call
    key = f"harness/{where}:{name}" if name != "<module>" else f"import harness/{where}"
    own[key] = own.get(key, 0.0) + cum
for key, cum in sorted(own.items(), key=lambda kv: -kv[1])[:10]:
    print(f"branchstack-profile {cum:.6f} {key}")
"""


def hook_profile(python: str, cwd: Path, env: Mapping[str, str]) -> list[tuple[str, float]]:
    """Where the plugin's time goes in the one-test run: its module's import and each hook or fixture pytest
    calls (with what it imports), cumulative ms under cProfile (its own overhead included), the largest first."""
    done = _python(python, ["-c", HOOKS_SNIPPET, ONE_TEST], cwd, env)
    rows = []
    for line in done.stdout.splitlines():
        tag, sec, key = (line.split(" ", 2) + ["", ""])[:3]
        if tag == "branchstack-profile":
            rows.append((key, float(sec) * 1000))
    return rows
