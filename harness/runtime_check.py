"""After a deploy on the emulator: does every function run on its declared runtime?

Each deployed ``AWS::Lambda::Function`` is looked up (its runtime, from
``GetFunctionConfiguration``) and resolved as the emulator resolves it
(``harness.emulator.runtimes``, same environment). A function whose runtime
runs on another version (no local ``python3.9``) is a mismatch: the run says
so once, naming function, declared runtime and what runs it instead, and
``runtime-mismatch = error`` refuses the run. A runtime the emulator cannot
run at all (java, dotnet, ruby) is always refused: its invocations would get
a canned answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from harness.emulator.runtimes import FunctionRuntime, Resolution, cached, check_functions
from harness.errors import RuntimeMismatch
from harness.stack import StackInfo

FUNCTION_TYPE = "AWS::Lambda::Function"


def deployed_runtimes(lambda_client: Any, info: StackInfo) -> list[tuple[str, str]]:
    """(function name, runtime) of every zip-packaged function of the stack."""
    out = []
    for logical, kind in sorted(info["resource_types"].items()):
        name = info["resources"].get(logical)
        if kind != FUNCTION_TYPE or not name:
            continue
        config = lambda_client.get_function_configuration(FunctionName=name)
        if config.get("PackageType", "Zip") == "Zip" and config.get("Runtime"):
            out.append((name, str(config["Runtime"])))
    return out


def check(
    lambda_client: Any, info: StackInfo, mode: str, *, resolver: Callable[[str], Resolution] = cached
) -> list[FunctionRuntime]:
    """The stack's functions that do not run as declared; RuntimeMismatch if the run must stop."""
    found = check_functions(deployed_runtimes(lambda_client, info), resolver)
    unsupported = [f for f in found if not f.resolution.supported]
    refused = unsupported + ([f for f in found if f.resolution.mismatch] if mode == "error" else [])
    if refused:
        lines = "\n".join(f"  {f.line()}" for f in refused)
        if unsupported:
            hint = "run these functions on --target aws, or on an emulator with Docker (--target endpoint)"
        else:
            hint = "install the declared Python (e.g. `pyenv install 3.9`), or set runtime-mismatch = warn"
        raise RuntimeMismatch(
            f"{len(refused)} function(s) cannot run on their declared runtime here:\n{lines}", hint=hint
        )
    return found


def warm_up(lambda_client: Any, cfn_client: Any, stack_name: str) -> threading.Thread:
    """Look up, on a thread, the runtimes of the stack's functions as they are before a deploy.

    The check after the deploy resolves the deployed functions' runtimes, each
    lookup starting interpreters (about half a second in a fresh process);
    done here while the deploy command runs, the check finds them in this
    process's cache (:func:`harness.emulator.runtimes.cached`). The answers
    are the same either way: a runtime the deploy changed is looked up then.
    Best effort: a stack that does not exist yet, or any error, warms nothing.
    """
    from harness import deploy, procs

    def warm() -> None:
        try:
            physical, types = deploy.read_resources(cfn_client, stack_name)
            info: Any = {"resources": physical, "resource_types": types}
            for runtime in sorted({rt for _, rt in deployed_runtimes(lambda_client, info)}):
                cached(runtime)
        except Exception:  # noqa: BLE001 - only a head start; the check itself reports
            return

    return procs.start_thread(warm, "harness-runtime-warm-up")


def lines(found: list[FunctionRuntime]) -> list[str]:
    """What the run prints about them (once, after the deploy, and in the summary)."""
    return [f"runtime mismatch: {f.line()} (runtime-mismatch = warn)" for f in found]
