"""Entry point of the emulator subprocess: ``python -m harness.emulator.launch``.

Runs MiniStack's own ``main()`` after applying the harness's version-guarded
adaptations. Settings arrive as environment variables (``GATEWAY_PORT``,
``BIND_HOST``...), exactly as MiniStack documents them.
"""

from __future__ import annotations

import sys


def main() -> None:
    from harness.emulator import adapt

    adapt.apply_all()
    from ministack.app import main as ministack_main

    sys.argv = ["ministack"]
    ministack_main()


if __name__ == "__main__":
    main()
