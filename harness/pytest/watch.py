"""``pytest --watch``: run the session, then again after every change to what it deploys or tests.

The inner loop of a developer on a branch stack: save a function's code, see
its scenarios pass or fail on the redeployed stack. Each run is the ordinary
session (the same deploy command, fingerprint skip, scenarios, traces and
report) with the stack kept between runs; what the watch adds:

* **A warm start.** This process forks a server (:mod:`harness.forkserver`)
  that imports what a run needs (the AWS SDK, the lifecycle, the scenario
  engine); each run is a child forked from it, which starts its deploy command
  at once instead of after 0.7 s of imports. The child imports the project's
  own modules (conftests, test modules) afresh, so their edits are seen.
* **One emulator for the whole watch**, on the local target: launched here and
  named in the report folder's state file, so every run attaches to it (its
  stack, kept between runs, is redeployed only when its inputs change). It is
  owned by this process's lifeline: it ends when the watch ends, however it
  ends (SIGKILL included), and its stacks with it. ``--keep-stack`` hands it
  over when the watch ends instead, as a session's ``--keep-stack`` does.
* **Changes that count**: the deploy's inputs (``fingerprint-paths``, or every
  project file but the test side), the paths the session runs, conftests and
  the pytest configuration, among the files git would track (build output and
  the report folder never count, so a run's own writes do not start another),
  found by looking every 50 ms (:class:`Watcher`). Changes made during a run
  start one more run when it ends.

On a shared target (``--target aws`` or an endpoint) the stack stays deployed
when the watch ends, as with ``--keep-stack``; ``harness destroy`` removes it,
and its TTL tag lets ``harness gc`` collect it if nobody does.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import importlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness import fingerprint
from harness.errors import HarnessError
from harness.ownership import WATCH_KEEPER
from harness.pytest.controller import WATCH_RUN_ENV, arg_paths, needs_stack, resolve_settings

if TYPE_CHECKING:
    from harness.forkserver import ForkServer
    from harness.settings import Settings
    from harness.targets.local import LocalTarget

DEST = "branchstack_watch"
FLAG = "--watch"
#: Editors' swap, backup and lock files (vim, emacs, JetBrains, macOS): written while a file is edited, never saved work.
EDITOR_FILES = ("*.swp", "*.swo", "*.swx", "*~", ".#*", "#*#", "4913", ".DS_Store", "*___jb_tmp___", "*___jb_old___")
#: Files whose change re-runs the session wherever they are: pytest's and the harness's configuration.
CONFIG_FILES = frozenset({"conftest.py", "pyproject.toml", "pytest.ini", "tox.ini", "setup.cfg"})


def add_option(parser: pytest.Parser) -> None:
    parser.getgroup("branchstack").addoption(
        FLAG,
        action="store_true",
        dest=DEST,
        default=False,
        help="Run the session, then again after every change to the deploy's inputs or the tests (Ctrl-C stops); "
        "the stack is kept between runs and each run starts with its imports made.",
    )


def wanted(config: pytest.Config) -> bool:
    return bool(getattr(config.option, DEST, False))


def run(config: pytest.Config) -> int:
    """The watch loop (``pytest_cmdline_main``): the exit code of the last run."""
    if not hasattr(os, "fork"):
        raise pytest.UsageError(f"{FLAG} needs os.fork (Linux or macOS); run pytest without it here")
    settings = resolve_settings(config)
    out = Out()
    relevant = Relevant(settings.root, settings, arg_paths(config), cwd=Path(str(config.invocation_params.dir)))
    args = child_args(config.invocation_params.args, keep=settings.keep_stack)
    plugins = config.invocation_params.plugins
    server = _server(config, settings, args, plugins)  # before any thread of this process
    target: LocalTarget | None = None
    code: int = 0
    previous = signal.signal(signal.SIGTERM, _stop_on_term(server))
    try:
        if settings.target == "local" and needs_stack(config, settings):
            target = _emulator(settings, out)
        code = _loop(server, Watcher(settings.root, relevant), out)  # looks from before the first run on
    except KeyboardInterrupt:  # before the first run (the emulator's start)
        out.line("stopped watching")
        code = pytest.ExitCode.INTERRUPTED
    except HarnessError as exc:  # the emulator could not start: said as a session says it
        out.line(exc.render())
        code = pytest.ExitCode.TESTS_FAILED
    finally:
        _stop_run(server)
        if target is not None:
            _end_emulator(target, settings, out)
        elif needs_stack(config, settings) and not settings.keep_stack:
            out.line(
                "the stack stays deployed on the shared target, as with --keep-stack: `harness destroy` removes it"
            )
        signal.signal(signal.SIGTERM, previous)
    return code


def _stop_on_term(server: ForkServer) -> Callable[[int, Any], None]:
    """SIGTERM (a CI runner, `kill`) stops the watch as Ctrl-C does; the run going on gets it too."""

    def handler(signum: int, frame: Any) -> None:
        server.signal_child(signal.SIGTERM)
        raise KeyboardInterrupt

    return handler


def _server(config: pytest.Config, settings: Settings, args: list[str], plugins: Sequence[Any] | None) -> ForkServer:
    from harness.forkserver import ForkServer

    root = Path(str(config.rootpath))

    def warm_server() -> None:
        warm(settings.region, lambda: _named_runtimes(settings))
        forget_project_modules(root, dict(sys.modules))  # a dry run: each module's file placed once, here

    return ForkServer(warm=warm_server, run=lambda: _child_run(args, plugins, root))


def _named_runtimes(settings: Settings) -> list[str]:
    """The Lambda runtimes the project's templates name, on the local target (where the runtime check runs)."""
    if settings.target != "local":
        return []
    from harness import runtime_check

    return runtime_check.project_runtimes(settings)


