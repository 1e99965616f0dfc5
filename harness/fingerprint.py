"""A hash of everything a deploy depends on, to skip deploys that change nothing.

Inputs: the files matched by the configured globs (among the files git would
track: committed, staged or untracked-but-not-ignored, so build output and
caches never count), the deploy command, the stack name, region and target.
Stored on the stack as the ``harness:fingerprint`` tag: a later run with the
same fingerprint and a healthy stack skips the deploy.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path


def candidate_files(root: Path) -> list[str]:
    """Files git would track here (relative, sorted); every file if this is not a git checkout."""
    try:
        out = subprocess.run(  # noqa: S603 - fixed argv
            ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
        return sorted({p for p in out.decode("utf-8", "surrogateescape").split("\0") if p})
    except (OSError, subprocess.SubprocessError):
        return _walk(root)


#: Outside git, folders the usual tools fill with build output and caches: never a deploy's input.
#: (In a git checkout, the project's own ignore rules decide.)
NOT_INPUTS = frozenset(
    {
        ".git", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".venv", "venv",  # Python
        ".aws-sam", "cdk.out", ".serverless", ".terraform", "node_modules",  # SAM, CDK, the Framework, Terraform, npm
    }
)  # fmt: skip


def _walk(root: Path) -> list[str]:
    """Every file below ``root`` but build output and caches (``NOT_INPUTS``, ``*.pyc``).

    A folder that goes while it is listed is skipped, not an error: a stopped
    emulator's scratch folder (in the report folder) is still being removed,
    by a detached remover, when the next run starts.
    """
    found = []
    for folder, dirs, names in os.walk(root):  # os.walk ignores folders it can no longer list
        dirs[:] = [d for d in dirs if d not in NOT_INPUTS]
        for name in names:
            if name.endswith((".pyc", ".pyo")):
                continue
            path = Path(folder, name)
            if path.is_file():
                found.append(str(path.relative_to(root)))
    return sorted(found)


def matching(files: Iterable[str], globs: Sequence[str]) -> list[str]:
    """The files matched by any glob (``dir/**`` matches everything below ``dir``)."""
    out = []
    for f in files:
        for g in globs:
            if fnmatch.fnmatchcase(f, g) or (g.endswith("/**") and f.startswith(g[:-2])):
                out.append(f)
                break
    return out


def compute(root: Path, globs: Sequence[str], *, extra: Sequence[str] = ()) -> tuple[str, int]:
    """(fingerprint, number of files hashed). 16 hex characters: a tag value, not a secret."""
    h = hashlib.sha256()
    files = matching(candidate_files(root), globs)
    for rel in files:
        path = root / rel
        if not path.is_file():
            continue  # deleted but still in the index
        h.update(rel.encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    for word in extra:
        h.update(b"\1" + word.encode())
    return h.hexdigest()[:16], len(files)
