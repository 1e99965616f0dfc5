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

#: Imported at the emulator's boot (the docker SDK by MiniStack's Lambda service; its services by
#: CloudFormation's provisioners, which import every service they can create resources of), used only
#: when a request or a resource of theirs comes: the docker SDK only on container paths the embedded
#: emulator never takes (its Lambda runtimes run in the harness's sandbox), the services only by apps
#: that have them. No adaptation patches any of them; IoT is left out (MiniStack's shutdown reads it).
DEFERRED = (
    "docker",
    *(
        f"ministack.services.{name}"
        for name in (
            "cognito",  # 78 ms of the boot on its own
            "cloudfront",
            "ec2",
            "documentdb",
            "athena",
            "rds",
            "opensearch",
            "appsync",
            "ecs",
            "elasticache",
            "kinesisanalyticsv2",
            "alb",
            "glue",
            "s3tables",
            "efs",
            "backup",
            "codebuild",
            "ecr",
            "autoscaling",
            "waf",
            "route53",
            "servicediscovery",
            "appconfig",
            "pipes",
            "kms",  # with the cryptography package, 77 ms
            "ses",
            "ses_v2",
            "acm",
            "secretsmanager",
            "ssm",
            "firehose",
        )
    ),
)


class _Deferred(types.ModuleType):
    """A stand-in in ``sys.modules`` that imports the real module when it is first used, then forwards to it.

    Every name read from it (``docker_lib.from_env``, ``_cognito.handle_request``), written to it or
    deleted from it goes to the real module, imported at that first use; so does a submodule's import
    (its parent's ``__path__``). Only the import system's own entries are the stand-in's: ``__spec__``
    (the real module's), ``__name__``. ``importlib.util.LazyLoader`` cannot do this:
    ``import_module``, as MiniStack's Lambda service calls it, reads ``__spec__`` and so loads at once;
    and a copy of the real module's names would go stale when the module rebinds one (a service's reset).

    Deferred, the docker SDK (with requests) and the services no adaptation touches are about 210 ms of
    each emulator's 0.63 s boot on a 2-core machine.
    """

    _lock = threading.Lock()

    def loaded(self) -> types.ModuleType:
        """The real module, imported now if it is not yet."""
        name = object.__getattribute__(self, "__name__")
        with _Deferred._lock:
            real = sys.modules.get(name)
            if real is self or real is None:
                sys.modules.pop(name, None)
                try:
                    real = importlib.import_module(name)
                except BaseException:
                    sys.modules[name] = self
                    raise
        return real

    def __getattr__(self, attr: str) -> object:
        return getattr(self.loaded(), attr)

    def __setattr__(self, attr: str, value: object) -> None:
        if attr in ("__spec__", "__name__"):
            object.__setattr__(self, attr, value)
        else:
            setattr(self.loaded(), attr, value)

    def __delattr__(self, attr: str) -> None:
        delattr(self.loaded(), attr)


def defer_imports(names: tuple[str, ...] = DEFERRED) -> list[str]:
    """Put a stand-in for each installed module of ``names`` not yet imported; returns those deferred.

    A submodule's stand-in is also its package's attribute (``ministack.services.cognito``), as an
    import would have made it, until the real module replaces it there at its import.
    """
    deferred = []
    for name in names:
        if name in sys.modules:
            continue
        parent, _, child = name.rpartition(".")
        spec = importlib.util.find_spec(name)  # (imports the parent package)
        if spec is None:  # not installed: the importer's own ImportError path stays as it is
            continue
        stand_in = _Deferred(name)
        stand_in.__spec__ = spec
        sys.modules[name] = stand_in
        if parent:
            setattr(sys.modules[parent], child, stand_in)
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
