"""The branch-stack lifecycle, as a plain object the plugin and the CLI drive. It only orchestrates.

::

    plan (harness.plan) -> start target (harness.targets) -> fingerprint -> lease (harness.lease)
      -> deploy or skip (harness.deployment) -> drift and fidelity reports -> [tests]
      -> teardown + leak check (harness.teardown) -> stop target

``close()`` is idempotent and safe after any failure: whatever was started is
stopped, whatever this run created is deleted, and every leftover is reported
at once.
"""

from __future__ import annotations

import contextlib
import functools
import shlex
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness import boto_sessions, deploy, environment, fingerprint, kinds, ownership, phases, procs, tags
from harness import lease as lease_mod
from harness.aws_errors import AWS_ERRORS, aws_error
from harness.deployment import Deployed
from harness.errors import EmulatorDied, GuardError, HarnessError
from harness.lease import Lease
from harness.plan import Plan, make_plan
from harness.settings import Settings
from harness.stack import StackInfo, TargetInfo
from harness.stackops import StackOps
from harness.targets import Target, make_target

if TYPE_CHECKING:  # needed after the deploy command has launched (imported meanwhile: harness.prewarm)
    from harness.teardown import TeardownReport

Out = Callable[[str], None]
#: The clients the start builds before its deploy command on the emulator: the deployer's, the runtime lookups'
#: (the lease is in the emulator's own files there: harness.lease_store).
BEFORE_DEPLOY_SERVICES = ("cloudformation", "lambda")
#: The clients the teardown uses besides the tests' (which it adopts: ``adopt_clients``): the listener sweep's
#: tag lookup and the leak probe's for the types most stacks have. Made while the deploy command runs on
#: the emulator; a service a stack does not need costs a few ms of CPU there, one it needs beyond these is made
#: when first used.
TEARDOWN_SERVICES = ("resourcegroupstaggingapi", "iam", "logs", "apigateway")
#: How long the teardown waits for the leak probe's first look (look_before_teardown) before it deletes anyway.
FIRST_LOOK_WAIT = 20.0
Shard = tuple[tuple[int, int] | None, str | None]


@dataclass
class Timings:
    emulator: float | None = None
    deploy: float | None = None
    teardown: float | None = None


def checks_side_by_side(checks: Sequence[Callable[[], list[str]]]) -> list[tuple[list[str], BaseException | None]]:
    """Run every check, each on its own thread; (lines, error) of each, in the order given.

    Daemon threads (``procs.start_thread``): a session that ends while a check still retries a call to an
    emulator that died does not wait for it at exit, as it would for a thread pool's workers.
    """
    Result = tuple[list[str], BaseException | None]

    def run(check: Callable[[], list[str]]) -> Result:
        try:
            return check(), None
        except Exception as exc:  # noqa: BLE001 - raised by the caller, in order
            return [], exc

    if len(checks) <= 1:
        return [run(c) for c in checks]
    results: list[Result] = [([], None)] * len(checks)

    def run_at(i: int) -> None:
        results[i] = run(checks[i])

    threads = [procs.start_thread(functools.partial(run_at, i), f"harness-check-{i}") for i in range(len(checks))]
    for thread in threads:
        thread.join()
    return results


