"""The report's rows and explanations for start-up, the harness's own time, the cycle floor, the edit loop
and the test suite (``benchmarks.startup``, ``runner._own_time``, ``benchmarks.cycle``, ``benchmarks.loop``,
``benchmarks.suite``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

OWN_ROWS = (
    ("start-up", "start-up: process start to session start (interpreter, pytest, plugins, settings)"),
    ("plan", "plan: stage, stack name, run id"),
    ("fingerprint/lease", "fingerprint and lease (lease table, acquire)"),
    ("deploy step around the command", "deploy step around the command (existing stack, tags, read-back)"),
    (
        "checks after the deploy",
        "checks after the deploy (drift, fidelity, runtimes; the part the session waited for before its first test)",
    ),
    ("read-back", "read-back in the session (export, trace set-up, clients and Faker built)"),
    ("collection", "collection of the scenario files (beyond the part beside the stack's start)"),
    (
        "around the tests",
        "around the tests (pytest's protocol, the plugin's per-test hooks and fixtures, trace begin/end; "
        "phase minus the calls and the tests' own fixtures)",
    ),
    ("trace collection", "trace collection"),
    ("teardown + verification", "teardown + verification (delete, leak probe, lease release)"),
    ("emulator stop", "emulator stop"),
    ("report", "report (terminal summary)"),
    ("rest of session end", "rest of the session end (pytest's own finish, junit, cleanups)"),
    ("process exit and make", "process exit and `make`'s own start (wall minus the process's lifetime)"),
)


def rows(
    t: Any,
    S: dict[str, list[float]],
    targets: dict[str, float],
    results: dict[str, str | None],
    extra: dict[str, Any],
) -> None:
    """Add this module's rows to the results table ``t``."""
    t.lines.append("| **Free until needed**: a run that needs no stack, interleaved pairs | | | | | | |")
    results["import"] = t.row(
        "startup.plugin_import",
        "plugin's own import (`import harness.pytest.plugin` after `import pytest`)",
        "ms",
        target=f"<= {targets['import'] * 1000:.0f} ms",
        check=lambda v: v <= targets["import"],
    )
    t.row("startup.plugin_import_cpu", "the same import, CPU time (without waiting for a CPU)", "ms")
    t.row("startup.with_wall", "one-test unit run with the plugin (wall)")
    t.row("startup.without_wall", "the same with `-p no:branchstack` (wall)")
    results["unit_ratio"] = t.row(
        "startup.ratio_wall",
        "ratio with / without, wall (per pair)",
        "x",
        target=f"<= {targets['unit_ratio']:.2f}x",
        check=lambda v: v <= targets["unit_ratio"],
    )
    t.row("startup.ratio_cpu", "ratio with / without, CPU of the run (per pair)", "x")
    t.lines.append(
        "| **The harness's own time** in `make integration` (wall minus the deploy command, the emulator's "
        "boot and the tests' calls) | | | | | | |"
    )
    for key, label in OWN_ROWS:
        t.row(f"own.{key}", label)
    results["own"] = t.row(
        "own.total",
        "the harness's own time, total (sum of the rows above)",
        target=f"<= {targets['own']:.1f} s",
        check=lambda v: v <= targets["own"],
    )
    t.row("own.check", "the same, as wall - deploy command - emulator boot - tests' calls (cross-check)")
    t.row("own.tests' fixtures", "not in the rows: the tests' own fixtures (e.g. a function created and deleted)")
    t.lines.append(
        "| **The limit**: one whole cycle, fresh emulator and stack, the 4 reference scenarios, alternating | | | | | | |"
    )
    for step in (
        "emulator boot",
        "clients, bucket and artifact upload",
        "CreateStack",
        "scenario calls (with their clients)",
        "DeleteStack",
        "emulator stop",
    ):
        t.row(f"cycle.floor.{step}", f"floor: {step}")
    t.row("cycle.floor.total", "floor: the whole cycle (plain boto3, no CLI, no pytest)")
    t.row("cycle.floor.wall", "floor: its whole process (with Python start-up and imports)")
    t.row("cycle.harness_wall", "harness: `pytest <4 scenarios> --stack on`, whole process (wall)")
    t.row("cycle.ratio", "ratio, harness run / floor cycle (per round)", "x")
    t.row("cycle.ratio_wall", "ratio, harness run / floor's whole process (per round)", "x")
    t.lines.append(
        "| **The edit loop**: kept stack, one function's source changed, one scenario, alternating | | | | | | |"
    )
    t.row("loop.deploy_alone", "the deploy command alone after a change: `make deploy` (wall)")
    t.row(
        "loop.watch", "edit loop with `pytest <1 scenario> --stack on --watch`: the change (file saved) to the result"
    )
    t.row("loop.watch_deploy_inside", "of which the deploy command (an update)")
    results["loop"] = t.row(
        "loop.watch_over_deploy",
        "edit loop with `--watch` minus the deploy command alone (per round)",
        target=f"<= {targets['loop']:.1f} s",
        check=lambda v: v <= targets["loop"],
    )
    t.row("loop.edit_wall", "edit loop, one command a change: `pytest <1 scenario> --stack on --keep-stack` (wall)")
    t.row("loop.deploy_inside", "of which the deploy command (an update)")
    t.row(
        "loop.over_deploy",
        "edit loop, one command a change, minus the deploy command alone (per round; a fresh process: "
        "pytest's start-up and the AWS SDK's import come first)",
    )
    if S.get("suite.test") or S.get("suite.fast"):
        t.lines.append("| **The harness's own tests** | | | | | | |")
        results["suite_fast"] = t.row(
            "suite.fast",
            "`make test-fast` (unit + plugin tiers)",
            target="<= 30 s",
            check=lambda v: v <= 30.0,
        )
        t.row("suite.fast_cpu", "`make test-fast`: CPU of its whole process tree (user + system)")
        apart = (
            ": left out of this run, measured apart (see the end of this file)"
            if extra.get("make_test_left_out")
            else ""
        )
        results["suite"] = t.row(
            "suite.test",
            "`make test` (every tier but the corpus)",
            target="<= 4 min",
            check=lambda v: v <= 240.0,
            note=apart,
        )
        t.row("suite.test_cpu", "`make test`: CPU of its whole process tree (user + system; / 2 cores = its floor)")
        t.row("suite.load", "1-min load average when `make test` started", "n")


