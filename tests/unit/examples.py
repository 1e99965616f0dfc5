"""How many examples a property test tries: its full count under hypothesis's default profile, a fifth
under the ``fast`` profile that ``make test-fast`` loads (the root conftest registers it)."""

from __future__ import annotations

from hypothesis import settings


def examples(full: int) -> int:
    """``full`` scaled by the loaded profile's ``max_examples`` against hypothesis's default of 100."""
    return max(10, full * settings.default.max_examples // 100)
