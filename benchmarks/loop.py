"""The edit loop on a kept stack, and where the deploy command's own time goes.

Each round, in alternating order, on the stack kept by ``harness deploy``:

* **edit loop**: change one function's source (a comment line with a fresh
  token in ``reference-stack/functions/get_order/app.py``), then
  ``pytest "scenarios/orders.yaml::create then read an order" --stack on --keep-stack``:
  the harness finds the inputs changed, runs ``make deploy`` (an update), and
  runs the scenario; timed from command to result (the process's wall time);
* **the deploy command alone**: another fresh change, then ``make deploy``
  straight from the shell with the environment the harness gives it;
* **the watch**: ``pytest "scenarios/orders.yaml::create then read an order"
  --stack on --watch`` started (its first run untimed), then another fresh
  change; timed from the change (the file written) to the watch's line saying
  the run it started ended; then Ctrl-C to its process group, as a terminal
  sends it.

The source is put back after each round and the kept stack re-synced with an
untimed ``harness deploy``, so the other measurements keep skipping the deploy.

The deploy's profile (an extra, untimed run of the command alone): the AWS CLI
runs through ``benchmarks/aws-timed``, which logs each invocation's start and
end and, with ``--debug``, the time of each request, so the report can say
how much is CLI start-up, how much requests and how much waiter sleeping.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

EDITED = Path("reference-stack/functions/get_order/app.py")
SCENARIO = "scenarios/orders.yaml::create then read an order"
AWS_TIMED = Path(__file__).resolve().parent / "aws-timed"


@contextmanager
def edited_source(root: Path) -> Iterator[Any]:
    """Yield ``edit()``, which appends a fresh comment to the function's source; put back on exit."""
    path = root / EDITED
    original = path.read_bytes()

    def edit() -> None:
        path.write_bytes(original + f"# benchmark edit {secrets.token_hex(4)}\n".encode())

    try:
        yield edit
    finally:
        path.write_bytes(original)


def _edit_loop(bench: Any, k: int) -> float | None:
    env, path = bench._probe_env(bench.kept_env, f"edit-loop-{k}")
    r = bench._run(f"edit-loop-{k}", bench._pytest("--stack", "on", "--keep-stack", "-q", SCENARIO), env)
    p = bench._probe(path)
    if not (r.ok and bench._check_probe(f"edit loop {k}", p, 1)):
        return None
    assert p is not None
    if (p.get("harness") or {}).get("deploy_skipped"):
        bench.res.failures.append(f"edit loop {k}: the deploy was skipped after a source change")
        return None
    bench.res.add("loop.deploy_inside", (p.get("harness") or {}).get("deploy"))
    for key, seconds in parts(p, r.wall).items():
        bench.res.add(f"loop.part.{key}", seconds)
    return r.wall


#: Where an edit loop's time goes besides the deploy command, in order (keys of :func:`parts`).
PARTS = (
    ("startup", "process start to `pytest_configure` (interpreter, pytest and its plugins, the plugin's import)"),
    (
        "to_ready",
        "configure to the stack read back, minus the deploy command (boto3 and the lifecycle imported, "
        "plan, lease, the stack read, the command's launch, read-back)",
    ),
    ("to_test", "stack read back to the first test's start (the checks after the deploy it waits for, clients)"),
    ("test", "the scenario's call (with the changed function's cold start)"),
    ("end", "last test's end to `pytest_unconfigure` (trace collection, the kept stack's lease, report)"),
    ("exit", "process exit (wall minus the process's lifetime)"),
)


def parts(p: dict[str, Any], wall: float) -> dict[str, float]:
    """The edit loop's wall, split at the probe's stamps (``PARTS``); the deploy command is left out."""
    deploy = (p.get("harness") or {}).get("deploy") or 0.0
    ready = p.get("stack_ready")
    if ready is None or p.get("first_start") is None:
        return {}
    return {
        "startup": p["configure"] - p["process_start"],
        "to_ready": ready - p["configure"] - deploy,
        "to_test": p["first_start"] - ready,
        "test": p.get("call_seconds") or 0.0,
        "end": p["unconfigure"] - p["last_end"],
        "exit": wall - (p["unconfigure"] - p["process_start"]),
    }