def explain(w: Callable[[str], None], res: Any, med: Callable[[str], float | None], misses: list[str]) -> None:
    """Where the time goes, for this module's missed targets (and the deploy command's profile)."""
    _s = lambda v: f"{v:.2f} s" if v >= 0.995 else f"{v * 1000:.0f} ms"  # noqa: E731
    if "import" in misses or "unit_ratio" in misses:
        prof = res.extra.get("import_profile") or {}
        w("### Free until needed")
        w("")
        w(
            "What `import harness.pytest.plugin` imports directly, cumulative milliseconds, one `-X importtime` "
            "run with pytest imported first (no boto3, Faker, YAML, scenario engine or traces among them: "
            "`tests/unit/test_plugin_import.py` fails if one comes back):"
        )
        w("")
        w("| module | ms |")
        w("|---|--:|")
        for name, ms in prof.items():
            w(f"| `{name}` | {ms:.1f} |")
        w("")
        hooks = res.extra.get("hook_profile") or []
        if hooks:
            w(
                "The plugin in the one-test run: its module's import and each hook pytest calls (with what it "
                "imports), cumulative milliseconds under cProfile (its overhead included; one run):"
            )
            w("")
            w("| entry point | ms |")
            w("|---|--:|")
            for name, ms in hooks:
                w(f"| `{name}` | {ms:.1f} |")
            w("")
    if "own" in misses:
        w("### The harness's own time")
        w("")
        w("Its rows, largest first (medians):")
        w("")
        found = [(label, med(f"own.{key}")) for key, label in OWN_ROWS]
        for label, v in sorted((x for x in found if x[1] is not None), key=lambda x: -x[1]):  # type: ignore[arg-type,return-value]
            w(f"- {label}: {_s(v)}")  # type: ignore[arg-type]
        w("")
    slow = res.extra.get("suite_slowest")
    if ("suite" in misses or "suite_fast" in misses) and slow:
        w("### The test suite")
        w("")
        w("The slowest test phases of that `make test` run (`--durations=15`; tests run two at a time):")
        w("")
        w("| seconds | phase | test |")
        w("|--:|---|---|")
        for sec, when, nodeid in slow:
            w(f"| {sec:.1f} | {when} | `{nodeid}` |")
        w("")
    if "loop" in misses:
        from benchmarks.loop import PARTS
        from benchmarks.runner import TARGET_LOOP

        watch_found = [(label, med(f"loop.watch_part.{key}")) for key, label in _watch_parts()]
        found = [(label, med(f"loop.part.{key}")) for key, label in PARTS]
        by_key = {key: v for (key, _), (_, v) in zip(PARTS, found, strict=True)}
        if any(v is not None for _, v in watch_found + found):
            w("### The edit loop")
            w("")
        _parts(w, _s, "With `--watch`: from the change to the result", watch_found)
        _parts(w, _s, "One command a change (a fresh process): its wall", found)
        call = med("loop.watch_part.test") or by_key["test"]
        if call is not None:
            w(
                f"The scenario's call (the changed function's cold start among it, which a loop without the harness "
                f"makes too) takes {_s(call)} of the {_s(TARGET_LOOP)} allowed; the rest is the harness's and pytest's."
            )
            w("")
    prof = res.extra.get("deploy_profile")
    if prof:
        w("### What the deploy command spends")
        w("")
        w(
            "One extra changed deploy (`make deploy` after a source edit, untimed above), its AWS CLI "
            "invocations timed one by one (`benchmarks/aws-timed`); then a second with `--debug`, whose "
            "time-stamped log gives each invocation's start-up (process start to its first log line) and the "
            "pauses of more than a second between its requests (waiters sleeping)."
        )
        w("")
        w(f"Whole command: {_s(prof['wall'])}.")
        w("")
        w("| AWS CLI invocation | seconds | start-up (debug run) | requests (debug run) | waiter sleeps |")
        w("|---|--:|--:|---|--:|")
        debug = {d["command"]: d for d in prof.get("debug") or []}
        total = 0.0
        for inv in prof.get("invocations") or []:
            d = debug.get(inv["command"], {})
            total += inv["seconds"]
            reqs = ", ".join(d.get("requests", [])[:8]) + (" ..." if len(d.get("requests", [])) > 8 else "")
            start = _s(d["startup"]) if "startup" in d else "-"
            sleep = _s(d["waiter_sleep"]) if "waiter_sleep" in d else "-"
            w(f"| `aws {inv['command']}` | {_s(inv['seconds'])} | {start} | {reqs} | {sleep} |")
        w("")
        w(
            f"The AWS CLI ran {len(prof.get('invocations') or [])} times for {_s(total)} of the command's "
            f"{_s(prof['wall'])}; the rest is `make` and the build (`pip`/`cp` of changed functions)."
        )
        w("")


