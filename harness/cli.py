"""The ``harness`` command: the branch-stack lifecycle outside pytest.

``harness deploy`` deploys this branch's stack and keeps it (and, locally, the
emulator) for manual work; ``harness destroy`` removes it. ``harness ls`` and
``harness gc`` list and collect the stacks the harness left in a target,
``harness doctor`` checks that a run can work here, and ``harness up`` /
``harness down`` start and stop a kept embedded emulator. All of them use the
same settings table and lifecycle as the pytest plugin.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from tabulate import tabulate

from harness import inventory, lease, retained, setgc
from harness import settings as settings_mod
from harness.aws_errors import AWS_ERRORS, explain
from harness.branch import GitRunner, run_git
from harness.errors import ConfigError, HarnessError, TargetError
from harness.lifecycle import Lifecycle
from harness.plan import make_plan
from harness.settings import Settings
from harness.settings.render import settings_listing
from harness.stack import TargetInfo, boto3_session, exported_env, make_client
from harness.stackops import waiter_config
from harness.tagged import gc as tagged_gc
from harness.tagged import inventory as tagged_inv
from harness.targets import Target, make_target

Now = Callable[[], dt.datetime]

#: The targets this command reached, for naming the identity in an AWS error.
_REACHED: list[Target] = []

COMMANDS: tuple[tuple[str, str], ...] = (
    ("deploy", "deploy this branch's stack and keep it; print the environment to export"),
    ("destroy", "delete this branch's stack (kept or not) and stop a kept emulator"),
    ("settings", "show every setting, its value and where it came from"),
    ("ls", "list the stacks the harness manages in the target (tag harness:managed-by=branchstack)"),
    ("gc", "delete managed stacks that expired or whose branch is gone from the remote (dry run unless --yes)"),
    ("doctor", "check settings, target, credentials, deploy command, branch and report folder"),
    ("up", "start the embedded emulator and keep it for manual work; print the environment to export"),
    ("down", "stop an emulator kept by `harness up` or `pytest --keep-stack`"),
    ("schema", "print the JSON Schema of scenario files (for editors: yaml-language-server, VS Code)"),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in COMMANDS:
        p = sub.add_parser(name, help=text, description=text)
        if name == "ls":
            p.add_argument("--all", action="store_true", help="also list stacks without the harness tags (unmanaged)")
        if name == "gc":
            p.add_argument("--yes", action="store_true", help="delete the stacks (without it: only print the plan)")
            p.add_argument(
                "--remote",
                default="origin",
                metavar="NAME",
                help="git remote whose branches are alive (default: origin)",
            )
            p.add_argument(
                "--orphan-grace",
                type=_hours,
                default=1.0,
                metavar="HOURS",
                help="a stack whose branch is not on the remote is collected only once it is this old "
                "(default: 1; covers runs on branches not pushed yet)",
            )
        if name != "schema":  # the schema is the same for every project and target
            settings_mod.add_argparse_options(p)
    return parser


def _hours(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of hours") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{raw!r} must be a finite number of hours >= 0")
    return value


def _out(line: str, *, stream: TextIO | None = None) -> None:
    """Progress and messages: stderr, so stdout carries only what a script reads (tables, exports)."""
    print(f"harness: {line}", file=stream or sys.stderr, flush=True)


_err = _out


def _table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> None:
    print(tabulate(rows, headers=list(headers), tablefmt=inventory.TABLE_FORMAT, disable_numparse=True), flush=True)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def main(argv: Sequence[str] | None = None, *, now: Now | None = None, git: GitRunner | None = None) -> int:
    """Run one ``harness`` command. ``now`` and ``git`` are for tests (clock and git runner)."""
    args = _parser().parse_args(argv)
    if args.command == "schema":
        from harness.scenarios.json_schema import shipped

        sys.stdout.write(shipped())
        return 0
    root = settings_mod.find_root(Path.cwd())
    cli = {s.name: getattr(args, s.name, None) for s in settings_mod.SETTINGS}
    clock = now or _utcnow
    try:
        if args.command == "doctor":
            return _doctor(cli, root)
        s = settings_mod.resolve(cli, os.environ, root)
        for notice in s.notices:
            _err(f"warning: {notice}")
        if args.command == "settings":
            for line in settings_listing(s):
                print(line)
            return 0
        if args.command == "deploy":
            return _deploy(s)
        if args.command == "ls":
            return _ls(s, clock(), include_unmanaged=args.all)
        if args.command == "gc":
            return _gc(
                s,
                clock,
                yes=args.yes,
                remote=args.remote,
                grace=dt.timedelta(hours=args.orphan_grace),
                git=git or run_git,
            )
        if args.command == "up":
            return _up(s)
        if args.command == "down":
            return _down(s)
        return _destroy(s)
    except HarnessError as exc:
        print(f"harness: error: {exc.render()}", file=sys.stderr)
        return 1
    except AWS_ERRORS as exc:
        who = getattr(_REACHED[-1], "identity", None) if _REACHED else None
        print(f"harness: error: {explain(exc, identity=who)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


# --------------------------------------------------------------------------- ls / gc


def _client(target: Target, info: TargetInfo, service: str) -> Any:
    own = getattr(target, "session", None)  # aws: the run's one set of credentials
    return make_client(own() if own is not None else boto3_session(info), info, service)


@contextmanager
def _attached(s: Settings) -> Iterator[tuple[Target, TargetInfo] | None]:
    """The target, reached without starting anything (a local target attaches to a kept emulator)."""
    target = make_target(s, s.report_dir, attach_only=True)
    _REACHED.append(target)
    try:
        info = target.start()
    except TargetError:
        if s.target != "local":
            raise
        yield None
        return
    try:
        yield target, info
    finally:
        target.stop(keep=True)  # a kept emulator stays kept


def _where(target: Target, info: TargetInfo) -> str:
    if target.kind == "local":
        return f"the kept emulator on {info['endpoint_url']} (pid {target.pid if target.pid is not None else '?'})"
    return target.describe()


def _no_emulator(s: Settings, what: str) -> int:
    _out(
        f"no kept emulator is running (state file {s.report_dir / 'emulator.json'}): {what}. "
        "Start one with `harness up`, or point at one with --target endpoint --endpoint-url URL"
    )
    return 0


def _ls(s: Settings, now: dt.datetime, *, include_unmanaged: bool) -> int:
    with _attached(s) as reached:
        if reached is None:
            return _no_emulator(s, "nothing to list")
        target, info = reached
        records = inventory.list_stacks(_client(target, info, "cloudformation"))
        deployments = tagged_gc.deployments(lambda service: _client(target, info, service), info, records)
        where = _where(target, info)
    rows = inventory.ls_rows([*records, *deployments], now, include_unmanaged=include_unmanaged)
    managed = sum(1 for r in records if r.managed)
    unmanaged = len(records) - managed
    if rows:
        _table(rows, inventory.LS_HEADERS)
    note = ""
    if unmanaged and not include_unmanaged:
        note = f"; {unmanaged} stack(s) without the harness tags not shown (--all lists them)"
    elif unmanaged:
        note = f"; {unmanaged} unmanaged"
    tagged = f", {len(deployments)} tagged deployment(s) (no stack)" if deployments else ""
    _out(f"{managed} managed stack(s){tagged} in {where}{note}")
    for line in setgc.set_lines(records):
        _out(line)
    for line in tagged_inv.ls_lines(deployments):
        _out(line)
    return 0


def _ours(s: Settings) -> Callable[[inventory.StackRecord], bool]:
    """Whether a stack is named as this project names its stage's stack."""
    from harness.naming import stack_name

    app = s.app or settings_mod.default_app(s.root)

    def ours(r: inventory.StackRecord) -> bool:
        if r.stage is None:
            return False
        try:
            return stack_name(s.stack_name_pattern, app, r.stage) == r.name
        except HarnessError:
            return False

    return ours


