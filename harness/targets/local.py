"""The embedded emulator: MiniStack started by the harness as a subprocess.

It listens on one free loopback port only (``BIND_HOST=127.0.0.1``, the IoT
MQTT and SFTP listeners off), enforces IAM (``AUTH=true``) unless told not to,
logs to a file in the report folder, and is watched: if it dies while the
session uses it, ``on_death`` is called within a second so the session fails
fast instead of hanging on retries.

``stop(keep=True)`` leaves it running and records it in a state file; the
next session attaches to it (and so reuses the kept stack).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from harness import procs
from harness.emulator import OFF_VARIABLE, PINNED_VERSION
from harness.emulator.runtimes import SEARCH_PATH_ENV
from harness.emulator.sandbox import MISMATCH_ENV
from harness.errors import EmulatorDied, TargetError
from harness.stack import TargetInfo
from harness.targets.base import emulator_env, emulator_info

if TYPE_CHECKING:
    from harness.settings import Settings

STATE_FILE = "emulator.json"
_PASSED_ENV = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR", "PYENV_ROOT", SEARCH_PATH_ENV}
    | {OFF_VARIABLE}  # runs the emulator without some of its adaptations (docs/fidelity.md)
)
BOOT_TIMEOUT = 30.0
WATCH_INTERVAL = 0.5


def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, method="GET")  # noqa: S310 - our own loopback URL
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
        return int(resp.status), resp.read()


@dataclass
class Launched:
    """A MiniStack process that answered its readiness check."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    boot_seconds: float

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def launch(
    run_dir: Path, *, region: str, iam_enforcement: bool = True, extra_env: Mapping[str, str] | None = None
) -> Launched:
    """Start the pinned MiniStack on a free loopback port, logging to ``run_dir/emulator.log``; wait until ready.

    Raises :class:`TargetError` (with the log's tail) if it exits or does not
    become ready. The caller owns the process: stop it with ``procs.stop_tree``.
    """
    from harness.emulator.adapt import AdaptationError, check_version

    try:
        check_version()
    except AdaptationError as exc:
        raise TargetError(str(exc)) from None
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / "emulator-tmp"
    tmp.mkdir(exist_ok=True)
    log_path = run_dir / "emulator.log"
    started = time.monotonic()
    last_error = ""
    for _attempt in range(3):  # a free port can be taken before the child binds it
        port = procs.free_port()
        env = child_env(port, tmp, region=region, iam_enforcement=iam_enforcement, extra_env=extra_env)
        proc = procs.spawn([sys.executable, "-m", "harness.emulator.launch"], env=env, log_path=log_path)
        try:
            wait_healthy(f"http://127.0.0.1:{port}", log_path, started + BOOT_TIMEOUT, proc)
        except TargetError as exc:
            last_error = exc.message
            procs.stop_tree(proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            if "already in use" in procs.tail(log_path, 5):
                continue
            raise
        except BaseException:  # Ctrl-C or SIGTERM while it boots: never leave it running
            procs.stop_tree(proc.pid)
            raise
        return Launched(proc, port, log_path, time.monotonic() - started)
    raise TargetError(last_error)


def child_env(
    port: int, tmp: Path, *, region: str, iam_enforcement: bool, extra_env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The emulator's environment: an allow-list of the user's, never the whole of it.

    Its Lambda runtimes inherit it, and tokens or keys there could reach a
    function's logs; only what a process needs to run is passed on.
    """
    env = {k: v for k, v in os.environ.items() if k in _PASSED_ENV or k.startswith(("LC_", "PYTHON"))}
    # Lambda runtimes run in the sandbox (harness.emulator.sandbox): each on the
    # interpreter of its declared runtime, found on PATH or in pyenv, with only
    # its bundle, its layers and the runtime's SDK; nothing of this virtualenv.
    env.update(
        GATEWAY_PORT=str(port),
        BIND_HOST="127.0.0.1",
        MINISTACK_HOST="127.0.0.1",
        IOT_MTLS_ENABLED="0",
        SFTP_ENABLED="0",
        AUTH="true" if iam_enforcement else "false",
        MINISTACK_REGION=region,
        # Keep the emulator's pid file and data inside the run folder.
        TMPDIR=str(tmp),
        S3_DATA_DIR=str(tmp / "s3"),
        PYTHONUNBUFFERED="1",
    )
    # Functions inside the emulator inherit this: their SDK calls come
    # back to the emulator, never to a real account.
    env.update(emulator_env(emulator_info("local", f"http://127.0.0.1:{port}", region)))
    env.update(extra_env or {})
    return env


def wait_healthy(url: str, log_path: Path, deadline: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll MiniStack's readiness endpoint until it answers 200; TargetError if ``proc`` exits or time runs out."""
    while True:
        code = proc.poll() if proc is not None else None
        if code is not None:
            raise TargetError(
                f"the emulator exited with code {code} while starting; its log {log_path} ends with:\n"
                + procs.tail(log_path),
                hint="fix what the log reports; `pip install ministack==" + PINNED_VERSION + "` if missing",
            )
        with contextlib.suppress(OSError, urllib.error.URLError):
            status, _ = _get(f"{url}/_ministack/ready", timeout=1.0)
            if status == 200:
                return
        if time.monotonic() > deadline:
            raise TargetError(
                f"the emulator did not become healthy within {BOOT_TIMEOUT:.0f}s; log: {log_path}\n"
                + procs.tail(log_path)
            )
        time.sleep(0.05)


class LocalTarget:
    """MiniStack on a free loopback port, owned by this session (or kept from the last)."""

    kind = "local"

    def __init__(
        self,
        settings: Settings,
        run_dir: Path,
        *,
        on_death: Callable[[EmulatorDied], None] | None = None,
        attach_only: bool = False,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.attach_only = attach_only
        # e.g. AWS_XRAY_DAEMON_ADDRESS: the Lambda runtimes inherit it.
        self.extra_env = dict(extra_env or {})
        self.run_dir = run_dir
        self.log_path = run_dir / "emulator.log"
        self.state_path = run_dir / STATE_FILE
        self.on_death = on_death
        self.port: int | None = None
        self.pid: int | None = None
        self.attached = False
        self.boot_seconds: float | None = None
        self._proc: Any = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._death: EmulatorDied | None = None

    # -- lifecycle -------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def info(self) -> TargetInfo:
        return emulator_info("local", self.endpoint_url, self.settings.region)

    def start(self) -> TargetInfo:
        if self._attach_kept():
            self.attached = True
        elif self.attach_only:
            raise TargetError(
                f"no emulator kept by an earlier --keep-stack run is running (state file {self.state_path})",
                hint="nothing to remove: an emulator's stacks end with its process",
            )
        else:
            self._launch()
        self._watcher = procs.start_thread(self._watch, "harness-emulator-watch")
        return self.info()

    def _launch(self) -> None:
        launched = launch(
            self.run_dir,
            region=self.settings.region,
            iam_enforcement=self.settings.iam_enforcement,
            # The emulator refuses to start a mismatched runtime itself too (functions tests create).
            extra_env={MISMATCH_ENV: self.settings.runtime_mismatch, **self.extra_env},
        )
        self._proc, self.port, self.pid = launched.proc, launched.port, launched.pid
        self.boot_seconds = launched.boot_seconds

    def _attach_kept(self) -> bool:
        """Reuse an emulator kept by an earlier ``--keep-stack`` run, if it is still alive."""
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return False
        pid, port = int(state.get("pid", 0)), int(state.get("port", 0))
        alive = False
        try:
            alive = psutil.Process(pid).create_time() == state.get("create_time")
        except psutil.Error:
            pass
        if alive:
            self.port, self.pid = port, pid
            try:
                wait_healthy(self.endpoint_url, self.log_path, time.monotonic() + 5)
                return True
            except TargetError:
                procs.stop_tree(pid)
        with contextlib.suppress(OSError):
            self.state_path.unlink()
        self.port = self.pid = None
        return False

    def _alive(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        if self.pid is None:
            return False
        try:
            return psutil.Process(self.pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def _watch(self) -> None:
        while not self._stopping.wait(WATCH_INTERVAL):
            if not self._alive():
                code = self._proc.poll() if self._proc is not None else None
                self._death = EmulatorDied(
                    f"the emulator (MiniStack pid {self.pid}, port {self.port}) died during the session"
                    f"{f' with exit code {code}' if code is not None else ''}; its log is {self.log_path}",
                    hint="its state went with it; nothing is left to delete. Read the log, then re-run.",
                )
                if self.on_death is not None:
                    self.on_death(self._death)
                return

    def check(self) -> None:
        if self._death is not None:
            raise self._death
        if not self._alive():
            raise EmulatorDied(f"the emulator (pid {self.pid}) is not running; log: {self.log_path}")

    @property
    def died(self) -> EmulatorDied | None:
        return self._death

    def env(self) -> dict[str, str]:
        return emulator_env(self.info())

    def describe(self) -> str:
        how = "attached to kept" if self.attached else f"started in {self.boot_seconds or 0:.2f}s:"
        iam = "IAM enforced" if self.settings.iam_enforcement else "IAM not enforced"
        return f"{how} MiniStack {PINNED_VERSION} pid {self.pid} on {self.endpoint_url} ({iam}; log {self.log_path})"

    def pids(self) -> list[int]:
        """The emulator and every descendant (Lambda runtimes)."""
        if self.pid is None:
            return []
        return [self.pid, *(p.pid for p in procs.descendants(self.pid))]

    def stop(self, *, keep: bool = False) -> None:
        self._stopping.set()
        if self.pid is None:
            return
        if keep and self._alive():
            create_time = psutil.Process(self.pid).create_time()
            self.state_path.write_text(
                json.dumps(
                    {
                        "pid": self.pid,
                        "port": self.port,
                        "create_time": create_time,
                        "log": str(self.log_path),
                        # The kept emulator's functions keep sending traces here.
                        "xray_address": self.extra_env.get("AWS_XRAY_DAEMON_ADDRESS"),
                    }
                )
            )
            return
        procs.stop_tree(self.pid)
        with contextlib.suppress(OSError):
            self.state_path.unlink()
        self.pid = None


def kept_xray_port(run_dir: Path) -> int:
    """The trace daemon port a kept emulator sends to (0 if none is kept)."""
    try:
        address = json.loads((run_dir / STATE_FILE).read_text()).get("xray_address") or ""
        return int(address.rsplit(":", 1)[1])
    except (OSError, ValueError, IndexError):
        return 0


def stop_kept(run_dir: Path) -> int | None:
    """Stop an emulator kept by ``--keep-stack`` (``harness destroy``). Returns its pid."""
    path = run_dir / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pid = int(state.get("pid", 0))
    try:
        same = psutil.Process(pid).create_time() == state.get("create_time")
    except psutil.Error:
        same = False
    if same:
        procs.stop_tree(pid)
    with contextlib.suppress(OSError):
        path.unlink()
    return pid if same else None
