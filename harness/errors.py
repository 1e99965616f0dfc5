"""One error family, in this one file. Every failure the harness raises on purpose is a ``HarnessError``.

Each subclass says what failed, what was observed against what was expected,
and what to do (``hint``). The pytest layer prints a ``HarnessError`` without
a traceback of harness internals; any other exception is a bug and keeps its
traceback. Where callers expect a builtin, the class mixes it in
(``ExpectationFailed`` is an ``AssertionError``, ``PathError`` a ``ValueError``).

A new error goes here, under the closest family; :func:`did_you_mean` is the
one way to suggest a valid name.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any


def closest(word: str, options: Iterable[str], *, n: int = 1, cutoff: float = 0.6) -> list[str]:
    """The options that look most like ``word`` (best first; none when nothing is close)."""
    return difflib.get_close_matches(word, list(options), n=n, cutoff=cutoff)


def did_you_mean(word: str, options: Iterable[str], *, cutoff: float = 0.6) -> str:
    """``"did you mean 'x'?"`` for the option closest to ``word``, or ``""``."""
    close = closest(word, options, cutoff=cutoff)
    return f"did you mean {close[0]!r}?" if close else ""


class HarnessError(Exception):
    """Root of every error the harness raises on purpose.

    ``hint`` is one sentence that tells the user what to do next.
    """

    #: False for the parts of a larger error (a template, a path, a converter's
    #: complaint): their caller adds the place and shows the hint, so str() is the message.
    hint_in_str = True

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.render() if self.hint_in_str else message)

    def render(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class ConfigError(HarnessError):
    """A setting is unknown, malformed, or contradicts another."""


class Invalid(ConfigError, ValueError):
    """Raised by a setting's converter: ``reason`` says what is wrong with this value.

    ``expected`` overrides the setting's general description of valid values
    when the right answer depends on where the value came from.
    """

    hint_in_str = False

    def __init__(self, reason: str, *, expected: str | None = None) -> None:
        self.reason = reason
        self.expected = expected
        super().__init__(reason)


class GitError(HarnessError):
    """A git command failed, timed out or git is not installed."""

    hint_in_str = False


class NamingError(HarnessError):
    """No usable stage or stack name could be derived."""


class TargetError(HarnessError):
    """The target (emulator, endpoint, account) could not be reached or died."""


class EmulatorDied(TargetError):
    """The embedded emulator exited while the session was using it."""


class AdaptationError(TargetError, RuntimeError):
    """The installed emulator is not the version the harness's adaptations were written for."""

    hint_in_str = False


class DeployError(HarnessError):
    """The deploy command failed or the stack did not reach a complete state."""


class NoStackCreated(DeployError):
    """The deploy command succeeded but created no CloudFormation stack (deploy-kind auto: look for tags)."""


class OutputsError(DeployError):
    """The outputs command failed, or printed something that is not outputs JSON."""


class OutputConflict(HarnessError, KeyError):
    """An output key that two stacks of an app's stack set both define."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.render()


class TeardownError(HarnessError):
    """The stack (or something it created) could not be removed."""


class GuardError(HarnessError):
    """A safety guard refused an action (protected stage, unmanaged stack, account)."""


class LeaseError(HarnessError):
    """The stack is held by another run (or the lease table is unusable)."""


class RuntimeMismatch(HarnessError):
    """A function's declared Lambda runtime has no matching local interpreter (runtime-mismatch = error)."""


# -- scenarios -----------------------------------------------------------------


class ScenarioError(HarnessError):
    """A scenario file is malformed; carries file and line."""

    def __init__(self, message: str, *, path: str, line: int | None = None, hint: str | None = None) -> None:
        self.path = path
        self.line = line
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}", hint=hint)


class SpecError(HarnessError):
    """A shape problem of a scenario at a line; the loader adds the file path."""

    hint_in_str = False

    # Every shape error says what to do: the hint is not optional.
    def __init__(self, message: str, line: int | None, hint: str) -> None:
        self.line = line
        super().__init__(message, hint=hint)


class TemplateError(HarnessError):
    """A template is malformed or names something that does not exist."""

    hint_in_str = False

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)


class PathError(HarnessError, ValueError):
    """A path (``body.items[0].qty``) is malformed or does not lead to a value."""

    hint_in_str = False


class PatternError(HarnessError, ValueError):
    """An EventBridge event pattern is malformed: ``path`` names the bad key (``detail.total``)."""

    hint_in_str = False

    def __init__(self, path: str, message: str, hint: str) -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}" if path else message, hint=hint)


class StepError(HarnessError):
    """A scenario action could not be carried out (unknown output, AWS or HTTP error...)."""


class ExpectationFailed(HarnessError, AssertionError):
    """A scenario expectation was not met. Shows step, expected and observed."""


# -- traces --------------------------------------------------------------------


class TraceError(HarnessError):
    """Traces could not be collected or read."""


class TracesIncomplete(TraceError):
    """Some traces were still missing, or still in progress, when the deadline passed."""

    def __init__(
        self,
        *,
        source: str,
        within: float,
        missing: Iterable[str] = (),
        in_progress: Iterable[str] = (),
        unprocessed: Iterable[str] = (),
        not_accepted: Iterable[str] = (),
        detail: str = "",
        found: Mapping[str, Any] | None = None,
    ) -> None:
        self.source = source
        self.within = within
        self.missing = sorted(missing)
        self.in_progress = sorted(in_progress)
        self.unprocessed = sorted(unprocessed)
        self.not_accepted = sorted(not_accepted)
        #: the traces that were complete before the deadline (a report keeps them)
        self.found: dict[str, Any] = dict(found or {})
        lines = [f"traces from {source} were not complete within {within:g}s:"]
        if self.missing:
            lines.append(f"  missing ({len(self.missing)}): {', '.join(self.missing)}")
        if self.unprocessed:
            lines.append(f"  unprocessed by the service ({len(self.unprocessed)}): {', '.join(self.unprocessed)}")
        if self.in_progress:
            lines.append(f"  still in progress ({len(self.in_progress)}): {', '.join(self.in_progress)}")
        if self.not_accepted:
            lines.append(
                f"  present but not yet as expected ({len(self.not_accepted)}): {', '.join(self.not_accepted)}"
            )
        if detail:
            lines.append(f"  {detail}")
        super().__init__(
            "\n".join(lines),
            hint="X-Ray indexes traces some seconds after the calls; raise the trace deadline, "
            "or check that tracing is active and the calls carried the test's trace header",
        )
