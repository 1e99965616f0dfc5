"""The stack's start on a thread (harness.early_start) and the deploy command's cancel (harness.deploy).

The start's steps run on a thread; its lines, its failure handling and its
clean-up stay on the main thread, and a signal on the main thread stops the
steps as a Ctrl-C would have. Fakes stand in for the lifecycle; the cancel of
the deploy command uses a real process tree.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from harness import deploy
from harness.early_start import EarlyStart, Relay
from harness.errors import DeployError

MAIN = threading.main_thread()


class FakeTarget:
    died = None


class FakeLifecycle:
    """start_steps from a script; start_failed records where and with what it ran."""

    def __init__(self, steps: Any) -> None:
        self.steps = steps
        self.cancel = threading.Event()
        self.launched = threading.Event()
        self.described = threading.Event()
        self.info: Any = None
        self.target = FakeTarget()
        self.failed: list[tuple[BaseException, threading.Thread]] = []
        self.out: Any = None

    def start_steps(self) -> Any:
        return self.steps(self)

    def start_failed(self, exc: BaseException) -> BaseException:
        self.failed.append((exc, threading.current_thread()))
        return exc


def _lines() -> tuple[list[tuple[str, threading.Thread]], Relay]:
    written: list[tuple[str, threading.Thread]] = []
    relay = Relay(lambda line: written.append((line, threading.current_thread())))
    return written, relay


def test_the_steps_lines_are_written_by_the_main_thread_in_order() -> None:
    written, relay = _lines()

    def steps(lc: FakeLifecycle) -> dict[str, str]:
        for i in range(3):
            relay(f"line {i}")
        return {"name": "s"}

    start = EarlyStart(FakeLifecycle(steps), relay)
    assert start.wait() == {"name": "s"}
    assert [line for line, _ in written] == ["line 0", "line 1", "line 2"]
    assert all(thread is MAIN for _, thread in written)
    relay("after")  # once the start is over, lines pass straight through
    assert written[-1] == ("after", MAIN)


def test_a_held_line_goes_out_before_the_main_threads_own() -> None:
    written, relay = _lines()
    relay.holding = True
    t = threading.Thread(target=lambda: relay("from the deploy"))
    t.start()
    t.join(timeout=10)
    assert written == []
    relay("from the session")
    assert [line for line, _ in written] == ["from the deploy", "from the session"]


def test_a_failed_start_is_cleaned_up_and_raised_on_the_main_thread() -> None:
    _, relay = _lines()

    def steps(lc: FakeLifecycle) -> None:
        raise DeployError("the deploy of s failed")

    lc = FakeLifecycle(steps)
    with pytest.raises(DeployError, match="the deploy of s failed"):
        EarlyStart(lc, relay).wait()
    assert [(type(e), thread) for e, thread in lc.failed] == [(DeployError, MAIN)]


def _interrupted_at(line: str) -> tuple[FakeLifecycle, EarlyStart]:
    """A start whose steps say ``line``, then wait for the cancel; Ctrl-C lands as the main thread writes ``line``."""

    def write(said: str) -> None:
        if said == line:
            raise KeyboardInterrupt  # as if Ctrl-C landed while the main thread waited

    relay = Relay(write)

    def steps(lc: FakeLifecycle) -> None:
        relay(line)
        if not lc.cancel.wait(60):  # a hang guard: the cancel comes at once
            raise AssertionError("never cancelled")
        raise KeyboardInterrupt("stopped")

    lc = FakeLifecycle(steps)
    return lc, EarlyStart(lc, relay)


def test_an_interrupt_while_waiting_stops_the_steps_then_cleans_up() -> None:
    """Ctrl-C on the main thread sets the cancel event; the steps end; the clean-up runs; the interrupt goes on."""
    lc, start = _interrupted_at("deploying")
    with pytest.raises(KeyboardInterrupt):
        start.wait()
    assert lc.cancel.is_set() and start.done
    assert [(type(e), thread) for e, thread in lc.failed] == [(KeyboardInterrupt, MAIN)]


def test_stop_before_anything_waited_ends_the_start_as_interrupted() -> None:
    _, relay = _lines()

    def steps(lc: FakeLifecycle) -> None:
        if not lc.cancel.wait(60):
            raise AssertionError("never cancelled")
        raise KeyboardInterrupt("stopped")

    lc = FakeLifecycle(steps)
    start = EarlyStart(lc, relay)
    start.stop()
    with pytest.raises(KeyboardInterrupt):
        start.wait()
    assert [(type(e), thread) for e, thread in lc.failed] == [(KeyboardInterrupt, MAIN)]


def test_the_main_thread_goes_on_once_the_deploy_command_runs_and_can_still_stop_it(tmp_path: Path) -> None:
    """wait_launched returns while the command runs (the lines so far written); a stop then ends it and cleans up."""
    written, relay = _lines()
    log = tmp_path / "deploy.log"
    child = threading.Event()

    def steps(lc: FakeLifecycle) -> None:
        relay("lease taken")
        with deploy.cancelled_by(lc.cancel, launched=lc.launched):
            deploy.run_command(
                _sleeper(tmp_path),
                env=dict(os.environ),
                cwd=tmp_path,
                log_path=log,
                timeout=120,
                echo=lambda _: child.set(),
            )

    lc = FakeLifecycle(steps)
    start = EarlyStart(lc, relay)
    start.wait_launched()
    assert not start.done and [line for line, _ in written] == ["lease taken"]
    assert child.wait(60)  # a hang guard: the command has started its child
    start.stop()
    with pytest.raises(KeyboardInterrupt):
        start.wait()
    assert [(type(e), thread) for e, thread in lc.failed] == [(KeyboardInterrupt, MAIN)]
    pid = int(log.read_text().split()[1])  # the command's child: stopped with it
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_start_that_fails_before_its_command_is_left_to_wait_to_report() -> None:
    _, relay = _lines()

    def steps(lc: FakeLifecycle) -> None:
        raise DeployError("the lease table could not be made")

    lc = FakeLifecycle(steps)
    start = EarlyStart(lc, relay)
    start.wait_launched()  # returns: the start is over, nothing launched
    assert start.done and lc.failed == []
    with pytest.raises(DeployError, match="lease table"):
        start.wait()
    assert [(type(e), thread) for e, thread in lc.failed] == [(DeployError, MAIN)]


def test_an_interrupt_before_the_command_stops_the_steps_and_cleans_up() -> None:
    """Ctrl-C while the main thread waits for the launch: the steps are cancelled, the clean-up runs, it goes on."""
    lc, start = _interrupted_at("booting")
    with pytest.raises(KeyboardInterrupt):
        start.wait_launched()
    assert lc.cancel.is_set() and start.done and not start.relay.holding
    assert [(type(e), thread) for e, thread in lc.failed] == [(KeyboardInterrupt, MAIN)]


def _sleeper(tmp_path: Path) -> list[str]:
    script = tmp_path / "deploy.py"
    script.write_text(
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "print('child', child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    return [sys.executable, str(script)]


def test_a_cancelled_deploy_command_is_stopped_with_its_children(tmp_path: Path) -> None:
    cancel = threading.Event()
    log = tmp_path / "deploy.log"
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        cancel.set()  # the command is running (its child started): stop it

    with deploy.cancelled_by(cancel), pytest.raises(KeyboardInterrupt):
        deploy.run_command(_sleeper(tmp_path), env=dict(os.environ), cwd=tmp_path, log_path=log, timeout=120, echo=echo)
    pid = int(log.read_text().split()[1])
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_without_a_cancel_the_timeout_still_applies(tmp_path: Path) -> None:
    with deploy.cancelled_by(threading.Event()), pytest.raises(DeployError, match="did not finish within"):
        deploy.run_command(
            _sleeper(tmp_path), env=dict(os.environ), cwd=tmp_path, log_path=tmp_path / "deploy.log", timeout=0.5
        )


def test_every_check_runs_its_lines_keep_their_order_and_the_first_error_is_raised() -> None:
    from harness.errors import RuntimeMismatch
    from harness.lifecycle import checks_side_by_side

    ran: list[str] = []

    def fails(name: str, exc: Exception) -> Any:
        def check() -> list[str]:
            ran.append(name)
            raise exc

        return check

    def says(name: str) -> Any:
        def check() -> list[str]:
            ran.append(name)
            return [f"{name} said"]

        return check

    refused = RuntimeMismatch("1 function(s) cannot run on their declared runtime here")
    results = checks_side_by_side([says("drift"), fails("runtimes", refused), says("fidelity")])
    assert sorted(ran) == ["drift", "fidelity", "runtimes"]
    assert [lines for lines, _ in results] == [["drift said"], [], ["fidelity said"]]
    assert [err for _, err in results] == [None, refused, None]


def test_a_cancelled_start_stops_before_its_next_step(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The cancel event stops the steps at the next step boundary, as a Ctrl-C would: no deploy after it."""
    from harness import lifecycle as lifecycle_mod

    lc = object.__new__(lifecycle_mod.Lifecycle)
    lc.cancel = threading.Event()
    lc.cancel.set()
    with pytest.raises(KeyboardInterrupt):
        lc._cancel_point()
    with pytest.raises(KeyboardInterrupt):
        lc._sleep(60)  # the lease's wait ends at once


