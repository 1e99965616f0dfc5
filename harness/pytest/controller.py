"""The controller: the one pytest process without ``workerinput``, which owns the run.

It resolves the settings, deploys the branch stack at session start when the
run needs it, hands the stack description to pytest-xdist workers through
``workerinput``, gathers every test's trace record, and tears everything down
at session end, whatever happened. Its state is its attributes.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from harness import ownership, phases
from harness import settings as settings_mod
from harness.errors import ConfigError, EmulatorDied, HarnessError
from harness.prewarm import Prewarm, faker_providers, hypothesis_constants
from harness.pytest.role import WORKERINPUT, Role, write
from harness.pytest.signals import SignalPolicy
from harness.sharding import resolve_shard

if TYPE_CHECKING:  # boto3, the traces package: loaded by start_stack, only when the run deploys
    from harness.early_start import EarlyStart, Relay
    from harness.lifecycle import Lifecycle
    from harness.pytest.tracing import RunTracing
    from harness.stack import StackInfo, TargetInfo


def needs_stack(config: pytest.Config, s: settings_mod.Settings) -> bool:
    """Whether this session deploys: ``stack`` on/off, or auto by the paths it runs."""
    if s.stack != "auto":
        return s.stack == "on"
    if config.option.collectonly:
        return False
    wanted = [w for w in ((s.root / p).resolve() for p in s.integration_paths) if w.exists()]
    for path in arg_paths(config):
        for w in wanted:
            if path == w or w in path.parents or path in w.parents:
                return True
    return False


def imports_python(collector: pytest.Collector) -> bool:
    """Whether collecting ``collector`` may import Python code (a test module, a package, a conftest)."""
    if isinstance(collector, pytest.Session):
        return False
    if isinstance(collector, pytest.Dir):
        return directory_imports_python(collector.path, collector.config)
    from harness.scenarios.collect import ScenarioFile

    return not isinstance(collector, ScenarioFile)


def arg_paths(config: pytest.Config) -> list[Path]:
    """The paths the session's arguments name (node ids without their ``::`` part), absolute."""
    here = Path(str(config.invocation_params.dir))
    return [(here / str(arg).split("::")[0]).resolve() for arg in config.args]


def on_the_args(path: Path, config: pytest.Config) -> bool:
    """Whether the directory ``path`` is collected for the session's arguments (on the way to one, or under one)."""
    wanted = arg_paths(config)
    path = path.resolve()
    return any(w == path or path in w.parents or w in path.parents for w in wanted)


def directory_imports_python(path: Path, config: pytest.Config) -> bool:
    """Whether collecting the directory ``path`` imports its ``__init__.py`` or a conftest not yet loaded."""
    conftest = path / "conftest.py"
    fresh_conftest = conftest.is_file() and config.pluginmanager.get_plugin(str(conftest)) is None
    return fresh_conftest or (path / "__init__.py").is_file()


#: Set in each run of ``pytest --watch`` (harness.pytest.watch), whose stack and emulator it keeps for the next.
WATCH_RUN_ENV = "HARNESS_WATCH_RUN"


def resolve_settings(config: pytest.Config) -> settings_mod.Settings:
    """The session's settings: its options over the environment over the project's table; a usage error if bad."""
    root = settings_mod.find_root(Path(str(config.rootpath)))
    cli = {s.name: getattr(config.option, s.name, None) for s in settings_mod.SETTINGS}
    try:
        return settings_mod.resolve(cli, os.environ, root)
    except ConfigError as exc:
        raise _usage_error(exc) from None


def _usage_error(exc: ConfigError) -> pytest.UsageError:
    return pytest.UsageError(exc.render())


