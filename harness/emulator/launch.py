"""Entry point of the emulator subprocess: ``python -m harness.emulator.launch``.

Runs MiniStack's own ``main()`` after applying the harness's version-guarded
adaptations. Settings arrive as environment variables (``GATEWAY_PORT``,
``BIND_HOST``...), exactly as MiniStack documents them; the harness's own
(``HARNESS_LIFELINE_FD``) tie the emulator's life to its owner's
(:mod:`harness.lifeline`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types

#: Imported by MiniStack's modules at their own import, used only by its container paths (Lambda
#: functions in Docker, RDS, ECS...), which a run on this emulator does not take: the Lambda runtimes
#: run in the harness's sandbox (harness.emulator.sandbox).
DEFERRED = ("docker",)


class _Deferred(types.ModuleType):
    """A stand-in in ``sys.modules`` that imports the real module at its first attribute read.

    The docker SDK (with requests, urllib3 and charset_normalizer) is about 80 ms of each
    emulator's 600 ms boot on a 2-core machine. ``importlib.util.LazyLoader`` cannot stand in
    for it: ``import_module``, as ``lambda_svc`` calls it, reads the module's ``__spec__`` and
    so loads it at once. Here ``__spec__`` is the real one, and anything else read from the
    module (``docker_lib.from_env``, ``docker.errors``, a submodule's parent path) imports
    the real module first, then the stand-in takes its attributes: nothing behaves
    differently, only later.
    """

    _lock = threading.Lock()

    def __getattr__(self, attr: str) -> object:
        name = self.__name__
        with _Deferred._lock:
            real = sys.modules.get(name)
            if real is self or real is None:
                del sys.modules[name]
                try:
                    real = importlib.import_module(name)
                except BaseException:
                    sys.modules[name] = self
                    raise
        self.__dict__.update(real.__dict__)
        return getattr(real, attr)


def defer_imports(names: tuple[str, ...] = DEFERRED) -> list[str]:
    """Put a stand-in for each installed module of ``names`` not yet imported; returns those deferred."""
    deferred = []
    for name in names:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None:  # not installed: the importer's own ImportError path stays as it is
            continue
        stand_in = _Deferred(name)
        stand_in.__spec__ = spec
        sys.modules[name] = stand_in
        deferred.append(name)
    return deferred


def main() -> None:
    from harness import lifeline
    from harness.emulator import adapt

    # First of all: if the harness that started it is already gone, end now.
    lifeline.watch()

    defer_imports()
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
