"""A pytest plugin (``-p benchmarks.probe``) that records where a session's time goes.

It only observes: wall-clock stamps at process start, configure, session
start, collection, first test start, each test end, session finish and
unconfigure, plus the harness lifecycle's own
``timings`` and ``deploy_skipped`` (read from the plugin's stash, never
changed). The record is written as JSON to ``$BENCH_PROBE_OUT`` at
unconfigure. Under pytest-xdist only the controller writes (workers' reports
reach it through ``pytest_runtest_logstart`` / ``logfinish``).

With ``$BENCH_PROFILE`` set (a path prefix) and pyinstrument installed, the
scenario phase (first test start to last test end, controller only, so use it
with ``-n 0``) is profiled and written as ``<prefix>.txt`` and ``<prefix>.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

_state: dict[str, Any] = {
    "configure": None,
    "sessionstart": None,
    "first_start": None,
    "last_end": None,
    "sessionfinish": None,
    "unconfigure": None,
    "tests": 0,
    "outcomes": {},
    "call_seconds": 0.0,
    "setup_seconds": 0.0,
    "teardown_seconds": 0.0,
    "per_test": {},
    "ends": [],
    "collection_start": None,
    "collection_end": None,
    "lines": [],  # (time, text) of the harness's own output lines ("branchstack: ...")
    "cpu_first": None,  # CPU seconds at the first test start: {"pytest": ..., "emulator": ...}
    "cpu_end": None,  # ... and at session finish (right after the last test)
    # Seconds in the setup and teardown of the tests' own fixtures (defined outside the harness and
    # pytest, e.g. one that creates a function), while a test runs: the tests' calls, not the harness's.
    "test_fixtures": 0.0,
}
_HARNESS_DIR = str(Path(__file__).resolve().parent.parent / "harness")
_torn: dict[int, float] = {}  # id(fixturedef) -> when its teardown began
_in_test: list[bool] = [False]
_profiler: Any = None
_CONFIG: list[pytest.Config] = []


def _worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    _state["configure"] = time.time()
    _CONFIG[:] = [config]
    _state["process_start"] = _process_start()


def _process_start() -> float | None:
    """When this process started, on the wall clock, to the kernel's tick (10 ms).

    psutil's ``create_time()`` adds the start's ticks to the boot time of
    ``/proc/stat``, which is whole seconds: up to a second early, the same
    offset for every run of one boot (here about 0.2 s), which moved that much
    of the process exit into the start-up. The start's ticks against
    ``/proc/uptime`` (both counted from boot) have no such offset.
    """
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22: starttime
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return float(psutil.Process().create_time())
    except Exception:  # noqa: BLE001 - optional detail
        return None


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    # tryfirst: before the harness's (trylast) start of the emulator and deploy.
    _state["sessionstart"] = time.time()
    _stamp_harness_lines(session.config)


def _stamp_harness_lines(config: pytest.Config) -> None:
    """Record when each ``branchstack:`` line is written (the text is unchanged)."""
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is None:
        return
    original = tr.write_line

    def write_line(line: Any, **markup: bool) -> None:
        text = str(line)
        if text.startswith("branchstack: "):
            _state["lines"].append((time.time(), text.splitlines()[0][:200]))
        original(line, **markup)

    tr.write_line = write_line


def _emulator_pid(config: pytest.Config) -> int | None:
    if os.environ.get("BENCH_EMULATOR_PID", "").isdigit():
        return int(os.environ["BENCH_EMULATOR_PID"])
    lifecycle = _lifecycle(config)
    return lifecycle.target.pid if lifecycle is not None and lifecycle.target is not None else None


def _lifecycle(config: pytest.Config) -> Any:
    """The controller's lifecycle (None when the run deployed nothing)."""
    from harness.pytest.role import role_of

    return getattr(role_of(config), "lifecycle", None)


def _stack_ready_at(config: pytest.Config) -> float | None:
    from harness.pytest.role import role_of

    return getattr(role_of(config), "stack_ready_at", None)


def _role_phases(config: pytest.Config) -> dict[str, float]:
    from harness.pytest.role import role_of

    role = role_of(config)
    return role.phases.as_dict() if role is not None else {}


def _run_delay(pids: set[int]) -> float:
    """Seconds the threads of ``pids`` spent runnable but waiting for a CPU (``/proc/PID/task/*/schedstat``)."""
    total = 0
    for pid in pids:
        for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int(stat.read_text().split()[1])
    return total / 1e9