def _remote_branches(s: Settings, remote: str, git: GitRunner) -> tuple[set[str] | None, list[str]]:
    """The remote's branches (None: orphan detection off) and the warnings that say why."""
    try:
        branches: set[str] | None = inventory.remote_branches(s.root, remote, git)
    except Exception as exc:  # noqa: BLE001 - any git failure only switches orphan detection off
        detail = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        return None, [
            f"cannot read the branches of {remote!r} ({detail or type(exc).__name__}): "
            "orphan detection skipped, only expiry counts"
        ]
    if branches is not None and not branches:
        return None, [f"{remote!r} lists no branches: orphan detection skipped, only expiry counts"]
    return branches, []


def _gc(s: Settings, clock: Now, *, yes: bool, remote: str, grace: dt.timedelta, git: GitRunner) -> int:
    _sweep(s)
    with _attached(s) as reached:
        if reached is None:
            return _no_emulator(s, "nothing to collect")
        target, info = reached
        cfn = _client(target, info, "cloudformation")
        records = inventory.list_stacks(cfn)
        client_for = functools.partial(_client, target, info)
        deployments = tagged_gc.deployments(client_for, info, records)
        branches, warnings = _remote_branches(s, remote, git)
        ddb = _client(target, info, "dynamodb")
        leases = lease.store_for(target, lambda: ddb)  # the kept emulator's own files, else the lease table
        in_use = inventory.lease_holders(leases, clock)
        rules: dict[str, Any] = {
            "now": clock(),
            "protected_stages": s.protected_stages,
            "remote": branches,
            "remote_name": remote,
            "ours": _ours(s),
            "orphan_grace": grace,
        }
        plan = inventory.plan_gc([*records, *deployments], in_use=in_use, **rules)
        plan = setgc.unite(plan, records)  # an app of several stacks is one unit
        store = retained.Records(ddb)
        for w in warnings:
            _err(f"warning: {w}")
        managed = len(records) - plan.unmanaged
        _out(
            f"gc in {_where(target, info)}: {len(records)} stack(s), {managed} managed, "
            + (f"{len(deployments)} tagged deployment(s), " if deployments else "")
            + f"{plan.unmanaged} without the harness tags (never touched)"
            + (f", {plan.foreign} of other projects (only expiry checked)" if plan.foreign else "")
        )
        if plan.decisions:
            _table(inventory.plan_rows(plan, dry_run=not yes), inventory.PLAN_HEADERS)
        n_delete = len(plan.to_delete)
        n_skip = sum(1 for d in plan.decisions if d.action == inventory.SKIP)
        kept = plan.quietly_kept + sum(1 for d in plan.decisions if d.action == inventory.KEEP)
        listeners_failed = _gc_listeners(target, info, records, in_use, plan, yes=yes)
        if not yes:
            _out(
                f"dry run: {n_delete} stack(s) would be deleted, {n_skip} skipped, {kept} kept"
                + ("; run `harness gc --yes` with the same options to delete them" if n_delete else "")
            )
            return _gc_retained(store, target, info, rules, yes=False)
        if not n_delete:
            _out(f"nothing to delete ({n_skip} skipped, {kept} kept)")
            return _gc_retained(store, target, info, rules, yes=True)
        _out(f"deleting {n_delete} stack(s)...")
        wait = waiter_config(s.target)
        plan, tagged_todo = tagged_gc.split(plan)
        results = inventory.execute(
            cfn,
            plan,
            delay=wait["Delay"],
            max_attempts=int(wait["MaxAttempts"]),
            in_use=in_use,
            clear=inventory.lease_clearer(leases, clock),
            delete=retained.recording_delete(store, lambda service: _client(target, info, service)),
            units=setgc.groups(cfn, plan.to_delete),  # an app's stacks go together, importers first
        )
        results += tagged_gc.collect_all(
            tagged_todo,
            client_for,
            info,
            destroy=tagged_gc.destroyer(s, target, info) if s.destroy_command else None,
            ours=_ours(s),
            in_use=in_use,
            clear=inventory.lease_clearer(leases, clock),
        )
        _table(inventory.result_rows(results), inventory.RESULT_HEADERS)
        failed = [r for r in results if not r.ok]
        deleted = sum(1 for r in results if r.ok and r.detail.startswith("deleted"))
        _out(
            f"{deleted} deleted, {len(failed)} failed, {len(results) - deleted - len(failed)} left alone, "
            f"{n_skip} skipped"
        )
        return max(1 if failed or listeners_failed else 0, _gc_retained(store, target, info, rules, yes=True))