def _loop(server: ForkServer, watcher: Watcher, out: Out) -> int:
    """Run, then run again after each batch of changes, until Ctrl-C (or SIGTERM): the last run's exit code."""
    code = 0
    try:
        code = _one_run(server, out, "first run")
        while True:
            out.line(f"watching {watcher.describe()} for changes (Ctrl-C stops)")
            changed = watcher.next_batch()
            code = _one_run(server, out, f"changed: {_names(changed)}")
    except KeyboardInterrupt:
        ended = _stop_run(server)
        out.line("stopped watching")
        return code if ended is None else ended


def _one_run(server: ForkServer, out: Out, why: str) -> int:
    out.line(f"{why}: running")
    started = time.monotonic()
    code = server.run()
    out.line(f"run ended in {time.monotonic() - started:.2f}s: {_verdict(code)}")
    return code


def _stop_run(server: ForkServer) -> int | None:
    """Let the run asked for (if any) end, then end the server: the run's exit code, None if none was running.

    Ctrl-C reached the run too (one process group); a second one is passed on to it, as to any pytest session.
    """
    code = None
    while True:
        try:
            code = server.wait()
            break
        except KeyboardInterrupt:
            server.signal_child(signal.SIGINT)
        except RuntimeError:  # the server is gone
            break
    server.close()
    return code


def _verdict(code: int) -> str:
    names = {int(c): c.name.lower().replace("_", " ") for c in pytest.ExitCode}
    if code < 0:
        return f"ended by signal {signal.Signals(-code).name}"
    return f"exit code {code} ({names.get(code, 'error')})"


def _names(paths: Sequence[str], most: int = 3) -> str:
    shown = ", ".join(paths[:most])
    return shown + (f" and {len(paths) - most} more" if len(paths) > most else "")


class Out:
    """The watch's own lines, between the runs' output."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream

    def line(self, text: str) -> None:
        stream = self.stream or sys.stdout
        stream.write(f"branchstack watch: {text}\n")
        stream.flush()


# -- the runs ---------------------------------------------------------------------------------------
def child_args(args: Iterable[str], *, keep: bool) -> list[str]:
    """The watch's pytest arguments for each run: without --watch, with --keep-stack (the watch ends the stack)."""
    out = [a for a in args if a != FLAG]
    if not keep and "--keep-stack" not in out:
        out.append("--keep-stack")
    return out


#: What a stack session imports besides ``prewarm.AFTER_DEPLOY`` (listed from a run of the reference stack).
RUN_MODULES = (
    "harness.lifecycle",
    "harness.stack",
    "harness.early_start",
    "harness.targets.local",
    "harness.runtime_check",
    "harness.pytest.tracing",
    "harness.pytest.behaviour",
    "harness.behaviour.run",
    "harness.traces.run",
    "harness.traces.html",
    "harness.traces.local_source",
    "harness.traces.summary",
    "harness.emulator.pending_work",
    "harness.targets.aws_credentials",  # the deploy command's environment
    "tabulate",
    "netrc",  # requests reads ~/.netrc on its first request
    "_strptime",  # the first datetime.strptime
)

#: What a pytest plugin imports late (hypothesis's at the end of collection, some 0.1 s): imported ahead where the
#: plugin is loaded (it is in this process, which loaded the watch's own plugins before forking the server).
PLUGINS_IMPORT = {"_hypothesis_pytestplugin": ("hypothesis",)}