class Watching:
    """``pytest ... --watch`` in its own process group, each output line stamped (``time.time()``, the probe's
    clock) as it comes."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, cwd: Path) -> None:
        self.lines: list[tuple[float, str]] = []
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(  # noqa: S603 - argv list
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509 - Ctrl-C as in a terminal
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with open(self.log, "w") as log:
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.lines.append((time.time(), line))
                log.write(line + "\n")

    def count(self, needle: str) -> int:
        return sum(needle in line for _, line in self.lines)

    def wait_for(self, needle: str, count: int, timeout: float) -> float | None:
        """When the ``count``-th line holding ``needle`` came; None if the watch ended or the time ran out first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            found = [at for at, line in self.lines if needle in line]
            if len(found) >= count:
                return found[count - 1]
            time.sleep(0.005)
        return None

    def stop(self) -> int | None:
        """Ctrl-C to its process group; its exit code (None: it had to be killed)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            return None
        finally:
            self._reader.join(timeout=10)


ENDED = "branchstack watch: run ended in"
WATCHING = "branchstack watch: watching"


def _watch_loop(bench: Any, k: int, edit: Callable[[], None]) -> float | None:
    from benchmarks.runner import ROOT

    env, path = bench._probe_env(bench.kept_env, f"watch-{k}")
    bench.n_run += 1
    label = f"watch-{k}"
    w = Watching(
        bench._pytest("--stack", "on", "--watch", "-q", SCENARIO),
        env,
        bench.work / "logs" / f"{bench.n_run:03d}-{label}.log",
        ROOT,
    )
    changed_at = None
    try:
        if w.wait_for(WATCHING, 1, bench.mode.timeout) is None:
            bench.res.failures.append(f"{label}: the watch's first run did not end (log {w.log})")
            return None
        path.unlink(missing_ok=True)  # the timed run's probe, not the first run's
        edit()
        changed_at = time.time()
        ended_at = w.wait_for(ENDED, 2, bench.mode.timeout)
    finally:
        code = w.stop()
    if ended_at is None or changed_at is None or code != 0:
        bench.res.failures.append(f"{label}: the run after the change did not end well (exit {code}; log {w.log})")
        return None
    p = bench._probe(path)
    if not bench._check_probe(label, p, 1):
        return None
    assert p is not None
    if (p.get("harness") or {}).get("deploy_skipped"):
        bench.res.failures.append(f"{label}: the deploy was skipped after a source change")
        return None
    seconds = ended_at - changed_at
    bench.say(f"  {label}: change to result {seconds:.2f}s")
    bench.res.add("loop.watch_deploy_inside", (p.get("harness") or {}).get("deploy"))
    for key, part in watch_parts(p, changed_at, ended_at).items():
        bench.res.add(f"loop.watch_part.{key}", part)
    return seconds


#: Where a watched run's time goes besides the deploy command, in order (keys of :func:`watch_parts`).
WATCH_PARTS = (
    ("to_run", "the change to the run's start (the watcher's batching of the change, the fork)"),
    (
        "startup",
        "the run's start to `pytest_configure` (pytest's configuration; imports and installed packages read before)",
    ),
    (
        "to_ready",
        "configure to the stack read back, minus the deploy command (plan, lease, the stack read, the "
        "command's launch, read-back)",
    ),
    *PARTS[2:-1],
    ("exit", "`pytest_unconfigure` to the watch's line saying the run ended (the run's exit)"),
)


def watch_parts(p: dict[str, Any], changed_at: float, ended_at: float) -> dict[str, float]:
    """A watched run's time from the change to its result, split at the probe's stamps; the deploy command left out."""
    inner = parts(p, 0.0)
    if not inner or p.get("process_start") is None:
        return {}
    inner.pop("exit")
    return {"to_run": p["process_start"] - changed_at, **inner, "exit": ended_at - p["unconfigure"]}


def _deploy_alone(bench: Any, k: int) -> float | None:
    r = bench._run(f"make-deploy-changed-{k}", ["make", "deploy"], bench.deploy_env())
    return r.wall if r.ok else None


def measure_round(bench: Any, k: int) -> None:
    """One sample each of the edit loop, the deploy command alone and the watch, in an order that turns each round;
    then re-sync."""
    from benchmarks.runner import HARNESS, ROOT

    got: dict[str, float | None] = {}
    order = ("loop", "alone", "watch")
    with edited_source(ROOT) as edit:
        for which in order[k % 3 :] + order[: k % 3]:
            if which == "watch":
                got[which] = _watch_loop(bench, k, edit)
                continue
            edit()
            got[which] = _edit_loop(bench, k) if which == "loop" else _deploy_alone(bench, k)
    bench._run(f"resync-kept-{k}", [HARNESS, "deploy"], bench.kept_env)  # untimed: back to the original source
    # untimed: the re-deployed functions' cold starts, so the next round's harness/floor pair meets warm ones
    bench._floor(f"rewarm-{k}")
    loop, alone, watch = got["loop"], got["alone"], got["watch"]
    bench.res.add("loop.edit_wall", loop)
    bench.res.add("loop.deploy_alone", alone)
    bench.res.add("loop.watch", watch)
    if loop is not None and alone is not None:
        bench.res.add("loop.over_deploy", loop - alone)
    if watch is not None and alone is not None:
        bench.res.add("loop.watch_over_deploy", watch - alone)


def profile_deploy(bench: Any) -> dict[str, Any] | None:
    """One untimed changed deploy, the CLI timed and its requests logged: where the command's time goes."""
    from benchmarks.runner import HARNESS, ROOT

    log = bench.work / "aws-timed.log"
    debug = bench.work / "aws-debug"
    env = bench.deploy_env({"BENCH_AWS_LOG": str(log), "BENCH_AWS_DEBUG": str(debug)})
    with edited_source(ROOT) as edit:
        edit()
        r = bench._run("make-deploy-profiled", ["make", "deploy", f"AWS={AWS_TIMED}"], env)
        # the same again without --debug (its logging is slow): the invocations' own wall times
        log_plain = bench.work / "aws-timed-plain.log"
        edit()
        r2 = bench._run(
            "make-deploy-timed",
            ["make", "deploy", f"AWS={AWS_TIMED}"],
            {**env, "BENCH_AWS_LOG": str(log_plain), "BENCH_AWS_DEBUG": ""},
        )
    bench._run("resync-kept-profile", [HARNESS, "deploy"], bench.kept_env)
    if not (r.ok and r2.ok):
        return None
    return {"wall": r2.wall, "invocations": _invocations(log_plain), "debug": _debug_profile(log, debug)}


