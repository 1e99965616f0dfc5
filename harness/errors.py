"""One error family. Every user-facing failure is a ``HarnessError``.

Each subclass says what failed, what was observed against what was expected,
and what to do. ``plugin.py`` prints a ``HarnessError`` without a traceback of
harness internals; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Root of every error the harness raises on purpose.

    ``hint`` is one sentence that tells the user what to do next.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class ConfigError(HarnessError):
    """A setting is unknown, malformed, or contradicts another."""


class NamingError(HarnessError):
    """No usable stage or stack name could be derived."""


class TargetError(HarnessError):
    """The target (emulator, endpoint, account) could not be reached or died."""


class EmulatorDied(TargetError):
    """The embedded emulator exited while the session was using it."""


class DeployError(HarnessError):
    """The deploy command failed or the stack did not reach a complete state."""


class TeardownError(HarnessError):
    """The stack (or something it created) could not be removed."""


class GuardError(HarnessError):
    """A safety guard refused an action (protected stage, unmanaged stack, account)."""


class ScenarioError(HarnessError):
    """A scenario file is malformed; carries file and line."""

    def __init__(self, message: str, *, path: str, line: int | None = None, hint: str | None = None) -> None:
        self.path = path
        self.line = line
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}", hint=hint)


class ExpectationFailed(HarnessError, AssertionError):
    """A scenario expectation was not met. Shows step, expected and observed."""
