"""One run's check, as the plugin calls it: no snapshot yet, the update, a change, the gate, the summary file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.behaviour.run import check
from tests.unit.behaviour.behaviour_support import TEST_TRACE, api_call, ddb, function, make_trace, names

NODE = "scenarios/orders.yaml::read"


def _run(root: Path, reads: int, **kw: Any) -> Any:
    trace = make_trace(
        api_call(
            "GET",
            "/orders/o-1",
            function("GetOrderFunction", [ddb("GetItem", "OrdersTable-1AB2") for _ in range(reads)]),
        )
    )
    summary = root / "step-summary.md"
    return check(
        mode=kw.pop("mode", "gate"),
        update=kw.pop("update", False),
        root=root,
        report_dir=root / "harness-report",
        records=[{"nodeid": NODE, "trace_id": TEST_TRACE, "outcome": "passed"}],
        traces={TEST_TRACE: trace},
        complete=lambda _tid: True,
        others={},
        names=names(),
        collected=[NODE],
        summary_env={"GITHUB_STEP_SUMMARY": str(summary)},
    )


def test_no_snapshot_then_update_then_a_change_is_gated_then_accepted(tmp_path: Path) -> None:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "orders.yaml").write_text("")
    first = _run(tmp_path, 1)
    assert first.lines() == [
        "behaviour (gate): no snapshot of these 1 scenario yet; run `pytest --behaviour-update` and commit the snapshot"
    ]
    assert first.gated == [] and first.listed == []

    updated = _run(tmp_path, 1, update=True)
    assert updated.lines()[1:3] == [
        "  added scenarios/orders.yaml::read",
        f"  summary -> {tmp_path / 'harness-report' / 'behaviour.md'}",
    ]
    assert _run(tmp_path, 1).lines()[0].startswith("behaviour (gate): 0 of 1 scenario changed, 1 unchanged;")

    changed = _run(tmp_path, 2)
    assert [o.changes for o in changed.gated] == [["DynamoDB GetItem OrdersTable: 1 -> 2"]]
    assert changed.lines()[-1].startswith("  behaviour = gate: 1 scenario(s) changed; the run fails.")
    md = (tmp_path / "harness-report" / "behaviour.md").read_text()
    assert "| `scenarios/orders.yaml::read` | DynamoDB GetItem OrdersTable: 1 -> 2 |" in md
    assert md in (tmp_path / "step-summary.md").read_text()  # appended for the pull request's page
    assert _run(tmp_path, 2, mode="report").gated == []  # report never fails the run

    accepted = _run(tmp_path, 2, update=True)
    assert accepted.gated == [] and "  updated scenarios/orders.yaml::read" in accepted.lines()
    assert _run(tmp_path, 2).gated == []
