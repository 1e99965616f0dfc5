"""What every pytest process of a run has, controller or worker: one object, found through one stash key.

The role object holds the process's state as attributes (run id and seed,
the stack description, the trace state, the shard) and implements the hooks
both roles share: per-test traces, the faker seed on failure, the shard
filter, the runtime of a YAML scenario.
"""

from __future__ import annotations

import gc
import os
import sys
import zlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from harness import environment
from harness.errors import HarnessError
from harness.phases import READ_BACK, Phases
from harness.settings import Settings
from harness.sharding import in_shard
from harness.urls import route_requests, to_emulator

if TYPE_CHECKING:  # loaded when a run deploys a stack or runs a scenario, not at plugin import
    from harness.pytest.tracing import RunTracing
    from harness.scenarios.runtime import StepRuntime
    from harness.stack import Stack, StackInfo, TargetClients, TargetInfo
    from harness.traces.propagation import TraceContext

PREFIX = "branchstack: "
#: The GIL's switch interval during a stack session (the interpreter's default is 0.005; see Role.quick_handoffs).
HANDOFF_SECONDS = 0.0005
WORKERINPUT = "branchstack"


def write(config: pytest.Config, line: str, **markup: bool) -> None:
    """One ``branchstack:`` line (or several) on the terminal, shown even with -q."""
    tr = config.pluginmanager.get_plugin("terminalreporter")
    text = "\n".join(PREFIX + x for x in line.splitlines()) if line else PREFIX
    if tr is not None:
        tr.ensure_newline()
        tw = getattr(tr, "_tw", None)
        if tw is not None and tw.width_of_current_line:
            tw.line()  # pytest-xdist's progress line ("[100%]") does not count for ensure_newline
        tr.write_line(text, **markup)
    else:
        print(text, flush=True)


def unique_for(run_id: str, worker: str, nodeid: str) -> str:
    """A short id unique to run, worker and test, valid in keys and names."""
    return f"t{run_id[:6]}-{worker}-{zlib.crc32(nodeid.encode()):08x}"


def seed_for(base_seed: int, nodeid: str) -> int:
    """The Faker seed of one test: stable for a given base seed and test id."""
    return zlib.crc32(f"{base_seed}:{nodeid}".encode())


