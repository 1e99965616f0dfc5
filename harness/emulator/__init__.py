"""The embedded emulator (MiniStack): the pinned version and the launcher."""

from __future__ import annotations

# The harness adapts a few emulator internals (see ``adapt.py``); each
# adaptation is guarded by this exact version and fails loudly elsewhere.
PINNED_VERSION = "1.5.33"

#: Names of adaptations to leave out (comma-separated, or ``all``), read in the
#: emulator's process: runs the emulator as shipped, to show what an adaptation
#: changes (docs/fidelity.md). A name that is not an adaptation is refused.
OFF_VARIABLE = "HARNESS_EMULATOR_ADAPTATIONS_OFF"
