"""Untrusted branch name -> safe stage -> CloudFormation stack name.

Branch names come from CI variables or git and are **untrusted input**: they
may contain shell metacharacters, ``$(...)``, quotes, Unicode, hundreds of
characters, leading digits, slashes, or nothing at all. Nothing in this module
executes, evaluates or interpolates a branch name into anything but a plain
string; the functions here are pure and deterministic.

Guarantees of :func:`stage_from_branch`:

* **Safe.** Every stage matches ``^[a-z][a-z0-9-]*$``, has no ``--``, does not
  end with ``-`` and is at most ``max_len`` characters long, so it can be used
  in stack, function, bucket and log-group names and on a command line.
* **Readable.** A branch that already is a tidy stage (``main``,
  ``feature-login``) is returned unchanged.
* **Deterministic.** The same branch always gives the same stage, on every
  machine and Python version (no ``hash()``, no randomness).
* **No collisions.** Whenever the readable form differs from the branch (case
  folded, characters dropped or replaced, a ``b`` prefixed, truncated) a
  suffix ``-<7 hex>`` of the SHA-256 of the branch is appended. Hence two
  distinct branches that clean to the same text still get different stages
  (up to a 2**-28 chance of a SHA-256 prefix collision). An unchanged stage
  never ends in ``-<7 hex>`` and is never of the form ``pr-<n>`` (branches that
  look like that are suffixed too), so a plain branch can neither impersonate
  a suffixed stage nor a pull-request stage from :func:`pr_stage`.

The one intended equivalence: a leading ``refs/heads/`` (or
``refs/remotes/origin/``) is removed first, because ``refs/heads/main`` *is*
the branch ``main``. "Distinct branches" above means distinct after that step,
see :func:`canonical_branch`.
"""

from __future__ import annotations

import hashlib
import re
import string
import unicodedata
from collections.abc import Iterable

from harness.errors import NamingError

__all__ = [
    "BRANCH_PREFIXES",
    "DEFAULT_MAX_LEN",
    "STACK_NAME_RE",
    "STAGE_RE",
    "canonical_branch",
    "is_protected",
    "pr_stage",
    "stack_name",
    "stage_from_branch",
]

#: Default upper bound on a stage's length; leaves room in 64-character
#: resource names (Lambda functions, IAM roles) for the app and a suffix.
DEFAULT_MAX_LEN = 24

#: Ref prefixes removed before anything else (first match only).
BRANCH_PREFIXES: tuple[str, ...] = ("refs/heads/", "refs/remotes/origin/")

#: What every stage matches.
STAGE_RE = re.compile(r"[a-z][a-z0-9-]*")

#: CloudFormation's rule for stack names.
STACK_NAME_RE = re.compile(r"[A-Za-z][-A-Za-z0-9]{0,127}")

_HASH_LEN = 7
# "-" + hash, and at least one letter before it.
_MIN_MAX_LEN = _HASH_LEN + 2
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
# Shapes an unchanged stage must not have: they are reserved for suffixed
# stages and for pull-request stages.
_RESERVED = re.compile(rf"(?:.*-[0-9a-f]{{{_HASH_LEN}}}|pr-[0-9]+)")


def canonical_branch(branch: str) -> str:
    """Return ``branch`` with one leading ``refs/heads/``-style prefix removed.

    Two branch names are "the same branch" for :func:`stage_from_branch`
    exactly when their canonical forms are equal.
    """
    for prefix in BRANCH_PREFIXES:
        if branch.startswith(prefix):
            return branch[len(prefix) :]
    return branch


def _readable(branch: str) -> str:
    """Lossy, human-readable cleaning of ``branch`` (no length limit)."""
    ascii_text = unicodedata.normalize("NFKD", branch).encode("ascii", "ignore").decode("ascii")
    cleaned = _NOT_ALNUM.sub("-", ascii_text.lower()).strip("-")
    if not cleaned:
        return "b"
    if not cleaned[0].isalpha():
        cleaned = "b" + cleaned
    return cleaned


def _digest(branch: str) -> str:
    # surrogatepass: git output decoded with surrogateescape must still hash.
    data = branch.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:_HASH_LEN]


