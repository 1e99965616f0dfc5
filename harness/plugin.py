"""pytest wiring. Hooks only wire: the lifecycle lives in ``harness.session``.

The controller (the only process without ``workerinput``) resolves the
settings, deploys the branch stack at session start when the run needs it,
hands the stack description to pytest-xdist workers through ``workerinput``,
and tears everything down at session end, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import procs
from harness import settings as settings_mod
from harness.errors import ConfigError, EmulatorDied, HarnessError
from harness.fixtures import eventually, fake, http, invoke, seed_for, table, unique_for, unique_id
from harness.scenarios.collect import collect_scenario_file
from harness.scenarios.runtime import RUNTIME_FACTORY_KEY, StepRuntime
from harness.session import Lifecycle, exported_env, in_shard, resolve_shard, signals_held
from harness.stack import Stack, StackInfo
from harness.tracing import RunTracing, record_of
from harness.urls import route_requests, to_emulator

__all__ = ["eventually", "fake", "http", "invoke", "stack", "stack_info", "table", "trace", "unique_id"]

SETTINGS_KEY = pytest.StashKey[settings_mod.Settings]()
LIFECYCLE_KEY = pytest.StashKey[Lifecycle]()
INFO_KEY = pytest.StashKey[StackInfo]()
DEATH_KEY = pytest.StashKey[list[EmulatorDied]]()
SAVED_ENV_KEY = pytest.StashKey[dict[str, str | None]]()
TRACING_KEY = pytest.StashKey[RunTracing]()
SHARED_KEY = pytest.StashKey[tuple[Stack, Any, Any]]()
TRACE_CTX_KEY = pytest.StashKey[Any]()
FAILED_KEY = pytest.StashKey[bool]()
TRACE_REPORT_KEY = pytest.StashKey[Any]()
SHARD_KEY = pytest.StashKey[tuple[tuple[int, int] | None, str | None]]()
SESSION_KEY = pytest.StashKey[pytest.Session]()
DEATH_REPORTED_KEY = pytest.StashKey[bool]()
HELD_KEY = pytest.StashKey[list[int]]()
LATE_KEY = pytest.StashKey[dict[int, Any]]()
SIGINT_ORIGINAL_KEY = pytest.StashKey[Any]()
# (run id, base seed): the same in the controller and every worker.
RUN_KEY = pytest.StashKey[tuple[str, int]]()
WORKERINPUT = "branchstack"
PREFIX = "branchstack: "
# The controller's config, for hooks that receive none (pytest_keyboard_interrupt).
_CONTROLLER_CONFIG: list[pytest.Config] = []


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _write(config: pytest.Config, line: str, **markup: bool) -> None:
    tr = config.pluginmanager.get_plugin("terminalreporter")
    text = "\n".join(PREFIX + x for x in line.splitlines()) if line else PREFIX
    if tr is not None:
        tr.ensure_newline()
        tr.write_line(text, **markup)
    else:
        print(text, flush=True)


def pytest_addoption(parser: pytest.Parser) -> None:
    settings_mod.add_pytest_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.stash[RUNTIME_FACTORY_KEY] = _scenario_runtime
    if _is_worker(config):
        run = config.workerinput.get(WORKERINPUT + "_run")  # type: ignore[attr-defined]
        if run:
            config.stash[RUN_KEY] = (run[0], int(run[1]))
        info = config.workerinput.get(WORKERINPUT)  # type: ignore[attr-defined]
        if info:
            config.stash[INFO_KEY] = info
            _export(config, info)
            tracing = RunTracing(config.workerinput[WORKERINPUT + "_traces"])  # type: ignore[attr-defined]
            tracing.activate(info)
            config.stash[TRACING_KEY] = tracing
            config.add_cleanup(tracing.close)
        return
    _install_sigterm(config)
    config.pluginmanager.register(_FinishGuard(), "branchstack-finish-guard")
    # Registered this early (tryfirst configure), it runs late among the cleanups:
    # after pytest's own (its unraisable-exception gc passes take a while).
    config.add_cleanup(lambda: _FinishGuard.restore_late(config))
    _CONTROLLER_CONFIG[:] = [config]
    root = settings_mod.find_root(Path(str(config.rootpath)))
    cli = {s.name: getattr(config.option, s.name, None) for s in settings_mod.SETTINGS}
    try:
        s = settings_mod.resolve(cli, os.environ, root)
    except ConfigError as exc:
        raise pytest.UsageError(exc.render()) from None
    config.stash[SETTINGS_KEY] = s
    try:
        config.stash[SHARD_KEY] = resolve_shard(s, os.environ)
    except ConfigError as exc:
        raise pytest.UsageError(exc.render()) from None
    seed = s.seed if s.seed is not None else random.SystemRandom().randrange(2**32)
    config.stash[RUN_KEY] = (uuid.uuid4().hex[:12], seed)


def _install_sigterm(config: pytest.Config) -> None:
    """Turn SIGTERM (how CI cancels a job) into an orderly shutdown.

    pytest runs no finalizers on SIGTERM by itself; raising KeyboardInterrupt
    instead makes it unwind like Ctrl-C, so the stack is torn down and the
    emulator stopped before the follow-up SIGKILL.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
        return  # someone else owns it; leave their handler alone

    def on_sigterm(signum: int, frame: Any) -> None:
        # Once is enough: a second SIGTERM must not abort the teardown the
        # first one started (CI follows up with SIGKILL if it is impatient).
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, on_sigterm)
    config.add_cleanup(lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    s = config.stash.get(SETTINGS_KEY, None)
    if s is None:
        return None
    width = max(len(k) for k, _, _ in s.describe())
    run_id, seed = config.stash[RUN_KEY]
    return (
        ["branchstack settings:"]
        + [f"  {k:<{width}} = {v}  ({src})" for k, v, src in s.describe()]
        + [f"branchstack run {run_id}, seed {seed} (repeat the data with --seed {seed})"]
        + [f"branchstack shard {sh[0]}/{sh[1]} of group {grp}" for sh, grp in [config.stash[SHARD_KEY]] if sh]
    )


def needs_stack(config: pytest.Config, s: settings_mod.Settings) -> bool:
    """Whether this session deploys: ``stack`` on/off, or auto by the paths it runs."""
    if s.stack != "auto":
        return s.stack == "on"
    if config.option.collectonly:
        return False
    wanted = [w for w in ((s.root / p).resolve() for p in s.integration_paths) if w.exists()]
    for arg in config.args:
        path = Path(str(config.invocation_params.dir), arg.split("::")[0]).resolve()
        for w in wanted:
            if path == w or w in path.parents or path in w.parents:
                return True
    return False


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    # trylast: after the terminal header. Under xdist the stack is deployed
    # earlier, in pytest_xdist_setupnodes, before workers receive it.
    session.config.stash[SESSION_KEY] = session
    settings = session.config.stash.get(SETTINGS_KEY, None)
    if settings is not None and not _is_worker(session.config):
        for notice in settings.notices:  # shown even with -q, unlike the header
            _write(session.config, f"warning: {notice}", yellow=True)
    _start_stack(session.config)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config: pytest.Config, specs: Any) -> None:
    _start_stack(config)


