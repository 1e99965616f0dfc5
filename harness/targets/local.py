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
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from harness import lifeline, ownership, procs
from harness.emulator import OFF_VARIABLE, PINNED_VERSION, owners
from harness.emulator.runtimes import SEARCH_PATH_ENV
from harness.emulator.sandbox import MISMATCH_ENV
from harness.errors import EmulatorDied, TargetError
from harness.targets.base import EMULATOR_ACCOUNT, emulator_env, emulator_info

if TYPE_CHECKING:
    from harness.lease_store import FileStore
    from harness.settings import Settings
    from harness.stack import TargetInfo

STATE_FILE = owners.STATE_FILE
SCRATCH_DIR = "emulator-tmp"
LEASES_DIR = "harness-leases"  # in the emulator's scratch folder: its stacks' leases (harness.lease_store)
_PASSED_ENV = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR", "PYENV_ROOT", SEARCH_PATH_ENV}
    | {OFF_VARIABLE}  # runs the emulator without some of its adaptations (docs/fidelity.md)
)
BOOT_TIMEOUT = 30.0
# How long a stopping emulator may take over a graceful shutdown before it is killed: none. It
# keeps no state worth saving (nothing is persisted; its scratch folder is removed after it), after
# SIGTERM its HTTP server (hypercorn) waits up to its graceful timeout (3 s) for open connections,
# and its Lambda runtimes do not exit on SIGTERM at all, so any grace is only waited out.
STOP_GRACE = 0.0
WATCH_INTERVAL = 0.5


def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, method="GET")  # noqa: S310 - our own loopback URL
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
        return int(resp.status), resp.read()


