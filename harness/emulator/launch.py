"""Entry point of the emulator subprocess: ``python -m harness.emulator.launch``.

Runs MiniStack's own ``main()`` after applying the harness's version-guarded
adaptations. Settings arrive as environment variables (``GATEWAY_PORT``,
``BIND_HOST``...), exactly as MiniStack documents them; the harness's own
(``HARNESS_LIFELINE_FD``) tie the emulator's life to its owner's
(:mod:`harness.lifeline`).
"""

from __future__ import annotations

import sys


def main() -> None:
    from harness import lifeline
    from harness.emulator import adapt

    # First of all: if the harness that started it is already gone, end now.
    lifeline.watch()

    applied = adapt.apply_all()
    left_out = [name for name, _fn in adapt.ADAPTATIONS if name not in applied]
    print(
        f"harness: emulator adaptations applied: {', '.join(applied) or 'none'}"
        + (f"; left out ({adapt.OFF_VARIABLE}): {', '.join(left_out)}" if left_out else ""),
        file=sys.stderr,
        flush=True,
    )
    from ministack.app import main as ministack_main

    sys.argv = ["ministack"]
    ministack_main()


if __name__ == "__main__":
    main()