def _invocations(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text().splitlines():
        start, end, rc, *cmd = line.split()
        out.append({"command": " ".join(cmd), "seconds": float(end) - float(start), "rc": int(rc)})
    return out


_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - MainThread - (\S+) - DEBUG - (.*)$")


def _debug_profile(log: Path, debug: Path) -> list[dict[str, Any]]:
    """Per invocation: start-up (process start to the first log line), requests, and the pauses between them."""
    rows = []
    for line in log.read_text().splitlines():
        start, end, _rc, *cmd = line.split()
        stamps: list[tuple[float, str]] = []
        path = debug.parent / f"{debug.name}.{start}"
        for text in path.read_text(errors="replace").splitlines() if path.exists() else []:
            m = _STAMP.match(text)
            if m:
                when = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                stamps.append((when, m.group(3)))
        if not stamps:
            continue
        requests = [(w, t.split("name=", 1)[1].split(")", 1)[0]) for w, t in stamps if t.startswith("Making request")]
        sleeps = sum(b[0] - a[0] for a, b in zip(requests, requests[1:], strict=False) if b[0] - a[0] > 1.0)
        rows.append(
            {
                "command": " ".join(cmd),
                "seconds": float(end) - float(start),
                "startup": stamps[0][0] - float(start),
                "requests": [name for _, name in requests],
                "waiter_sleep": sleeps,
            }
        )
    return rows