def _ensure_sigint(config: pytest.Config) -> None:
    """Make SIGINT raise KeyboardInterrupt for this session even where it was inherited as ignored.

    A job started in the background by a non-interactive shell (``make
    integration &``, some CI runners) inherits SIGINT ignored; Python then
    never raises KeyboardInterrupt, and the harness's emulator watcher, which
    ends the session through SIGINT, could not stop a run whose emulator died.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    current = signal.getsignal(signal.SIGINT)
    if current in (signal.SIG_IGN, signal.SIG_DFL, None):
        signal.signal(signal.SIGINT, signal.default_int_handler)
        config.stash[SIGINT_ORIGINAL_KEY] = current  # put back by _FinishGuard.restore_late, at the very end


def _start_stack(config: pytest.Config) -> None:
    """Deploy the branch stack once, in the controller, if this run needs it."""
    if _is_worker(config) or SETTINGS_KEY not in config.stash or LIFECYCLE_KEY in config.stash:
        return
    s = config.stash[SETTINGS_KEY]
    if not needs_stack(config, s):
        return
    deaths: list[EmulatorDied] = []
    config.stash[DEATH_KEY] = deaths
    main_ident = threading.main_thread().ident
    _ensure_sigint(config)

    def on_death(exc: EmulatorDied) -> None:
        # Fail fast: botocore's retries would otherwise wait a minute on a
        # dead endpoint. SIGINT to the main thread interrupts any blocking
        # call and lets pytest run every finalizer.
        deaths.append(exc)
        if main_ident is not None:
            signal.pthread_kill(main_ident, signal.SIGINT)

    lifecycle: Lifecycle | None = None
    tracing = RunTracing.for_controller(
        s.target,
        s.report_dir,
        config.stash[RUN_KEY][0],
        lambda: getattr(getattr(lifecycle, "target", None), "pid", None),
    )
    config.stash[TRACING_KEY] = tracing
    config.add_cleanup(tracing.close)
    lifecycle = Lifecycle(
        s, out=lambda line: _write(config, line), on_emulator_death=on_death, target_env=tracing.emulator_env()
    )
    lifecycle.shard = config.stash.get(SHARD_KEY, (None, None))
    config.stash[LIFECYCLE_KEY] = lifecycle
    try:
        info = lifecycle.start()
    except HarnessError as exc:
        if not getattr(exc, "reported", False):
            _write(config, exc.render(), red=True)
        pytest.exit(f"branchstack: {type(exc).__name__} (details above)", returncode=pytest.ExitCode.TESTS_FAILED)
    except KeyboardInterrupt:
        if deaths:
            pytest.exit(f"branchstack: {deaths[0].render()}", returncode=pytest.ExitCode.TESTS_FAILED)
        raise
    config.stash[INFO_KEY] = info
    _export(config, info)
    tracing.activate(info)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    node.workerinput[WORKERINPUT + "_run"] = list(node.config.stash[RUN_KEY])
    tracing = node.config.stash.get(TRACING_KEY, None)
    if tracing is not None:
        node.workerinput[WORKERINPUT + "_traces"] = tracing.info
    shard = node.config.stash.get(SHARD_KEY, (None, None))[0]
    if shard:
        node.workerinput[WORKERINPUT + "_shard"] = list(shard)
    info = node.config.stash.get(INFO_KEY, None)
    if info is not None:
        node.workerinput[WORKERINPUT] = info


def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    """An emulator death ends the session through SIGINT; say so instead of 'KeyboardInterrupt'."""
    config = _CONTROLLER_CONFIG[0] if _CONTROLLER_CONFIG else None
    if config is not None and config.stash.get(DEATH_KEY, None):
        # pytest still prints its KeyboardInterrupt banner (the mechanism);
        # this line says what actually happened.
        _write(config, "session stopped early: the emulator process is gone (details below)", red=True)


class _FinishGuard:
    """Ctrl-C or SIGTERM during pytest_sessionfinish must not cut the teardown short.

    pytest does not catch a KeyboardInterrupt raised from a sessionfinish hook:
    it escapes past pytest_unconfigure, so nothing after it would run. From the
    first sessionfinish hook to the last, the signals are held; the run then
    ends as interrupted (exit code 2) unless it already failed.
    """

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Iterator[None]:
        config = session.config
        lifecycle = config.stash.get(LIFECYCLE_KEY, None)
        if lifecycle is None:
            return (yield)
        try:
            with signals_held(lambda line: _write(config, line, yellow=True)) as held:
                config.stash[HELD_KEY] = held
                try:
                    return (yield)
                finally:
                    signals = held + lifecycle.interrupted_by
                    if signals:
                        names = ", ".join(dict.fromkeys(signal.Signals(n).name for n in signals))
                        _write(config, f"interrupted ({names}) while finishing: the teardown ran to its end", red=True)
                        if session.exitstatus == pytest.ExitCode.OK:
                            session.exitstatus = pytest.ExitCode.INTERRUPTED
        finally:
            self._after_teardown(session)

    @staticmethod
    def _after_teardown(session: pytest.Session) -> None:
        """From here to the end of pytest there is nothing left to clean up: a signal only sets the exit code.

        Raising KeyboardInterrupt now would escape pytest with a traceback and
        end the process by the signal, after the work is done.
        """
        if threading.current_thread() is not threading.main_thread():
            return

        def late(signum: int, frame: Any) -> None:
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.INTERRUPTED

        session.config.stash[LATE_KEY] = {sig: signal.signal(sig, late) for sig in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def restore_late(config: pytest.Config) -> None:
        """Give the signals back as the session found them (a cleanup, run after pytest's own)."""
        for sig, handler in config.stash.get(LATE_KEY, {}).items():
            signal.signal(sig, handler)
        config.stash[LATE_KEY] = {}
        original = config.stash.get(SIGINT_ORIGINAL_KEY, None)
        if original is not None:
            signal.signal(signal.SIGINT, original)
            del config.stash[SIGINT_ORIGINAL_KEY]


@contextlib.contextmanager
def _interruptible(config: pytest.Config, what: str) -> Iterator[bool]:
    """Inside the finish guard: let a signal cut an optional step (trace collection) short at once.

    Yields False (skip the step) when a signal is already held.
    """
    held = config.stash.get(HELD_KEY, [])
    if held or threading.current_thread() is not threading.main_thread():
        yield not held
        return

    def stop(signum: int, frame: Any) -> None:
        held.append(signum)
        raise KeyboardInterrupt

    try:
        with procs.stop_signals_handled_by(stop):
            yield True
    except KeyboardInterrupt:
        _write(config, f"{what} interrupted; going on to the teardown", yellow=True)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    lifecycle = config.stash.get(LIFECYCLE_KEY, None)
    if lifecycle is None or _is_worker(config):
        return
    deaths = config.stash.get(DEATH_KEY, [])
    _report_death(config)
    tracing = config.stash.get(TRACING_KEY, None)
    if tracing is not None and not deaths:
        with _interruptible(config, "trace collection") as go:
            if go:
                _report_traces(config, tracing)
    lifecycle.close(failed=exitstatus != 0)
    try:
        lifecycle.raise_for_teardown()
    except HarnessError as exc:
        _write(config, exc.render(), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if deaths:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _report_traces(config: pytest.Config, tracing: RunTracing) -> None:
    trace_report = tracing.collect(config.stash[SETTINGS_KEY].report_dir / "traces")
    config.stash[TRACE_REPORT_KEY] = trace_report
    for line in trace_report.lines() if trace_report else []:
        _write(config, line)
    if trace_report is not None:  # the HTML report beside the JSON (report_line never raises)
        from harness.traces.html import report_line

        _write(config, report_line(trace_report))


def _report_death(config: pytest.Config) -> None:
    """Say once that the emulator died, and make the session fail."""
    deaths = config.stash.get(DEATH_KEY, [])
    if not deaths or config.stash.get(DEATH_REPORTED_KEY, False):
        return
    config.stash[DEATH_REPORTED_KEY] = True
    _write(config, deaths[0].render(), red=True)
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    _CONTROLLER_CONFIG.clear()
    lifecycle = config.stash.get(LIFECYCLE_KEY, None)
    if lifecycle is not None:
        # A death (or Ctrl-C) that lands inside pytest_sessionstart, after the
        # deploy, skips pytest_sessionfinish: report and clean up here.
        _report_death(config)
        lifecycle.close(failed=True)  # no-op when sessionfinish already closed it
    saved = config.stash.get(SAVED_ENV_KEY, None)
    if saved:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _export(config: pytest.Config, info: StackInfo) -> None:
    """Make the test process see the stack as a deployed SAM stack: env vars and execute-api URLs."""
    endpoint = info["target"]["endpoint_url"]
    if endpoint:
        config.add_cleanup(route_requests(endpoint))
    env = exported_env(info)
    saved = config.stash.setdefault(SAVED_ENV_KEY, {})
    for k, v in env.items():
        saved.setdefault(k, os.environ.get(k))
        os.environ[k] = v


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep this shard's tests (every process computes the same split)."""
    shard = None
    if _is_worker(config):
        shard = config.workerinput.get(WORKERINPUT + "_shard")  # type: ignore[attr-defined]
    elif SHARD_KEY in config.stash:
        shard = config.stash[SHARD_KEY][0]
    if not shard:
        return
    keep = [i for i in items if in_shard(i.nodeid, tuple(shard))]  # type: ignore[arg-type]
    dropped = [i for i in items if not in_shard(i.nodeid, tuple(shard))]  # type: ignore[arg-type]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep


# -- scenarios -----------------------------------------------------------------


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    return collect_scenario_file(parent, file_path)


def test_identity(item: pytest.Item) -> tuple[str, int]:
    """(unique id, Faker seed) of one test: scoped to run, worker and test."""
    config = item.config
    run_id, base_seed = config.stash.get(RUN_KEY, ("local", 0))
    worker = config.workerinput["workerid"] if _is_worker(config) else "gw"  # type: ignore[attr-defined]
    return unique_for(run_id, worker, item.nodeid), seed_for(base_seed, item.nodeid)


def _shared(config: pytest.Config, info: StackInfo) -> tuple[Stack, Any, Any]:
    """One Stack (boto3 session and clients), one HTTP session and one Faker per process.

    Building them per scenario cost more than the scenario's own calls
    (benchmarks: a boto3 session and its clients are ~100 ms to build).
    """
    shared = config.stash.get(SHARED_KEY, None)
    if shared is None:
        import requests
        from faker import Faker

        session = requests.Session()
        config.add_cleanup(session.close)
        shared = (Stack(info), session, Faker())
        config.stash[SHARED_KEY] = shared
    return shared


def _scenario_runtime(item: pytest.Item) -> StepRuntime:
    """The runtime a YAML scenario item runs with."""
    info = item.config.stash.get(INFO_KEY, None)
    if info is None:
        raise HarnessError(
            "this scenario needs the branch stack, but this session did not deploy it",
            hint="run it from an integration path, or with --stack on",
        )
    unique, seed = test_identity(item)
    stack, session, fake = _shared(item.config, info)
    fake.seed_instance(seed)  # scenarios run one at a time per process
    endpoint = info["target"]["endpoint_url"]
    tracing = item.config.stash.get(TRACING_KEY, None)
    ctx = item.stash.get(TRACE_CTX_KEY, None)
    return StepRuntime(
        stack=stack,
        unique=unique,
        fake=fake,
        seed=seed,
        resolve_url=lambda url: to_emulator(url, endpoint),
        http=session,
        env=os.environ,
        trace=tracing.test_trace(ctx) if tracing is not None and ctx is not None else None,
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    tracing = item.config.stash.get(TRACING_KEY, None)
    ctx = tracing.begin(item.nodeid) if tracing is not None else None
    if ctx is not None:
        item.stash[TRACE_CTX_KEY] = ctx
        item.user_properties.append(("trace_id", ctx.trace_id))  # JUnit XML carries it


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    ctx = item.stash.get(TRACE_CTX_KEY, None)
    if ctx is not None:
        failed = item.stash.get(FAILED_KEY, False) or report.failed
        item.stash[FAILED_KEY] = failed
        if report.when == "teardown":
            tracing = item.config.stash[TRACING_KEY]
            outcome = "failed" if failed else ("skipped" if report.skipped else "passed")
            report.branchstack_trace = tracing.end(ctx, item.nodeid, outcome)
            del item.stash[TRACE_CTX_KEY]
    if report.failed and "fake" in getattr(item, "fixturenames", ()):
        unique, seed = test_identity(item)
        run_seed = item.config.stash.get(RUN_KEY, ("", 0))[1]
        report.sections.append(
            ("branchstack", f"faker seed {seed} (unique id {unique}); repeat with --seed {run_seed}")
        )
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    record = record_of(report)
    config = _CONTROLLER_CONFIG[0] if _CONTROLLER_CONFIG else None
    if record is not None and config is not None and TRACING_KEY in config.stash:
        config.stash[TRACING_KEY].records.append(record)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    trace_report = config.stash.get(TRACE_REPORT_KEY, None)
    if trace_report is not None and trace_report.records:
        from harness.traces.summary import summary_table

        terminalreporter.write_sep("=", "branchstack traces")
        terminalreporter.write_line(summary_table(trace_report))


# -- fixtures ------------------------------------------------------------------


@pytest.fixture(scope="session")
def stack_info(request: pytest.FixtureRequest) -> StackInfo:
    """The deployed stack's plain description (JSON-able)."""
    info = request.config.stash.get(INFO_KEY, None)
    if info is None:
        s = request.config.stash.get(SETTINGS_KEY, None)
        mode = s.stack if s else "?"
        paths = ", ".join(s.integration_paths) if s else "?"
        pytest.fail(
            f"this test needs the branch stack, but this session did not deploy it (stack={mode}).\n"
            f"  hint: put the test under one of the integration paths ({paths}), or run with --stack on",
            pytrace=False,
        )
    return info


@pytest.fixture
def trace(request: pytest.FixtureRequest, stack_info: StackInfo) -> Any:
    """This test's X-Ray trace: ``trace.trace_id``, ``trace.fetch()``, ``trace.wait_for_call(...)``."""
    tracing = request.config.stash.get(TRACING_KEY, None)
    ctx = request.node.stash.get(TRACE_CTX_KEY, None)
    if tracing is None or ctx is None:
        pytest.fail("traces are off for this run (the endpoint target has no trace source)", pytrace=False)
    return tracing.test_trace(ctx)


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest, stack_info: StackInfo) -> Stack:
    """The deployed branch stack: name, stage, outputs, physical ids, ``client(service)``."""
    return _shared(request.config, stack_info)[0]