def warm(region: str, runtimes: Callable[[], Iterable[str]] = tuple) -> None:
    """In the fork server, once: import what a run imports, parse the AWS SDK's data files its clients read
    (into the process's shared loader, harness.boto_sessions) and the installed distributions pytest's start
    reads (harness.installed); gather hypothesis's constants of the modules imported so far
    (``prewarm.hypothesis_constants``: a run then reads only the modules it imports afresh) and look up the
    Lambda ``runtimes`` (each lookup starts interpreters: a run's check then finds them in this process's
    cache, ``harness.emulator.runtimes.cached``). All of it work each run did again beside its deploy command.
    A failure fails again in the run, as usual."""
    from harness import installed, prewarm

    with contextlib.suppress(Exception):
        installed.remember()

    late = [name for plugin, names in PLUGINS_IMPORT.items() if plugin in sys.modules for name in names]
    for name in (*RUN_MODULES, *prewarm.AFTER_DEPLOY, *late):
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    with contextlib.suppress(Exception):
        from harness import boto_sessions, lifecycle
        from harness.stack import SERVICE_OF_TYPE

        services = {*lifecycle.BEFORE_DEPLOY_SERVICES, *lifecycle.TEARDOWN_SERVICES, *SERVICE_OF_TYPE.values()}
        boto_sessions.warm(tuple(sorted(services)), region)
        prewarm.faker_providers()
    with contextlib.suppress(Exception):
        prewarm.hypothesis_constants()
    with contextlib.suppress(Exception):
        from harness.emulator.runtimes import cached

        for runtime in sorted(set(runtimes())):
            cached(runtime)


def _child_run(args: list[str], plugins: Sequence[Any] | None, root: Path) -> int:
    os.environ[WATCH_RUN_ENV] = "1"  # the run keeps its stack for the watch's next run, and says so
    forget_project_modules(root)
    # The watch's own session installed pytest's assertion rewriting; the run installs its own.
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "AssertionRewritingHook"]
    return int(pytest.main(args, plugins=list(plugins) if plugins else None))


def forget_project_modules(root: Path, modules: dict[str, Any] | None = None) -> list[str]:
    """Drop the project's own modules (conftests the watch's session imported) so a run imports them afresh.

    The project's modules are those under ``root`` but not installed (not under the interpreter's prefix,
    e.g. a virtualenv inside the project) and not the harness itself. Each file is placed once per process
    (:func:`_in_project`): the fork server places its modules before its first fork (``warm``), so a run
    starts without resolving the path of every module it inherits again.
    """
    modules = sys.modules if modules is None else modules
    here = str(root.resolve()) + os.sep
    gone = []
    for name, module in list(modules.items()):
        file = getattr(module, "__file__", None)
        if not file or name == "harness" or name.startswith("harness."):
            continue
        if _in_project(file, here):
            del modules[name]
            gone.append(name)
    return gone


@functools.cache
def _in_project(file: str, here: str) -> bool:
    """Whether ``file`` is under ``here`` (a folder, with its trailing separator) and not installed."""
    path = str(Path(file).resolve())
    return path.startswith(here) and not path.startswith(_installed())


@functools.cache
def _installed() -> tuple[str, ...]:
    """The interpreter's prefixes (a virtualenv inside the project is installed, not the project's)."""
    return tuple(str(Path(p).resolve()) + os.sep for p in {sys.prefix, sys.base_prefix, sys.exec_prefix})


# -- the emulator -----------------------------------------------------------------------------------
def _emulator(settings: Settings, out: Out) -> LocalTarget:
    from harness.targets.local import LocalTarget

    target = LocalTarget(settings, settings.report_dir)
    target.keeper = WATCH_KEEPER
    try:
        target.start()
    except BaseException:
        target.stop()
        raise
    for line in target.swept:
        out.line(line)
    if target.attached:
        out.line(f"target: {target.describe()}")
    else:
        target.publish()
        out.line(f"target: {target.describe()}; every run attaches to it, and it ends with the watch")
    return target


def _end_emulator(target: LocalTarget, settings: Settings, out: Out) -> None:
    if target.attached:  # someone else's kept emulator: left as found, with what the runs deployed on it
        out.line("the kept emulator is left running as found, with the stack on it: `harness destroy` removes both")
        return
    if settings.keep_stack:
        target.stop(keep=True)
        out.line("the emulator and its stack are kept: `harness destroy` removes them")
        return
    target.stop()
    out.line("emulator stopped: the stack deployed on it went with it")


# -- the changes ------------------------------------------------------------------------------------


