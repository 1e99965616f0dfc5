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
import os
import socket
import sys
import threading
import time
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
                sys.modules.pop(name, None)
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


def warm_first_request(port: int, *, timeout: float = 60.0) -> threading.Thread:
    """Once the emulator listens, import what its first request would import (on a thread of its own).

    MiniStack shapes each response with botocore's model of the service, imported at the first
    request (``ministack.core.responses._service_model``): ``import botocore.session`` and the
    CloudFormation model, every deploy's first service, cost that request about 190 ms. The
    harness's deploy command starts as the emulator answers and makes its first request after its
    own start-up (the AWS CLI's is about half a second): done meanwhile, on the machine's other
    core, that request finds them loaded. A request that comes sooner waits for the import it
    would have made itself.
    """

    def warm() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.01)
        else:
            return
        from ministack.core import responses

        responses._service_model("cloudformation")

    thread = threading.Thread(target=warm, name="harness-warm-first-request", daemon=True)
    thread.start()
    return thread


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
    port = os.environ.get("GATEWAY_PORT", "")
    if port.isdigit():
        warm_first_request(int(port))
    ministack_main()


if __name__ == "__main__":
    main()
