"""The controller's behaviour check: after the traces, before the teardown (the stack names resources).

Gathers what ``harness.behaviour.run.check`` needs from the run (the stack's
resources and API routes, the traces, every collected node id for pruning),
and, under ``behaviour = gate``, fails the session and the changed scenarios'
JUnit cases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.settings import Settings
from harness.stack import StackInfo

#: workeroutput key: every node id a pytest-xdist worker collected (before any deselection).
COLLECTED = "branchstack_collected"


#: The resource types whose routes :func:`routes_for` reads.
API_TYPES = frozenset({"AWS::ApiGateway::RestApi", "AWS::ApiGatewayV2::Api"})


def has_api(info: StackInfo) -> bool:
    """Whether the stack has an API whose routes the behaviour check reads."""
    return any(kind in API_TYPES for kind in info.get("resource_types", {}).values())


def routes_for(info: StackInfo, client: Any) -> list[str]:
    """The route templates of the stack's APIs: they depend on the stack only, so they may be read ahead."""
    from harness.behaviour.run import api_routes
    from harness.traces.propagation import untraced

    with untraced():
        return api_routes(info.get("resource_types", {}), info["resources"], client)


def names_for(info: StackInfo, client: Any, routes: list[str] | None = None) -> Any:
    """The stack's names for the behaviour (``routes``: read ahead by :func:`routes_for`, else read now)."""
    from harness.behaviour.derive import Names

    if routes is None:
        routes = routes_for(info, client)
    return Names.from_stack(info["resources"], info["outputs"], routes, [info["name"], *info.get("stacks", [])])


def check(
    settings: Settings,
    info: StackInfo,
    client: Any,
    trace_report: Any,
    root: Path,
    collected: Any,
    routes: list[str] | None = None,
) -> Any:
    """Compare every scenario's behaviour (and update the snapshot when asked); the ``BehaviourReport``."""
    from harness.behaviour.run import check as run_check

    return run_check(
        mode=str(settings.behaviour),
        update=settings.behaviour_update,
        root=root,
        report_dir=settings.report_dir,
        records=trace_report.records,
        traces=trace_report.traces,
        complete=trace_report.complete,
        others=trace_report.unattributed,
        names=names_for(info, client, routes),
        collected=collected,
        latency=settings.behaviour_latency,
    )


def fail_junit(config: Any, report: Any) -> list[str]:
    """Fail the JUnit cases of the gated scenarios (when the run writes JUnit XML); lines to print."""
    xml_path = getattr(config.option, "xmlpath", None)
    if not xml_path or not report.gated or not Path(xml_path).exists():
        return []
    from harness.behaviour.junit import fail_cases

    missing = fail_cases(Path(xml_path), {o.nodeid: o.changes for o in report.gated})
    return [f"behaviour: no JUnit case found for {n}" for n in missing]
