"""The opt-in latency check: medians per call against the previous runs' medians, past a ratio and a floor."""

from __future__ import annotations

import json
from pathlib import Path

from harness.behaviour.compare import Outcome
from harness.behaviour.derive import Apart, derive
from harness.behaviour.latency import FILE, check
from tests.unit.behaviour.behaviour_support import api_call, ddb, function, make_trace, names


def _outcome(get_ms: float) -> Outcome:
    return Outcome(
        "s.yaml::read",
        "unchanged",
        apart=Apart(durations={"DynamoDB GetItem OrdersTable": [get_ms, get_ms * 3, get_ms]}),
    )


def test_a_baseline_is_collected_first_then_a_slowdown_past_the_ratio_is_reported(tmp_path: Path) -> None:
    path = tmp_path / FILE
    assert check(path, [_outcome(10.0)], 3.0) == [
        f"latency (ratio 3, 0 earlier runs): collecting a baseline (3 runs needed) -> {path}"
    ]
    check(path, [_outcome(12.0)], 3.0)
    check(path, [_outcome(8.0)], 3.0)
    assert check(path, [_outcome(25.0)], 3.0) == ["latency (ratio 3, 3 earlier runs): no call slower"]
    assert check(path, [_outcome(70.0)], 3.0) == [
        "latency (ratio 3, 4 earlier runs): 1 call(s) slower",
        "  slower: s.yaml::read: DynamoDB GetItem OrdersTable: median 11.0 ms -> 70.0 ms (6.4x, over 4 runs)",
    ]
    assert len(json.loads(path.read_text())["runs"]) == 5


def test_a_fast_call_is_not_reported_below_the_floor(tmp_path: Path) -> None:
    path = tmp_path / FILE
    for _ in range(3):
        check(path, [_outcome(0.5)], 2.0)
    assert check(path, [_outcome(40.0)], 2.0) == ["latency (ratio 2, 3 earlier runs): no call slower"]


def test_durations_come_from_the_calls_the_behaviour_counts() -> None:
    trace = make_trace(api_call("GET", "/orders/x", function("GetOrderFunction", [ddb("GetItem", "OrdersTable-1AB2")])))
    _, apart = derive(trace, names())
    assert apart.durations["DynamoDB GetItem OrdersTable"] == [100.0]
    assert apart.durations["Lambda GetOrderFunction"] == [200.0]
    cold = make_trace(api_call("GET", "/orders/x", function("GetOrderFunction", [], cold=True)))
    assert "Lambda GetOrderFunction" not in derive(cold, names())[1].durations  # a cold start is not latency
    assert apart.durations["test: API Gateway GET /orders/{order_id}"] == [300.0]
