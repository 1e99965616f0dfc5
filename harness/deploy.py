"""CloudFormation and command primitives: run the team's deploy command, read a stack back, delete one.

The command is an argv list run without a shell. The stage and stack name
reach it as environment variables, with the standard AWS variables for the
target, so a ``make deploy`` / ``sam deploy`` / ``aws cloudformation deploy``
reaches the emulator unchanged. Its output streams to a log file.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import os
import select
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions

from harness import lifeline, procs
from harness.errors import DeployError, TeardownError

COMPLETE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
#: The name of a command's own temporary folder (its TMPDIR) starts so.
COMMAND_TMP_PREFIX = "harness-command-"

#: Set while a deploy runs off the main thread: when it is set, the command is stopped as on Ctrl-C.
_CANCEL: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("harness_deploy_cancel", default=None)
_CANCEL_POLL = 0.05  # seconds between looks at the cancel event while the command runs
#: Set once the command's process exists (the thread's own work before it is done).
_LAUNCHED: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "harness_deploy_launched", default=None
)


@contextlib.contextmanager
def cancelled_by(event: threading.Event, *, launched: threading.Event | None = None) -> Iterator[None]:
    """Inside the block, :func:`run_command` stops its command and raises KeyboardInterrupt once ``event`` is set,
    and sets ``launched`` as soon as its command's process has started.

    A signal reaches only the main thread; a deploy running on another one is
    stopped through this event instead, the same way.
    """
    token = _CANCEL.set(event)
    launched_token = _LAUNCHED.set(launched)
    try:
        yield
    finally:
        _LAUNCHED.reset(launched_token)
        _CANCEL.reset(token)


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    seconds: float
    log_path: Path


def run_command(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log_path: Path,
    timeout: float,
    echo: Callable[[str], None] | None = None,
) -> CommandResult:
    """Run ``argv`` (no shell), streaming each output line to ``log_path`` and ``echo``.

    On timeout or interruption the whole process tree is stopped; a
    ``KeyboardInterrupt`` is re-raised after that.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    _check_executable(argv, env, cwd)
    started = time.monotonic()
    # The command's own temporary folder: what a deploy tool leaves in its TMPDIR (the SAM CLI leaves a folder
    # per packaged function) goes with the command. Made inside the temporary folder the environment names.
    tmp = command_tmp(env)
    # Under the lifeline supervisor: if this process dies (even by SIGKILL),
    # the command's whole process group ends with it, and then its temporary folder.
    read_end, write_end = lifeline.pipe()
    try:
        with procs.main_signals_unblocked():  # the command sees SIGTERM and SIGINT, whatever thread starts it
            proc = subprocess.Popen(  # noqa: S603 - argv list, never a shell
                lifeline.supervised(argv),
                env={
                    **env,
                    **lifeline.supervisor_env(),
                    "TMPDIR": tmp,
                    lifeline.LIFELINE_ENV: str(read_end),
                    lifeline.SCRATCH_ENV: tmp,
                },
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=(read_end,),
            )
    except BaseException:
        os.close(write_end)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        os.close(read_end)
    launched = _LAUNCHED.get()
    if launched is not None:
        launched.set()
    try:
        return _wait(proc, argv, log_path=log_path, timeout=timeout, echo=echo, started=started)
    finally:
        os.close(write_end)
        shutil.rmtree(tmp, ignore_errors=True)  # the command and its group have ended (_wait stops them first)