class Role:
    """The state and shared hooks of one pytest process."""

    worker_id = "gw"
    settings: Settings | None = None  # resolved by the controller; workers receive what they need instead

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.run_id = "local"
        self.seed = 0
        self.info: StackInfo | None = None
        self.tracing: RunTracing | None = None
        self.shard: tuple[int, int] | None = None
        self.trace_contexts: dict[str, TraceContext] = {}  # by node id, while the test runs
        self._failed: set[str] = set()
        self._function_errors: dict[str, list[Any]] = {}  # by node id, from the call phase to teardown
        self._saved_env: dict[str, str | None] = {}
        self._shared: tuple[Stack, Any, Any] | None = None
        self.clients_ahead: TargetClients | None = None  # see make_clients_ahead
        self._prepared = False  # prepare() built what the tests use (once)
        self.collected: list[str] = []  # every node id collected, before any deselection (snapshot pruning)
        self.phases = Phases()  # this process's own time by phase, for benchmarks (never printed)
        self._listeners: Any = None  # harness.events.listeners.Listeners, made on first use

    # -- the stack, as this process sees it ------------------------------------
    def export(self, info: StackInfo) -> None:
        """Make the test process see the stack as a deployed SAM stack: env vars and execute-api URLs."""
        from harness.stack import exported_env

        endpoint = info["target"]["endpoint_url"]
        if endpoint:
            self.config.add_cleanup(route_requests(endpoint))
        self.set_env({**exported_env(info), **self.credential_env()})

    def credential_env(self) -> dict[str, str | None]:
        """The run's credentials for this process (the controller's, on aws); None removes a variable."""
        return {}

    def set_env(self, env: Mapping[str, str | None]) -> None:
        """Set (or, for None, remove) variables of this process; put back by ``restore_env``.

        Never while a harness thread builds a client (``harness.environment``): the start's checks may still run.
        """
        for k, v in environment.apply(env).items():
            self._saved_env.setdefault(k, v)

    def restore_env(self) -> None:
        environment.apply(self._saved_env)
        self._saved_env = {}

    def quick_handoffs(self) -> None:
        """Hand the GIL between threads every ``HANDOFF_SECONDS`` for the rest of this process's stack session.

        A stack session's main thread mostly waits on the target, while the harness's own threads compute
        beside it (collection beside the stack's start, trace files written during the teardown, checks
        after the deploy). At the interpreter's default 5 ms, a thread whose reply has arrived waits up to
        that long for a computing thread to let go, at every wait of every call: measured, a call during
        the teardown took 80-180 ms instead of 5. Put back at the end of the session (pytest's cleanup).
        """
        before = sys.getswitchinterval()
        if before > HANDOFF_SECONDS:
            sys.setswitchinterval(HANDOFF_SECONDS)
            self.config.add_cleanup(lambda: sys.setswitchinterval(before))

    def shared(self, info: StackInfo) -> tuple[Stack, Any, Any]:
        """One Stack (boto3 session and clients), one HTTP session and one Faker per process.

        Building them per scenario cost more than the scenario's own calls
        (benchmarks: a boto3 session and its clients are ~100 ms to build).
        """
        if self._shared is None:
            import requests
            from faker import Faker

            from harness.stack import Stack

            session = requests.Session()
            self.config.add_cleanup(session.close)
            self._shared = (Stack(info, clients=self.clients_ahead), session, Faker())
        return self._shared

    def make_clients_ahead(self, target: TargetInfo) -> None:
        """While the session waits for its stack (on a thread; joined before the stack is used): the boto3
        session and the clients its Stack will hand the tests, for every service tests call for a resource
        type (the stack's own types are known only after its deploy). Each costs milliseconds of CPU, a
        cold service model tens: paid here, not between the deploy and the first test.

        Only with the target's own fixed keys (an emulator): made now, a client would otherwise take its
        credentials before the session sets the run's identity in the environment (aws).
        """
        if not target["access_key_id"] or target["kind"] == "aws":
            return
        from harness.stack import SERVICE_OF_TYPE, TargetClients

        clients = TargetClients(target)
        clients.warm(sorted(set(SERVICE_OF_TYPE.values())))
        self.clients_ahead = clients

    def prepare(self, session: pytest.Session) -> None:
        """Before the first test: build what the tests will use (Stack, its clients, HTTP session, Faker).

        Built on first use, they were paid inside the first tests that needed
        them; built here, the tests' own time is their calls. Only a process
        that runs tests builds them (an xdist controller collects none). Called
        when collection ends and again when the test loop starts, since the
        stack's start may end after collection (a run of scenario files only);
        the first call that has the stack and the tests builds, once.
        """
        info = self.info
        if info is None or not session.items or self._prepared:
            return
        self._prepared = True
        from harness.stack import services_of

        with self.phases.measure(READ_BACK):
            stack = self.shared(info)[0]
            stack.warm(services_of(info))
            self._import_test_modules(session.items)
        # What the run has built so far (the SDK's service models and clients, the plugin's
        # modules, the deploy's data) lives until the process ends. Moved out of the cyclic
        # collector's reach, it is not walked again by every collection during the tests, by
        # pytest's collections at its end, nor at interpreter exit (seconds on a busy machine).
        # What the tests create is collected (and its unraisable exceptions reported) as before.
        gc.freeze()

    def release_heap(self) -> None:
        """At the session's end: collect the tests' garbage once, then move what is left out of the collector's reach.

        pytest collects twice more when it unconfigures (to report unraisable
        exceptions), and the interpreter again as it exits: each walked every
        object the tests, the traces and the teardown made (a few hundred ms
        on a busy machine). The one collection here still runs the garbage's
        finalizers, and an exception in one still reaches pytest's hook and
        report; what is frozen lives until the process ends anyway. Called
        while the run waits for the late consumers (what the tests left, so
        the full collections while the traces are written no longer walk it)
        and after the teardown (what the session's end made).
        """
        if self._prepared:
            gc.collect()
            gc.freeze()

    def _import_test_modules(self, items: list[pytest.Item]) -> None:
        """Import now what every scenario imports on first use: the step runner, and the function logs of a traced run.

        Imported inside the first test, they cost it about 10 ms (pytest rewrites
        the plugin's modules as it imports them).
        """
        from harness.scenarios.collect import ScenarioItem

        if any(isinstance(item, ScenarioItem) for item in items):
            import harness.scenarios.runner  # noqa: F401
        if self.tracing is not None and self.tracing.active:
            import harness.function_logs  # noqa: F401

    def test_identity(self, item: pytest.Item) -> tuple[str, int]:
        """(unique id, Faker seed) of one test: scoped to run, worker and test."""
        return unique_for(self.run_id, self.worker_id, item.nodeid), seed_for(self.seed, item.nodeid)

    def scenario_runtime(self, item: pytest.Item) -> StepRuntime:
        """The runtime a YAML scenario item runs with."""
        from harness.scenarios.runtime import StepRuntime

        info = self.info
        if info is None:
            raise HarnessError(
                "this scenario needs the branch stack, but this session did not deploy it",
                hint="run it from an integration path, or with --stack on",
            )
        unique, seed = self.test_identity(item)
        stack, session, fake = self.shared(info)
        fake.seed_instance(seed)  # scenarios run one at a time per process
        endpoint = info["target"]["endpoint_url"]
        ctx = self.trace_contexts.get(item.nodeid)
        return StepRuntime(
            stack=stack,
            unique=unique,
            fake=fake,
            seed=seed,
            resolve_url=lambda url: to_emulator(url, endpoint),
            http=session,
            env=os.environ,
            trace=self.tracing.test_trace(ctx) if self.tracing is not None and ctx is not None else None,
            logs=self.function_logs(item.nodeid),
            listeners=self.event_listeners(),
        )

    # -- event listeners (made on first use, removed when the session ends) -----
    def event_listeners(self) -> Any:
        """This process's listeners on the stack (``None`` without a stack); made lazily, once."""
        info = self.info
        if info is None:
            return None
        if self._listeners is None:
            from harness.events.listeners import Listeners

            stack = self.shared(info)[0]
            owner = f"{self.run_id}-{self.worker_id}"
            self._listeners = Listeners(
                stack.client, stack=info["name"], tags=info["tags"], owner=owner, run_id=self.run_id
            )
        return self._listeners

    def close_listeners(self) -> None:
        """Remove this process's listeners (before the teardown's leak check); say what could not go."""
        listeners = self._listeners
        if listeners is None or not listeners.listeners:
            self._listeners = None
            return
        problems = listeners.close()  # should it raise, a later call tries again
        self._listeners = None
        for problem in problems:
            write(self.config, f"listener not removed: {problem}", red=True)

    # -- hooks both roles implement --------------------------------------------
    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.prepare(session)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """Keep this shard's tests (every process computes the same split)."""
        self.collected = [i.nodeid for i in items]
        workeroutput = getattr(config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput["branchstack_collected"] = self.collected  # harness.pytest.behaviour.COLLECTED
        shard = self.shard
        if not shard:
            return
        keep = [i for i in items if in_shard(i.nodeid, shard)]
        dropped = [i for i in items if not in_shard(i.nodeid, shard)]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = keep

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if self.info is not None:
            self.set_env(self.credential_env())  # refreshed before they expire
        ctx = self.tracing.begin(item.nodeid) if self.tracing is not None else None
        if ctx is not None:
            self.trace_contexts[item.nodeid] = ctx
            item.user_properties.append(("trace_id", ctx.trace_id))  # JUnit XML carries it

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
        report = yield
        ctx = self.trace_contexts.get(item.nodeid)
        if ctx is not None and self.tracing is not None:
            if report.failed:
                self._failed.add(item.nodeid)
            if report.when == "call" and report.failed:
                self._report_function_errors(item, report, ctx)
            if report.when == "teardown":
                failed = item.nodeid in self._failed
                outcome = "failed" if failed else ("skipped" if report.skipped else "passed")
                errors = self._function_errors.pop(item.nodeid, None)
                report.branchstack_trace = self.tracing.end(ctx, item.nodeid, outcome, errors)
                del self.trace_contexts[item.nodeid]
                self._failed.discard(item.nodeid)
        if report.failed and "fake" in getattr(item, "fixturenames", ()):
            unique, seed = self.test_identity(item)
            report.sections.append(
                ("branchstack", f"faker seed {seed} (unique id {unique}); repeat with --seed {self.seed}")
            )
        if self.info is not None and self.info.get("sensitive_outputs"):
            from harness.tagged.masking import mask_report, secrets_of

            mask_report(report, secrets_of(self.info))  # never shown, logged or written
        return report

    def _report_function_errors(self, item: pytest.Item, report: pytest.TestReport, ctx: TraceContext) -> None:
        """A failed test's function errors (type, message, log tail) as a section of its report."""
        from harness.function_errors import section

        assert self.tracing is not None
        info = self.info
        logs = (lambda: self.shared(info)[0].client("logs")) if info is not None else None
        errors = self.tracing.function_errors(ctx, logs)
        if errors:
            self._function_errors[item.nodeid] = errors
            report.sections.append(("branchstack: function errors", section(errors)))

    def function_logs(self, nodeid: str) -> Any:
        """The ``FunctionLogs`` of a running test's invocations (``None`` when traces are off)."""
        ctx = self.trace_contexts.get(nodeid)
        if self.tracing is None or ctx is None or self.info is None:
            return None
        info = self.info
        return self.tracing.function_logs(ctx, lambda: self.shared(info)[0].client("logs"))

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.restore_env()


def role_of(config: pytest.Config) -> Role | None:
    """The role object of this process (``None`` before configure, or when the settings were refused)."""
    return config.stash.get(ROLE_KEY, None)


ROLE_KEY = pytest.StashKey[Role]()
