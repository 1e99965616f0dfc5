"""A deploy's outputs from its ``outputs-command``: Terraform's ``output -json`` shape, or a flat object.

Two documented shapes are read:

* Terraform (``terraform output -json``, also OpenTofu)::

      {"table_name": {"value": "orders-dev", "type": "string", "sensitive": false},
       "db_password": {"value": "...", "type": "string", "sensitive": true}}

* a flat object (``pulumi stack output --json``; any script)::

      {"tableName": "orders-dev", "port": 8080}

An object is Terraform's shape only when every value is an object with a
``value`` key (an empty object is no outputs). Values that are not strings
become their JSON text, as CloudFormation outputs are strings. Terraform's
``sensitive: true`` outputs are returned by name, so every printer, log and
report can hide their values; Pulumi prints secrets as ``"[secret]"`` unless
``--show-secrets`` is given, so a flat object has none to hide.

The command is an argv list run without a shell. Its standard output is read
in memory and never written anywhere; its standard error goes to a log file,
with the sensitive values replaced.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import procs
from harness.errors import OutputsError

#: What a sensitive value is replaced with wherever the harness shows or writes it.
MASK = "***"

_HINT = (
    "print the outputs as JSON on stdout: `terraform output -json`, `pulumi stack output --json`, or a flat "
    'object such as {"TableName": "orders-dev"}'
)


@dataclass(frozen=True)
class DeployOutputs:
    """The outputs as strings, and the names of the sensitive ones."""

    values: dict[str, str] = field(default_factory=dict)
    sensitive: frozenset[str] = frozenset()

    def secrets(self) -> list[str]:
        """The sensitive values (non-empty), longest first (so one inside another is masked whole)."""
        found = {self.values[k] for k in self.sensitive if self.values.get(k)}
        return sorted(found, key=len, reverse=True)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _terraform_shaped(doc: Mapping[str, Any]) -> bool:
    return bool(doc) and all(isinstance(v, dict) and "value" in v for v in doc.values())


def parse(text: str, *, command: Sequence[str]) -> DeployOutputs:
    """The outputs in ``text`` (the command's stdout); an OutputsError naming the command otherwise.

    The error never quotes the text: it may hold the values of sensitive outputs.
    """
    shown = shlex.join(command)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OutputsError(
            f"the outputs command `{shown}` printed no valid JSON on stdout ({exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}; {len(text)} characters, not shown: they may hold secrets)",
            hint=_HINT,
        ) from None
    if not isinstance(doc, dict):
        raise OutputsError(
            f"the outputs command `{shown}` printed a JSON {type(doc).__name__}, not an object of outputs",
            hint=_HINT,
        )
    if _terraform_shaped(doc):
        sensitive = frozenset(k for k, v in doc.items() if v.get("sensitive") is True)
        return DeployOutputs({k: _as_text(v["value"]) for k, v in doc.items()}, sensitive)
    nested = sorted(k for k, v in doc.items() if isinstance(v, dict) and "value" in v)
    if nested:
        raise OutputsError(
            f"the outputs command `{shown}` printed a mix of Terraform-shaped outputs ({', '.join(nested)}) and "
            'plain values: expected either every output as {"value": ...} or a flat object',
            hint=_HINT,
        )
    return DeployOutputs({k: _as_text(v) for k, v in doc.items()})


def mask(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret replaced by :data:`MASK`."""
    for value in secrets:
        text = text.replace(value, MASK)
    return text


def run(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path, timeout: float) -> DeployOutputs:
    """Run the outputs command (no shell) and read its outputs; its stderr goes to ``log_path``, masked."""
    shown = shlex.join(argv)
    try:
        with procs.main_signals_unblocked():  # a stop's SIGTERM reaches it, whatever thread starts it
            proc = subprocess.Popen(  # noqa: S603 - argv list, never a shell
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
    except OSError as exc:
        raise OutputsError(
            f"the outputs command `{shown}` could not be started: {exc.strerror or exc}",
            hint="set outputs-command in [tool.harness] to a command on PATH, e.g. "
            'outputs-command = ["terraform", "output", "-json"]',
        ) from None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        procs.stop_tree(proc.pid)
        proc.communicate()
        raise OutputsError(
            f"the outputs command `{shown}` did not finish within {timeout:.0f}s; it was stopped",
            hint="an outputs command only reads state: look at what it waits for",
        ) from None
    except BaseException:
        procs.stop_tree(proc.pid)
        raise
    stdout = out.decode("utf-8", "replace")
    stderr = err.decode("utf-8", "replace")
    found: DeployOutputs | None = None
    try:
        found = parse(stdout, command=argv) if proc.returncode == 0 else None
    finally:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        secrets = found.secrets() if found is not None else []
        log_path.write_text(mask(stderr, secrets))
    if found is None:
        tail = "\n".join(f"    {line}" for line in stderr.strip().splitlines()[-10:])
        raise OutputsError(
            f"the outputs command `{shown}` exited {proc.returncode}"
            + (f"; its last lines of stderr ({log_path}):\n{tail}" if tail else f" (nothing on stderr; {log_path})"),
            hint="run it yourself after the deploy; it must print the outputs as JSON and exit 0",
        )
    return found
