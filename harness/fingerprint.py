"""A hash of everything a deploy depends on, to skip deploys that change nothing.

Inputs: the project's files (among the files git would track: committed,
staged or untracked-but-not-ignored, so build output and caches never count),
the deploy command, the stack name, region and target. Which files: those
matched by ``fingerprint-paths`` when it is set; otherwise every file but the
test side (tests, scenarios, docs, CI configuration, the report folder). A
file outside the globs that the deploy reads would let a changed function
pass on its old code, so the default errs towards redeploying.
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


#: With ``fingerprint-paths`` unset, every project file is a deploy input but the test side:
#: folders of tests, docs and CI configuration, and these files.
TEST_SIDE_DIRS = frozenset(
    {
        "tests", "test", "scenarios", "docs", "__snapshots__",
        ".github", ".circleci", ".gitlab", ".devcontainer", ".vscode", ".idea",
    }
)  # fmt: skip
TEST_SIDE_FILES = ("conftest.py", "test_*.py", "*_test.py", "*.md", "*.rst", ".gitlab-ci.yml", "buildspec*.y*ml")


def on_test_side(rel: str, excluded: Sequence[str] = ()) -> bool:
    """Whether a project file is on the test side: never a deploy input when ``fingerprint-paths`` is unset.

    ``excluded`` adds the run's own test paths (the integration paths) and its report folder.
    """
    parts = rel.split("/")
    if any(p in TEST_SIDE_DIRS or p in NOT_INPUTS for p in parts[:-1]):
        return True
    if any(fnmatch.fnmatchcase(parts[-1], pattern) for pattern in TEST_SIDE_FILES) or parts[-1].endswith(".pyc"):
        return True
    return any(rel == e or rel.startswith(e.rstrip("/") + "/") for e in excluded if e not in ("", "."))


def inputs(root: Path, globs: Sequence[str], *, excluded: Sequence[str] = ()) -> list[str]:
    """The deploy's input files (relative, sorted): matched by ``globs``, or with none, all but the test side."""
    files = candidate_files(root)
    if globs:
        return matching(files, globs)
    relative = [_relative(root, e) for e in excluded]
    return [f for f in files if not on_test_side(f, [e for e in relative if e])]


def _relative(root: Path, path: str) -> str:
    """``path`` (relative to ``root``, or absolute) as a relative posix path; "" when it is outside ``root``."""
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return ""


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


def compute(
    root: Path, globs: Sequence[str], *, extra: Sequence[str] = (), excluded: Sequence[str] = ()
) -> tuple[str, int]:
    """(fingerprint, number of files hashed). 16 hex characters: a tag value, not a secret.

    ``globs`` empty: every project file but the test side (see :func:`on_test_side`).
    """
    h = hashlib.sha256()
    files = inputs(root, globs, excluded=excluded)
    for rel in files:
        path = root / rel
        if not path.is_file():
            continue  # deleted but still in the index
        h.update(rel.encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    for word in extra:
        h.update(b"\1" + word.encode())
    return h.hexdigest()[:16], len(files)