def test_the_checks_lines_come_in_order_and_a_refused_runtime_still_fails_the_start() -> None:
    """Side by side or not: drift's and fidelity's lines are said, then the runtime check's refusal is raised."""
    from harness import kinds
    from harness import lifecycle as lifecycle_mod
    from harness.deployment import Deployed
    from harness.errors import RuntimeMismatch

    said: list[str] = []
    lc = object.__new__(lifecycle_mod.Lifecycle)
    lc.out = said.append
    lc.deployed = Deployed(kind=kinds.CLOUDFORMATION)
    lc._drift_check = lambda: lambda: ["drift: IN_SYNC"]  # type: ignore[method-assign]
    lc._fidelity_check = lambda: lambda: ["fidelity: 1 feature(s) ..."]  # type: ignore[method-assign]

    def refused() -> list[str]:
        raise RuntimeMismatch("1 function(s) cannot run on their declared runtime here")

    lc._runtime_check = lambda: refused  # type: ignore[method-assign]
    with pytest.raises(RuntimeMismatch):
        lc._run_checks()
    assert said == ["drift: IN_SYNC", "fidelity: 1 feature(s) ..."]


class _Pages:
    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages

    def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
        return self.pages


class _Cfn:
    def __init__(self, exists: bool) -> None:
        self.exists = exists

    def get_paginator(self, name: str) -> _Pages:
        if not self.exists:
            raise RuntimeError("Stack with id s does not exist")
        rows = [
            {"LogicalResourceId": "Api", "PhysicalResourceId": "f-api", "ResourceType": "AWS::Lambda::Function"},
            {"LogicalResourceId": "Old", "PhysicalResourceId": "f-old", "ResourceType": "AWS::Lambda::Function"},
            {"LogicalResourceId": "Table", "PhysicalResourceId": "t", "ResourceType": "AWS::DynamoDB::Table"},
        ]
        return _Pages([{"StackResourceSummaries": rows}])