class Relevant:
    """Which changed paths start a run: the deploy's inputs, the session's paths and the test configuration."""

    def __init__(self, root: Path, settings: Settings, test_paths: Sequence[Path], *, cwd: Path) -> None:
        self.root = root.resolve()
        self.globs = tuple(settings.fingerprint_paths)
        self.excluded = [*settings.integration_paths, str(settings.report_dir)]
        self.report_dir = Path(settings.report_dir).resolve()
        self.test_paths = [p.resolve() for p in test_paths] or [cwd.resolve()]

    def __call__(self, path: str) -> bool:
        p = Path(path)
        if self.report_dir == p or self.report_dir in p.parents:
            return False
        if any(part in fingerprint.NOT_INPUTS for part in p.parts) or p.name.endswith((".pyc", ".pyo")):
            return False
        if any(fnmatch.fnmatchcase(p.name, pattern) for pattern in EDITOR_FILES):
            return False
        if p.name in CONFIG_FILES or any(t == p or t in p.parents for t in self.test_paths):
            return True
        try:
            rel = p.relative_to(self.root).as_posix()
        except ValueError:
            return False
        if self.globs:
            return bool(fingerprint.matching([rel], self.globs))
        return not fingerprint.on_test_side(rel, [fingerprint._relative(self.root, e) for e in self.excluded])

    def glob_folders(self) -> list[Path]:
        """The folders a glob of ``fingerprint-paths`` reaches into (where a new input can appear)."""
        out = []
        for glob in self.globs:
            literal = []
            for part in glob.split("/")[:-1]:
                if any(c in part for c in "*?["):
                    break
                literal.append(part)
            out.append(self.root.joinpath(*literal))
        return out

    def describe(self) -> str:
        what = f"fingerprint-paths ({', '.join(self.globs)})" if self.globs else "the project's files"
        tests = ", ".join(_shown(p, self.root) for p in self.test_paths)
        return f"{what} and {tests}"


def _shown(p: Path, root: Path) -> str:
    try:
        return p.relative_to(root).as_posix() or "."
    except ValueError:
        return str(p)


#: Seconds between two looks at the files that count (a stat of each, and of the folders holding them).
INTERVAL = 0.05
#: Seconds a batch of changes may keep growing (an editor's save can be several writes, a checkout many files).
SETTLE_MAX = 1.6

Signature = tuple[int, int, int]


def _signature(path: str) -> Signature | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class Watcher:
    """The changes that count, found by looking: every ``INTERVAL``, a stat of each file that counts and of the
    folders they are in (or that could get one: the session's paths and the globs' folders). A folder that
    changed (a file added, removed, or saved by renaming a new copy over it) lists the files again, as the
    fingerprint lists them (``git ls-files``: what git would track). No thread and no dependency; about a
    millisecond of CPU a look for a few hundred files.
    """

    def __init__(
        self,
        root: Path,
        relevant: Relevant,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.root = root.resolve()
        self.relevant = relevant
        self.clock = clock
        self.sleep = sleep
        self._files, self._dirs = self._scan()

    def _scan(self) -> tuple[dict[str, Signature | None], dict[str, Signature | None]]:
        listed = [str(self.root / rel) for rel in fingerprint.candidate_files(self.root)]
        outside = [t for t in self.relevant.test_paths if self.root != t and self.root not in t.parents]
        for t in outside:  # the session's paths outside the project: every file below them
            listed += [str(t / rel) for rel in fingerprint._walk(t)] if t.is_dir() else [str(t)]
        files = {f: _signature(f) for f in listed if self.relevant(f)}
        dirs = {str(self.root)}
        for f in files:
            parent = Path(f).parent
            while str(parent) not in dirs and (parent == self.root or self.root in parent.parents):
                dirs.add(str(parent))
                parent = parent.parent
        for base in [*self.relevant.test_paths, *self.relevant.glob_folders()]:
            dirs.update(_folders(base))
        return files, {d: _signature(d) for d in dirs if not self._excluded(d)}

    def _excluded(self, folder: str) -> bool:
        report = self.relevant.report_dir
        return Path(folder) == report or report in Path(folder).parents

    def changes(self) -> set[str]:
        """What changed since the last look (absolute paths; a removed file too)."""
        if any(_signature(d) != sig for d, sig in self._dirs.items()):
            files, self._dirs = self._scan()
            changed = {f for f in files.keys() | self._files.keys() if files.get(f) != self._files.get(f)}
            self._files = files
            return changed
        changed = set()
        for f, sig in self._files.items():
            now = _signature(f)
            if now != sig:
                self._files[f] = now
                changed.add(f)
        return changed

    def next_batch(self) -> list[str]:
        """Wait for changes that count; once a look finds no more (at most ``SETTLE_MAX``), their relative paths."""
        while not (changed := self.changes()):
            self.sleep(INTERVAL)
        deadline = self.clock() + SETTLE_MAX
        while self.clock() < deadline:
            self.sleep(INTERVAL)
            more = self.changes()
            if not more:
                break
            changed |= more
        return sorted(_shown(Path(p), self.root) for p in changed)

    def describe(self) -> str:
        return self.relevant.describe()


def _folders(base: Path) -> list[str]:
    """``base`` and every folder below it but build output and caches (``fingerprint.NOT_INPUTS``)."""
    if not base.is_dir():
        return [str(base.parent)] if base.parent.is_dir() else []
    found = []
    for folder, subdirs, _ in os.walk(base):
        subdirs[:] = [d for d in subdirs if d not in fingerprint.NOT_INPUTS]
        found.append(folder)
    return found