def _gc_listeners(
    target: Target,
    info: TargetInfo,
    records: list[inventory.StackRecord],
    in_use: inventory.InUse,
    plan: inventory.GcPlan,
    *,
    yes: bool,
) -> bool:
    """The harness's event listeners that no session uses (stack gone, deleted now, or held by no run)."""
    from harness.events import sweep

    stacks = inventory.HeldLeases(records, in_use)
    deleting = [d.record.name for d in plan.to_delete]
    found, problems = sweep.collect(lambda service: _client(target, info, service), stacks, deleting, yes=yes)
    if found:
        _out(
            f"{len(found)} listener resource(s) no session uses"
            + (" (removed)" if yes and not problems else "" if yes else " would be removed")
            + ":"
            + "".join(f"\n  {f.describe()}" for f in found)
        )
    for problem in problems:
        _err(f"listener not removed: {problem}")
    return bool(problems)


def _gc_retained(store: retained.Records, target: Target, info: TargetInfo, rules: dict[str, Any], *, yes: bool) -> int:
    """Resources retained by the templates of stacks deleted earlier: collected by their stack's rules."""
    decisions = retained.plan_records(store.load(), **rules)
    if not decisions:
        return 0
    _out("resources retained by the templates of deleted stacks:")
    _table(retained.record_rows(decisions, dry_run=not yes), retained.RECORD_HEADERS)
    todo = [rec for rec, d in decisions if d.action == inventory.DELETE]
    if not yes or not todo:
        if todo:
            _out(f"dry run: the retained resources of {len(todo)} deleted stack(s) would be deleted")
        return 0
    failed = 0
    for rec in todo:
        ok, detail = retained.collect(rec, store, lambda service: _client(target, info, service))
        failed += not ok
        _out(f"retained resources of {rec.stack_name}: {detail}")
    return 1 if failed else 0


