"""Each test's trace in pytest-html and Allure, from a real run on the emulator (both installed).

One run under pytest-xdist (two workers: the extras are made where the test
runs and travel back with its report) with ``--html`` and ``--alluredir``: a
passing test and a failing one (a call DynamoDB refuses). The HTML report holds,
per test, its trace id and the link to its waterfall in the harness's trace
report, and the failing test's failed span; the Allure results hold the link
and the trace as a JSON attachment.
"""

from __future__ import annotations

import html
import json
import re

import pytest
from e2e_support import PYTEST_ALL_PLUGINS, ProjectFactory, Runner, no_traceback

pytestmark = pytest.mark.e2e

pytest.importorskip("pytest_html")
pytest.importorskip("allure_pytest")

TESTS = """\
def test_passes(stack):
    ddb = stack.client("dynamodb")
    ddb.put_item(TableName=stack.outputs["TableName"], Item={"pk": {"S": "x"}})


def test_fails(stack):
    stack.client("dynamodb").get_item(TableName="no-such-table", Key={"pk": {"S": "x"}})
"""
TRACE_ID = re.compile(r"1-[0-9a-f]{8}-[0-9a-f]{24}")


def html_extras(page: str) -> dict[str, list[dict]]:
    """Each test's extras, from the data pytest-html 4 embeds in its page."""
    blob = json.loads(html.unescape(re.search(r'data-jsonblob="(.*?)"', page, re.S).group(1)))
    return {nodeid.rsplit("::", 1)[1]: [e for r in rows for e in r["extras"]] for nodeid, rows in blob["tests"].items()}


def test_html_and_allure_show_each_tests_trace(make_project: ProjectFactory, run: Runner) -> None:
    project = make_project(tests={"test_extras.py": TESTS})

    res = run(
        project,
        argv=[
            *PYTEST_ALL_PLUGINS,  # pytest-html and allure-pytest loaded, as a user who asks for their reports has them
            "tests/integration",
            "-n",
            "2",
            "-p",
            "no:randomly",
            "--html",
            "reports/report.html",
            "--alluredir",
            "reports/allure-results",
        ],
    )

    out = res.output
    assert res.returncode == 1, out
    no_traceback(out)
    assert "1 failed, 1 passed" in out, out
    index = json.loads((project / "harness-report" / "traces" / "index.json").read_text())
    ids = {t["nodeid"].rsplit("::", 1)[1]: t["trace_id"] for t in index}
    assert set(ids) == {"test_passes", "test_fails"}, index

    extras = html_extras((project / "reports" / "report.html").read_text())
    for name, trace_id in ids.items():
        [summary] = [e["content"] for e in extras[name] if e["format_type"] == "html"]
        assert f"trace <code>{trace_id}</code>" in summary, summary
        [link] = [e for e in extras[name] if e["format_type"] == "url"]
        assert link["content"] == f"../harness-report/traces/index.html#{trace_id}", link
    [failing] = [e["content"] for e in extras["test_fails"] if e["format_type"] == "html"]
    assert "failed spans<ul><li>DynamoDB GetItem no-such-table" in failing, failing
    waterfall = (project / "harness-report" / "traces" / "index.html").read_text()
    assert all(f'id="{trace_id}"' in waterfall for trace_id in ids.values())

    results = [json.loads(p.read_text()) for p in (project / "reports" / "allure-results").glob("*-result.json")]
    by_name = {r["name"]: r for r in results}
    assert set(by_name) == {"test_passes", "test_fails"}, list(by_name)
    for name, result in by_name.items():
        [link] = [x for x in result.get("links", []) if x.get("name") == f"trace {ids[name]}"]
        assert link["url"] == f"../../harness-report/traces/index.html#{ids[name]}", link
        [attachment] = [a for a in result.get("attachments", []) if a["name"] == f"trace {ids[name]}"]
        body = json.loads((project / "reports" / "allure-results" / attachment["source"]).read_text())
        assert TRACE_ID.search(json.dumps(body)) and ids[name] in json.dumps(body), body