class SessionEnded(pytest.exit.Exception, KeyboardInterrupt):  # type: ignore[misc]
    """``pytest.exit`` that also ends the session from inside collection.

    The stack is waited for where collection needs it (a test module, a conftest), inside a collector;
    pytest turns any ``Exception`` a collector raises, ``pytest.exit``'s included, into a collection
    error ("ERROR . - Exit", then "found no collectors", exit code 4), and lets only ``KeyboardInterrupt``
    and ``SystemExit`` through. As a ``KeyboardInterrupt`` this gets through; pytest then ends the session
    with its return code, as it does for ``pytest.exit``.
    """


class Controller(Role):
    """The run: settings, lifecycle, tracing, shard, run id and seed, the emulator's death."""

    def __init__(self, config: pytest.Config) -> None:
        super().__init__(config)
        self.signals = SignalPolicy(
            lambda line, **markup: write(config, line, **markup),
            lambda: self.lifecycle.interrupted_by if self.lifecycle is not None else None,
        )
        self.signals.install_stop_signals(config, lambda: bool(self.deaths))
        config.pluginmanager.register(self.signals, "branchstack-signals")
        # Registered this early (tryfirst configure), it runs late among the cleanups:
        # after pytest's own (its unraisable-exception gc passes take a while).
        config.add_cleanup(self.signals.restore)
        self.lifecycle: Lifecycle | None = None
        self.starting: EarlyStart | None = None  # the stack's start, running until finish_start()
        self.relay: Relay | None = None  # the lifecycle's lines, written on the main thread
        self.stack_ready_at: float | None = None
        self.deaths: list[EmulatorDied] = []
        self.death_reported = False
        self.session: pytest.Session | None = None
        self.trace_report: Any = None
        self.last_report_at: float | None = None  # time.monotonic() of the last test report
        self.api_routes: list[str] | None = None  # the stack's API routes, when read ahead of the behaviour check
        self._routes_thread: threading.Thread | None = None  # reading them beside the checks after the deploy
        self.behaviour_report: Any = None
        self.worker_collected: list[str] = []  # every node id the xdist workers collected
        self.settings = resolve_settings(config)
        try:
            self.shard, self.shard_group = resolve_shard(self.settings, os.environ)
        except ConfigError as exc:
            raise _usage_error(exc) from None
        s = self.settings
        self.seed = s.seed if s.seed is not None else random.SystemRandom().randrange(2**32)
        self.run_id = uuid.uuid4().hex[:12]

    def write(self, line: str, **markup: bool) -> None:
        write(self.config, line, **markup)

    # -- start -------------------------------------------------------------------
    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        rows = self.settings.describe()
        width = max(len(k) for k, _, _ in rows)
        return (
            ["branchstack settings:"]
            + [f"  {k:<{width}} = {v}  ({src})" for k, v, src in rows]
            + [f"branchstack run {self.run_id}, seed {self.seed} (repeat the data with --seed {self.seed})"]
            + ([f"branchstack shard {self.shard[0]}/{self.shard[1]} of group {self.shard_group}"] if self.shard else [])
        )

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # trylast: after the terminal header. The stack starts on a thread and the
        # session goes on (collection) until something needs it (stack_ready). Under
        # xdist it is awaited in pytest_xdist_setupnodes, before workers receive it.
        self.session = session
        for notice in self.settings.notices:  # shown even with -q, unlike the header
            self.write(f"warning: {notice}", yellow=True)
        self.start_stack(wait=False)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> None:
        # Inside the session (an interrupt here still reaches pytest_sessionfinish's clean-up and report).
        self._await_launch()

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_setupnodes(self, config: pytest.Config, specs: Any) -> None:
        self.start_stack()

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[WORKERINPUT + "_run"] = [self.run_id, self.seed]
        if self.tracing is not None:
            node.workerinput[WORKERINPUT + "_traces"] = self.tracing.info
        if self.shard:
            node.workerinput[WORKERINPUT + "_shard"] = list(self.shard)
        if self.info is not None:
            node.workerinput[WORKERINPUT] = self.info
        own = getattr(self.lifecycle.target if self.lifecycle is not None else None, "worker_credentials", None)
        spec = own() if own is not None else None
        if spec is not None:  # aws with a role: the worker assumes it itself, refreshed as here
            node.workerinput[WORKERINPUT + "_aws"] = spec

    def pytest_collectstart(self, collector: pytest.Collector) -> None:
        if self.starting is not None and self.info is None and imports_python(collector):
            self.stack_ready()  # a test module or conftest may read the stack's variables when imported
        elif self.relay is not None:
            self.relay.flush()

    @pytest.hookimpl(tryfirst=True)
    def pytest_collect_directory(self, path: Path, parent: pytest.Collector) -> None:
        # Before pytest makes the directory's collector: its conftest.py is imported soon after if the
        # directory is collected (pytest offers every directory of the root; only those of the args count).
        if (
            self.starting is not None
            and self.info is None
            and on_the_args(path, self.config)
            and directory_imports_python(path, self.config)
        ):
            self.stack_ready()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        self.stack_ready()
        self.prepare(session)  # a start that ended after collection: build before the first test, not in it
        self.finish_start()  # the checks after the deploy ran meanwhile: their lines and verdict come first

    def start_stack(self, *, wait: bool = True) -> None:
        """Start the branch stack once, if this run needs it; ``wait``: until it is deployed and read back."""
        if self.lifecycle is None and needs_stack(self.config, self.settings):
            self._begin_stack()
        if wait:
            self.finish_start()

    def _begin_stack(self) -> None:
        from harness.early_start import EarlyStart, Relay, begin_target
        from harness.pytest.tracing import RunTracing

        self.signals.ensure_sigint()
        self.quick_handoffs()
        self.tracing = tracing = RunTracing.for_controller(self.settings.target, self.settings.report_dir, self.run_id)
        self.config.add_cleanup(tracing.close)
        on_death, target_env = self._on_death(), tracing.emulator_env()
        # The emulator boots while the lifecycle (boto3) is imported.
        target = begin_target(self.settings, self.settings.report_dir, on_death=on_death, extra_env=target_env)
        try:
            from harness.lifecycle import Lifecycle

            self.relay = Relay(self.write)
            self.lifecycle = Lifecycle(
                self.settings,
                out=self.relay,
                on_emulator_death=on_death,
                target_env=target_env,
                shard=(self.shard, self.shard_group),
                target=target,
                keeper=ownership.WATCH_KEEPER if os.environ.get(WATCH_RUN_ENV) else ownership.KEEP_STACK_KEEPER,
            )
        except BaseException:  # never leave the emulator booting for nobody
            if target is not None:
                target.stop()
            raise
        self.starting = EarlyStart(self.lifecycle, self.relay)

    def _await_launch(self) -> None:
        """Collection waits until the start has launched its deploy command (harness.early_start).

        A signal meanwhile has stopped and cleaned up the start; it ends the session as in :meth:`stack_ready`.
        """
        starting = self.starting
        if starting is None:
            return
        try:
            starting.wait_launched()
        except BaseException as exc:
            self.starting = None
            self._start_ended(exc)

    def _start_ended(self, exc: BaseException) -> NoReturn:
        """A start that failed (reported and cleaned up) or was stopped by a signal ends the session."""
        if isinstance(exc, HarnessError):
            if not getattr(exc, "reported", False):
                self.write(exc.render(), red=True)
            raise SessionEnded(f"branchstack: {type(exc).__name__} (details above)", pytest.ExitCode.TESTS_FAILED)
        if isinstance(exc, KeyboardInterrupt) and self.deaths:
            raise SessionEnded(f"branchstack: {self.deaths[0].render()}", pytest.ExitCode.TESTS_FAILED)
        raise exc

    def stack_ready(self, prewarm: bool = True) -> None:
        """Wait until the stack is deployed and read back (the first call only), then export it; a failed start
        ends the session, as it always did. The checks after the deploy may still run (:meth:`finish_start`).

        While it waits, what the tests need after the start is imported (``harness.prewarm``),
        where this process runs them (not an xdist controller) and the session goes on.
        """
        starting = self.starting
        if starting is None or self.info is not None:
            return
        assert self.lifecycle is not None and self.tracing is not None
        warm = None
        if prewarm and not self.config.pluginmanager.has_plugin("dsession"):
            warm = Prewarm(extra=self._ahead_steps()).start()
        try:
            info = starting.wait_described()
        except (HarnessError, KeyboardInterrupt) as exc:
            self.starting = None
            self._start_ended(exc)
        finally:
            if warm is not None:
                warm.join()
        self.info = info
        self.stack_ready_at = time.time()  # for benchmarks: where the start ended (it overlaps collection)
        with self.phases.measure(phases.READ_BACK):
            self.export(info)
            self.tracing.client_for, self.tracing.identity = self.lifecycle.client, self.lifecycle.identity()
            self.tracing.activate(info, self.clients_ahead.made() if self.clients_ahead is not None else ())
            self._read_routes_ahead(info)

    def finish_start(self, prewarm: bool = True) -> None:
        """Wait for the whole start: the stack (:meth:`stack_ready`), then the checks after its deploy, whose
        lines are written now; a refused check (a runtime that cannot run here) ends the session before any
        test, as a failed start does. Before the first test, before xdist's workers start, at the session's end.
        """
        self.stack_ready(prewarm)
        starting, self.starting = self.starting, None
        if starting is None:
            return
        with self.phases.measure(phases.CHECKS_WAITED):
            try:
                starting.wait()
            except (HarnessError, KeyboardInterrupt) as exc:
                self._start_ended(exc)
            self._join_routes()  # read beside the checks: no request of the harness's is queued beside a test's

    def _ahead_steps(self) -> tuple[Callable[[], object], ...]:
        """What the wait for the stack builds besides the imports: the tests' clients, when the target is known."""
        ops = self.lifecycle.ops if self.lifecycle is not None else None
        steps: tuple[Callable[[], object], ...] = (faker_providers, hypothesis_constants)
        if ops is not None:
            target = ops.target_info
            steps += (lambda: self._make_shared_clients(target),)
        return steps

    def _make_shared_clients(self, target: TargetInfo) -> None:
        """The tests' clients, made ahead; the teardown's probes use them too (``Lifecycle.adopt_clients``)."""
        self.make_clients_ahead(target)
        if self.clients_ahead is not None and self.lifecycle is not None:
            self.lifecycle.adopt_clients(target, self.clients_ahead.by_service())

    def _settle_start(self, session: pytest.Session, exitstatus: int) -> None:
        """The session ends before anything waited for the stack: stop its start if interrupted, else let it end.

        A start that fails here is reported and cleaned up by ``wait()``; the session fails.
        """
        if self.starting is None:
            return
        if exitstatus == pytest.ExitCode.INTERRUPTED or self.signals.received or self.deaths:
            self.starting.stop()
        try:
            self.finish_start(prewarm=False)  # the session is ending: nothing will use the imports
        except (pytest.exit.Exception, KeyboardInterrupt):
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def credential_env(self) -> dict[str, str | None]:
        """On aws: the run's credentials in, every competing variable out (refreshed when due)."""
        return self.lifecycle.process_env() if self.lifecycle is not None else {}

    def _on_death(self) -> Any:
        main_ident = threading.main_thread().ident

        def on_death(exc: EmulatorDied) -> None:
            # Fail fast: botocore's retries would otherwise wait a minute on a
            # dead endpoint. SIGINT to the main thread interrupts any blocking
            # call and lets pytest run every finalizer.
            self.deaths.append(exc)
            if main_ident is not None:
                signal.pthread_kill(main_ident, signal.SIGINT)

        return on_death

    # -- during the run ------------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.tracing is None:
            return
        self.last_report_at = time.monotonic()  # the late consumers' quiet counts from the last test's end
        from harness.pytest.tracing import record_of  # loaded already: tracing is on

        record = record_of(report)
        if record is not None:
            self.tracing.records.append(record)

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """An emulator death ends the session through SIGINT; say so instead of 'KeyboardInterrupt'."""
        if self.deaths:
            # pytest still prints its KeyboardInterrupt banner (the mechanism);
            # this line says what actually happened.
            self.write("session stopped early: the emulator process is gone (details below)", red=True)

    # -- finish --------------------------------------------------------------------
    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        lifecycle = self.lifecycle
        if lifecycle is None:
            return
        self._settle_start(session, exitstatus)
        if not self.deaths:
            lifecycle.look_before_teardown()  # beside the trace collection, which mostly waits
        self._report_death()
        if self.tracing is not None and not self.deaths:
            with self.signals.interruptible("trace collection") as go:
                if go:
                    try:
                        with self.phases.measure(phases.TRACES):
                            self._report_traces(self.tracing)
                    except Exception as exc:  # noqa: BLE001 - the teardown below must run; the message says why
                        self.write(f"traces could not be collected: {type(exc).__name__}: {exc}", red=True)
        if not self.deaths:
            self.close_listeners()  # where the trace collection's wait did not already (or had none)
        if self.behaviour_report is not None and self.behaviour_report.gated:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        files: list[tuple[str, bool]] = []  # the report files' line (and whether it is an error), written meanwhile
        write_files = self._report_files(files) if self.trace_report is not None else None
        lifecycle.close(failed=exitstatus != 0, alongside=write_files)
        for line, failed in files:
            self.write(line, red=failed)
        try:
            lifecycle.raise_for_teardown()
        except HarnessError as exc:
            self.write(exc.render(), red=True)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.deaths:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        self.release_heap()

    def _report_traces(self, tracing: RunTracing) -> None:
        if self.settings.behaviour != "off" and tracing.collector is not None:
            from harness.behaviour.run import snapshot_exists

            nodeids = [r["nodeid"] for r in tracing.records]
            if self.settings.behaviour_update or snapshot_exists(Path(str(self.config.rootpath)), nodeids):
                # queue and stream consumers of the last tests finish first; meanwhile the tests'
                # listeners are removed, their garbage collected, the stack's API routes read and the
                # teardown's clients made
                steps = self.lifecycle.close_steps() if self.lifecycle is not None else []
                tracing.collector.wait_quiet(
                    pending=self._pending_work(),
                    since=self.last_report_at,
                    meanwhile=[self.close_listeners, self.release_heap, self._routes_read, *steps],
                )
        self.trace_report = trace_report = tracing.gather(self.settings.report_dir / "traces")
        for line in trace_report.lines() if trace_report else []:
            self.write(line)
        if trace_report is not None and self.settings.behaviour != "off":
            self._report_behaviour(trace_report)

    def _report_files(self, lines: list[tuple[str, bool]]) -> Callable[[], None]:
        """Writing the traces' JSON files and the HTML report, which need nothing of the stack: the teardown runs
        meanwhile (``Lifecycle.close``). Never raises; the line saying where (or what failed) goes to ``lines``."""
        from harness.traces.html import report_line
        from harness.traces.run import write_files

        report = self.trace_report

        def write() -> None:
            try:
                write_files(report)
            except Exception as exc:  # noqa: BLE001 - the run's end goes on; the line says why
                lines.append((f"traces could not be written: {type(exc).__name__}: {exc}", True))
                return
            line = report_line(report)  # the HTML report beside the JSON (report_line never raises)
            lines.append((line, not line.startswith("traces: HTML report -> ")))

        return write

    def _read_routes_ahead(self, info: StackInfo) -> None:
        """The behaviour check's API routes, read on a thread beside the checks after the deploy (the session
        waits for both before its first test): they depend on the stack only, so they are no part of the
        session's end, and no call of theirs waits in the target's queue beside a test's (the embedded emulator
        answers one request at a time: read while the tests ran, they made the first test's calls 12 ms
        slower)."""
        if self.settings.behaviour == "off" or self.tracing is None or self.tracing.collector is None:
            return
        from harness.procs import start_thread
        from harness.pytest.behaviour import has_api

        if not has_api(info):
            self.api_routes = []
            return
        self._routes_thread = start_thread(self._read_routes, "harness-api-routes")

    def _read_routes(self) -> None:
        """The stack's API routes for the behaviour check (once: on the thread started ahead, else now)."""
        from harness.pytest.behaviour import routes_for

        if self.api_routes is None and self.info is not None and self.lifecycle is not None:
            self.api_routes = routes_for(self.info, self.lifecycle.client)

    def _join_routes(self) -> None:
        """Wait for the routes read ahead, if they are."""
        thread, self._routes_thread = self._routes_thread, None
        if thread is not None:
            thread.join()

    def _routes_read(self) -> None:
        """Wait for the routes read ahead, if any; read them now if that did not happen."""
        self._join_routes()
        self._read_routes()

    def _pending_work(self) -> Callable[[], int | None] | None:
        """The embedded emulator's count of work still ahead for Lambda (harness.emulator.pending_work)."""
        target = (self.info or {}).get("target") or {}
        url = target.get("endpoint_url")
        if target.get("kind") != "local" or not url:
            return None
        from harness.emulator.pending_work import ask

        return lambda: ask(str(url))

    def _report_behaviour(self, trace_report: Any) -> None:
        """Each scenario's behaviour against the snapshot (harness.behaviour); its HTML section joins the report."""
        from harness.behaviour.render import html_section
        from harness.errors import HarnessError as Error
        from harness.pytest import behaviour

        assert self.lifecycle is not None and self.info is not None
        collected = sorted(set(self.collected) | set(self.worker_collected)) or None
        self._routes_read()
        try:
            report = behaviour.check(
                self.settings,
                self.info,
                self.lifecycle.client,
                trace_report,
                Path(str(self.config.rootpath)),
                collected,
                self.api_routes,
            )
        except Error as exc:
            self.write(f"behaviour: {exc.render()}", red=True)
            return
        self.behaviour_report = report
        for line in report.lines():
            self.write(line, red=bool(report.gated))
        for line in behaviour.fail_junit(self.config, report):
            self.write(line, yellow=True)
        trace_report.html_sections.append(html_section(report.outcomes, report.mode))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        from harness.pytest.behaviour import COLLECTED

        self.worker_collected += getattr(node, "workeroutput", {}).get(COLLECTED, [])

    def _report_death(self) -> None:
        """Say once that the emulator died, and make the session fail."""
        if not self.deaths or self.death_reported:
            return
        self.death_reported = True
        self.write(self.deaths[0].render(), red=True)
        if self.session is not None:
            self.session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        with self.phases.measure(phases.REPORT):
            self._summary(terminalreporter)

    def _summary(self, terminalreporter: Any) -> None:
        for line in self.lifecycle.runtime_mismatches if self.lifecycle is not None else ():
            terminalreporter.write_line(f"branchstack: {line}", yellow=True)
        if self.trace_report is not None and self.trace_report.records:
            from harness.traces.summary import summary_table

            terminalreporter.write_sep("=", "branchstack traces")
            terminalreporter.write_line(summary_table(self.trace_report))
        report = self.behaviour_report
        if report is not None and report.listed:
            from harness.behaviour.render import terminal_table

            terminalreporter.write_sep("=", "branchstack behaviour")
            terminalreporter.write_line(terminal_table(report.listed), red=bool(report.gated))

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.lifecycle is not None:
            # A death (or Ctrl-C) that lands inside pytest_sessionstart, after the
            # deploy, skips pytest_sessionfinish: report and clean up here.
            if self.starting is not None:  # no session finish ran (an internal error): stop the start
                self.starting.stop()
                with contextlib.suppress(BaseException):
                    self.finish_start()
            self._report_death()
            self.lifecycle.close(failed=True)  # no-op when sessionfinish already closed it
        self.restore_env()