def stage_from_branch(branch: str, max_len: int = DEFAULT_MAX_LEN) -> str:
    """Map an untrusted branch name to a safe, readable, collision-free stage.

    The result matches ``^[a-z][a-z0-9-]*$`` and is at most ``max_len`` long.
    Plain branches (``main``, ``feature-login``) come back unchanged; anything
    that had to be altered gets ``-`` plus 7 hex characters of the SHA-256 of
    the (canonical) branch appended, e.g. ``Feature/Login`` ->
    ``feature-login-<hash>``. See the module docstring for the guarantees.

    Raises :class:`NamingError` if ``max_len`` leaves no room for a suffix.
    """
    if not isinstance(branch, str):
        raise NamingError(f"branch name must be a string, got {type(branch).__name__}")
    if max_len < _MIN_MAX_LEN:
        raise NamingError(
            f"stage max length {max_len} is too short: a stage needs up to {_HASH_LEN + 1} characters "
            "for its collision suffix plus at least one letter",
            hint=f"set the stage max length to at least {_MIN_MAX_LEN} (default {DEFAULT_MAX_LEN})",
        )
    canonical = canonical_branch(branch)
    readable = _readable(canonical)
    if readable == canonical and len(readable) <= max_len and not _RESERVED.fullmatch(readable):
        return readable
    body = readable[: max_len - _HASH_LEN - 1].rstrip("-")
    return f"{body}-{_digest(canonical)}"


def pr_stage(number: int) -> str:
    """Return the stage for pull/merge request ``number``: ``pr-<n>``.

    No branch ever maps to this shape unchanged (see :func:`stage_from_branch`).
    """
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise NamingError(
            f"pull request number must be a non-negative integer, got {number!r}",
            hint="check the CI variable the pull request number was read from",
        )
    return f"pr-{number}"


def stack_name(pattern: str, app: str, stage: str) -> str:
    """Format ``pattern`` (fields ``{app}`` and ``{stage}``) into a stack name.

    The result must match CloudFormation's ``^[A-Za-z][-A-Za-z0-9]{0,127}$``,
    otherwise :class:`NamingError` says what is wrong. Only the bare fields
    ``{app}`` and ``{stage}`` are allowed (no indexing, attributes or format
    specs), so a pattern cannot reach into Python objects.
    """
    try:
        parsed = list(string.Formatter().parse(pattern))
    except ValueError as exc:
        raise NamingError(
            f"stack name pattern {pattern!r} is not a valid format string: {exc}",
            hint='use a pattern like "{app}-{stage}"; write a literal brace as "{{" or "}}"',
        ) from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in ("app", "stage") or spec or conversion:
            raise NamingError(
                f"stack name pattern {pattern!r} uses unsupported field {{{field}"
                f"{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}",
                hint='only the fields {app} and {stage} are allowed, e.g. "{app}-{stage}"',
            )
    name = pattern.format(app=app, stage=stage)
    if STACK_NAME_RE.fullmatch(name):
        return name
    problems = []
    if not name:
        problems.append("it is empty")
    else:
        if not name[0].isascii() or not name[0].isalpha():
            problems.append(f"it starts with {name[0]!r} instead of a letter")
        bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c == "-"))})
        if bad:
            problems.append(f"it contains {''.join(bad)!r} (only letters, digits and '-' are allowed)")
        if len(name) > 128:
            problems.append(f"it is {len(name)} characters long (at most 128)")
    raise NamingError(
        f"stack name {name!r} (pattern {pattern!r}, app {app!r}, stage {stage!r}) is not a valid "
        f"CloudFormation stack name: {'; '.join(problems)}",
        hint="fix the app name or the stack-name-pattern setting so the name starts with a letter "
        "and uses only letters, digits and '-', at most 128 characters",
    )


def is_protected(stage: str, protected: Iterable[str], *, max_len: int = DEFAULT_MAX_LEN) -> bool:
    """Return True if ``stage`` is one of the ``protected`` names.

    Each protected name is compared in its sanitised forms: the stage it maps
    to via :func:`stage_from_branch` and its plain cleaned form without a
    suffix (so protecting ``Prod`` or ``refs/heads/prod`` also protects
    ``prod``). Errs on the side of protecting.
    """
    target = stage.lower()
    for name in protected:
        canonical = canonical_branch(name)
        candidates = {name.lower(), _readable(canonical), stage_from_branch(name, max_len)}
        if target in candidates:
            return True
    return False