def command_tmp(env: Mapping[str, str]) -> str:
    """A new temporary folder for one command, ``harness-command-<this pid>-...``, inside the folder ``TMPDIR``
    names in ``env`` (else the system's). The folders of runs that ended without removing theirs (the harness
    and the command's supervisor both SIGKILLed) are removed first: their pid no longer runs."""
    named = env.get("TMPDIR")
    parent = Path(named if named and os.path.isdir(named) else tempfile.gettempdir())
    with contextlib.suppress(OSError):
        for left in parent.glob(f"{COMMAND_TMP_PREFIX}*-*"):
            pid = left.name.removeprefix(COMMAND_TMP_PREFIX).split("-", 1)[0]
            if pid.isdigit() and not procs.pid_alive(int(pid)):
                shutil.rmtree(left, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{COMMAND_TMP_PREFIX}{os.getpid()}-", dir=parent)


def _check_executable(argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> None:
    """Name a missing or non-executable command before anything runs."""
    exe = argv[0]
    if os.sep in exe or (os.altsep and os.altsep in exe):
        path = Path(exe) if Path(exe).is_absolute() else cwd / exe
        found = str(path) if path.is_file() and os.access(path, os.X_OK) else None
        exists = path.exists()
    else:
        found = shutil.which(exe, path=env.get("PATH", os.defpath))
        exists = found is not None
    if found is None and not exists:
        raise DeployError(
            f"the command {exe!r} was not found (argv: {list(argv)})",
            hint="install it, or fix deploy-command / destroy-command in [tool.harness]",
        )
    if found is None:
        raise DeployError(f"the command {exe!r} is not executable")


def _wait(
    proc: subprocess.Popen[bytes],
    argv: Sequence[str],
    *,
    log_path: Path,
    timeout: float,
    echo: Callable[[str], None] | None,
    started: float,
) -> CommandResult:
    def pump() -> None:
        assert proc.stdout is not None
        with open(log_path, "ab") as log:
            for raw in proc.stdout:
                log.write(raw)
                log.flush()
                if echo is not None:
                    echo(raw.decode("utf-8", errors="replace").rstrip("\n"))

    reader = procs.start_thread(pump, "harness-deploy-log")
    try:
        code = _wait_or_cancel(proc, timeout, _CANCEL.get())
    except subprocess.TimeoutExpired:
        procs.stop_tree(proc.pid)
        reader.join(timeout=5)
        raise DeployError(
            f"{argv[0]} did not finish within {timeout:.0f}s and was stopped; log {log_path} ends with:\n"
            + procs.tail(log_path),
            hint="raise deploy-timeout if the deploy is just slow",
        ) from None
    except BaseException:
        procs.stop_tree(proc.pid)
        reader.join(timeout=5)
        raise
    reader.join(timeout=5)
    return CommandResult(tuple(argv), code, time.monotonic() - started, log_path)


def _wait_or_cancel(proc: subprocess.Popen[bytes], timeout: float, cancel: threading.Event | None) -> int:
    """``proc.wait(timeout)``, returning the moment the command ends; with ``cancel``, a KeyboardInterrupt as
    soon as it is set. ``Popen.wait`` with a timeout polls (up to 50 ms apart): where the system has pidfds the
    wait sleeps on the command's, which the kernel wakes when it ends."""
    deadline = time.monotonic() + timeout
    with _ended_fd(proc) as ended:
        while True:
            left = max(0.0, deadline - time.monotonic())
            step = left if cancel is None else min(_CANCEL_POLL, left)
            if ended is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    return proc.wait(timeout=step)
            else:
                select.select([ended], [], [], step)
                code = proc.poll()
                if code is not None:
                    return code
            if cancel is not None and cancel.is_set():
                raise KeyboardInterrupt("the run was stopped during the deploy command") from None
            if time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(proc.args, timeout)


@contextlib.contextmanager
def _ended_fd(proc: subprocess.Popen[bytes]) -> Iterator[int | None]:
    """A pidfd of ``proc`` (readable once it has ended), or None where there is none."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        yield None
        return
    try:
        yield fd
    finally:
        os.close(fd)


def events_since(cfn: Any, stack: str, since: dt.datetime | None = None) -> Iterator[dict[str, Any]]:
    """The stack's events, newest first, down to ``since`` (all of them without it)."""
    for page in cfn.get_paginator("describe_stack_events").paginate(StackName=stack):
        for ev in page["StackEvents"]:
            if since is not None and ev["Timestamp"] < since:
                return
            yield ev


def failure_events(cfn: Any, stack: str, since: dt.datetime | None = None, limit: int = 10) -> list[str]:
    """CloudFormation's own reasons for a failed operation: logical id, type, status, reason."""
    lines: list[str] = []
    try:
        for ev in events_since(cfn, stack, since):
            status = ev.get("ResourceStatus", "")
            reason = ev.get("ResourceStatusReason") or ""
            if not status.endswith("FAILED") or reason == "Resource creation cancelled":
                continue
            if ev.get("LogicalResourceId") == stack and ev.get("ResourceType") == "AWS::CloudFormation::Stack":
                if lines:  # the stack-level echo of a resource failure adds nothing
                    continue
            lines.append(f"{ev.get('LogicalResourceId')} ({ev.get('ResourceType')}): {status}: {reason}")
            if len(lines) >= limit:
                return lines
    except botocore.exceptions.ClientError:
        pass
    return lines


def stack_status(cfn: Any, stack: str) -> dict[str, Any] | None:
    """``describe_stacks`` for one stack, or None if it does not exist."""
    try:
        return dict(cfn.describe_stacks(StackName=stack)["Stacks"][0])
    except botocore.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def read_resources(cfn: Any, stack: str) -> tuple[dict[str, str], dict[str, str]]:
    """Physical ids and types by logical id, every page."""
    physical: dict[str, str] = {}
    types: dict[str, str] = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack):
        for r in page["StackResourceSummaries"]:
            if r.get("PhysicalResourceId"):
                physical[r["LogicalResourceId"]] = r["PhysicalResourceId"]
            types[r["LogicalResourceId"]] = r["ResourceType"]
    return physical, types


def deploy_env(base: Mapping[str, str], target_env: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """The deploy command's environment: the user's, the target's AWS variables, the harness's."""
    env = dict(base)
    if "AWS_ENDPOINT_URL" in target_env or "AWS_ACCESS_KEY_ID" in target_env:
        # The target's credentials are the only ones: emulator targets must not
        # reach a real account, and on aws a profile or web-identity variable
        # beside the run's keys could make the CLI pick another identity.
        from harness.targets.aws_credentials import without_competing

        env = without_competing(env)
    env.update(target_env)
    env.update(extra)
    return with_interpreter_scripts(env)


def with_interpreter_scripts(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with the running virtualenv's scripts folder at the end of ``PATH``, when it is not on it.

    Tools installed beside the harness (``aws`` from its ``deploy`` extra, ``sam``, ``cdk`` wrappers)
    are then found when pytest runs as ``.venv/bin/pytest`` without the virtualenv activated, as they
    are when it is activated. Appended, so a tool the user's ``PATH`` already names keeps precedence.
    """
    out = dict(env)
    if sys.prefix == sys.base_prefix:
        return out  # not a virtualenv: the interpreter's own scripts are the user's business
    scripts = sysconfig.get_path("scripts")
    entries = [e for e in out.get("PATH", os.defpath).split(os.pathsep) if e]
    if scripts and not any(_same_folder(e, scripts) for e in entries):
        out["PATH"] = os.pathsep.join([*entries, scripts])
    return out


def _same_folder(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.normpath(a) == os.path.normpath(b)


def delete_stack(cfn: Any, stack: str, *, delay: float, max_attempts: int) -> None:
    """Delete ``stack`` (name or id) and wait until CloudFormation says it is gone.

    Deletion is addressed by stack id (ARN): after a delete, ``describe_stacks``
    by *name* no longer finds the stack, but by id it returns ``DELETE_COMPLETE``
    (or ``DELETE_FAILED`` with reasons), which is what the waiter needs to tell
    success from failure.
    """
    desc = stack_status(cfn, stack)
    if desc is None:
        return
    stack_id = desc["StackId"]
    if desc["StackStatus"] == "DELETE_COMPLETE":
        return
    token = f"harness-delete-{uuid.uuid4().hex}"
    cfn.delete_stack(StackName=stack_id, ClientRequestToken=token)
    try:
        cfn.get_waiter("stack_delete_complete").wait(
            StackName=stack_id, WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts}
        )
    except botocore.exceptions.WaiterError as exc:
        reasons = failure_events(cfn, stack_id)
        status = (exc.last_response or {}).get("Stacks", [{}])[0].get("StackStatus", "unknown")
        raise TeardownError(
            f"stack {desc['StackName']} was not deleted (status {status})"
            + ("".join(f"\n  {r}" for r in reasons) if reasons else ""),
            hint="empty or release the resources named above, then run `harness destroy` again",
        ) from None