class _Lambda:
    def get_function_configuration(self, FunctionName: str) -> dict[str, str]:  # noqa: N803 - boto3's name
        return {"Runtime": "python3.9" if FunctionName == "f-old" else "python3.12"}

    def list_functions(self) -> dict[str, Any]:
        return {"Functions": [{"FunctionName": n, **self.get_function_configuration(n)} for n in ("f-api", "f-old")]}


def test_the_runtime_lookups_start_beside_the_deploy_for_the_functions_there_now(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from harness import runtime_check

    looked_up: list[str] = []
    monkeypatch.setattr(runtime_check, "cached", looked_up.append)
    runtime_check.warm_up(_Lambda(), _Cfn(exists=True), "s").join(timeout=60)
    assert looked_up == ["python3.12", "python3.9"]
    looked_up.clear()
    runtime_check.warm_up(_Lambda(), _Cfn(exists=False), "s").join(timeout=60)  # a first deploy: nothing to warm
    assert looked_up == []
    named = lambda: ["python3.13"]  # noqa: E731 - what the project's templates name
    runtime_check.warm_up(_Lambda(), _Cfn(exists=False), "s", named).join(timeout=60)
    assert looked_up == ["python3.13"]
    looked_up.clear()
    runtime_check.warm_up(_Lambda(), _Cfn(exists=True), "s", named).join(timeout=60)  # the stack's own, once there
    assert looked_up == ["python3.12", "python3.9"]


def test_a_skipped_deploy_lets_the_main_thread_go_on_before_the_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing launched (the fingerprint matched): ``launched`` is set once the deploy step is over, so collection
    runs beside the checks; it is not set before the deploy step."""
    from harness import lifecycle as lifecycle_mod
    from harness.phases import Phases

    seen: dict[str, bool] = {}
    lc = object.__new__(lifecycle_mod.Lifecycle)
    lc.cancel, lc.launched, lc.described, lc.phases, lc._warming, lc.lease = (
        threading.Event(),
        threading.Event(),
        threading.Event(),
        Phases(),
        None,
        None,
    )
    lc.settings, lc.env, lc.out = None, {}, lambda line: None

    class Kind:
        def check(self, settings: Any) -> None:
            pass

    class Skip:
        def run(self, owner: bool) -> dict[str, str]:
            seen["during deploy"] = lc.launched.is_set()
            return {"name": "s"}

    class Deployed:
        seconds = None

    lc.kind, lc.deployed, lc.timings = Kind(), Deployed(), lifecycle_mod.Timings()
    plan = type("P", (), {"stage": "s", "stack_name": "s", "branch": type("B", (), {"branch": "b", "source": "env"})})
    monkeypatch.setattr(lifecycle_mod, "make_plan", lambda settings, env: plan)
    for name in ("_start_target", "_fingerprint", "_warm_up_checks"):
        monkeypatch.setattr(lc, name, lambda *a, **k: None)
    monkeypatch.setattr(lc, "_acquire_lease", lambda: True)
    monkeypatch.setattr(lc, "_deployer", Skip)
    monkeypatch.setattr(
        lc, "_run_checks", lambda: seen.update(checks=lc.launched.is_set(), described=lc.described.is_set())
    )
    assert lc.start_steps() == {"name": "s"}
    assert seen == {"during deploy": False, "checks": True, "described": True}


# -- the emulator before the lifecycle ---------------------------------------------------------------------------

LAUNCH_PATH = """
import sys
from pathlib import Path
from harness import settings
from harness.early_start import begin_target
from harness.pytest.tracing import RunTracing

s = settings.resolve({}, {}, Path(sys.argv[1]))
target = begin_target(s, Path(sys.argv[1]) / "run", on_death=None, extra_env={})
sdk = sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore", "s3transfer"))
print(target._booting.launched.pid, target._booting.launched.proc.poll(), sdk)
target.stop()
"""


def test_the_emulator_is_launched_before_any_aws_sdk_is_imported(tmp_path: Path) -> None:
    """The session's start launches the emulator first, so boto3's import overlaps its boot."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", LAUNCH_PATH, str(tmp_path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    pid, poll, sdk = done.stdout.split(" ", 2)
    assert poll == "None"  # it was running (booting) when the SDK would have been imported
    assert sdk.strip() == "[]"
    assert not psutil.pid_exists(int(pid)) or psutil.Process(int(pid)).status() == psutil.STATUS_ZOMBIE


class BegunTarget:
    died = None

    def __init__(self) -> None:
        self.stopped = 0

    def stop(self, *, keep: bool = False) -> None:
        self.stopped += 1


def test_a_begun_emulator_is_stopped_quietly_when_the_plan_fails(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from harness import lifecycle
    from harness.errors import GuardError
    from harness.settings import resolve

    def refuse(*_: Any) -> Any:
        raise GuardError("no plan")

    monkeypatch.setattr(lifecycle, "make_plan", refuse)
    target, lines = BegunTarget(), []
    lc = lifecycle.Lifecycle(resolve({}, {}, tmp_path), out=lines.append, env={}, target=target)  # type: ignore[arg-type]
    with pytest.raises(GuardError):
        lc.start()
    assert target.stopped == 1
    assert not any("emulator" in line for line in lines)  # it was never the run's: nothing to say


def test_the_runtime_lookups_begin_only_once_the_deploy_command_is_launched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Their clients and calls are no part of the serial work before the command: they start after its launch."""
    from harness import lifecycle as lifecycle_mod
    from harness import runtime_check

    lc = object.__new__(lifecycle_mod.Lifecycle)
    lc.cancel, lc.launched, lc._closed = threading.Event(), threading.Event(), False
    lc.settings = type("S", (), {"target": "local"})()
    lc.plan = type("P", (), {"stack_name": "s"})()
    built, warmed = [], threading.Event()
    monkeypatch.setattr(lc, "client", lambda service: built.append(service) or service)
    monkeypatch.setattr(runtime_check, "warm_up", lambda lam, cfn, stack, named: warmed.set())
    lc._warm_up_checks()
    assert not warmed.wait(0.3) and built == []  # nothing before the launch
    lc.launched.set()
    assert warmed.wait(30) and built == ["lambda", "cloudformation"]


@pytest.mark.parametrize("keep_stack", [False, True])
def test_the_teardowns_clients_are_made_after_the_launch_unless_the_stack_is_kept(
    monkeypatch: pytest.MonkeyPatch, keep_stack: bool
) -> None:
    """Made while the deploy command runs, they are no part of the run's end; a kept stack has no teardown."""
    from harness import lifecycle as lifecycle_mod
    from harness import runtime_check

    lc = object.__new__(lifecycle_mod.Lifecycle)
    lc.cancel, lc.launched, lc._closed = threading.Event(), threading.Event(), False
    lc.settings = type("S", (), {"target": "local", "drift_check": False, "keep_stack": keep_stack})()
    lc.plan = type("P", (), {"stack_name": "s"})()
    warmed: list[str] = []
    done = threading.Event()
    lc.ops = type("Ops", (), {"warm": lambda self, services: warmed.extend(services)})()
    monkeypatch.setattr(lc, "client", lambda service: service)
    monkeypatch.setattr(runtime_check, "warm_up", lambda lam, cfn, stack, named: done.set())
    lc._warm_up_checks()
    assert not done.wait(0.2) and warmed == []  # nothing before the launch
    lc.launched.set()
    assert done.wait(30)
    deadline = time.monotonic() + 30
    while not keep_stack and not warmed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert warmed == ([] if keep_stack else list(lifecycle_mod.TEARDOWN_SERVICES))


def _described_then_checked(check: Any) -> tuple[FakeLifecycle, EarlyStart, threading.Event, list[Any]]:
    """A start that describes its stack, then runs ``check`` once ``go`` is set (its lines said on the thread)."""
    written: list[Any] = []
    relay = Relay(written.append)
    go = threading.Event()

    def steps(lc: FakeLifecycle) -> dict[str, str]:
        relay("stack s: 3 resources")
        lc.info = {"name": "s"}
        lc.described.set()
        if not go.wait(60):  # a hang guard: the test lets the checks go
            raise AssertionError("the checks never ran")
        for line in check():
            relay(line)
        return lc.info

    lc = FakeLifecycle(steps)
    return lc, EarlyStart(lc, relay), go, written


def test_the_stack_is_handed_over_while_its_checks_still_run_and_their_lines_come_before_the_tests() -> None:
    lc, start, go, written = _described_then_checked(lambda: ["drift: IN_SYNC"])
    assert start.wait_described() == {"name": "s"}  # the checks have not run: the session goes on meanwhile
    assert written == ["stack s: 3 resources"] and not start.done
    go.set()
    assert start.wait() == {"name": "s"}
    assert written == ["stack s: 3 resources", "drift: IN_SYNC"]
    assert lc.failed == []


def test_a_check_that_refuses_the_run_after_the_stack_was_handed_over_still_fails_and_cleans_up() -> None:
    from harness.errors import RuntimeMismatch

    def refused() -> list[str]:
        raise RuntimeMismatch("1 function(s) cannot run on their declared runtime here")

    lc, start, go, _ = _described_then_checked(refused)
    start.wait_described()
    go.set()
    with pytest.raises(RuntimeMismatch):
        start.wait()
    assert [(type(e), thread) for e, thread in lc.failed] == [(RuntimeMismatch, MAIN)]


def test_a_start_that_fails_before_its_stack_is_described_is_reported_by_the_wait_for_it() -> None:
    _, relay = _lines()

    def steps(lc: FakeLifecycle) -> None:
        raise DeployError("the deploy of s failed")

    lc = FakeLifecycle(steps)
    with pytest.raises(DeployError, match="the deploy of s failed"):
        EarlyStart(lc, relay).wait_described()
    assert [(type(e), thread) for e, thread in lc.failed] == [(DeployError, MAIN)]


def test_a_start_stopped_after_the_emulator_died_is_not_waited_for_while_its_checks_retry() -> None:
    """The stack was handed over, its checks still call the emulator; it dies and the session stops the start:
    the wait ends at once and cleans up (a check's call to the dead endpoint can retry for a minute)."""
    lc, start, go, _ = _described_then_checked(lambda: [])  # ``go`` never set: the checks never end on their own
    start.wait_described()
    lc.target.died = "SIGKILL"  # type: ignore[assignment]
    start.stop()  # returns at once: the emulator is gone
    with pytest.raises(KeyboardInterrupt):
        start.wait()
    assert [(type(e), thread) for e, thread in lc.failed] == [(KeyboardInterrupt, MAIN)]
    go.set()  # let the thread end


def test_the_drift_check_uses_the_client_made_while_the_deploy_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness import drift
    from harness import lifecycle as lifecycle_mod

    made: list[str] = []
    lc = object.__new__(lifecycle_mod.Lifecycle)
    lc.settings = type("S", (), {"drift_check": True})()
    lc.plan, lc.info, lc.target = type("P", (), {"stack_name": "s"})(), None, None
    lc.ops = type("Ops", (), {"client": lambda self, service, config=None: made.append(service) or "new client"})()
    monkeypatch.setattr(drift, "detect", lambda cfn, name, identity=None: (f"drift: IN_SYNC via {cfn}", []))
    lc._drift_client = "made ahead"
    assert lc._drift_check()() == ["drift: IN_SYNC via made ahead"] and made == []
    lc._drift_client = None  # none made ahead (not on the emulator): one of its own
    assert lc._drift_check()() == ["drift: IN_SYNC via new client"] and made == ["cloudformation"]


AFTER_LAUNCH = (
    "harness.drift",
    "harness.fidelity",
    "harness.leaks",
    "harness.retained",
    "harness.tagged.deployment",
    "harness.tagged.teardown",
    "harness.teardown",
)


def test_what_runs_after_the_deploy_command_is_imported_after_its_launch_or_beside_it() -> None:
    """The lifecycle's import (on the way to the launch) leaves out the checks after the deploy, the teardowns
    and the tagged kind; they are imported where used, or while the session waits for its stack."""
    import subprocess

    from harness import prewarm

    code = f"import sys, harness.lifecycle; print(sorted(m for m in {AFTER_LAUNCH!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert {"harness.drift", "harness.fidelity", "harness.teardown"} <= set(prewarm.AFTER_DEPLOY)
