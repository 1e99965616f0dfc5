"""The edit loop on a kept stack, and where the deploy command's own time goes.

Each round, in alternating order, on the stack kept by ``harness deploy``:

* **edit loop**: change one function's source (a comment line with a fresh
  token in ``reference-stack/functions/get_order/app.py``), then
  ``pytest "scenarios/orders.yaml::create then read an order" --stack on --keep-stack``:
  the harness finds the inputs changed, runs ``make deploy`` (an update), and
  runs the scenario; timed from command to result (the process's wall time);
* **the deploy command alone**: another fresh change, then ``make deploy``
  straight from the shell with the environment the harness gives it.

The source is put back after each round and the kept stack re-synced with an
untimed ``harness deploy``, so the other measurements keep skipping the deploy.

The deploy's profile (an extra, untimed run of the command alone): the AWS CLI
runs through ``benchmarks/aws-timed``, which logs each invocation's start and
end and, with ``--debug``, the time of each request, so the report can say
how much is CLI start-up, how much requests and how much waiter sleeping.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Iterator
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


def _deploy_env(bench: Any, extra: dict[str, str] | None = None) -> dict[str, str]:
    from benchmarks.runner import clean_env

    assert bench.stack_name and bench.endpoint
    tags = bench._stack_tags()
    return clean_env(
        {
            "STAGE": bench.stack_name.split("-", 1)[1],
            "STACK_NAME": bench.stack_name,
            "HARNESS_STACK_TAGS": " ".join(f"{k}={v}" for k, v in sorted(tags.items()) if k not in ("app", "stage")),
            "AWS_ENDPOINT_URL": bench.endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            **(extra or {}),
        }
    )


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


def _deploy_alone(bench: Any, k: int) -> float | None:
    r = bench._run(f"make-deploy-changed-{k}", ["make", "deploy"], _deploy_env(bench))
    return r.wall if r.ok else None


def measure_round(bench: Any, k: int) -> None:
    """One edit-loop sample and one deploy-alone sample, alternating which goes first; then re-sync."""
    from benchmarks.runner import HARNESS, ROOT

    got: dict[str, float | None] = {}
    with edited_source(ROOT) as edit:
        for which in ("loop", "alone") if k % 2 else ("alone", "loop"):
            edit()
            got[which] = _edit_loop(bench, k) if which == "loop" else _deploy_alone(bench, k)
    bench._run(f"resync-kept-{k}", [HARNESS, "deploy"], bench.kept_env)  # untimed: back to the original source
    # untimed: the re-deployed functions' cold starts, so the next round's harness/floor pair meets warm ones
    bench._floor(f"rewarm-{k}")
    loop, alone = got["loop"], got["alone"]
    bench.res.add("loop.edit_wall", loop)
    bench.res.add("loop.deploy_alone", alone)
    if loop is not None and alone is not None:
        bench.res.add("loop.over_deploy", loop - alone)


def profile_deploy(bench: Any) -> dict[str, Any] | None:
    """One untimed changed deploy, the CLI timed and its requests logged: where the command's time goes."""
    from benchmarks.runner import HARNESS, ROOT

    log = bench.work / "aws-timed.log"
    debug = bench.work / "aws-debug"
    env = _deploy_env(bench, {"BENCH_AWS_LOG": str(log), "BENCH_AWS_DEBUG": str(debug)})
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