# --------------------------------------------------------------------------- doctor

PASS, FAIL, SKIPPED = "pass", "FAIL", "skip"


def _doctor(cli: dict[str, object], root: Path) -> int:
    rows: list[list[str]] = []

    def row(check: str, result: str, detail: str) -> None:
        rows.append([check, result, detail])

    try:
        s = settings_mod.resolve(cli, os.environ, root)
    except HarnessError as exc:
        row("settings", FAIL, exc.message)
        for name in ("target", "credentials", "deploy command", "branch", "report dir"):
            row(name, SKIPPED, "settings did not resolve")
        return _doctor_end(rows)
    from_file = sum(1 for v in s.sources.values() if v == settings_mod.PYPROJECT)
    for notice in s.notices:
        row("environment", FAIL, notice)
    row(
        "settings",
        PASS,
        f"target {s.target}, region {s.region}, app {s.app or settings_mod.default_app(s.root)} "
        f"({from_file} from {s.root / settings_mod.PYPROJECT}; `harness settings` shows all)",
    )
    _doctor_target(s, row)
    _doctor_commands(s, row)
    try:
        plan = make_plan(s, os.environ)
        row(
            "branch",
            PASS,
            f"{plan.branch.branch!r} ({plan.branch.source}) -> stage {plan.stage} -> stack {plan.stack_name}",
        )
    except HarnessError as exc:
        row("branch", FAIL, exc.render())
    row(*_report_dir_check(s.report_dir))
    return _doctor_end(rows)


def _doctor_end(rows: list[list[str]]) -> int:
    _table(rows, ("check", "result", "detail"))
    failed = [r[0] for r in rows if r[1] == FAIL]
    _out(f"doctor: {len(failed)} check(s) failed: {', '.join(failed)}" if failed else "doctor: all checks passed")
    return 1 if failed else 0


def _doctor_target(s: Settings, row: Callable[[str, str, str], None]) -> None:
    kept = False
    if s.target == "local":
        from harness.emulator import PINNED_VERSION
        from harness.emulator.adapt import AdaptationError, check_version

        try:
            version = check_version()
        except AdaptationError as exc:
            row("emulator", FAIL, str(exc))
            row("target", SKIPPED, "the emulator is not installed at the pinned version")
            row("credentials", SKIPPED, "no target")
            return
        row("emulator", PASS, f"ministack {version} installed (pinned {PINNED_VERSION})")
        from harness.targets.local import LocalTarget

        target: Target = LocalTarget(s, s.report_dir / "doctor")
        probe = LocalTarget(s, s.report_dir, attach_only=True)
        try:
            probe.start()
            target, kept = probe, True  # a kept emulator answers: use it, leave it running
        except TargetError:
            pass
    else:
        target = make_target(s, s.report_dir, attach_only=True)
    try:
        info = target.start()
    except HarnessError as exc:
        row("target", FAIL, exc.render())
        row("credentials", SKIPPED, "target not reachable")
        target.stop(keep=kept)
        return
    try:
        row("target", PASS, target.describe())
        try:
            ident = _client(target, info, "sts").get_caller_identity()
            row("credentials", PASS, f"sts get-caller-identity: account {ident['Account']} as {ident['Arn']}")
        except Exception as exc:  # noqa: BLE001 - reported as the check's result
            row("credentials", FAIL, f"sts get-caller-identity failed: {exc}")
    finally:
        target.stop(keep=kept)