def _cpu(config: pytest.Config) -> dict[str, float] | None:
    """CPU seconds of this pytest process tree (workers included, reaped or not) and of the emulator tree,
    and the seconds their live threads waited for a CPU (run queue delay)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover
        return None
    emu = _emulator_pid(config)
    me = psutil.Process()
    out = {"pytest": 0.0, "emulator": 0.0}
    try:
        t = me.cpu_times()
        out["pytest"] = t.user + t.system + t.children_user + t.children_system
        emu_tree: set[int] = set()
        if emu:
            e = psutil.Process(emu)
            emu_tree = {emu, *(c.pid for c in e.children(recursive=True))}
            et = e.cpu_times()
            out["emulator"] = et.user + et.system + et.children_user + et.children_system
            for c in e.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    ct = c.cpu_times()
                    out["emulator"] += ct.user + ct.system
        mine = {me.pid}
        for c in me.children(recursive=True):
            if c.pid in emu_tree:
                continue
            mine.add(c.pid)
            with contextlib.suppress(psutil.Error):
                ct = c.cpu_times()
                out["pytest"] += ct.user + ct.system
        out["pytest_wait"] = _run_delay(mine)
        out["emulator_wait"] = _run_delay(emu_tree)
    except psutil.Error:
        return None
    return out


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    _state["collection_start"] = time.time()


def pytest_collection_finish(session: pytest.Session) -> None:
    _state["collection_end"] = time.time()


def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    global _profiler
    _in_test[0] = True
    if _state["first_start"] is None:
        if _CONFIG:  # read before the phase starts: the probe's own work is not the scenarios'
            _state["cpu_first"] = _cpu(_CONFIG[0])
        _state["first_start"] = time.time()
        prefix = os.environ.get("BENCH_PROFILE")
        if prefix:
            try:
                from pyinstrument import Profiler
            except ImportError:  # pragma: no cover - dev extra not installed
                return
            _profiler = Profiler(interval=0.001, async_mode="disabled")
            _profiler.start()


def _tests_own(fixturedef: Any) -> bool:
    """A fixture of the tests (their module or a conftest), not one of the harness's or pytest's."""
    path = getattr(getattr(fixturedef.func, "__code__", None), "co_filename", "")
    return bool(path) and not path.startswith(_HARNESS_DIR) and "site-packages" not in path


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: Any, request: pytest.FixtureRequest) -> Any:
    if not (_in_test[0] and _tests_own(fixturedef)):
        return (yield)
    started = time.perf_counter()
    try:
        return (yield)
    finally:
        _state["test_fixtures"] += time.perf_counter() - started
        # Added after the fixture's own teardown, so it runs first: the teardown's start.
        fixturedef.addfinalizer(lambda: _torn.__setitem__(id(fixturedef), time.perf_counter()))


def pytest_fixture_post_finalizer(fixturedef: Any, request: pytest.FixtureRequest) -> None:
    began = _torn.pop(id(fixturedef), None)
    if began is not None and _in_test[0]:
        _state["test_fixtures"] += time.perf_counter() - began


def pytest_runtest_logfinish(nodeid: str, location: Any) -> None:
    _in_test[0] = False
    _state["last_end"] = time.time()
    _state["ends"].append(_state["last_end"])


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _state[f"{report.when}_seconds"] = _state.get(f"{report.when}_seconds", 0.0) + float(report.duration)
    per = _state["per_test"].setdefault(report.nodeid, {})
    per[report.when] = float(report.duration)
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _state["tests"] += 1
        _state["outcomes"][report.outcome] = _state["outcomes"].get(report.outcome, 0) + 1


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # tryfirst: before the harness's (trylast) teardown.
    global _profiler
    _state["sessionfinish"] = time.time()
    _state["exitstatus"] = int(exitstatus)
    if _profiler is not None:
        _profiler.stop()
        prefix = os.environ["BENCH_PROFILE"]
        Path(prefix + ".txt").write_text(_profiler.output_text(unicode=True, color=False, show_all=False))
        from pyinstrument.renderers import JSONRenderer

        Path(prefix + ".json").write_text(_profiler.output(JSONRenderer()))
        _profiler = None
    _state["cpu_end"] = _cpu(session.config)  # after the profiler stopped: not part of the profile
    # The probe's own seconds at session finish (the CPU snapshot walks the process tree): inside the
    # session end's window, but the measurement's, not the harness's.
    _state["probe_finish"] = time.time() - _state["sessionfinish"]


def pytest_unconfigure(config: pytest.Config) -> None:
    if _worker(config):
        return
    _state["unconfigure"] = time.time()
    out = os.environ.get("BENCH_PROBE_OUT")
    if not out:
        return
    record = dict(_state)
    lifecycle = _lifecycle(config)
    if lifecycle is not None:
        t = lifecycle.timings
        record["harness"] = {
            "emulator": t.emulator,
            "deploy": t.deploy,
            "teardown": t.teardown,
            "deploy_skipped": bool(lifecycle.deploy_skipped),
            "fingerprint": lifecycle.fingerprint,
            "attached": bool(getattr(lifecycle.target, "attached", False)),
            "emulator_pid": lifecycle.target.pid if lifecycle.target is not None else None,
        }
        # The run's own time by phase (harness.phases): the lifecycle's and the plugin's.
        record["phases"] = {**lifecycle.phases.as_dict(), **_role_phases(config)}
        # The stack starts on a thread from session start, beside collection: when the session had it.
        record["stack_ready"] = _stack_ready_at(config)
    Path(out).write_text(json.dumps(record, indent=1))
