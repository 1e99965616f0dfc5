"""The HTML trace report: structure, escaping of untrusted strings, nothing external, robustness."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from harness.traces.html import (
    ERROR_COLOR,
    MAX_ROWS,
    color_of,
    render_html,
    report_line,
    service_edges,
    write_html,
)
from harness.traces.model import Trace
from harness.traces.run import CollectReport
from harness.traces.run import TestRecord as Record

TABLE = "orders-dev-OrdersTable-1A2B"
FUNCTION = "orders-dev-CreateOrderFunction-9Z"


def trace_id(n: int) -> str:
    return f"1-6b043315-{n:024x}"


def client(tid: str, nodeid: str, subsegments: list[dict[str, Any]], *, t: float = 1000.0) -> dict[str, Any]:
    return {
        "id": f"c{int(tid[-8:], 16):015x}",
        "name": nodeid[:200],
        "trace_id": tid,
        "start_time": t,
        "end_time": t + 0.5,
        "annotations": {"harness_client": True, "harness_test": nodeid},
        "subsegments": subsegments,
    }


def api_create(tid: str, nodeid: str, *, put_status: int = 200, table: str = TABLE) -> list[dict[str, Any]]:
    """client -> API Gateway POST -> stage -> Lambda Invoke -> function (cold) -> DynamoDB PutItem."""
    t = 1000.0
    call = {
        "id": "a000000000000001",
        "name": "127.0.0.1",
        "namespace": "remote",
        "start_time": t + 0.01,
        "end_time": t + 0.3,
        "http": {
            "request": {"method": "POST", "url": "http://127.0.0.1:4566/_aws/execute-api/abc123/Prod/orders"},
            "response": {"status": 201 if put_status < 400 else 500},
        },
        **({"fault": True} if put_status >= 400 else {}),
    }
    return [
        client(tid, nodeid, [call]),
        {
            "id": "s000000000000001",
            "name": "abc123/Prod",
            "trace_id": tid,
            "parent_id": call["id"],
            "origin": "AWS::ApiGateway::Stage",
            "start_time": t + 0.01,
            "end_time": t + 0.3,
            "subsegments": [
                {
                    "id": "i000000000000001",
                    "name": "Lambda",
                    "namespace": "aws",
                    "start_time": t + 0.01,
                    "end_time": t + 0.3,
                    "aws": {"operation": "Invoke", "function_name": FUNCTION},
                }
            ],
        },
        {
            "id": "f000000000000001",
            "name": FUNCTION,
            "trace_id": tid,
            "parent_id": "i000000000000001",
            "origin": "AWS::Lambda::Function",
            "start_time": t + 0.05,
            "end_time": t + 0.25,
            "aws": {"cold_start": True},
        },
        {
            "id": "d000000000000001",
            "name": "DynamoDB",
            "namespace": "aws",
            "type": "subsegment",
            "trace_id": tid,
            "parent_id": "f000000000000001",
            "start_time": t + 0.1,
            "end_time": t + 0.2,
            "http": {"response": {"status": put_status}},
            "aws": {"operation": "PutItem", "table_name": table},
            **({"error": True} if put_status >= 400 else {}),
        },
    ]


def report(*tests: tuple[str, str, list[dict[str, Any]] | None], out: Path = Path("/nonexistent")) -> CollectReport:
    """(nodeid, outcome, documents or None for a trace that never came) per test."""
    records, traces = [], {}
    for i, (nodeid, outcome, docs) in enumerate(tests):
        tid = trace_id(i + 1)
        records.append(Record(nodeid=nodeid, trace_id=tid, outcome=outcome, client=client(tid, nodeid, [])))
        if docs is not None:
            traces[tid] = Trace(tid, docs)
    return CollectReport(out_dir=out, records=records, traces=traces)


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text of <script> elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def parse(page: str) -> Tags:
    parser = Tags()
    parser.feed(page)
    parser.close()
    return parser


def test_index_waterfall_and_service_map_structure() -> None:
    page = render_html(
        report(
            ("scenarios/orders.yaml::create", "passed", api_create(trace_id(1), "scenarios/orders.yaml::create")),
            ("scenarios/test_x.py::test_fail", "failed", api_create(trace_id(2), "x", put_status=400)),
        )
    )
    tags = parse(page)
    assert page.startswith("<!DOCTYPE html>")
    # The index: one row per test, linking to its trace section.
    rows = [a for t, a in tags.tags if t == "tr" and "row" in (a.get("class") or "")]
    assert [r["data-outcome"] for r in rows] == ["passed", "failed"]
    links = [a["href"] for t, a in tags.tags if t == "a"]
    assert links == ["#trace-1", "#trace-2"]
    assert {a.get("id") for t, a in tags.tags if t == "div"} >= {"trace-1", "trace-2"}
    assert trace_id(1) in page and trace_id(2) in page
    # One waterfall per trace, one row per span, a bar for every timed span, colored by service.
    waterfalls = [a for t, a in tags.tags if t == "svg" and a.get("class") == "waterfall"]
    assert len(waterfalls) == 2
    spans = [a for t, a in tags.tags if t == "g" and (a.get("class") or "").startswith("span")]
    assert len(spans) == 12  # client, API call, stage, Lambda call, function, PutItem: twice
    bars = [a for t, a in tags.tags if t == "rect" and a.get("class") == "bar"]
    assert len(bars) == 12
    assert {b["fill"] for b in bars} == {color_of(s) for s in ("client", "API Gateway", "Lambda", "DynamoDB")}
    # Failed spans (the 500 from the API, the PutItem error) are outlined red and tagged; cold starts are said.
    failed = [a for t, a in tags.tags if t == "g" and a.get("class") == "span failed"]
    assert [a["data-service"] for a in failed] == ["API Gateway", "DynamoDB"]
    assert sum(1 for b in bars if b.get("stroke") == ERROR_COLOR) == 2
    assert "HTTP 400 error" in page and "cold start" in page
    # The service map: tests -> API Gateway -> Lambda -> DynamoDB, with call counts.
    assert any(t == "svg" and a.get("class") == "service-map" for t, a in tags.tags)
    nodes = [a["data-service"] for t, a in tags.tags if t == "g" and a.get("class") == "node"]
    assert nodes == ["tests", "API Gateway", "Lambda", "DynamoDB"]
    assert "tests -&gt; API Gateway: 2 call(s), 1 failed" in page
    assert "Lambda -&gt; DynamoDB: 2 call(s), 1 failed" in page
    # Summary: counts of tests and failures.
    assert "2 tests (1 failed · 1 passed)" in page and "2 cold starts" in page


def test_service_edges_count_calls_by_caller_and_callee() -> None:
    direct = [
        client(
            trace_id(9),
            "t",
            [
                {
                    "id": "b1",
                    "name": "Lambda",
                    "namespace": "aws",
                    "start_time": 1,
                    "end_time": 2,
                    "aws": {"operation": "Invoke", "function_name": FUNCTION},
                },
                {
                    "id": "b2",
                    "name": "DynamoDB",
                    "namespace": "aws",
                    "start_time": 2,
                    "end_time": 3,
                    "error": True,
                    "aws": {"operation": "GetItem", "table_name": TABLE},
                },
            ],
        )
    ]
    edges = service_edges([Trace(trace_id(1), api_create(trace_id(1), "a")), Trace(trace_id(9), direct)])
    assert [(e.caller, e.callee, e.calls, e.failed) for e in edges] == [
        ("API Gateway", "Lambda", 1, 0),
        ("Lambda", "DynamoDB", 1, 0),
        ("tests", "API Gateway", 1, 0),
        ("tests", "DynamoDB", 1, 1),
        ("tests", "Lambda", 1, 0),
    ]


EVIL = '<script>alert("x")</script>'


def test_every_untrusted_string_is_escaped() -> None:
    nodeid = f"scenarios/evil.yaml::{EVIL} & 'quotes\" <img src=x onerror=alert(1)>"
    table = '<img src=x onerror="alert(2)">'
    docs = api_create(trace_id(1), nodeid, table=table)
    docs[0]["annotations"]["harness_test"] = nodeid
    rep = report((nodeid, "failed", docs))
    rep.problems.append(f"{nodeid}: trace missing after 5s")
    page = render_html(rep)
    tags = parse(page)
    assert EVIL not in page and "<img" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page
    assert [t for t, _ in tags.tags if t == "img"] == []
    assert len([t for t, _ in tags.tags if t == "script"]) == 1  # the page's own, inline
    # No attribute anywhere carries an event handler.
    assert not [(t, k) for t, a in tags.tags for k in a if k.startswith("on")]


def test_nothing_external_is_loaded() -> None:
    docs = api_create(trace_id(1), "t")  # its API call's URL is http://...: text only
    page = render_html(report(("t", "passed", docs)))
    tags = parse(page)
    assert "http://127.0.0.1:4566" in page  # shown in the tooltips, as text
    for tag, attrs in tags.tags:
        assert tag not in ("link", "iframe", "img", "object", "embed", "base"), tag
        assert "src" not in attrs, (tag, attrs)
        for key, value in attrs.items():
            if key in ("href", "xlink:href", "action", "data", "poster"):
                assert (value or "").startswith("#"), (tag, key, value)
            assert "http:" not in (value or "") and "https:" not in (value or ""), (tag, key, value)
    styles = re.findall(r"<style>(.*?)</style>", page, re.S)
    assert styles and not any("url(" in s or "@import" in s for s in styles)
    assert not any(re.search(r"https?:|fetch\(|XMLHttpRequest|import\(", s) for s in tags.scripts)
    csp = [a["content"] for t, a in tags.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]


def test_write_html_and_the_plugin_line(tmp_path: Path) -> None:
    rep = report(("t", "passed", api_create(trace_id(1), "t")), out=tmp_path / "traces")
    path = write_html(rep)
    assert path == tmp_path / "traces" / "index.html"
    assert path.read_text(encoding="utf-8") == render_html(rep)  # deterministic
    assert report_line(rep) == f"traces: HTML report -> {path}"
    blocked = tmp_path / "file"
    blocked.write_text("")
    line = report_line(report(("t", "passed", None), out=blocked / "traces"))
    assert line.startswith("traces: HTML report not written: "), line


def test_odd_documents_and_missing_traces_still_render() -> None:
    tid = trace_id(3)
    odd = [
        client(tid, "odd", []),
        {
            "id": "x1",
            "name": "DynamoDB",
            "namespace": "aws",
            "type": "subsegment",
            "trace_id": tid,
            "parent_id": "c" + "0" * 15,
            "in_progress": True,
            "start_time": 1000.1,
            "aws": "not a mapping",
        },
        {"id": "x2", "name": "no times", "trace_id": tid, "parent_id": "x3"},
        {"id": "x3", "name": "cycle", "trace_id": tid, "parent_id": "x2", "start_time": "soon"},
        {"id": 7, "name": "bad id"},
        "not even a mapping",
    ]
    page = render_html(report(("odd", "passed", [d for d in odd if isinstance(d, dict)]), ("missing", "failed", None)))
    assert "(no timing)" in page and "in progress" in page
    assert "incomplete" in page  # the test whose trace never came
    assert "could not draw" not in page


def test_a_huge_trace_is_capped() -> None:
    tid = trace_id(4)
    calls = [
        {
            "id": f"{i:016x}",
            "name": "DynamoDB",
            "namespace": "aws",
            "start_time": 1000 + i / 1000,
            "end_time": 1000 + i / 1000 + 0.0005,
            "aws": {"operation": "GetItem", "table_name": TABLE},
        }
        for i in range(MAX_ROWS + 50)
    ]
    page = render_html(report(("big", "passed", [client(tid, "big", calls)])))
    assert page.count('class="bar"') == MAX_ROWS
    assert "… 51 more spans" in page  # the client segment and 50 calls


def test_the_page_and_the_terminal_count_from_one_place() -> None:
    """The page's summary and the terminal's line state the same cold starts and failed calls (CollectReport.counts)."""
    r = report(
        ("t.py::test_ok", "passed", api_create(trace_id(1), "t.py::test_ok")),
        ("t.py::test_bad", "failed", api_create(trace_id(2), "t.py::test_bad", put_status=500)),
        ("t.py::test_lost", "passed", None),
    )
    cold, failed = r.counts()
    assert (cold, failed) == (2, 2)  # the failed test's API Gateway call (500) and DynamoDB call
    assert f"({cold} cold starts, {failed} failed calls)" in r.lines()[0]
    summary = re.search(r'<p class="summary">(.*?)</p>', render_html(r)).group(1)  # type: ignore[union-attr]
    assert f"{cold} cold starts · " in summary and f">{failed} failed spans<" in summary


def test_a_function_errors_note_is_shown_escaped() -> None:
    from harness.function_errors import local_note

    nodeid = "tests/test_api.py::test_get"
    rep = report((nodeid, "failed", api_create(trace_id(1), nodeid)))
    message = f"[Errno 2] No such file or directory: '/opt/bin/{EVIL}'"
    note = local_note(message)
    assert note is not None
    rep.records[0]["function_errors"] = [
        {"function": FUNCTION, "error_type": "FileNotFoundError", "message": message, "stack": [], "note": note}
    ]
    page = render_html(rep)
    assert EVIL not in page
    [shown] = re.findall(r'<div class="note">(.*?)</div>', page)
    assert shown.startswith("note: /opt/bin/&lt;script&gt;") and "--target aws" in shown
