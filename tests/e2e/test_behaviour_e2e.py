"""Behaviour snapshots on a copy of the reference stack: a change of what the stack does is caught, gated, accepted.

The reference stack (``reference-stack/``, its own ``make deploy``) and
``scenarios/orders.yaml`` are copied into a temporary project; the copies are
edited, never the committed ones. Five of the scenarios run: three that read
an order through the get-order function, one that never reaches it, and the
stream scenario (the audit function writes the Audit table).

The five runs are a developer's edit loop: each keeps the stack and its
emulator (``--keep-stack``) and the next attaches to them, redeploying (the
project's own ``make deploy``) only when an edit changed the stack's inputs.
So the emulator boots once, the stack is created once and updated twice,
and a function starts cold again only when its code changed; the runner
stops the kept emulator afterwards.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.e2e.e2e_support import PYTHON, Runner, git

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
READS = ("create then read an order", "unknown order is not found", "get order by direct invoke with a proxy event")
NO_READ = "missing customer is rejected"
STREAM = "every created order is audited once through the stream"
SELECTED = "read or unknown or direct or missing or audited"
RUN_TIMEOUT = 420.0  # hang guard: a deploy of the reference stack and five scenarios


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "orders"
    shutil.copytree(
        ROOT / "reference-stack", project / "reference-stack", ignore=shutil.ignore_patterns("packaged.yaml")
    )
    (project / "scenarios").mkdir()
    shutil.copy(ROOT / "scenarios" / "orders.yaml", project / "scenarios" / "orders.yaml")
    (project / "pyproject.toml").write_text(
        '[project]\nname = "orders"\nversion = "0"\n\n'
        '[tool.harness]\napp = "orders"\n'
        f'deploy-command = ["make", "-C", "reference-stack", "deploy", "PYTHON={PYTHON}"]\n'
        'fingerprint-paths = ["reference-stack/**"]\n'
    )
    # A git checkout as the repository's own: the build folder is ignored, so a deploy's build is no input.
    (project / ".gitignore").write_text("reference-stack/.build/\nharness-report/\njunit.xml\n")
    git(project, "init", "-q", "-b", "behaviour-e2e")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "orders")
    return project


#: Every inner run's harness lines, in order: a failure late in a test shows how the stack came to be as it is.
_HISTORY: list[str] = []


def _history() -> str:
    return "\n".join(_HISTORY)


def _run(run: Runner, project: Path, *args: str, behaviour: str = "report", k: str = SELECTED) -> tuple[int, str]:
    env = {"HARNESS_BRANCH": "behaviour-e2e", "HARNESS_BEHAVIOUR": behaviour}
    result = run(
        project,
        "scenarios",
        "--stack",
        "on",
        "--keep-stack",
        "-k",
        k,
        "--junitxml=junit.xml",
        *args,
        env=env,
        timeout=RUN_TIMEOUT,
    )
    _HISTORY.append(f"--- run {len(_HISTORY) + 1}: {' '.join(args)} (behaviour {behaviour}), exit {result.returncode}")
    _HISTORY.extend(line for line in result.output.splitlines() if line.startswith("branchstack: "))
    return result.returncode, result.output


def _failed_cases(project: Path) -> dict[str, str]:
    cases = ET.parse(project / "junit.xml").getroot().iter("testcase")
    return {c.get("name", ""): (c.find("failure").text or "") for c in cases if c.find("failure") is not None}


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path}: the edit no longer applies ({old!r})"
    path.write_text(text.replace(old, new, 1))


def test_a_second_read_is_reported_gated_accepted_and_a_skipped_audit_write_is_reported(
    tmp_path: Path, run: Runner
) -> None:
    _HISTORY.clear()
    project = _project(tmp_path)
    code, out = _run(run, project, "--behaviour-update")
    assert code == 0, out
    snapshot = project / "scenarios" / "__snapshots__" / "orders.yaml.behaviour.json"
    stored = json.loads(snapshot.read_text())["scenarios"]
    assert sorted(stored) == sorted([*READS, NO_READ, STREAM])
    assert stored["create then read an order"]["calls"]["DynamoDB GetItem OrdersTable"] == 1
    assert stored[STREAM]["consumers"] == {
        "AuditFunction": [
            "DynamoDB PutItem AuditTable",
            "EventBridge PutEvents",  # the OrderAudited event, whose rule starts the receipt flow
            "Lambda Invoke ReceiptFunction",
            "S3 PutObject ReceiptsBucket",
            "SNS Publish OrderNotificationsTopic",
        ],
        "ReceiptFunction": ["S3 PutObject ReceiptsBucket"],
    }

    # The get-order function reads the order twice.
    get_order = project / "reference-stack" / "functions" / "get_order" / "app.py"
    read = '    item = ORDERS.get_item(Key={"order_id": order_id}, ConsistentRead=True).get("Item")\n'
    _edit(
        get_order,
        read,
        read + '    item = ORDERS.get_item(Key={"order_id": order_id}, ConsistentRead=True).get("Item")\n',
    )
    code, out = _run(run, project, behaviour="gate")
    assert code == 1, out
    assert "behaviour (gate): 3 of 5 scenarios changed, 2 unchanged" in out
    for name in READS:
        assert f"scenarios/orders.yaml::{name}" in out
    assert out.count("DynamoDB GetItem OrdersTable: 1 -> 2") == 3, out
    assert "5 passed" in out  # every assertion held: only the gate fails the run
    failed = _failed_cases(project)
    assert sorted(failed) == sorted(READS)
    assert all(text == "DynamoDB GetItem OrdersTable: 1 -> 2" for text in failed.values()), failed
    summary = (project / "harness-report" / "behaviour.md").read_text()
    assert "| `scenarios/orders.yaml::create then read an order` | DynamoDB GetItem OrdersTable: 1 -> 2 |" in summary

    # Accepted: the update rewrites the three entries, and the next gated run is clean.
    code, out = _run(run, project, "--behaviour-update", behaviour="gate")
    assert code == 0, out
    assert (
        json.loads(snapshot.read_text())["scenarios"]["create then read an order"]["calls"][
            "DynamoDB GetItem OrdersTable"
        ]
        == 2
    )
    code, out = _run(run, project, behaviour="gate")
    assert code == 0 and "behaviour (gate): 0 of 5 scenarios changed, 5 unchanged" in out, out
    # Seen once under make test: CREATE_COMPLETE here. The history says whether the update ran and where.
    assert "deploy skipped: orders-behaviour-e2e is UPDATE_COMPLETE and its inputs are unchanged" in out, _history()

    # The audit function skips its write: the stream scenario fails its own wait, and the report says why.
    audit = project / "reference-stack" / "functions" / "audit" / "app.py"
    _edit(audit, "        AUDIT.put_item(", "        if False:\n            AUDIT.put_item(")
    # An item that never comes: the copy's wait for it is 5 s, not 20 (the scenario files are no deploy input).
    _edit(project / "scenarios" / "orders.yaml", "event: INSERT}, within: 20}", "event: INSERT}, within: 5}")
    code, out = _run(run, project, k="audited")
    assert code == 1, out
    assert "removed: DynamoDB PutItem AuditTable (consumer AuditFunction)" in out
    assert f"scenarios/orders.yaml::{STREAM}" in out
