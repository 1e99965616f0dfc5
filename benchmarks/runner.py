"""The benchmark: every measurement in one run, side by side, then docs/benchmarks.md.

Layout of a run (``python -m benchmarks``; ``--quick`` for a smoke run)::

    make setup (untimed) -> harness deploy: a kept stack on a kept emulator (untimed)
      [-> harness deploy --target endpoint: an identical traces-off twin stack on
          the same emulator, while the plugin has no setting to turn traces off]
      -> warm-up (untimed): harness subset, floor, a small -n 2 run
      -> R rounds, each one sample of every measurement, pairs in alternating order:
           make integration                 (fresh emulator and stack, own report folder)
           harness subset <-> floor          (kept stack)
           unchanged make deploy             (kept stack)
           400 scenarios -n 0 <-> 200 -n 2   (kept stack; the twin if -n 2 fails there)
           traces on <-> off                 (a setting, or kept stack vs twin)
      -> profiles of missed targets (extra, untimed runs)
      -> harness destroy of the twin and the kept stack (always)
      -> docs/benchmarks.md

Nothing here asserts a timing: targets are reported as met or missed. The run
exits non-zero only when a measured command itself failed (a failing scenario,
a failed deploy), because then its figures mean nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import gen, loop, procs, profiles, report, startup, suite
from benchmarks.procs import VENV_BIN, Run, run

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(VENV_BIN / "python")
HARNESS = str(VENV_BIN / "harness")

#: The reference scenarios both the harness and the floor run (scenarios/orders.yaml).
SUBSET = (
    "create then read an order",
    "missing customer is rejected",
    "unknown order is not found",
    "every created order is audited once through the stream",
)

TARGET_RATIO = 1.10
TARGET_IMPORT = 0.030  # the plugin's own import, seconds
TARGET_UNIT_RATIO = 1.05  # a one-test unit run with the plugin / without it
TARGET_OWN = 1.0  # the harness's own seconds in a make integration
TARGET_LOOP = 1.0  # edit loop: seconds over the deploy command alone
TARGET_SPEEDUP = 1.5
TARGET_TRACES = 0.05


_HYPOTHESIS_DIR: list[Path] = []


@functools.cache
def integration_plugins() -> tuple[str, ...]:
    """The pytest plugins `make integration` loads, autoloading off (the Makefile's INTEGRATION_PLUGINS).

    The harness's runs here are measured as that job runs them: the project's dev environment also holds
    report plugins (pytest-html, allure-pytest) that no stack session of it loads.
    """
    m = re.search(r"^INTEGRATION_PLUGINS :?= (.+)$", (ROOT / "Makefile").read_text(), re.M)
    if m is None:
        raise SystemExit("Makefile: no INTEGRATION_PLUGINS line (the integration job's pytest plugins)")
    return tuple(m.group(1).split())


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The measured commands' environment (see ``procs.clean_env``), with a private hypothesis database."""
    return procs.clean_env(extra, hypothesis_dir=_HYPOTHESIS_DIR[0] if _HYPOTHESIS_DIR else None)


@dataclass(frozen=True)
class Mode:
    name: str
    rounds: int
    parallel: int  # scenarios in the -n 0 / -n 2 comparison
    growth: tuple[int, ...]  # scenario counts of the growth series (-n 0); the largest is run
    timeout: float
    traces: int = 50  # scenarios of the traces on/off comparison (-n 0)


FULL = Mode("full", rounds=5, parallel=200, growth=(50, 100, 200, 400), timeout=900.0)
QUICK = Mode("quick", rounds=1, parallel=20, growth=(10, 20, 40), timeout=600.0, traces=20)


@dataclass
class Results:
    """Every sample, by measurement key; plus what the report needs besides numbers."""

    samples: dict[str, list[float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, key: str, value: float | None) -> None:
        if value is not None:
            self.samples.setdefault(key, []).append(float(value))


def _start_end(p: dict[str, Any]) -> float:
    """When the session had its stack: the stack's start runs on a thread from session start, beside
    collection (older records: collection began after it)."""
    return p.get("stack_ready") or p["collection_start"]


def _collection_beyond_start(p: dict[str, Any]) -> float:
    """Collection's wall time outside the stack's start (the part beside it costs the run nothing)."""
    ready = p.get("stack_ready")
    whole = p["collection_end"] - p["collection_start"]
    if not ready:
        return whole
    beside = max(0.0, min(p["collection_end"], ready) - max(p["collection_start"], p["sessionstart"]))
    return whole - beside


class Bench:
    def __init__(self, mode: Mode, work: Path, out: Path, log: Callable[[str], None]) -> None:
        self.mode = mode
        self.work = work
        self.out = out
        self.say = log
        self.res = Results()
        token = secrets.token_hex(3)
        self.kept_dir = work / "kept"
        self.kept_branch = f"bench-{token}-kept"
        self.fresh_branch = f"bench-{token}-fresh"
        self.kept_env = clean_env({"HARNESS_REPORT_DIR": str(self.kept_dir), "HARNESS_BRANCH": self.kept_branch})
        # The traces-off twin: an identical stack on the same emulator, reached as
        # target=endpoint (which has no trace source, so collection is off).
        self.twin_dir = work / "twin"
        self.twin_env: dict[str, str] = {}
        # Where the generated scenarios run: the kept stack, or the twin when -n 2 fails there.
        self.parallel_env: dict[str, str] = {}
        self.parallel_on = "kept"
        self.stack_name: str | None = None
        self.endpoint: str | None = None
        self.emulator_pid: int | None = None
        self.n_run = 0
        self.gen_dir = work / "generated" / "scenarios"
        self.started = time.monotonic()
        self.with_suite = True  # make test-fast once a round and make test once, after the rounds
        self.with_parallel = True  # the -n 0 / -n 2, growth and traces on/off sessions
        self.with_make_test = True

    # -- helpers ----------------------------------------------------------------
    def _run(self, label: str, argv: list[str], env: dict[str, str], *, timeout: float | None = None) -> Run:
        self.n_run += 1
        log = self.work / "logs" / f"{self.n_run:03d}-{label}.log"
        r = run(argv, cwd=ROOT, env=env, log=log, timeout=timeout or self.mode.timeout)
        state = "ok" if r.ok else f"FAILED (exit {r.returncode}; log {log})"
        self.say(f"  {label}: {r.wall:.1f}s {state}")
        if not r.ok:
            self.res.failures.append(f"{label}: exit {r.returncode}, log {log}")
        return r

    def _probe_env(self, env: dict[str, str], label: str, **extra: str) -> tuple[dict[str, str], Path]:
        path = self.work / "probe" / f"{self.n_run + 1:03d}-{label}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        # The kept emulator's pid: the probe reads its CPU (an endpoint target does not know it).
        kept = env.get("HARNESS_REPORT_DIR") in (str(self.kept_dir), str(self.twin_dir))
        pid = {"BENCH_EMULATOR_PID": str(self.emulator_pid)} if self.emulator_pid and kept else {}
        return {**env, "BENCH_PROBE_OUT": str(path), **pid, **extra}, path

    @staticmethod
    def _probe(path: Path) -> dict[str, Any] | None:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def _pytest(self, *args: str) -> list[str]:
        plugins = ["--disable-plugin-autoload", *(x for name in integration_plugins() for x in ("-p", name))]
        return [PYTHON, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), *plugins, "-p", "benchmarks.probe", *args]

    def _subset_args(self) -> list[str]:
        return [f"scenarios/orders.yaml::{name}" for name in SUBSET]

    def _check_probe(self, label: str, probe: dict[str, Any] | None, expect_tests: int | None = None) -> bool:
        if probe is None:
            self.res.failures.append(f"{label}: the probe wrote nothing (did pytest start?)")
            return False
        bad = {k: v for k, v in probe.get("outcomes", {}).items() if k != "passed"}
        if bad or (expect_tests is not None and probe.get("tests") != expect_tests):
            self.res.failures.append(f"{label}: outcomes {probe.get('outcomes')} (expected {expect_tests} passed)")
            return False
        return True

    # -- set-up -----------------------------------------------------------------
    def setup(self) -> None:
        self.say("setup: make setup (untimed)")
        r = self._run("make-setup", ["make", "setup"], clean_env(), timeout=900)
        if not r.ok:
            raise SystemExit(f"make setup failed; log {r.log}")
        self.res.extra["settings"] = self._settings()
        self.say(f"setup: harness deploy of the kept stack ({self.kept_branch}, untimed)")
        r = self._run("harness-deploy-kept", [HARNESS, "deploy"], self.kept_env)
        if not r.ok:
            raise SystemExit(f"harness deploy failed; log {r.log}")
        text = r.text()
        m = re.search(r"export HARNESS_STACK_NAME=(\S+)", text)
        e = re.search(r"export AWS_ENDPOINT_URL=(\S+)", text)
        if not (m and e):
            raise SystemExit(f"could not read the kept stack from {r.log}")
        self.stack_name, self.endpoint = m.group(1), e.group(1)
        state = json.loads((self.kept_dir / "emulator.json").read_text())
        self.emulator_pid = int(state["pid"])
        self.res.extra["kept"] = {"stack": self.stack_name, "endpoint": self.endpoint, "pid": self.emulator_pid}
        self.parallel_env = self.kept_env
        if self.with_parallel and self.trace_switch() is None and self.traces_in_plugin():
            self.say("setup: the traces-off twin stack, target endpoint on the same emulator (untimed)")
            self.twin_env = clean_env(
                {
                    "HARNESS_REPORT_DIR": str(self.twin_dir),
                    "HARNESS_BRANCH": self.kept_branch.replace("-kept", "-notrace"),
                    "HARNESS_TARGET": "endpoint",
                    "HARNESS_ENDPOINT_URL": self.endpoint,
                }
            )
            r = self._run("harness-deploy-twin", [HARNESS, "deploy"], self.twin_env)
            if not r.ok:
                self.twin_env = {}
        try:
            arts = self._cycle_artifacts()
        except Exception as exc:  # noqa: BLE001 - the cycle floor is left out, and the report says why
            arts = None
            self.res.notes.append(f"cycle floor left out: its artifacts could not be read ({exc})")
        self.res.extra["cycle_artifacts"] = str(arts) if arts else None
        for n in {self.mode.parallel, max(self.mode.growth), self.mode.traces, 20}:
            gen.write(self.gen_dir / f"gen_{n}.yaml", n)

    def _settings(self) -> dict[str, str]:
        """`harness settings` as {name: value}, to find a trace-collection switch."""
        try:
            out = subprocess.run(  # noqa: S603
                [HARNESS, "settings"], cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=120
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return {}
        found = {}
        for line in out.splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2:
                found[parts[0]] = parts[1]
        return found

    @staticmethod
    def traces_in_plugin() -> bool:
        plugin = ROOT / "harness" / "pytest" / "controller.py"
        return (ROOT / "harness" / "traces").is_dir() and "trac" in plugin.read_text()

    def trace_switch(self) -> str | None:
        """The name of a setting that turns trace collection off, if the plugin has one."""
        if not self.traces_in_plugin():
            return None
        for name, value in self.res.extra.get("settings", {}).items():
            if "trace" in name and re.match(r"(true|false|on|off)\b", value.strip(), re.I):
                return name
        return None

    def warm_up(self) -> None:
        self.say("warm-up (untimed): harness subset, floor, -n 2 on 20 scenarios")
        env, _ = self._probe_env(self.kept_env, "warmup-subset")
        self._run(
            "warmup-harness-subset", self._pytest("--stack", "on", "--keep-stack", "-q", *self._subset_args()), env
        )
        self._floor("warmup-floor")
        if not self.with_parallel:
            return
        env, _ = self._probe_env(self.kept_env, "warmup-n2")
        argv = self._pytest("--stack", "on", "--keep-stack", "-q", "-n", "2", str(self.gen_dir / "gen_20.yaml"))
        r = self._run("warmup-n2", argv, env)
        if not r.ok and self.twin_env:
            # Keep the failure on record (the report names it), and measure the
            # parallel runs where they work: the traces-off twin.
            text = r.text()
            m = re.search(r"DumpError: .*", text) or re.search(r"can't serialize <.*", text)
            tail = [x for x in text.splitlines() if "Error" in x][-1:]
            error = m.group(0).strip() if m else (tail[0].strip() if tail else "?")
            self.res.extra["n2_failure"] = {"log": str(r.log), "error": error}
            self.res.failures.pop()
            self.parallel_env, self.parallel_on = self.twin_env, "twin"
            self.say("  -n 2 fails on the kept stack (traces on); the parallel runs use the traces-off twin")
        if self.twin_env:
            env, _ = self._probe_env(self.twin_env, "warmup-twin")
            self._run(
                "warmup-twin-subset", self._pytest("--stack", "on", "--keep-stack", "-q", *self._subset_args()), env
            )
            if self.parallel_on == "twin":
                env, _ = self._probe_env(self.twin_env, "warmup-twin-n2")
                self._run("warmup-twin-n2", argv, env)

    # -- measurements -------------------------------------------------------------
    def integration(self, k: int, *, retry: bool = True) -> None:
        label = f"make-integration-{k}" + ("" if retry else "-retry")
        rep = self.work / label
        env = clean_env({"HARNESS_REPORT_DIR": str(rep), "HARNESS_BRANCH": self.fresh_branch})
        env, path = self._probe_env(env, label)
        r = self._run(label, ["make", "integration", "PYTEST_ARGS=-p benchmarks.probe"], env)
        self._stop_leftover_emulator(r)
        shutil.rmtree(rep / "emulator-tmp", ignore_errors=True)
        p = self._probe(path)
        if not (r.ok and self._check_probe(f"make integration {k}", p)):
            if retry and r.returncode != -999:
                # A failing scenario makes the sample worthless, not the round: say which one
                # failed (a flaky scenario is worth knowing about) and measure again once.
                failed = sorted(set(re.findall(r"^FAILED (\S+)", r.text(), re.M)))
                self.res.failures[-1:] = []
                self.res.notes.append(
                    f"{label} failed ({', '.join(failed) or f'exit {r.returncode}'}; log {r.log}); measured again"
                )
                self.integration(k, retry=False)
            return
        assert p is not None
        h = p.get("harness") or {}
        self.res.add("integration.wall", r.wall)
        self.res.add("integration.startup", p["configure"] - p["process_start"] if p.get("process_start") else None)
        self.res.add("phase.emulator", h.get("emulator"))
        self.res.add("phase.deploy_command", h.get("deploy"))
        if h.get("emulator") is not None:
            self.res.add("phase.deploy_harness", _start_end(p) - p["sessionstart"] - h["emulator"])
        self.res.add("phase.scenarios", p["last_end"] - p["first_start"])
        self.res.add("phase.teardown_delete", h.get("teardown"))
        self.res.add("phase.teardown_all", p["unconfigure"] - p["sessionfinish"] - p.get("probe_finish", 0.0))
        line = _line_times(p)
        if "fingerprint/lease" in (p.get("phases") or {}):  # the start's lines are written as the session passes
            self.res.add("phase.deploy_before_command", p["phases"]["fingerprint/lease"])
        elif "target:" in line and "deploying" in line:
            self.res.add("phase.deploy_before_command", line["deploying"] - line["target:"])
        if "teardown: deleting" in line and "deleted in" in line:
            self.res.add("phase.teardown_verify", line["deleted in"] - line["teardown: deleting"])
        if _trace_seconds(p, line) is not None:
            self.res.add("traces.collect_end", _trace_seconds(p, line))
        if "deleted in" in line and "emulator stopped" in line:
            self.res.add("phase.teardown_stop", line["emulator stopped"] - line["deleted in"])
        self.res.extra["integration_tests"] = p.get("tests")
        self._own_time(p, r.wall)

    def _own_time(self, p: dict[str, Any], wall: float) -> None:
        """The harness's own time in one run, by phase: the wall minus the deploy command, the emulator's
        boot and the tests' calls (harness.phases, read by the probe)."""
        ph = p.get("phases")
        h = p.get("harness") or {}
        if not ph or not p.get("process_start"):
            return
        calls = sum(per.get("call", 0.0) for per in p.get("per_test", {}).values())
        # The setup and teardown of the tests' own fixtures (one creates and deletes a function) are
        # their calls too, not the harness's.
        fixtures = p.get("test_fixtures", 0.0)
        self.res.add("own.tests' fixtures", fixtures)
        rows = {
            "start-up": p["sessionstart"] - p["process_start"],
            "plan": ph.get("plan", 0.0),
            "fingerprint/lease": ph.get("fingerprint/lease", 0.0),
            "deploy step around the command": ph.get("deploy", 0.0) - (h.get("deploy") or 0.0),
            # The checks run beside the session's collection and preparation; it waits only for what is left.
            "checks after the deploy": ph.get("checks waited for", ph.get("checks", 0.0)),
            "read-back": ph.get("read-back", 0.0),
            "collection": _collection_beyond_start(p),
            "around the tests": (p["last_end"] - p["first_start"]) - calls - fixtures,
            "trace collection": ph.get("trace collection", 0.0),
            "teardown + verification": ph.get("teardown + verification", 0.0),
            "emulator stop": ph.get("target stop", 0.0),
            "report": ph.get("report", 0.0),
        }
        # The probe's own snapshot at session finish is the measurement's; the report has a row of its own.
        session_end = p["unconfigure"] - p["sessionfinish"] - p.get("probe_finish", 0.0)
        rows["rest of session end"] = max(
            0.0,
            session_end
            - rows["trace collection"]
            - rows["teardown + verification"]
            - rows["emulator stop"]
            - rows["report"],
        )
        rows["process exit and make"] = max(0.0, wall - (p["unconfigure"] - p["process_start"]))
        for name, v in rows.items():
            self.res.add(f"own.{name}", v)
        self.res.add("own.total", sum(rows.values()))
        self.res.add("own.check", wall - (h.get("deploy") or 0.0) - (h.get("emulator") or 0.0) - calls - fixtures)

    def _stop_leftover_emulator(self, r: Run) -> None:
        """A run that died hard may leave its emulator: stop it by the pid it printed."""
        from harness import procs as hprocs

        m = re.search(r"target: started in [\d.]+s: MiniStack \S+ pid (\d+) on http://127\.0\.0\.1:(\d+)", r.text())
        if not m:
            return
        pid = int(m.group(1))
        try:
            import psutil

            p = psutil.Process(pid)
            if "harness.emulator.launch" in " ".join(p.cmdline()) and p.environ().get("GATEWAY_PORT") == m.group(2):
                hprocs.stop_tree(pid)
                self.res.notes.append(f"{r.log.name}: its emulator (pid {pid}) outlived the run and was stopped")
        except Exception:  # noqa: BLE001 - gone already is the normal case
            return

    def _harness_subset(
        self, k: int, label: str = "subset", base: dict[str, str] | None = None, **extra: str
    ) -> dict[str, Any] | None:
        env, path = self._probe_env(base or self.kept_env, f"{label}-{k}", **extra)
        r = self._run(
            f"harness-{label}-{k}", self._pytest("--stack", "on", "--keep-stack", "-q", *self._subset_args()), env
        )
        p = self._probe(path)
        if not (r.ok and self._check_probe(f"harness {label} {k}", p, len(SUBSET))):
            return None
        assert p is not None
        p["wall"] = r.wall
        p["phase"] = p["last_end"] - p["first_start"]
        h = p.get("harness") or {}
        if not h.get("deploy_skipped"):
            self.res.failures.append(f"harness {label} {k}: the deploy was not skipped (fingerprint changed?)")
        else:
            p["skip_path"] = _start_end(p) - p["sessionstart"] - (h.get("emulator") or 0.0)
        return p

    def _floor(self, label: str) -> dict[str, Any] | None:
        assert self.endpoint and self.stack_name
        r = self._run(
            label,
            [PYTHON, "-m", "benchmarks.floor", "--endpoint-url", self.endpoint, "--stack-name", self.stack_name],
            clean_env(),
        )
        if not r.ok:
            return None
        try:
            data = json.loads(r.text().strip().splitlines()[-1])
        except (ValueError, IndexError):
            self.res.failures.append(f"{label}: no JSON result in {r.log}")
            return None
        data["wall"] = r.wall
        return data

    def harness_vs_floor(self, k: int) -> None:
        order = ("harness", "floor") if k % 2 else ("floor", "harness")
        got: dict[str, Any] = {}
        for which in order:
            got[which] = self._harness_subset(k) if which == "harness" else self._floor(f"floor-{k}")
        h, f = got["harness"], got["floor"]
        if h:
            self.res.add("subset.harness_phase", h["phase"])
            self.res.add("subset.harness_wall", h["wall"])
            self.res.add("deploy.skip_path", h.get("skip_path"))
            self.res.add("deploy.skip_wall", h["wall"])
            for nodeid, per in h.get("per_test", {}).items():
                self.res.add(f"subset.test.{nodeid.split('::', 1)[-1]}", per.get("call"))
        if f:
            self.res.add("subset.floor_calls", f["calls"])
            self.res.add("subset.floor_wall", f["wall"])
            for name, sec in f["scenarios"].items():
                self.res.add(f"subset.floor.{name}", sec)
        if h and f:
            self.res.add("subset.ratio_phase", h["phase"] / f["calls"])
            if f.get("clients") is not None:
                self.res.add("subset.floor_clients", f["clients"])
                self.res.add("subset.floor_calls_clients", f["calls"] + f["clients"])
                self.res.add("subset.ratio_phase_clients", h["phase"] / (f["calls"] + f["clients"]))
            self.res.add("subset.ratio_wall", h["wall"] / f["wall"])

    def _cycle_artifacts(self) -> Path | None:
        """The packaged template's artifacts, from the kept stack's bucket (for the cycle floor; untimed)."""
        import boto3

        packaged = ROOT / "reference-stack" / ".build" / "packaged.yaml"
        if not packaged.exists():
            return None
        s3 = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",  # noqa: S106 - the emulator's dummy key
        )
        out = self.work / "artifacts"
        for bucket, key in set(re.findall(r"s3://([^/\s'\"]+)/([^\s'\"]+)", packaged.read_text())):
            dest = out / bucket / key
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        shutil.copy(packaged, self.work / "packaged.yaml")
        return out

    def cycle(self, k: int) -> None:
        """A whole harness run (fresh emulator and stack, 4 scenarios) against the cycle floor, alternating."""
        arts = self.res.extra.get("cycle_artifacts")
        if not arts:
            return
        got: dict[str, Any] = {}
        for which in ("harness", "floor") if k % 2 else ("floor", "harness"):
            if which == "floor":
                argv = [PYTHON, "-m", "benchmarks.cycle", "--artifacts", arts, "--template",
                        str(self.work / "packaged.yaml"), "--stage", f"{self.fresh_branch}-floor"]  # fmt: skip
                r = self._run(f"cycle-floor-{k}", argv, clean_env())
                if r.ok:
                    got["floor"] = {**json.loads(r.text().strip().splitlines()[-1]), "wall": r.wall}
            else:
                label = f"cycle-harness-{k}"
                rep = self.work / label
                env = clean_env({"HARNESS_REPORT_DIR": str(rep), "HARNESS_BRANCH": self.fresh_branch + "-cycle"})
                env, path = self._probe_env(env, label)
                r = self._run(label, self._pytest("--stack", "on", "-q", *self._subset_args()), env)
                self._stop_leftover_emulator(r)
                shutil.rmtree(rep / "emulator-tmp", ignore_errors=True)
                if r.ok and self._check_probe(label, self._probe(path), len(SUBSET)):
                    got["harness"] = {"wall": r.wall}
        f, h = got.get("floor"), got.get("harness")
        if f:
            for step, v in f.items():
                self.res.add(f"cycle.floor.{step}", v)
        if h:
            self.res.add("cycle.harness_wall", h["wall"])
        if f and h:
            self.res.add("cycle.ratio", h["wall"] / f["total"])
            self.res.add("cycle.ratio_wall", h["wall"] / f["wall"])

    def deploy_env(self, extra: dict[str, str] | None = None, *, tags: dict[str, str] | None = None) -> dict[str, str]:
        """The environment the harness gives the deploy command on the kept stack (``harness.command_env``);
        ``tags``: the stack's, when the caller has read them already."""
        from harness.targets.base import EMULATOR_ACCOUNT

        assert self.stack_name and self.endpoint
        tags = self._stack_tags() if tags is None else tags
        return clean_env(
            {
                "STAGE": self.stack_name.split("-", 1)[1],
                "STACK_NAME": self.stack_name,
                # The tags the harness gave the stack: the same tags make the same (empty) change set.
                "HARNESS_STACK_TAGS": " ".join(
                    f"{k}={v}" for k, v in sorted(tags.items()) if k not in ("app", "stage")
                ),
                "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_REGION": "us-east-1",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ACCOUNT_ID": EMULATOR_ACCOUNT,  # as the harness gives it: the Makefile asks no STS then
                **(extra or {}),
            }
        )

    def make_deploy_unchanged(self, k: int) -> None:
        """The production command on unchanged inputs, straight (no harness), against the kept stack."""
        tags = self._stack_tags()
        env = self.deploy_env(tags=tags)
        r = self._run(f"make-deploy-unchanged-{k}", ["make", "deploy"], env)
        if r.ok:
            self.res.add("deploy.make_unchanged", r.wall)
            if "No changes to deploy" not in r.text():
                self.res.notes.append(f"unchanged make deploy {k}: CloudFormation found changes ({r.log})")
            if self._stack_tags() != tags:
                self.res.failures.append(f"unchanged make deploy {k} changed the stack's tags")

    def _stack_tags(self) -> dict[str, str]:
        import boto3

        cfn = boto3.client(
            "cloudformation",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",  # noqa: S106 - the emulator's dummy key
        )
        desc = cfn.describe_stacks(StackName=self.stack_name)["Stacks"][0]
        return {t["Key"]: t["Value"] for t in desc.get("Tags") or []}

    def _generated(self, k: int, n_file: int, workers: int, label: str) -> dict[str, Any] | None:
        env, path = self._probe_env(self.parallel_env, f"{label}-{k}")
        args = ["--stack", "on", "--keep-stack", "-q", "-n", str(workers), str(self.gen_dir / f"gen_{n_file}.yaml")]
        r = self._run(f"{label}-{k}", self._pytest(*args), env)
        p = self._probe(path)
        if not (r.ok and self._check_probe(f"{label} {k}", p, n_file)):
            return None
        assert p is not None
        p.update(wall=r.wall, phase=p["last_end"] - p["first_start"], load=r.load)
        # CPU spent between the first test start and the session finish, by the
        # pytest processes (controller and workers) and by the emulator tree.
        a, b = p.get("cpu_first"), p.get("cpu_end")
        if a and b:
            p["cpu_pytest"] = b["pytest"] - a["pytest"]
            p["cpu_emulator"] = b["emulator"] - a["emulator"]
            p["cpu_span"] = p["sessionfinish"] - p["first_start"]
            p["wait_pytest"] = b.get("pytest_wait", 0.0) - a.get("pytest_wait", 0.0)
        return p

    def parallel(self, k: int) -> None:
        n, big = self.mode.parallel, max(self.mode.growth)
        order = ("n0", "n2") if k % 2 else ("n2", "n0")
        got: dict[str, Any] = {}
        for which in order:
            if which == "n0":
                got[which] = self._generated(k, big, 0, f"gen{big}-n0")
            else:
                got[which] = self._generated(k, n, 2, f"gen{n}-n2")
        p0, p2 = got["n0"], got["n2"]
        if p0:
            ends = sorted(p0["ends"])
            for size in self.mode.growth:
                self.res.add(f"growth.{size}", ends[size - 1] - p0["first_start"])
            self.res.add("parallel.n0_phase", ends[n - 1] - p0["first_start"])
            self.res.add("parallel.n0_wall_big", p0["wall"])
            self.res.add("parallel.load_n0", p0["load"][0])
            if "cpu_pytest" in p0:
                self.res.add("parallel.n0_cpu_pytest_per", p0["cpu_pytest"] / big)
                self.res.add("parallel.n0_cpu_emulator_per", p0["cpu_emulator"] / big)
                self.res.add("parallel.n0_emulator_busy", p0["cpu_emulator"] / p0["cpu_span"])
                self.res.add("parallel.n0_cpu_all_per_wall", (p0["cpu_pytest"] + p0["cpu_emulator"]) / p0["cpu_span"])
                self.res.add("parallel.n0_wait_per", p0["wait_pytest"] / big)
        if p2:
            self.res.add("parallel.n2_phase", p2["phase"])
            self.res.add("parallel.n2_wall", p2["wall"])
            self.res.add("parallel.load_n2", p2["load"][0])
            if "cpu_pytest" in p2:
                self.res.add("parallel.n2_cpu_pytest_per", p2["cpu_pytest"] / n)
                self.res.add("parallel.n2_cpu_emulator_per", p2["cpu_emulator"] / n)
                self.res.add("parallel.n2_emulator_busy", p2["cpu_emulator"] / p2["cpu_span"])
                self.res.add("parallel.n2_cpu_all_per_wall", (p2["cpu_pytest"] + p2["cpu_emulator"]) / p2["cpu_span"])
                self.res.add("parallel.n2_wait_per", p2["wait_pytest"] / n)
        if p0 and p2:
            self.res.add("parallel.speedup", (sorted(p0["ends"])[n - 1] - p0["first_start"]) / p2["phase"])

    def _trace_env(self, which: str, switch: str | None) -> dict[str, str]:
        if switch:
            return {**self.kept_env, "HARNESS_" + switch.upper().replace("-", "_"): which}
        return self.kept_env if which == "on" else self.twin_env

    def _trace_run(self, k: int, which: str, switch: str | None, **extra: str) -> dict[str, Any] | None:
        n = self.mode.traces
        env, path = self._probe_env(self._trace_env(which, switch), f"traces-{which}-{k}", **extra)
        argv = self._pytest("--stack", "on", "--keep-stack", "-q", str(self.gen_dir / f"gen_{n}.yaml"))
        r = self._run(f"traces-{which}-{k}", argv, env)
        p = self._probe(path)
        if not (r.ok and self._check_probe(f"traces {which} {k}", p, n)):
            return None
        assert p is not None
        p["phase"] = p["last_end"] - p["first_start"]
        p["wall"] = r.wall
        line = _line_times(p)
        p["trace_end"] = _trace_seconds(p, line)
        return p

    def traces(self, k: int, switch: str | None) -> None:
        """Scenario phase with trace collection on vs off: by the setting, or kept stack vs traces-off twin."""
        order = ("on", "off") if k % 2 else ("off", "on")
        got = {which: self._trace_run(k, which, switch) for which in order}
        on, off = got["on"], got["off"]
        if on:
            self.res.add("traces.on_phase", on["phase"])
            self.res.add("traces.end_gen", on.get("trace_end"))
        if off:
            self.res.add("traces.off_phase", off["phase"])
        if on and off:
            self.res.add("traces.overhead", on["phase"] / off["phase"] - 1.0)

    # -- profiles of misses ---------------------------------------------------------
    def imports(self) -> None:
        """Cumulative import time by top-level package at pytest start-up (one untimed run)."""
        python, *pytest = self._pytest("-s", "--co", "-q", "--stack", "off", *self._subset_args())
        argv = [python, "-X", "importtime", *pytest]  # the measured runs' plugins, as they load them
        try:
            err = subprocess.run(  # noqa: S603
                argv, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=300
            ).stderr
        except (OSError, subprocess.SubprocessError):
            return
        self.res.extra["imports"] = profiles.import_times(err)

    def profile_misses(self, always: bool = False) -> None:
        med = report.median_of
        self.imports()
        self.say("profile: where the deploy command's time goes (an extra changed deploy, the AWS CLI timed)")
        self.res.extra["deploy_profile"] = loop.profile_deploy(self)
        imp = med(self.res.samples.get("startup.plugin_import"))
        unit = med(self.res.samples.get("startup.ratio_wall"))
        if always or (imp is not None and imp > TARGET_IMPORT) or (unit is not None and unit > TARGET_UNIT_RATIO):
            self.res.extra["import_profile"] = startup.import_profile(PYTHON, ROOT, clean_env())
            self.res.extra["hook_profile"] = startup.hook_profile(PYTHON, ROOT, clean_env())
        ratio = med(self.res.samples.get("subset.ratio_phase"))
        if always or (ratio is not None and ratio > TARGET_RATIO):
            self.say("profile: scenario phase vs floor missed; pyinstrument on the subset and on generated scenarios")
            prefix = self.work / "profile-subset"
            self._harness_subset(0, "profiled", BENCH_PROFILE=str(prefix))
            self.res.extra["profile_subset"] = profiles.summarize_pyinstrument(prefix)
            prefix = self.work / "profile-generated"
            env, _ = self._probe_env(self.parallel_env, "profiled-generated", BENCH_PROFILE=str(prefix))
            self._run(
                "profiled-generated",
                self._pytest("--stack", "on", "--keep-stack", "-q", str(self.gen_dir / "gen_20.yaml")),
                env,
            )
            self.res.extra["profile_generated"] = profiles.summarize_pyinstrument(prefix)
        overhead = med(self.res.samples.get("traces.overhead"))
        if always or (overhead is not None and overhead > TARGET_TRACES):
            self.say("profile: trace overhead; pyinstrument on a traces-on run of the generated scenarios")
            prefix = self.work / "profile-traces"
            self._trace_run(0, "on", self.res.extra.get("trace_switch"), BENCH_PROFILE=str(prefix))
            self.res.extra["profile_traces"] = profiles.summarize_pyinstrument(prefix)
        speedup = med(self.res.samples.get("parallel.speedup"))
        if always or (speedup is not None and speedup < TARGET_SPEEDUP):
            self.say("profile: -n 2 speedup missed; py-spy on the emulator during an extra -n 2 run")
            self.res.extra["profile_emulator"] = self._spy_emulator()

    def _spy_emulator(self) -> dict[str, Any] | None:
        spy = VENV_BIN / "py-spy"
        if not spy.exists() or not self.emulator_pid:
            return None
        raw = self.work / "emulator-spy.txt"
        n = self.mode.parallel
        env, _ = self._probe_env(self.parallel_env, "spied-n2")
        spy_log = (self.work / "logs" / "py-spy.log").open("wb")
        recorder = subprocess.Popen(  # noqa: S603 - argv list; stopped by its pid below
            [str(spy), "record", "--pid", str(self.emulator_pid), "--rate", "50", "--nonblocking",
             "--format", "raw", "--output", str(raw), "--duration", str(int(self.mode.timeout))],
            stdout=spy_log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            time.sleep(1.0)
            self._run(
                "spied-n2",
                self._pytest("--stack", "on", "--keep-stack", "-q", "-n", "2", str(self.gen_dir / f"gen_{n}.yaml")),
                env,
            )
        finally:
            import signal

            try:
                os.kill(recorder.pid, signal.SIGINT)  # py-spy writes its output on SIGINT
                recorder.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                recorder.kill()
                recorder.wait()
            spy_log.close()
        return profiles.summarize_pyspy(raw)

    # -- the whole run ----------------------------------------------------------------
    def teardown(self) -> None:
        if self.twin_env:
            self.say("cleanup: harness destroy of the traces-off twin stack")
            r = self._run("harness-destroy-twin", [HARNESS, "destroy"], self.twin_env, timeout=300)
            if not r.ok:
                self.res.failures.append(f"harness destroy (twin): exit {r.returncode} (log {r.log})")
        self.say("cleanup: harness destroy of the kept stack and emulator")
        r = self._run("harness-destroy-kept", [HARNESS, "destroy"], self.kept_env, timeout=300)
        if not r.ok:
            self.res.failures.append(f"harness destroy: exit {r.returncode} (log {r.log})")

    def measure(self) -> None:
        switch = self.trace_switch()
        self.res.extra["trace_switch"] = switch
        self.res.extra["traces_in_plugin"] = self.traces_in_plugin()
        self.res.extra["trace_twin"] = bool(self.twin_env)
        self.res.extra["parallel_on"] = self.parallel_on
        for k in range(1, self.mode.rounds + 1):
            self.say(f"round {k}/{self.mode.rounds} ({time.monotonic() - self.started:.0f}s so far)")
            startup.measure_round(self, k)
            self.integration(k)
            self.harness_vs_floor(k)
            self.make_deploy_unchanged(k)
            loop.measure_round(self, k)
            self.cycle(k)
        if self.with_suite:
            self.say("the harness's own tests: make test-fast once a round (its figure varies by seconds), make test")
            for k in range(1, self.mode.rounds + 1):
                suite.fast(self, k)
            if self.with_make_test:
                suite.whole(self)
            if self.with_parallel:
                self.parallel(k)
                if switch or self.twin_env:
                    self.traces(k, switch)


def _trace_seconds(p: dict[str, Any], line: dict[str, float]) -> float | None:
    """The session end's trace collection and report: the harness's own phase (its files are written beside the
    teardown, so its last line comes after it); older records: session finish to the last ``traces:`` line."""
    phase = (p.get("phases") or {}).get("trace collection")
    if phase is not None:
        return float(phase)
    return line["traces:last"] - p["sessionfinish"] if "traces:last" in line else None


def _line_times(probe: dict[str, Any]) -> dict[str, float]:
    """When the harness printed its landmark lines: {landmark: time of the first line containing it}."""
    marks = ("target:", "deploying", "deployed", "deploy skipped", "teardown: deleting", "deleted in",
             "emulator stopped", "traces:")  # fmt: skip
    found: dict[str, float] = {}
    for when, text in probe.get("lines", []):
        for mark in marks:
            if mark in text:
                found.setdefault(mark, when)
                found[mark + "last"] = when
    return found


def machine() -> dict[str, Any]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError):
        pass
    try:
        commit = subprocess.run(  # noqa: S603
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
        dirty = subprocess.run(  # noqa: S603
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
        commit += " (with uncommitted changes)" if dirty else ""
    except (OSError, subprocess.SubprocessError):
        commit = "?"
    try:
        from importlib.metadata import version

        ministack = version("ministack")
    except Exception:  # noqa: BLE001
        ministack = "?"
    return {
        "cpus": os.cpu_count(),
        "model": model,
        "memory": mem,
        "python": f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "load_start": os.getloadavg(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "ministack": ministack,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: one round, few scenarios")
    p.add_argument("--rounds", type=int, help="override the number of rounds (runs per measurement)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md", help="where the table goes")
    p.add_argument("--keep-work", action="store_true", help="keep the work folder (logs, probes, profiles)")
    p.add_argument("--profile", action="store_true", help="profile even where the targets are met")
    p.add_argument("--no-suite", action="store_true", help="leave out make test-fast and make test")
    p.add_argument("--no-make-test", action="store_true", help="leave out make test (keep make test-fast)")
    p.add_argument(
        "--no-parallel", action="store_true", help="leave out the parallelism, growth and trace-overhead sessions"
    )
    p.add_argument("--from-results", type=Path, metavar="JSON", help="only re-render a run's saved results.json")
    args = p.parse_args(argv)
    mode = QUICK if args.quick else FULL
    if args.rounds:
        mode = Mode(mode.name, args.rounds, mode.parallel, mode.growth, mode.timeout, mode.traces)
    if args.from_results:
        saved = json.loads(args.from_results.read_text())
        res = Results(saved["samples"], saved["failures"], saved["notes"], saved["extra"])
        args.out.write_text(report.render(Mode(**saved["mode"]), saved["info"], res, saved["targets"]))
        return 0
    info = machine()
    work = Path(tempfile.mkdtemp(prefix="branchstack-bench-"))
    _HYPOTHESIS_DIR[:] = [work / "hypothesis"]

    def say(line: str) -> None:
        print(f"bench: {line}", flush=True)

    say(f"{mode.name} mode, {mode.rounds} round(s); work folder {work}")
    bench = Bench(mode, work, args.out, say)
    bench.with_suite = not args.no_suite
    bench.with_parallel = not args.no_parallel
    bench.with_make_test = not args.no_make_test
    bench.res.extra["make_test_left_out"] = args.no_make_test or args.no_suite
    bench.res.extra["parallel_left_out"] = args.no_parallel
    started = time.monotonic()
    deployed = False
    try:
        bench.setup()
        deployed = True
        bench.warm_up()
        bench.measure()
        bench.profile_misses(always=args.profile)
    except KeyboardInterrupt:
        say("interrupted: cleaning up")
        bench.res.failures.append("interrupted")
        raise
    finally:
        if deployed or (bench.kept_dir / "emulator.json").exists():
            bench.teardown()
        info["load_end"] = os.getloadavg()
        info["total_seconds"] = time.monotonic() - started
        if not (bench.res.failures and "interrupted" in bench.res.failures):
            targets = {
                "ratio": TARGET_RATIO,
                "speedup": TARGET_SPEEDUP,
                "traces": TARGET_TRACES,
                "import": TARGET_IMPORT,
                "unit_ratio": TARGET_UNIT_RATIO,
                "own": TARGET_OWN,
                "loop": TARGET_LOOP,
            }
            saved = {"mode": mode.__dict__, "info": info, "targets": targets, **bench.res.__dict__}
            (work / "results.json").write_text(json.dumps(saved, indent=1, default=str))
            text = report.render(mode, info, bench.res, targets)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            previous = args.out.read_text() if args.out.exists() else ""
            args.out.write_text(text + report.kept_tail(previous))
            say(f"wrote {args.out} ({info['total_seconds'] / 60:.1f} min)")
        if args.keep_work or bench.res.failures:
            say(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if bench.res.failures:
        say("some measured commands failed:\n  " + "\n  ".join(bench.res.failures))
        return 1
    return 0