class Lifecycle:
    """One run's branch stack: start, deploy, describe, tear down."""

    def __init__(
        self,
        settings: Settings,
        *,
        out: Out = print,
        env: Mapping[str, str] | None = None,
        on_emulator_death: Callable[[EmulatorDied], None] | None = None,
        echo_deploy: bool = True,
        target_env: Mapping[str, str] | None = None,
        shard: Shard = (None, None),
        keeper: str = ownership.KEEP_STACK_KEEPER,
        target: Target | None = None,
    ) -> None:
        self.settings = settings
        #: the target, already begun (harness.early_start.begin_target): the start starts it, not another
        self._begun_target = target
        self.kind = kinds.kind_for(settings)  # what the deploy leaves: stacks or tagged resources
        self.keeper = keeper  # who keeps the stack and emulator (named to later runs)
        self.target_env = dict(target_env or {})
        self.env = environment.snapshot() if env is None else dict(env)
        self.out = out
        self.on_emulator_death = on_emulator_death
        self.echo_deploy = echo_deploy
        self.shard = shard
        self.run_dir = settings.report_dir
        self.plan: Plan | None = None
        self.target: Target | None = None
        self.ops: StackOps | None = None
        self.info: StackInfo | None = None
        self.deployed = Deployed()
        self.timings = Timings()
        self.phases = phases.Phases()  # the run's own time by phase, for benchmarks (never printed)
        self.teardown_report: TeardownReport | None = None
        self.interrupted_by: list[int] = []  # signals held while tearing down
        self.lease: Lease | None = None
        self.fingerprint: str | None = None
        self.fingerprint_files = 0
        self.drift: tuple[str, list[str]] | None = None
        self.runtime_mismatches: list[str] = []
        self._lease_held = False
        self._force_delete = False
        self._closed = False
        #: set (from another thread) to stop a start running off the main thread: see start_steps
        self.cancel = threading.Event()
        self._warming: threading.Thread | None = None  # see _warm
        self._drift_client: Any = None  # see _warm_up_checks
        self._first_look: Callable[[], set[str] | None] | None = None  # see look_before_teardown
        #: set once the deploy command's process has started, or the deploy step is over (harness.early_start)
        self.launched = threading.Event()
        #: set once the stack is deployed (or skipped) and read back (:attr:`info`): the checks after it may still run
        self.described = threading.Event()

    @property
    def deploy_skipped(self) -> bool:
        return self.deployed.skipped

    def client(self, service: str) -> Any:
        assert self.ops is not None, "the target is started"
        return self.ops.client(service)

    def identity(self) -> str | None:
        """Who the run works as (aws target), for messages."""
        return getattr(self.target, "identity", None)

    def process_env(self) -> dict[str, str | None]:
        """How the test process's environment changes to work as the run's identity (None: remove)."""
        own = getattr(self.target, "process_env", None)
        return own() if own is not None else {}

    # -- start -----------------------------------------------------------
    def start(self) -> StackInfo:
        """Plan, start the target, take the lease, deploy (or skip), read the stack. Cleans up on failure."""
        try:
            return self.start_steps()
        except BaseException as exc:
            err = self.start_failed(exc)
            if err is exc:
                raise
            raise err from None

    def start_steps(self) -> StackInfo:
        """The steps of :meth:`start` without its clean-up; may run off the main thread (harness.early_start).

        Between steps, and while the deploy command runs or the lease waits, a set
        :attr:`cancel` raises KeyboardInterrupt here, as a Ctrl-C would on the main thread.
        """
        measure = self.phases.measure
        with measure(phases.PLAN):
            self.kind.check(self.settings)
            self.plan = p = make_plan(self.settings, self.env)
            self.out(f"stage {p.stage!r} from branch {p.branch.branch!r} ({p.branch.source}) -> stack {p.stack_name}")
        with measure(phases.TARGET):
            self._start_target(attach_only=False)
        self._cancel_point()
        with measure(phases.FINGERPRINT_LEASE):
            if self._warming is not None:
                self._warming.join()
            self._fingerprint()
            owner = self._acquire_lease()
        self._cancel_point()
        self._warm_up_checks()
        with measure(phases.DEPLOY), deploy.cancelled_by(self.cancel, launched=self.launched):
            self.info = self._deployer().run(owner=owner)
            self.timings.deploy = self.deployed.seconds
            if owner and self.lease is not None:
                self.lease.deployed()
        self.launched.set()  # a skipped deploy launches nothing: the checks left mostly wait on the target
        self.described.set()  # the session may use the stack while the checks run (harness.early_start)
        self._cancel_point()
        with measure(phases.CHECKS):
            self._run_checks()
        return self.info

    def start_failed(self, exc: BaseException) -> BaseException:
        """Say what failed, then clean up (main thread: the teardown holds signals); returns what to raise."""
        if isinstance(exc, HarnessError):
            # Say what failed before the cleanup it causes.
            self.out(exc.render())
            exc.reported = True  # type: ignore[attr-defined]
            err: BaseException = exc
        elif isinstance(exc, AWS_ERRORS):
            err = aws_error(exc, identity=self.identity())
            self.out(err.render())
            err.reported = True  # type: ignore[attr-defined]
        else:
            err = exc
        self._deploy_failed()
        self.close(failed=True)
        return err

    def _cancel_point(self) -> None:
        if self.cancel.is_set():
            raise KeyboardInterrupt("the run was stopped while its stack was starting")

    def _sleep(self, seconds: float) -> None:
        """The lease's wait between attempts; a cancel ends it at once."""
        if self.cancel.wait(seconds):
            self._cancel_point()

    def _start_target(self, *, attach_only: bool) -> None:
        assert self.plan is not None
        started = time.monotonic()
        if attach_only:
            self.target = make_target(self.settings, self.run_dir, attach_only=True)
        elif self._begun_target is not None:
            self.target, self._begun_target = self._begun_target, None
        else:
            self.target = make_target(
                self.settings, self.run_dir, on_death=self.on_emulator_death, extra_env=self.target_env
            )
        ownership.set_keeper(self.target, self.keeper)
        if not attach_only and self.settings.target == "local":
            self.target.begin()  # type: ignore[attr-defined]  # (done already if begun early: harness.early_start)
            if not self.target.attached:  # type: ignore[attr-defined]  # it boots: parse the models meanwhile
                self._warming = procs.start_thread(self._warm, "harness-warm")  # joined before the first client
        target_info = self.target.start()
        for line in ownership.swept(self.target):
            self.out(line)
        self.ops = StackOps(self.settings, self.plan, self.target, target_info, self.env, self.run_dir, self.out)
        if not attach_only:  # a target begun earlier booted meanwhile: its own figure
            self.timings.emulator = getattr(self.target, "boot_seconds", None) or time.monotonic() - started
            self.out(f"target: {self.target.describe()}")

    def _warm(self) -> None:
        """While the emulator boots: what the clients built before the deploy command parse (harness.boto_sessions)."""
        boto_sessions.warm(BEFORE_DEPLOY_SERVICES, self.settings.region)

    def _fingerprint(self) -> None:
        assert self.plan is not None
        s = self.settings
        self.fingerprint, self.fingerprint_files = fingerprint.compute(
            s.root,
            s.fingerprint_paths,
            extra=[shlex.join(s.deploy_command or ()), self.plan.stack_name, self._region(), s.target],
            excluded=[*s.integration_paths, str(s.report_dir)],
        )

    def _region(self) -> str:
        return self.ops.target_info["region"] if self.ops is not None else self.settings.region

    def _deployer(self) -> kinds.DeployJob:
        assert self.ops is not None and self.target is not None
        return self.kind.deployer(
            self.ops,
            self.deployed,
            fingerprint=self.fingerprint,
            fingerprint_files=self.fingerprint_files,
            check_target=self.target.check,
            echo=self._echo if self.echo_deploy else None,
        )

    def _run_checks(self) -> None:
        """Drift, fidelity and runtimes, side by side (each mostly waits on the target), said in that order.

        Every check runs to its end; then their lines are written, and the first
        error in that order is raised (a refused runtime fails the run as before).
        """
        checks: list[Callable[[], list[str]]] = []
        if self.deployed.kind == kinds.CLOUDFORMATION:  # reports on the template and its stack
            checks += [self._drift_check(), self._fidelity_check()]
        checks.append(self._runtime_check())
        results = checks_side_by_side(checks)
        for lines, _ in results:
            for line in lines:
                self.out(line)
        for _, error in results:
            if error is not None:
                raise error

    def _warm_up_checks(self) -> None:
        """On the emulator: the runtime check's lookups start beside the deploy command (harness.runtime_check)."""
        if self.settings.target != "local" or self.plan is None:
            return
        from harness import runtime_check

        stack, launched, s = self.plan.stack_name, self.launched, self.settings

        def named() -> list[str]:  # a first deploy: the runtimes its templates name
            return runtime_check.project_runtimes(s)

        def once_launched() -> None:
            # After the command's launch: its clients and lookups are no part of the work before it.
            while not launched.wait(0.5):
                if self._closed:  # the start ended before any launch
                    return
            if not self.cancel.is_set() and not self._closed:
                from harness import drift

                with contextlib.suppress(Exception):  # only a head start: the check itself reports
                    runtime_check.warm_up(self.client("lambda"), self.client("cloudformation"), stack, named)
                    if s.drift_check and self.ops is not None:  # the drift check's own client, ready when it starts
                        self._drift_client = self.ops.client("cloudformation", config=drift.CLIENT_CONFIG)
                    if not s.keep_stack and self.ops is not None:  # the teardown's, not made at the run's end
                        self.ops.warm(TEARDOWN_SERVICES)

        procs.start_thread(once_launched, "harness-runtime-warm-up-wait")

    def _drift_check(self) -> Callable[[], list[str]]:
        """Resources changed outside CloudFormation (reported, never fatal)."""
        if not self.settings.drift_check or self.plan is None:
            return list
        from harness import drift

        stacks = (self.info or {}).get("stacks") or [self.plan.stack_name]
        assert self.ops is not None
        # Drift is news, never a failure: two attempts, not the full retry budget of every other call.
        # Made while the deploy command ran (see _warm_up_checks), else here: boto3 sessions are not thread-safe
        # (StackOps makes clients one at a time), its clients are.
        cfn = self._drift_client or self.ops.client("cloudformation", config=drift.CLIENT_CONFIG)
        identity = self.identity()

        def check() -> list[str]:
            found = [(name, *drift.detect(cfn, name, identity=identity)) for name in stacks]
            if len(found) == 1:
                summary, drifted = found[0][1], found[0][2]
            else:  # a stack set: each stack's drift, named
                summary = "; ".join(f"{name}: {s.removeprefix('drift: ')}" for name, s, _ in found)
                summary = f"drift: {summary}"
                drifted = [f"{name}: {line}" for name, _, lines in found for line in lines]
            self.drift = (summary, drifted)
            return [summary + "".join(f"\n  {line}" for line in drifted)]

        return check

    def _fidelity_check(self) -> Callable[[], list[str]]:
        """The features of the set's templates the embedded emulator does not reproduce (before the tests run)."""
        if self.settings.target != "local" or self.ops is None:
            return list
        from harness import fidelity

        ops, info = self.ops, self.info or {}
        members = ops.members or [(ops.plan.stack_name, ops.plan.stack_name)]
        cfn = self.client("cloudformation")
        one = len(members) == 1 and "resource_types" in info and len(info.get("stacks") or ()) <= 1
        # A one-stack app's resources were read right after its deploy: the same list, not read again.
        resources = fidelity.summaries(info["resources"], info["resource_types"]) if one else None

        def check() -> list[str]:
            found = fidelity.check_set(cfn, members, ops.template, resources, fidelity.definitions(self.client))
            block = fidelity.report(found)
            return [block] if block else []

        return check

    def _runtime_check(self) -> Callable[[], list[str]]:
        """On the emulator: which functions do not run on their declared runtime (or refuse them)."""
        if self.settings.target != "local" or self.info is None:
            return list
        from harness import runtime_check

        lam, info, mode = self.client("lambda"), self.info, self.settings.runtime_mismatch

        def check() -> list[str]:
            self.runtime_mismatches = runtime_check.lines(runtime_check.check(lam, info, mode))
            return list(self.runtime_mismatches)

        return check

    def _acquire_lease(self) -> bool:
        """Join the stack's lease; True if this run is the one to deploy."""
        assert self.plan is not None
        shard, group = self.shard
        self.lease = Lease(
            lease_mod.store_for(self.target, lambda: self.client("dynamodb")),
            self.plan.stack_name,
            self.plan.run_id,
            fingerprint=self.fingerprint,
            shard=shard,
            group=group,
            out=self.out,
            sleep=self._sleep,
        )  # the lease table is made by the first acquire that finds none
        decision = self.lease.acquire(wait=float(self.settings.lease_wait), force_deploy=self.settings.redeploy)
        if self.settings.redeploy and not decision.deploy:
            self.out("lease: --redeploy ignored: other runs are using the stack right now")
        self._lease_held = True
        if decision.note:
            self.out(f"lease: {decision.note}")
        watched = self.keeper == ownership.WATCH_KEEPER == (self.lease.kept_by or {}).get("by")
        if self.lease.kept_by and not self._force_delete and not watched:  # (a watch's runs: its own stack)
            self.out(ownership.kept_stack_line(self.plan.stack_name, self.lease.kept_by))
        if decision.waited >= 1:
            self.out(f"lease: waited {decision.waited:.1f}s for another run")
        return decision.deploy

    def _deploy_failed(self) -> None:
        if self.lease is not None and self._lease_held and not self._emulator_dead():
            try:
                self.lease.deploy_failed()
            except Exception:  # noqa: BLE001 - the teardown below still runs
                pass

    def _echo(self, line: str) -> None:
        # Progress bars redraw with carriage returns: show the final state only.
        line = line.rsplit("\r", 1)[-1].rstrip()
        if line:
            self.out(f"  | {line}")

    # -- destroy ---------------------------------------------------------
    def destroy(self) -> TeardownReport:
        """Remove this branch's stack (``harness destroy``), kept or not, and a kept emulator."""
        self.plan = make_plan(self.settings, self.env)
        self._start_target(attach_only=True)
        assert self.target is not None
        ownership.adopt(self.target)  # `harness destroy` removes a kept emulator too
        self._force_delete = True
        try:
            desc = deploy.stack_status(self.client("cloudformation"), self.plan.stack_name)
            leases = lease_mod.store_for(self.target, lambda: self.client("dynamodb"))
            held = lease_mod.read_state(leases, self.plan.stack_name)
        except AWS_ERRORS as exc:
            self.close()
            raise aws_error(exc, identity=self.identity()) from None
        if held is not None:
            held.prune(time.time())
        if desc is None:
            if self.kind.name != kinds.TAGGED:  # a tagged deploy is found by its tags, in the teardown
                self.out(f"stack {self.plan.stack_name} does not exist")
        elif not tags.is_managed(tags.tag_dict(desc)):
            self.close()
            raise GuardError(
                f"stack {self.plan.stack_name} is not managed by the harness (no {tags.MANAGED_BY} tag); "
                "refusing to delete it"
            )
        elif held is not None and held.held_by() is not None:
            self._closed = True  # nothing is torn down: the target is left as found
            assert self.target is not None
            self.target.stop(keep=True)
            raise GuardError(
                f"stack {self.plan.stack_name} is in use: {held.held_by()}; refusing to delete it under them",
                hint="let that run finish (the last one out tears the stack down); a run that died drops "
                f"out of the lease within {lease_mod.LEASE_SECONDS:.0f}s",
            )
        report = self.close()
        if self.settings.target != "local" and not report.leftovers and not report.errors:
            # The lease of a stack that is gone would make the next runs believe it is there.
            lease_mod.clear_unheld(leases, self.plan.stack_name, time.time())
        return report

    # -- close -----------------------------------------------------------
    def close_steps(self) -> list[Callable[[], object]]:
        """Steps that make the clients the teardown and its leak probe use, to run while the run waits anyway.

        The trace collection waits for the tests' late consumers: making the
        clients then (see ``Collector.wait_quiet``'s ``meanwhile``) takes them
        out of the teardown. Only clients (and the delete's waiter model) are
        made, no call is sent; a step not run leaves its part to be made when
        first used.
        """
        if self.ops is None or self._closed or self._emulator_dead():
            return []
        services = ["cloudformation", "dynamodb"]
        ops = self.ops
        waiter: list[Callable[[], object]] = []
        if not self.settings.keep_stack:
            from harness import leaks

            types = (self.info or {}).get("resource_types", {})
            services += ["resourcegroupstaggingapi", *leaks.services_for(types)]
            waiter.append(lambda: ops.client("cloudformation").get_waiter("stack_delete_complete"))
        return [*(functools.partial(ops.client, service) for service in dict.fromkeys(services)), *waiter]

    def look_before_teardown(self) -> None:
        """Start the leak probe's first look at the stack's resources (``leaks.not_seen``) on a thread, while
        the session's end waits anyway (its trace collection); the teardown waits for it before its delete.

        Only where the run will most likely delete the one stack it read back (not kept, one stack, alive).
        """
        info = self.info
        if (
            self._first_look is not None
            or self.ops is None
            or not info
            or not info.get("resources")
            or len(info.get("stacks") or ()) > 1
            or self.deployed.kind != kinds.CLOUDFORMATION
            or self.settings.keep_stack
            or self._closed
            or self._emulator_dead()
        ):
            return
        from harness import leaks

        ops, listing = self.ops, self.settings.target == "local"
        resources, types = dict(info["resources"]), dict(info.get("resource_types") or {})
        seen: list[set[str] | None] = [None]

        def look() -> None:
            with contextlib.suppress(Exception):  # only a first look: the probe after the delete reports errors
                workers = leaks.FIRST_LOOK_WORKERS_LOCAL if listing else leaks.PROBE_WORKERS
                seen[0] = leaks.not_seen(ops.client, resources, types, listing=listing, workers=workers)

        thread = procs.start_thread(look, "harness-leak-first-look")

        def not_seen() -> set[str] | None:
            thread.join(FIRST_LOOK_WAIT)
            return None if thread.is_alive() else seen[0]  # unfinished: every resource is probed as before

        self._first_look = not_seen

    def adopt_clients(self, target: TargetInfo, clients: Mapping[str, Any]) -> None:
        """The tests' clients, made ahead for the same target, serve the teardown's probes too (no second set)."""
        if self.ops is not None:
            self.ops.adopt(target, clients)

    def close(self, *, failed: bool = False, alongside: Callable[[], None] | None = None) -> TeardownReport:
        """Tear down (unless kept), verify, stop the target. Idempotent.

        ``alongside``: work that needs none of the stack (writing the run's trace files) to run on a thread
        while the teardown and the stop mostly wait on the target; done before the report directory's files
        are masked. It must not raise (it reports its own errors).
        """
        from harness.teardown import TeardownReport

        if self._closed:
            if alongside is not None:
                alongside()
            return self.teardown_report or TeardownReport()
        self._closed = True
        beside = procs.start_thread(alongside, "harness-report-files") if alongside is not None else None
        if self._begun_target is not None:  # begun, never started (the plan failed): nothing of the run is on it
            self._begun_target.stop()
            self._begun_target = None
        report = TeardownReport()
        self.teardown_report = report
        try:
            with procs.signals_held(self.out, into=self.interrupted_by), self.phases.measure(phases.TEARDOWN):
                self._teardown(report)
        finally:
            if self.target is not None:
                keep = report.kept and not self._emulator_dead()
                with self.phases.measure(phases.TARGET_STOP):
                    self.target.stop(keep=keep)
                if ownership.left_as_found(self.target):
                    self.out(
                        "the watch's emulator left running for its next run"
                        if self.keeper == ownership.WATCH_KEEPER
                        else "kept emulator left running, as found"
                    )
                elif not keep and self.settings.target == "local":
                    self.out(
                        "emulator stopped" if not self._emulator_dead() else "emulator's remaining processes stopped"
                    )
            if beside is not None:
                with self.phases.measure(phases.TRACES):
                    beside.join()
            self._mask_reports()  # after the emulator's last log line and the files written alongside
        return report

    def _mask_reports(self) -> None:
        """Sensitive outputs never stay in a file of the report directory (see harness.tagged.masking)."""
        if self.info is not None and self.info.get("sensitive_outputs"):
            from harness.tagged.masking import mask_files, secrets_of
            from harness.targets.local import SCRATCH_DIR

            for path in mask_files(self.run_dir, secrets_of(self.info), exclude=(SCRATCH_DIR,)):
                self.out(f"warning: {path} could not be checked for sensitive output values")

    def _emulator_dead(self) -> bool:
        return self.target is not None and self.target.died is not None

    def _teardown(self, report: TeardownReport) -> None:
        if self.plan is None or self.ops is None:
            return
        if self._emulator_dead():
            report.errors.append("the emulator died; its state (and the stack) went with it")
            return
        held, self._lease_held = self._lease_held, False
        job = self.kind.teardown(
            self.ops,
            self.deployed,
            info=self.info,
            lease=self.lease,
            lease_held=held,
            force=self._force_delete,
            keeper=self.keeper,
            not_seen=self._first_look,
        )
        job.run(report)
        if job.seconds is not None:
            self.timings.teardown = job.seconds

    def raise_for_teardown(self) -> None:
        """Raise one TeardownError listing every leftover and error, if any."""
        if self.teardown_report is not None:
            self.teardown_report.raise_for_leftovers()
