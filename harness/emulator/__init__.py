"""The embedded emulator (MiniStack): the pinned version and the launcher."""

from __future__ import annotations

# The harness adapts a few emulator internals (see ``adapt.py``); each
# adaptation is guarded by this exact version and fails loudly elsewhere.
PINNED_VERSION = "1.5.33"