def _doctor_commands(s: Settings, row: Callable[[str, str, str], None]) -> None:
    if not s.deploy_command:
        row("deploy command", FAIL, 'no deploy-command is set (e.g. deploy-command = ["make", "deploy"])')
    else:
        row("deploy command", *_which(s.deploy_command, s.root))
    if s.destroy_command:
        row("destroy command", *_which(s.destroy_command, s.root))
    elif s.deploy_kind == "tagged":
        row("destroy command", FAIL, 'deploy-kind is \'tagged\': set destroy-command (e.g. ["make", "destroy"])')
    if s.outputs_command:
        row("outputs command", *_which(s.outputs_command, s.root))


def _which(argv: Sequence[str], root: Path) -> tuple[str, str]:
    exe = argv[0]
    if os.sep in exe or (os.altsep and os.altsep in exe):
        candidate = Path(exe) if Path(exe).is_absolute() else root / exe
        found = shutil.which(str(candidate))
    else:
        found = shutil.which(exe)
    if found is None:
        return FAIL, f"{exe!r} not found on PATH (command: {shlex.join(argv)})"
    return PASS, f"{shlex.join(argv)} ({exe} -> {found})"


def _report_dir_check(path: Path) -> tuple[str, str, str]:
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing != path:
        if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
            return "report dir", PASS, f"{path} (does not exist yet; {existing} is writable)"
        return "report dir", FAIL, f"{path} cannot be created: {existing} is not a writable folder"
    if not path.is_dir():
        return "report dir", FAIL, f"{path} exists and is not a folder"
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as exc:
        return "report dir", FAIL, f"{path} is not writable: {exc}"
    return "report dir", PASS, f"{path} is writable"


# --------------------------------------------------------------------------- up / down


def _up(s: Settings) -> int:
    from harness.targets.base import emulator_env
    from harness.targets.local import LocalTarget

    if s.target != "local":
        raise ConfigError(
            f"`harness up` starts the embedded emulator, but the target is '{s.target}' (from {s.source('target')})",
            hint="run it with --target local",
        )
    target = LocalTarget(s, s.report_dir)
    target.keeper = "harness up"
    info = target.start()
    for line in target.swept:
        _out(line)
    _err(f"target: {target.describe()}")
    target.stop(keep=True)
    if target.attached:
        _err("that emulator was already running; it keeps running")
    else:
        _err("the emulator keeps running; stop it with `harness down` (or `harness destroy`)")
    _print_exports("the emulator", emulator_env(info))
    return 0


def _down(s: Settings) -> int:
    from harness.targets.local import STATE_FILE, stop_kept

    swept = _sweep(s)
    pid = stop_kept(s.report_dir)
    if pid is not None:
        _out(f"emulator stopped (pid {pid})")
    elif not swept:
        _out(f"nothing to stop: no kept emulator is running (state file {s.report_dir / STATE_FILE})")
    return 0


def _sweep(s: Settings) -> list[str]:
    """Stop this project's orphaned emulators (their owner died) and say what was stopped."""
    from harness.emulator.owners import sweep

    swept = sweep(s.report_dir)
    for line in swept:
        _out(line)
    return swept


def _deploy(s: Settings) -> int:
    """Deploy and keep; the export lines alone go to stdout, so `eval "$(harness deploy)"` works."""
    lifecycle = Lifecycle(replace(s, keep_stack=True), out=_out, keeper="harness deploy")
    info = lifecycle.start()
    lifecycle.close()
    _print_exports("the stack", exported_env(info))
    return 0


def _print_exports(what: str, env: dict[str, str]) -> None:
    lines = [f"# export these to use {what}:", *(f"export {k}={shlex.quote(v)}" for k, v in env.items())]
    print("\n".join(lines), flush=True)


def _destroy(s: Settings) -> int:
    """Remove the branch's stack and a kept emulator; nothing to remove is not an error."""
    try:
        report = Lifecycle(s, out=_out).destroy()
    except TargetError as exc:
        if s.target != "local" or "no emulator kept" not in exc.message:
            raise
        _out(f"nothing to destroy: {exc.message}")
        return 0
    return 1 if report.leftovers or report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