def _parts(
    w: Callable[[str], None], _s: Callable[[float], str], what: str, found: list[tuple[str, float | None]]
) -> None:
    """One edit loop's parts besides the deploy command, as a list (nothing when none was measured)."""
    if not any(v is not None for _, v in found):
        return
    w(f"{what} besides the deploy command, split at the probe's stamps (medians, in order):")
    w("")
    for label, v in found:
        if v is not None:
            w(f"- {label}: {_s(v)}")
    w("")


def _watch_parts() -> tuple[tuple[str, str], ...]:
    from benchmarks.loop import WATCH_PARTS

    return WATCH_PARTS


def method(w: Callable[[str], None]) -> None:
    """How this module's rows are measured (bullets of the report's method section)."""
    w(
        "- Free until needed (`benchmarks/startup.py`): per round five interleaved pairs: a fresh interpreter "
        "timing `import harness.pytest.plugin` after `import pytest`, and `pytest` on one unit test with the "
        "plugin and with `-p no:branchstack` (the order alternates), wall and the child's CPU time; with compiled "
        "modules cached, as a `pip install` leaves them (the package is compiled and the pair run once, untimed, "
        "before the round)."
    )
    w(
        "- The harness's own time: from each `make integration` run's probe record. The lifecycle and the "
        "plugin time their phases (`harness/phases.py`: two clock reads per phase, never printed) and the probe "
        "reads them; the rest comes from the probe's stamps. Own time is the run's wall minus the deploy "
        "command, the emulator's boot and the tests' call phases; the cross-check row computes the same "
        "from the wall directly."
    )
    w(
        "- The limit (`benchmarks/cycle.py`): a script boots the emulator exactly as the harness does, uploads "
        "the packaged template's artifacts (read beforehand from the kept stack's bucket), creates the stack "
        "from the same packaged template by CreateStack (polled every 20 ms), makes the four scenarios' calls, "
        "deletes the stack and stops the emulator. Next to it, alternating, the harness runs the same four "
        "scenarios on a fresh emulator and a fresh stack (`pytest <4 scenarios> --stack on`)."
    )
    w(
        "- The edit loop (`benchmarks/loop.py`): on the kept stack, a comment with a fresh token is appended to "
        '`reference-stack/functions/get_order/app.py`, then `pytest "scenarios/orders.yaml::create then read an '
        'order" --stack on --keep-stack` runs (it redeploys, as the inputs changed); alternating with it, another '
        "fresh change and `make deploy` alone; and `pytest <the same scenario> --stack on --watch` started (its "
        "first run untimed), another fresh change, timed from the file written to the watch's line saying the run "
        "ended (the output read as it comes), then Ctrl-C to its process group. The order turns each round. The "
        "source is put back after each round and the stack re-synced by an untimed `harness deploy`."
    )
    w(
        "- The test suite (`benchmarks/suite.py`): after the rounds, `make test-fast` once per round (the median "
        "is the figure) and `make test` (with `--durations=15`) once, as a developer runs them."
    )
