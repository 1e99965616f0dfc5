"""Where the branch comes from: an explicit override, CI variables, or git.

Order of precedence:

1. ``HARNESS_BRANCH`` (explicit override).
2. CI variables, first system that yields a branch wins: CircleCI, GitHub
   Actions, AWS CodeBuild, GitLab CI.
3. git in the working directory (``git rev-parse``); a detached HEAD gives the
   short commit sha as the branch.

The branch returned is raw and untrusted; turn it into a stage with
:func:`harness.naming.stage_from_branch`. git is run with argument lists
(never through a shell) and a timeout; nothing here interprets the branch.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import environment
from harness.errors import GitError, NamingError

__all__ = ["GIT_TIMEOUT", "BranchInfo", "GitError", "detect", "run_git"]

#: Seconds allowed for each git invocation.
GIT_TIMEOUT = 10.0

_SHA_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_PR_PATH_RE = re.compile(r"/pull/([0-9]+)/?$")
_GITHUB_PR_REF_RE = re.compile(r"refs/pull/([0-9]+)/(?:merge|head)")
_CODEBUILD_PR_RE = re.compile(r"pr/([0-9]+)")
_HEADS = "refs/heads/"


@dataclass(frozen=True)
class BranchInfo:
    """The detected branch.

    ``branch`` is raw and untrusted. ``source`` says where it came from
    (``"env CIRCLE_BRANCH"``, ``"git"``, ``"git (detached HEAD)"``, ...).
    ``commit`` is the full sha when known, ``pr_number`` the pull/merge
    request number when the build is for one.
    """

    branch: str
    source: str
    commit: str | None = None
    pr_number: int | None = None


GitRunner = Callable[[Sequence[str]], str]

# What an (injected) git runner may raise to say "git did not work".
_GIT_FAILURES: tuple[type[BaseException], ...] = (GitError, OSError, subprocess.SubprocessError)


def run_git(argv: Sequence[str]) -> str:
    """Run ``argv`` (``["git", ...]``) without a shell and return its stdout.

    Raises :class:`GitError` on a non-zero exit, a timeout, or a missing git.
    """
    try:
        # argv list, never a shell: the branch name is never interpreted.
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=GIT_TIMEOUT,
            check=False,
            encoding="utf-8",
            errors="surrogateescape",
            env={**environment.snapshot(), "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
    except FileNotFoundError as exc:
        raise GitError(f"git is not installed ({exc})") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"'{' '.join(argv)}' timed out after {GIT_TIMEOUT:g}s") from None
    except OSError as exc:
        raise GitError(f"could not run git: {exc}") from None
    if proc.returncode != 0:
        # Every line: git's message often spans several ("...\nand the repository exists.").
        detail = " ".join(line.strip() for line in proc.stderr.splitlines() if line.strip())
        raise GitError(detail or f"git exited with status {proc.returncode}")
    return proc.stdout


def _get(env: Mapping[str, str], name: str) -> str | None:
    """Value of ``name`` with surrounding whitespace removed, or None if unset/blank."""
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _sha(value: str | None) -> str | None:
    """``value`` lowercased if it is a full commit sha, else None."""
    if value is None:
        return None
    value = value.strip().lower()
    return value if _SHA_RE.fullmatch(value) else None


def _pr_int(value: str | None) -> int | None:
    if value is None or not value.isascii() or not value.isdigit():
        return None
    return int(value)


def _match_int(pattern: re.Pattern[str], value: str | None, *, full: bool = True) -> int | None:
    if value is None:
        return None
    m = pattern.fullmatch(value) if full else pattern.search(value)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class _Partial:
    branch: str | None
    source: str
    commit: str | None
    pr_number: int | None


def _circleci(env: Mapping[str, str]) -> _Partial:
    pr = _pr_int(_get(env, "CIRCLE_PR_NUMBER"))
    if pr is None:
        pr = _match_int(_PR_PATH_RE, _get(env, "CIRCLE_PULL_REQUEST"), full=False)
    return _Partial(_get(env, "CIRCLE_BRANCH"), "env CIRCLE_BRANCH", _sha(_get(env, "CIRCLE_SHA1")), pr)


def _github(env: Mapping[str, str]) -> _Partial:
    head_ref = _get(env, "GITHUB_HEAD_REF")
    if head_ref is not None:
        branch, source = head_ref, "env GITHUB_HEAD_REF"
    else:
        branch, source = _get(env, "GITHUB_REF_NAME"), "env GITHUB_REF_NAME"
    pr = _match_int(_GITHUB_PR_REF_RE, _get(env, "GITHUB_REF"))
    return _Partial(branch, source, _sha(_get(env, "GITHUB_SHA")), pr)


def _codebuild(env: Mapping[str, str]) -> _Partial:
    branch: str | None = None
    source = "env CODEBUILD_WEBHOOK_HEAD_REF"
    head_ref = _get(env, "CODEBUILD_WEBHOOK_HEAD_REF")
    source_version = _get(env, "CODEBUILD_SOURCE_VERSION")
    if head_ref is not None:
        branch = head_ref.removeprefix(_HEADS) or None
    if branch is None and source_version is not None and source_version.startswith(_HEADS):
        branch = source_version.removeprefix(_HEADS) or None
        source = "env CODEBUILD_SOURCE_VERSION"
    pr = _match_int(_CODEBUILD_PR_RE, source_version)
    if pr is None:
        pr = _match_int(_CODEBUILD_PR_RE, _get(env, "CODEBUILD_WEBHOOK_TRIGGER"))
    return _Partial(branch, source, _sha(_get(env, "CODEBUILD_RESOLVED_SOURCE_VERSION")), pr)


def _gitlab(env: Mapping[str, str]) -> _Partial:
    mr_branch = _get(env, "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME")
    if mr_branch is not None:
        branch, source = mr_branch, "env CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"
    else:
        branch, source = _get(env, "CI_COMMIT_REF_NAME"), "env CI_COMMIT_REF_NAME"
    pr = _pr_int(_get(env, "CI_MERGE_REQUEST_IID"))
    return _Partial(branch, source, _sha(_get(env, "CI_COMMIT_SHA")), pr)


_CI_SYSTEMS: tuple[Callable[[Mapping[str, str]], _Partial], ...] = (_circleci, _github, _codebuild, _gitlab)


def _from_git(cwd: Path, runner: GitRunner) -> BranchInfo:
    """Branch and commit from git in ``cwd``; raises GitError if there is none."""
    base = ["git", "-C", str(cwd)]
    try:
        name = runner([*base, "rev-parse", "--abbrev-ref", "HEAD"]).strip()
    except _GIT_FAILURES:
        # An unborn branch (no commits yet) has no HEAD commit to rev-parse,
        # but symbolic-ref still names it; this also re-raises "not a repo".
        name = runner([*base, "symbolic-ref", "--short", "HEAD"]).strip()
        if not name:
            raise GitError("git reported an empty branch name") from None
        return BranchInfo(branch=name, source="git", commit=None)
    try:
        commit = _sha(runner([*base, "rev-parse", "HEAD"]))
    except _GIT_FAILURES:
        commit = None
    if name == "HEAD":
        short = runner([*base, "rev-parse", "--short", "HEAD"]).strip()
        if not short:
            raise GitError("git reported an empty commit for the detached HEAD")
        return BranchInfo(branch=short, source="git (detached HEAD)", commit=commit)
    if not name:
        raise GitError("git reported an empty branch name")
    return BranchInfo(branch=name, source="git", commit=commit)


def detect(env: Mapping[str, str], cwd: Path, run_git: GitRunner = run_git) -> BranchInfo:
    """Find the branch under test.

    ``env`` is the environment to read (usually ``os.environ``), ``cwd`` the
    checkout git is asked about, ``run_git`` runs an argv list and returns
    stdout or raises (injectable for tests; the default never uses a shell).

    ``HARNESS_BRANCH`` wins over everything; its commit comes from the CI
    variables or, failing that, git (best effort) and it carries no PR number.
    Otherwise the first CI system with a branch wins. If a CI system knows a
    commit or PR number but no branch (e.g. CodeBuild ``pr/7``), git supplies
    the branch and the CI values are kept.

    Raises :class:`NamingError` if no branch can be found at all.
    """
    partials = [system(env) for system in _CI_SYSTEMS]

    override = _get(env, "HARNESS_BRANCH")
    if override is not None:
        commit = next((p.commit for p in partials if p.commit), None)
        if commit is None:
            try:
                commit = _from_git(cwd, run_git).commit
            except _GIT_FAILURES:
                commit = None
        return BranchInfo(branch=override, source="env HARNESS_BRANCH", commit=commit, pr_number=None)

    for partial in partials:
        if partial.branch is not None:
            return BranchInfo(partial.branch, partial.source, partial.commit, partial.pr_number)

    try:
        info = _from_git(cwd, run_git)
    except _GIT_FAILURES as exc:
        raise NamingError(
            f"could not determine the branch: no CI branch variable is set and git failed in {cwd} ({exc})",
            hint="set HARNESS_BRANCH=<branch> or run inside a git checkout",
        ) from None
    ci_commit = next((p.commit for p in partials if p.commit), None)
    ci_pr = next((p.pr_number for p in partials if p.pr_number is not None), None)
    if ci_commit is None and ci_pr is None:
        return info
    return BranchInfo(info.branch, info.source, ci_commit or info.commit, ci_pr)
