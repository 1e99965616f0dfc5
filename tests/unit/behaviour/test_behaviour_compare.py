"""The differences, the committed files, the reports: exact text a reviewer reads."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from harness.behaviour import snapshot
from harness.behaviour.compare import CHANGED, NEW, SAME, compare, differences
from harness.behaviour.derive import Apart
from harness.behaviour.junit import fail_cases, junit_names
from harness.behaviour.render import html_section, markdown, terminal_table
from harness.errors import ConfigError

BEFORE = {
    "calls": {"DynamoDB GetItem OrdersTable": 1, "DynamoDB PutItem OrdersTable": 1},
    "invocations": {"GetOrderFunction": 1},
    "test": {"API Gateway GET /orders/{order_id}": 1},
    "consumers": {"AuditFunction": ["DynamoDB PutItem AuditTable"]},
}


def test_every_kind_of_difference_is_one_line() -> None:
    after = {
        "calls": {"DynamoDB GetItem OrdersTable": 2, "DynamoDB Scan OrdersTable": 1},
        "invocations": {"GetOrderFunction": 1},
        "test": {"API Gateway GET /orders/{order_id}": 1},
        "errors": {"DynamoDB Scan OrdersTable": ["throttle"]},
        "consumers": {"AuditFunction": []},
    }
    assert differences(BEFORE, after) == [
        "DynamoDB GetItem OrdersTable: 1 -> 2",
        "removed: DynamoDB PutItem OrdersTable (was 1)",
        "new: DynamoDB Scan OrdersTable (1)",
        "new error: DynamoDB Scan OrdersTable (throttle)",
        "removed: DynamoDB PutItem AuditTable (consumer AuditFunction)",
    ]
    assert differences(BEFORE, json.loads(json.dumps(BEFORE))) == []


def test_a_scenario_is_changed_new_or_unchanged() -> None:
    assert compare("a::b", None, BEFORE, Apart()).state == NEW
    assert compare("a::b", BEFORE, BEFORE, Apart()).state == SAME
    assert compare("a::b", BEFORE, {}, Apart()).state == CHANGED


def test_update_adds_rewrites_prunes_and_sorts(tmp_path: Path) -> None:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "orders.yaml").write_text("scenarios: []\n")
    lines = snapshot.update(
        tmp_path, {"scenarios/orders.yaml::b": {"calls": {"z": 1, "a": 2}}, "scenarios/orders.yaml::a": {}}, None
    )
    assert lines == ["added scenarios/orders.yaml::a", "added scenarios/orders.yaml::b"]
    path = tmp_path / "scenarios" / "__snapshots__" / "orders.yaml.behaviour.json"
    text = path.read_text()
    assert text == snapshot.dumps({"a": {}, "b": {"calls": {"a": 2, "z": 1}}})
    assert text.index('"a": 2') < text.index('"z": 1')  # sorted: diff-friendly
    # A later run that collected only a and c (b is gone), and changed a.
    lines = snapshot.update(
        tmp_path,
        {"scenarios/orders.yaml::a": {"calls": {"x": 1}}, "scenarios/orders.yaml::c": {}},
        ["scenarios/orders.yaml::a", "scenarios/orders.yaml::c"],
    )
    assert lines == [
        "pruned scenarios/orders.yaml::b (no longer collected)",
        "added scenarios/orders.yaml::c",
        "updated scenarios/orders.yaml::a",
    ]
    assert snapshot.load(tmp_path, ["scenarios/orders.yaml::a"]) == {
        "scenarios/orders.yaml::a": {"calls": {"x": 1}},
        "scenarios/orders.yaml::c": {},
    }


def test_update_merges_what_other_shards_wrote(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("")
    snapshot.update(tmp_path, {"t.yaml::one": {"calls": {"x": 1}}}, None)
    snapshot.update(tmp_path, {"t.yaml::two": {}}, None)  # another shard, its own scenarios
    assert set(snapshot.load(tmp_path, ["t.yaml::one"]) or {}) == {"t.yaml::one", "t.yaml::two"}


def test_a_snapshot_of_a_deleted_test_file_is_deleted_by_the_update(tmp_path: Path) -> None:
    (tmp_path / "kept.yaml").write_text("")
    gone = snapshot.path_for(tmp_path, "gone.yaml")
    gone.parent.mkdir()
    gone.write_text(snapshot.dumps({"x": {}}))
    lines = snapshot.update(tmp_path, {"kept.yaml::a": {}}, None)
    assert not gone.exists() and "deleted __snapshots__/gone.yaml.behaviour.json (gone.yaml is gone)" in lines


def test_no_snapshot_is_none_and_a_broken_one_says_what_to_do(tmp_path: Path) -> None:
    assert snapshot.load(tmp_path, ["t.yaml::a"]) is None
    path = snapshot.path_for(tmp_path, "t.yaml")
    path.parent.mkdir()
    path.write_text("{<<<<<<< HEAD")
    with pytest.raises(ConfigError, match="not valid JSON") as info:
        snapshot.load(tmp_path, ["t.yaml::a"])
    assert "--behaviour-update" in (info.value.hint or "")


def _outcomes() -> list:
    changed = compare(
        "scenarios/orders.yaml::create then read",
        BEFORE,
        {**BEFORE, "calls": {"DynamoDB GetItem OrdersTable": 2, "DynamoDB PutItem OrdersTable": 1}},
        Apart(cold_starts=2),
    )
    return [
        changed,
        compare("scenarios/orders.yaml::new one", None, {}, Apart()),
        compare("x::same", BEFORE, BEFORE, Apart(retries=1)),
    ]


def test_terminal_table_lists_differences_and_new_scenarios() -> None:
    text = terminal_table(_outcomes())
    assert "scenarios/orders.yaml::create then read  changed  DynamoDB GetItem OrdersTable: 1 -> 2" in text
    assert "scenarios/orders.yaml::new one" in text and "not in the snapshot" in text
    assert "x::same" not in text


def test_markdown_summary_renders_as_a_table_with_the_way_to_accept() -> None:
    text = markdown(_outcomes(), "gate", snapshot_hint="run `pytest --behaviour-update`")
    assert text.startswith("## Behaviour snapshot\n\nbehaviour (gate): 1 of 3 scenarios changed, 1 new, 1 unchanged; ")
    assert "not behaviour: 2 cold starts, 1 SDK retries, 0 poll attempts folded" in text
    page = MarkdownIt("commonmark").enable("table").render(text)
    assert (
        "<td><code>scenarios/orders.yaml::create then read</code></td>\n<td>DynamoDB GetItem OrdersTable: 1 -&gt; 2</td>"
        in page
    )
    assert "<td><code>scenarios/orders.yaml::new one</code></td>\n<td>new: not in the snapshot</td>" in page


def test_html_section_escapes_and_marks_changes() -> None:
    outcomes = _outcomes()
    outcomes[0].changes.append("new: HTTP GET <script>")
    page = html_section(outcomes, "report")
    assert '<section id="behaviour" class="behaviour"><h2>Behaviour snapshot</h2>' in page
    assert page.count('<tr class="changed">') == 2 and page.count('<tr class="new">') == 1
    assert "<code>DynamoDB GetItem OrdersTable: 1 -&gt; 2</code>" in page and "&lt;script&gt;" in page
    assert "<script>" not in page


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="0"
failures="0" skipped="0" tests="2"><testcase classname="scenarios.orders.yaml" name="create then read" time="0.1" />
<testcase classname="scenarios.test_orders" name="test_x[a-b]" time="0.1" /></testsuite></testsuites>"""


def test_gated_scenarios_fail_their_junit_case(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    assert junit_names("scenarios/test_orders.py::test_x[a-b]") == ("scenarios.test_orders", "test_x[a-b]")
    missing = fail_cases(
        path, {"scenarios/orders.yaml::create then read": ["DynamoDB GetItem OrdersTable: 1 -> 2"], "gone::x": ["y"]}
    )
    assert missing == ["gone::x"]
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    failure = suite.find("testcase[@name='create then read']/failure")
    assert failure is not None and failure.text == "DynamoDB GetItem OrdersTable: 1 -> 2"
    assert suite.find("testcase[@name='test_x[a-b]']/failure") is None
