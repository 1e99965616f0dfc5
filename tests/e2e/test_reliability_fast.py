"""The fast rows of the reliability matrix (``reliability/``, ``docs/reliability.md``) as assertions.

Each test runs one case of the matrix with small counts (the ``--quick``
profile): real pytest sessions of the harness in throw-away projects, on
MiniStack emulators started by the case or by the harness, stopped by pid
afterwards. The full matrix is ``make reliability`` (``python -m reliability``).
The signal cases (2, 3, 4) share one emulator and one timed undisturbed session
(the module's ``rig``), so they run one after another on one xdist worker.

* 1: an exception at a random point (3 of the 16 kinds of points): nothing leaks, the exit is non-zero;
* 2: SIGINT in the deploy, the tests and the teardown: nothing leaks, the exit is non-zero, nothing hangs;
* 3: SIGTERM during a session: the deletion is issued before the follow-up SIGKILL, nothing leaks;
* 4: SIGKILL in each phase: the next run or ``harness gc`` removes what the kill left, at once;
* 6: the emulator killed mid-run: the session fails within 10 s, no stray process;
* 7: bad input, in four parts: malformed scenarios, invalid settings, bad deploy commands, hostile branch names;
* 8: secrets in the environment reach no output, log, JUnit file or report;
* 9: every listening socket of the session's process tree is on loopback.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from reliability.__main__ import run_case
from reliability.cases import c07_bad_input as c07
from reliability.cases import c08_secrets as c08
from reliability.support import CaseResult, Ctx, SignalRig, signal_rig

pytestmark = pytest.mark.e2e


def _ctx(base: Path) -> Ctx:
    base.mkdir(parents=True)
    return Ctx(base=base, rng=random.Random(20240601), quick=True, log=lambda line: None)


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Ctx]:
    c = _ctx(tmp_path / "reliability")
    try:
        yield c
    finally:
        c.registry.cleanup()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignalRig]:
    """One endpoint emulator and one calibrated busy project for the signal cases (2, 3 and 4).

    Each case started its own emulator and timed the phases with an undisturbed session of its
    own; every signalled run is cleaned up before the next, so they follow each other on one.
    """
    c = _ctx(tmp_path_factory.mktemp("signals") / "rig")
    try:
        yield signal_rig(c, "signals", 0)
    finally:
        c.registry.cleanup()


@pytest.fixture
def signals(ctx: Ctx, rig: SignalRig) -> Ctx:
    ctx.rig = rig
    return ctx


def _explain(r: CaseResult) -> str:
    return f"{r.result}; {r.figure}\n" + "\n".join(f"  - {n}" for n in r.notes)


def test_an_exception_anywhere_leaks_nothing(ctx: Ctx) -> None:
    r = run_case(1, ctx, 3)
    assert r.data["leaked"] == 0 and r.data["strays"] == 0, _explain(r)
    assert r.data["zero_exit"] == 0, _explain(r)
    assert r.ok, _explain(r)


def test_sigint_in_deploy_tests_and_teardown_leaks_nothing_and_exits_non_zero(signals: Ctx) -> None:
    r = run_case(2, signals, 3)  # one run aimed at each phase
    assert r.data["leaked"] == 0 and r.data["hung"] == 0, _explain(r)
    assert r.data["zero_exit"] == 0, _explain(r)
    assert r.ok, _explain(r)


def test_sigkill_in_each_phase_is_recovered_by_the_next_run_or_gc(signals: Ctx) -> None:
    r = run_case(4, signals, 3)  # one kill in each phase; the next run or harness gc cleans up
    assert r.data["leaked_after_sweep"] == 0 and r.data["gc_needed"] == 0, _explain(r)
    assert r.ok, _explain(r)


def test_sigterm_issues_the_deletion_before_the_sigkill(signals: Ctx) -> None:
    r = run_case(3, signals, 1)
    assert r.data["not_issued"] == 0, _explain(r)
    assert r.data["leaked"] == 0, _explain(r)
    assert r.ok, _explain(r)


def test_emulator_death_ends_the_session_fast_and_leaves_no_process(ctx: Ctx) -> None:
    r = run_case(6, ctx, 1)
    assert r.data["hung"] == 0 and r.data["slow"] == 0, _explain(r)
    assert r.data["strays"] == 0, _explain(r)
    assert r.data["zero"] == 0, _explain(r)
    assert r.ok, _explain(r)


def test_malformed_scenarios_are_named_file_line_and_the_stack_still_torn_down(ctx: Ctx) -> None:
    notes: list[str] = []
    ok, summary = c07.malformed(ctx, ctx.emulator(), notes)
    assert ok, f"{summary}: {notes}"


def test_invalid_settings_are_refused_before_anything_starts(ctx: Ctx) -> None:
    notes: list[str] = []
    ok, summary = c07.bad_settings(ctx, True, notes)
    assert ok, f"{summary}: {notes}"


def test_missing_or_hanging_deploy_command_fails_cleanly(ctx: Ctx) -> None:
    notes: list[str] = []
    ok, summary = c07.deploy_commands(ctx, ctx.emulator(), True, notes)
    assert ok, f"{summary}: {notes}"


def test_hostile_branch_names_are_never_executed(ctx: Ctx) -> None:
    notes: list[str] = []
    ok, summary = c07.branch_names(ctx, ctx.emulator(), True, notes)
    assert ok, f"{summary}: {notes}"  # includes: no canary file was ever created
    assert "canary files 0" in summary, summary


def test_environment_secrets_reach_no_output_log_or_report(ctx: Ctx) -> None:
    notes: list[str] = []
    hits, _exposed, _n = c08.env_secrets(ctx, notes)
    assert hits == [], notes


def test_a_password_in_the_endpoint_url_is_not_printed(ctx: Ctx) -> None:
    notes: list[str] = []
    assert c08.url_password(ctx, notes) == [], notes


def test_every_listening_socket_is_on_loopback(ctx: Ctx) -> None:
    r = run_case(9, ctx, 1)
    assert r.data["exposed"] == [], _explain(r)
    assert r.data["seen"] >= 1, _explain(r)  # the emulator's own listener was observed
    assert r.ok, _explain(r)
