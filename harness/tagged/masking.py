"""Keep the values of sensitive outputs out of everything the harness shows or writes.

A test may read a sensitive output (``stack.outputs["db_password"]``) and the
test process's environment may carry it; what leaves the process must not:

* a test's report (its failure text and captured output sections): what the
  terminal, ``-rA``, JUnit XML and pytest-html show is masked here, in the
  process that ran the test, before the report is sent or printed;
* the report directory: after the teardown every text file under it is read
  and rewritten with the values masked (scenario and trace reports, logs).

Output that bypasses pytest's capture (``-s``) is the user's terminal and is
not masked.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.tagged.outputs import MASK, mask

#: Larger files are not read back (traces of a long run); they are named instead.
MAX_BYTES = 50 * 1024 * 1024


def secrets_of(info: Mapping[str, Any] | None) -> list[str]:
    """The values of the sensitive outputs of a stack description, longest first."""
    if not info:
        return []
    outputs = info.get("outputs") or {}
    found = {outputs[k] for k in info.get("sensitive_outputs") or () if outputs.get(k)}
    return sorted(found, key=len, reverse=True)


def mask_report(report: Any, secrets: Sequence[str]) -> None:
    """Mask a test report's failure text and captured sections in place."""
    if not secrets:
        return
    longrepr = report.longrepr
    if longrepr is not None:
        text = str(longrepr)
        if any(s in text for s in secrets):
            report.longrepr = mask(text, secrets)
    report.sections = [(title, mask(content, secrets)) for title, content in report.sections]


def mask_files(root: Path, secrets: Sequence[str], *, exclude: Sequence[str] = ()) -> list[str]:
    """Rewrite every file under ``root`` holding a secret with it masked; returns the files it could not read.

    ``exclude``: folders directly under ``root`` left out (a stopped emulator's
    scratch folder, which a detached remover is removing meanwhile).
    """
    if not secrets or not root.is_dir():
        return []
    needles = [s.encode() for s in secrets]
    skipped = []
    found = []
    for folder, dirs, names in os.walk(root):  # a folder that goes while it is listed is skipped
        if Path(folder) == root:
            dirs[:] = [d for d in dirs if d not in exclude]
        found += [p for p in (Path(folder, n) for n in names) if p.is_file() and not p.is_symlink()]
    for path in sorted(found):
        try:
            if path.stat().st_size > MAX_BYTES:
                skipped.append(str(path))
                continue
            data = path.read_bytes()
        except OSError:
            skipped.append(str(path))
            continue
        if any(n in data for n in needles):
            for n in needles:
                data = data.replace(n, MASK.encode())
            path.write_bytes(data)
    return skipped