@dataclass
class Launched:
    """A MiniStack process that answered its readiness check, tied to this process by its lifeline."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    boot_seconds: float
    scratch: Path | None = None
    lifeline: int | None = None  # write end: the emulator ends when it closes (see harness.lifeline)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hand_over(self) -> None:
        """Let the emulator outlive this process (kept): from now on its state file owns it."""
        if self.lifeline is not None:
            with contextlib.suppress(OSError):
                os.write(self.lifeline, lifeline.KEEP)
        self._drop_lifeline()

    def stop(self, *, remove_later: bool = False) -> None:
        """Stop the emulator and everything it started; remove its scratch folder.

        With ``remove_later`` a detached remover removes the folder (the code of
        every Lambda runtime it started) while the run goes on (``owners.forget_later``).
        """
        procs.stop_tree(self.pid, grace=STOP_GRACE)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self._drop_lifeline()
        if remove_later:
            owners.forget_later(self.log_path.parent, self.pid, scratch=self.scratch)
        else:
            owners.forget(self.log_path.parent, self.pid, scratch=self.scratch)

    def _drop_lifeline(self) -> None:
        if self.lifeline is not None:
            with contextlib.suppress(OSError):
                os.close(self.lifeline)
            self.lifeline = None


def launch(
    run_dir: Path, *, region: str, iam_enforcement: bool = True, extra_env: Mapping[str, str] | None = None
) -> Launched:
    """Start the pinned MiniStack on a free loopback port, logging to ``run_dir/emulator.log``; wait until ready.

    The emulator lives as long as this process, whatever ends it (its lifeline,
    :mod:`harness.emulator.lifeline`), unless handed over with ``hand_over()``;
    its Lambda code is extracted into a scratch folder of its own, removed
    when it stops. Raises :class:`TargetError` (with the log's tail) if it
    exits or does not become ready. Stop it with ``Launched.stop()``.
    """
    return Booting(run_dir, region=region, iam_enforcement=iam_enforcement, extra_env=extra_env).ready()


class Booting:
    """A MiniStack process started and not yet ready: :meth:`ready` waits for it, :meth:`stop` ends it.

    Started first, the emulator boots (in its own process) while this one goes
    on with its own work; ``launch()`` is both at once.
    """

    def __init__(
        self, run_dir: Path, *, region: str, iam_enforcement: bool = True, extra_env: Mapping[str, str] | None = None
    ) -> None:
        from harness.emulator.adapt import AdaptationError, check_version

        try:
            check_version()
        except AdaptationError as exc:
            raise TargetError(str(exc)) from None
        (run_dir / SCRATCH_DIR).mkdir(parents=True, exist_ok=True)
        self.run_dir = run_dir
        self.log_path = run_dir / "emulator.log"
        self.options: dict[str, Any] = {"region": region, "iam_enforcement": iam_enforcement, "extra_env": extra_env}
        self.started = time.monotonic()
        self.launched = _spawn(run_dir, self.log_path, **self.options)

    def ready(self) -> Launched:
        """Wait until it answers (a port taken before it bound it: launched again, up to three times)."""
        last_error = ""
        for attempt in range(3):  # a free port can be taken before the child binds it
            if attempt:
                self.launched = _spawn(self.run_dir, self.log_path, **self.options)
            launched = self.launched
            try:
                wait_healthy(launched.url, self.log_path, self.started + BOOT_TIMEOUT, launched.proc)
            except TargetError as exc:
                last_error = exc.message
                launched.stop()
                if "already in use" in procs.tail(self.log_path, 5):
                    continue
                raise
            except BaseException:  # Ctrl-C or SIGTERM while it boots: never leave it running
                launched.stop()
                raise
            launched.boot_seconds = time.monotonic() - self.started
            return launched
        raise TargetError(last_error)

    def stop(self) -> None:
        self.launched.stop()


def _spawn(
    run_dir: Path, log_path: Path, *, region: str, iam_enforcement: bool, extra_env: Mapping[str, str] | None
) -> Launched:
    port = procs.free_port()
    scratch = Path(tempfile.mkdtemp(prefix=f"{port}-", dir=run_dir / SCRATCH_DIR))
    env = child_env(port, scratch, region=region, iam_enforcement=iam_enforcement, extra_env=extra_env)
    read_end, write_end = lifeline.pipe()  # both non-inheritable: only the emulator gets the read end
    env[lifeline.LIFELINE_ENV] = str(read_end)
    env[lifeline.SCRATCH_ENV] = str(scratch)
    try:
        proc = procs.spawn(
            [sys.executable, "-m", "harness.emulator.launch"], env=env, log_path=log_path, pass_fds=[read_end]
        )
    except BaseException:
        os.close(write_end)
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    finally:
        os.close(read_end)
    owners.register(run_dir, proc.pid, port=port, scratch=scratch)
    return Launched(proc, port, log_path, 0.0, scratch=scratch, lifeline=write_end)


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
        # Keep the emulator's pid file and data inside the run folder. STATE_DIR is not only
        # persistence's: Cognito writes its signing key there (default /tmp/ministack-state,
        # shared by every emulator of the machine and left after the run).
        TMPDIR=str(tmp),
        S3_DATA_DIR=str(tmp / "s3"),
        STATE_DIR=str(tmp / "state"),
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
    """MiniStack on a free loopback port, owned by this session (or kept from the last).

    An emulator this target started is owned by this process (its lifeline)
    until ``stop(keep=True)`` hands it to the state file. An emulator it
    attached to (kept by ``harness up``, ``harness deploy`` or ``--keep-stack``)
    is left running as found, unless ``adopt()`` takes it over (``harness destroy``).
    """

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
        self.owned = False
        self.started_empty = False
        self.kept_by: dict[str, Any] = {}
        #: who keeps it, written into the state file by ``stop(keep=True)``
        self.keeper = ownership.KEEP_STACK_KEEPER
        #: what the orphan sweep stopped before this target started (one line each)
        self.swept: list[str] = []
        self.boot_seconds: float | None = None
        self._launched: Launched | None = None
        self._booting: Booting | None = None  # launched by begin(), not yet ready
        self._begun = False
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._death: EmulatorDied | None = None

    # -- lifecycle -------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def _proc(self) -> subprocess.Popen[bytes] | None:
        return self._launched.proc if self._launched is not None else None

    def info(self) -> TargetInfo:
        return emulator_info("local", self.endpoint_url, self.settings.region)

    def begin(self) -> None:
        """Sweep, then attach to a kept emulator or launch one, without waiting for its boot (``start`` waits).

        Called early (harness.early_start), the emulator boots while this process imports what the run needs next.
        """
        if self._begun:
            return
        self.swept = owners.sweep(self.run_dir)
        if self._attach_kept():
            self.attached = True
        elif self.attach_only:
            raise TargetError(
                f"no emulator kept by `harness up`, `harness deploy` or --keep-stack is running "
                f"(state file {self.state_path})",
                hint="nothing to remove: an emulator's stacks end with its process",
            )
        else:
            self._booting = Booting(self.run_dir, **self._launch_options())
        self._begun = True

    def start(self) -> TargetInfo:
        self.begin()
        if self._booting is not None:
            launched = self._booting.ready()
            self._booting = None
            self._launched, self.port, self.pid = launched, launched.port, launched.pid
            self.boot_seconds = launched.boot_seconds
            self.owned = True
            self.started_empty = True  # its state folder is new (child_env): it holds nothing yet
        self._watcher = procs.start_thread(self._watch, "harness-emulator-watch")
        return self.info()

    def adopt(self) -> None:
        """Take over an attached kept emulator, so ``stop()`` stops it (``harness destroy``)."""
        self.owned = True

    def _launch_options(self) -> dict[str, Any]:
        env = dict(self.extra_env)
        # However it is started, its functions send their trace segments to a
        # known address: a later run's collector listens there (kept_xray_port).
        env.setdefault("AWS_XRAY_DAEMON_ADDRESS", f"127.0.0.1:{procs.free_udp_port()}")
        self.extra_env = env
        return {
            "region": self.settings.region,
            "iam_enforcement": self.settings.iam_enforcement,
            # The emulator refuses to start a mismatched runtime itself too (functions tests create).
            "extra_env": {MISMATCH_ENV: self.settings.runtime_mismatch, **self.extra_env},
        }

    def _attach_kept(self) -> bool:
        """Reuse an emulator kept earlier, if it is still alive."""
        state = _read_state(self.state_path)
        pid, port = int(state.get("pid", 0)), int(state.get("port", 0))
        alive = False
        try:
            alive = bool(pid) and psutil.Process(pid).create_time() == state.get("create_time")
        except psutil.Error:
            pass
        if alive:
            self.port, self.pid = port, pid
            try:
                wait_healthy(self.endpoint_url, self.log_path, time.monotonic() + 5)
                self.kept_by = state
                return True
            except TargetError:
                procs.stop_tree(pid)
        if state:
            owners.forget(self.run_dir, pid or None, scratch=state.get("scratch"))
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

    def lease_store(self) -> FileStore | None:
        """The leases of this emulator's stacks: files in its scratch folder, which goes with it.

        Every run that can attach to this emulator runs on this machine (it binds
        127.0.0.1; its state file is in the report folder): see harness.lease_store.
        None if its scratch folder is not known (a state file of an older version).
        """
        scratch = self._launched.scratch if self._launched is not None else self.kept_by.get("scratch")
        if not scratch:
            return None
        from harness.lease_store import FileStore

        return FileStore(Path(scratch) / LEASES_DIR)

    def check(self) -> None:
        if self._death is not None:
            raise self._death
        if not self._alive():
            raise EmulatorDied(f"the emulator (pid {self.pid}) is not running; log: {self.log_path}")

    @property
    def died(self) -> EmulatorDied | None:
        return self._death

    def env(self) -> dict[str, str]:
        return {**emulator_env(self.info()), "AWS_ACCOUNT_ID": EMULATOR_ACCOUNT}

    def describe(self) -> str:
        iam = "IAM enforced" if self.settings.iam_enforcement else "IAM not enforced"
        what = f"MiniStack {PINNED_VERSION} pid {self.pid} on {self.endpoint_url} ({iam}; log {self.log_path})"
        if not self.attached:
            return f"started in {self.boot_seconds or 0:.2f}s: {what}"
        return f"attached to kept {what}; {kept_by_text(self.kept_by)}, left running after this run"

    def pids(self) -> list[int]:
        """The emulator and every descendant (Lambda runtimes)."""
        if self.pid is None:
            return []
        return [self.pid, *(p.pid for p in procs.descendants(self.pid))]

    def stop(self, *, keep: bool = False) -> None:
        self._stopping.set()
        if self._booting is not None:  # begun, never started: nothing of the run is on it
            booting, self._booting = self._booting, None
            booting.stop()
        if self.pid is None:
            return
        if self.attached and not self.owned:
            return  # someone else's kept emulator: left as found
        if keep and self._alive():
            self._keep()
            return
        if self._launched is not None:
            self._launched.stop(remove_later=True)
        else:
            procs.stop_tree(self.pid)
            owners.forget(self.run_dir, self.pid, scratch=self.kept_by.get("scratch"))
        if _read_state(self.state_path).get("pid") == self.pid:
            with contextlib.suppress(OSError):
                self.state_path.unlink()
        self.pid = None

    def publish(self) -> None:
        """Name this emulator in the state file, so other runs attach to it, while this process still owns it.

        ``pytest --watch``: each of its runs attaches; the emulator still ends with this process (its lifeline).
        """
        if self._launched is not None:
            self._write_state()

    def _keep(self) -> None:
        assert self.pid is not None
        if self._launched is None:
            return  # adopted and kept again: the state file already names it
        self._write_state()
        owners.mark_kept(self.run_dir, self.pid)
        self._launched.hand_over()

    def _write_state(self) -> None:
        assert self.pid is not None and self._launched is not None
        state = {
            "pid": self.pid,
            "port": self.port,
            "create_time": psutil.Process(self.pid).create_time(),
            "log": str(self.log_path),
            "scratch": str(self._launched.scratch or ""),
            # The kept emulator's functions keep sending traces here.
            "xray_address": self.extra_env.get("AWS_XRAY_DAEMON_ADDRESS"),
            "kept_by": self.keeper,
            "kept_by_pid": os.getpid(),
            "kept_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        }
        self.state_path.write_text(json.dumps(state))


def _read_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def kept_by_text(state: Mapping[str, Any]) -> str:
    """'kept by `harness up` (pid 123) at ...' for headers and messages."""
    who = state.get("kept_by") or "an earlier run"
    pid = f" (pid {state['kept_by_pid']})" if state.get("kept_by_pid") else ""
    when = f" at {state['kept_at']}" if state.get("kept_at") else ""
    return f"kept by `{who}`{pid}{when}"


def kept_xray_port(run_dir: Path) -> int:
    """The trace daemon port a kept emulator sends to (0 if none is kept)."""
    try:
        address = _read_state(run_dir / STATE_FILE).get("xray_address") or ""
        return int(address.rsplit(":", 1)[1])
    except (ValueError, IndexError):
        return 0


def stop_kept(run_dir: Path) -> int | None:
    """Stop an emulator kept by ``harness up`` or ``--keep-stack`` (``harness down``). Returns its pid."""
    path = run_dir / STATE_FILE
    state = _read_state(path)
    if not state and not path.exists():
        return None
    pid = int(state.get("pid", 0) or 0)
    try:
        same = bool(pid) and psutil.Process(pid).create_time() == state.get("create_time")
    except psutil.Error:
        same = False
    if same:
        procs.stop_tree(pid)
    owners.forget(run_dir, pid or None, scratch=state.get("scratch"))
    with contextlib.suppress(OSError):
        path.unlink()
    return pid if same else None
