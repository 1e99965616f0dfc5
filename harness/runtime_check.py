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

import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from harness.emulator.runtimes import FunctionRuntime, Resolution, cached, check_functions
from harness.errors import RuntimeMismatch
from harness.stack import StackInfo

FUNCTION_TYPE = "AWS::Lambda::Function"


def deployed_runtimes(lambda_client: Any, info: StackInfo) -> list[tuple[str, str]]:
    """(function name, runtime) of every zip-packaged function of the stack.

    One ``ListFunctions`` (every page) reads them all; a function it does not list is read by its own
    ``GetFunctionConfiguration``, as each one was.
    """
    names = [
        name
        for logical, kind in sorted(info["resource_types"].items())
        if kind == FUNCTION_TYPE and (name := info["resources"].get(logical))
    ]
    listed = _listed_configurations(lambda_client, set(names)) if len(names) > 1 else {}
    out = []
    for name in names:
        config = listed.get(name) or lambda_client.get_function_configuration(FunctionName=name)
        if config.get("PackageType", "Zip") == "Zip" and config.get("Runtime"):
            out.append((name, str(config["Runtime"])))
    return out


def _listed_configurations(lambda_client: Any, names: set[str]) -> dict[str, Any]:
    """The configurations ``ListFunctions`` gives for ``names`` (the emulator's functions: a page or two)."""
    found: dict[str, Any] = {}
    marker: str | None = None
    while True:
        page = lambda_client.list_functions(**({"Marker": marker} if marker else {}))
        found.update((c["FunctionName"], c) for c in page.get("Functions") or [] if c.get("FunctionName") in names)
        marker = page.get("NextMarker")
        if not marker or len(found) == len(names):
            return found


#: A function's runtime as a template names it: SAM or CloudFormation, YAML or JSON.
NAMED_RUNTIME = re.compile(rb"""["']?\bRuntime["']?\s*:\s*["']?(python3\.\d+|nodejs\d+\.x)\b""")
TEMPLATE_SUFFIXES = (".yaml", ".yml", ".json", ".template")
TEMPLATE_MAX_BYTES = 2_000_000


def project_runtimes(settings: Any) -> list[str]:
    """:func:`named_runtimes` of the project's deploy inputs (``fingerprint-paths``; not the tests, not the
    report folder), as ``settings`` name them."""
    from harness import fingerprint

    excluded = [*settings.integration_paths, str(settings.report_dir)]
    return named_runtimes(
        settings.root, fingerprint.inputs(settings.root, settings.fingerprint_paths, excluded=excluded)
    )


def named_runtimes(root: Path, files: Iterable[str]) -> list[str]:
    """The Python and Node.js runtimes the project's templates name (``Runtime: python3.12``).

    Only a head start for a stack that does not exist yet (its functions come with the deploy): the
    check resolves the deployed functions' own runtimes either way.
    """
    found: set[str] = set()
    for rel in files:
        path = root / rel
        if not rel.endswith(TEMPLATE_SUFFIXES):
            continue
        try:
            if path.stat().st_size > TEMPLATE_MAX_BYTES:
                continue
            found.update(m.group(1).decode() for m in NAMED_RUNTIME.finditer(path.read_bytes()))
        except OSError:
            continue
    return sorted(found)


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


def warm_up(
    lambda_client: Any, cfn_client: Any, stack_name: str, named: Callable[[], Iterable[str]] = tuple
) -> threading.Thread:
    """Look up, on a thread, the runtimes of the stack's functions as they are before a deploy.

    The check after the deploy resolves the deployed functions' runtimes, each
    lookup starting interpreters (about half a second in a fresh process);
    done here while the deploy command runs, the check finds them in this
    process's cache (:func:`harness.emulator.runtimes.cached`). The answers
    are the same either way: a runtime the deploy changed is looked up then.
    A stack that does not exist yet has no functions: ``named`` gives the
    runtimes the project's templates name instead (:func:`named_runtimes`).
    Best effort: any error warms nothing.
    """
    from harness import deploy, procs

    def warm() -> None:
        try:
            try:
                physical, types = deploy.read_resources(cfn_client, stack_name)
            except Exception:  # noqa: BLE001 - no stack yet (or not readable): what the templates name
                runtimes: Iterable[str] = named()
            else:
                info: Any = {"resources": physical, "resource_types": types}
                runtimes = {rt for _, rt in deployed_runtimes(lambda_client, info)}
            for runtime in sorted(runtimes):
                cached(runtime)
        except Exception:  # noqa: BLE001 - only a head start; the check itself reports
            return

    return procs.start_thread(warm, "harness-runtime-warm-up")


def lines(found: list[FunctionRuntime]) -> list[str]:
    """What the run prints about them (once, after the deploy, and in the summary)."""
    return [f"runtime mismatch: {f.line()} (runtime-mismatch = warn)" for f in found]
