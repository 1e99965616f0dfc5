"""The HTML trace report, seen the way a person sees it, and the trace ids in JUnit XML.

* A report built from synthetic traces shaped like the emulator's (client ->
  API Gateway -> Lambda -> DynamoDB, a failing path, a direct invoke, a
  function raising ``ValueError("boom")``, and a trace no test started) is
  rendered by headless Chromium; the screenshot must show the waterfall: bars
  in the services' colors, one per span, placed on the time axis (a call starts
  right of its caller), the failed span outlined in red, the raising function's
  error (type, message, log tail) in a red-ruled box, and the unattributed
  trace's bars below every test's.
* A real run of a throw-away project writes ``--junitxml`` with a ``trace_id``
  property on every test case, and the HTML report next to the trace JSON,
  naming the same trace ids.

Chromium is Debian's ``chromium`` package (``apt-get install -y chromium``); the
screenshot test skips without ``/usr/bin/chromium``.
"""

from __future__ import annotations

import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from e2e_support import ProjectFactory, Runner, clean_env

from harness import procs
from harness.traces.html import SERVICE_COLORS, WF_BAR_H, WF_BAR_X, write_html
from harness.traces.model import Trace
from harness.traces.run import CollectReport
from harness.traces.run import TestRecord as Record

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 1280, 2400
CHROMIUM_TIMEOUT = 90.0  # hang guard only
MIN_BAR_W = 20  # px: the shortest synthetic span (25 ms of 70 ms) is drawn ~250 px wide
TRACE_ID_RE = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")
TABLE = "orders-e2e-OrdersTable-1A2B"
CREATE = "orders-e2e-CreateOrderFunction-9Z"


# -- synthetic traces, shaped like the local collector's ---------------------------------


def _tid(n: int) -> str:
    return f"1-6b043315-{n:024x}"


def _client(tid: str, nodeid: str, t: float, end: float, subsegments: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": f"c{int(tid[-8:], 16):015x}",
        "name": nodeid,
        "trace_id": tid,
        "start_time": t,
        "end_time": end,
        "annotations": {"harness_client": True, "harness_test": nodeid},
        "subsegments": subsegments,
    }


def _api_create(tid: str, nodeid: str, *, conflict: bool = False) -> list[dict[str, Any]]:
    """client -> API Gateway POST -> stage -> Lambda Invoke -> function -> DynamoDB PutItem (failing on conflict)."""
    t = 2000.0
    status = 409 if conflict else 201
    call = {
        "id": "a000000000000001",
        "name": "127.0.0.1",
        "namespace": "remote",
        "start_time": t + 0.010,
        "end_time": t + 0.110,
        "http": {
            "request": {"method": "POST", "url": "http://127.0.0.1:4566/_aws/execute-api/abc123/Prod/orders"},
            "response": {"status": status},
        },
        **({"error": True} if conflict else {}),
    }
    return [
        _client(tid, nodeid, t, t + 0.120, [call]),
        {
            "id": "s000000000000001",
            "name": "abc123/Prod",
            "trace_id": tid,
            "parent_id": call["id"],
            "origin": "AWS::ApiGateway::Stage",
            "start_time": t + 0.012,
            "end_time": t + 0.108,
            "http": {"response": {"status": status}},
            "subsegments": [
                {
                    "id": "i000000000000001",
                    "name": "Lambda",
                    "namespace": "aws",
                    "start_time": t + 0.014,
                    "end_time": t + 0.106,
                    "aws": {"operation": "Invoke", "function_name": CREATE},
                }
            ],
        },
        {
            "id": "f000000000000001",
            "name": CREATE,
            "trace_id": tid,
            "parent_id": "i000000000000001",
            "origin": "AWS::Lambda::Function",
            "start_time": t + 0.030,
            "end_time": t + 0.100,
            "aws": {"cold_start": not conflict},
        },
        {
            "id": "d000000000000001",
            "name": "DynamoDB",
            "namespace": "aws",
            "type": "subsegment",
            "trace_id": tid,
            "parent_id": "f000000000000001",
            "start_time": t + 0.050,
            "end_time": t + 0.090,
            "http": {"response": {"status": 400 if conflict else 200}},
            "aws": {"operation": "PutItem", "table_name": TABLE},
            **({"error": True} if conflict else {}),
        },
    ]


def _direct_invoke(tid: str, nodeid: str) -> list[dict[str, Any]]:
    t = 3000.0
    invoke = {
        "id": "b000000000000001",
        "name": "Lambda",
        "namespace": "aws",
        "start_time": t + 0.005,
        "end_time": t + 0.060,
        "http": {"response": {"status": 200}},
        "aws": {"operation": "Invoke", "function_name": CREATE},
    }
    return [
        _client(tid, nodeid, t, t + 0.070, [invoke]),
        {
            "id": "f000000000000002",
            "name": CREATE,
            "trace_id": tid,
            "parent_id": invoke["id"],
            "origin": "AWS::Lambda::Function",
            "start_time": t + 0.015,
            "end_time": t + 0.050,
        },
        {
            "id": "d000000000000002",
            "name": "DynamoDB",
            "namespace": "aws",
            "type": "subsegment",
            "trace_id": tid,
            "parent_id": "f000000000000002",
            "start_time": t + 0.020,
            "end_time": t + 0.045,
            "http": {"response": {"status": 200}},
            "aws": {"operation": "PutItem", "table_name": TABLE},
        },
    ]


def _stream_consumer(tid: str) -> list[dict[str, Any]]:
    """A trace no test started: a stream consumer's function and its GetItem (streams do not pass traces on)."""
    t = 4000.0
    return [
        {
            "id": "f0000000000000aa",
            "name": "orders-e2e-AuditFunction-7Q",
            "trace_id": tid,
            "origin": "AWS::Lambda::Function",
            "start_time": t,
            "end_time": t + 0.040,
        },
        {
            "id": "d0000000000000aa",
            "name": "DynamoDB",
            "namespace": "aws",
            "type": "subsegment",
            "trace_id": tid,
            "parent_id": "f0000000000000aa",
            "start_time": t + 0.010,
            "end_time": t + 0.030,
            "http": {"response": {"status": 200}},
            "aws": {"operation": "GetItem", "table_name": TABLE},
        },
    ]


def _raising_function(tid: str, nodeid: str) -> list[dict[str, Any]]:
    """client -> Lambda Invoke -> AWS::Lambda -> the function, which raised ValueError("boom")."""
    docs = _direct_invoke(tid, nodeid)[:2]
    invoke, function = docs[0]["subsegments"][0], docs[1]
    service = {**function, "id": "l000000000000003", "origin": "AWS::Lambda", "aws": {"request_id": "req-boom"}}
    function.update(
        id="f000000000000003",
        parent_id=service["id"],
        fault=True,
        cause={
            "working_directory": "/var/task",
            "exceptions": [
                {
                    "id": "e000000000000001",
                    "type": "ValueError",
                    "message": "boom",
                    "stack": [{"path": "/var/task/app.py", "line": 3, "label": "handler"}],
                }
            ],
        },
    )
    service["parent_id"] = invoke["id"]
    return [docs[0], service, function]


FUNCTION_ERROR = {
    "function": CREATE,
    "request_id": "req-boom",
    "error_type": "ValueError",
    "message": "boom",
    "stack": ["/var/task/app.py:3 in handler"],
    "log_tail": ["START RequestId: req-boom Version: $LATEST", "about to fail on o-42", "[ERROR] ValueError: boom"],
}


def synthetic_report(out_dir: Path) -> CollectReport:
    tests = [
        ("scenarios/traces.yaml::create order <script>alert(1)</script>", "passed", _api_create),
        ("scenarios/traces.yaml::conflicting create", "failed", lambda t, n: _api_create(t, n, conflict=True)),
        ("scenarios/test_traces.py::test_direct_invoke_trace_shape", "passed", _direct_invoke),
        ("scenarios/test_traces.py::test_boom", "failed", _raising_function),
    ]
    records, traces = [], {}
    for i, (nodeid, outcome, build) in enumerate(tests, 1):
        docs = build(_tid(i), nodeid)
        record = Record(nodeid=nodeid, trace_id=_tid(i), outcome=outcome, client=docs[0])
        if nodeid.endswith("::test_boom"):
            record["function_errors"] = [FUNCTION_ERROR]
        records.append(record)
        traces[_tid(i)] = Trace(_tid(i), docs)
    stray = _tid(99)
    return CollectReport(
        out_dir=out_dir, records=records, traces=traces, unattributed={stray: Trace(stray, _stream_consumer(stray))}
    )


# -- the screenshot ---------------------------------------------------------------


def screenshot(page: Path, png: Path, profile: Path) -> str:
    """Headless Chromium renders ``page`` into ``png``; returns its output. Stopped by pid on a hang."""
    argv = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        f"--window-size={WIDTH},{HEIGHT}",
        page.resolve().as_uri(),
    ]
    proc = subprocess.Popen(  # noqa: S603 - argv list
        argv,
        env=clean_env({"HOME": str(profile)}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=CHROMIUM_TIMEOUT)
    except subprocess.TimeoutExpired:
        procs.stop_tree(proc.pid)
        out, _ = proc.communicate()
        pytest.fail(
            f"hang guard: chromium did not finish within {CHROMIUM_TIMEOUT:.0f}s:\n{out.decode(errors='replace')}"
        )
    return out.decode("utf-8", "replace")


def _rgb(hex_color: str) -> tuple[int, int, int]:
    return int(hex_color[1:3], 16), int(hex_color[3:5], 16), int(hex_color[5:7], 16)


Band = tuple[int, int, int, int]  # x0, y0, x1, y1 (inclusive)


def bars_of(img: Any, hex_color: str, *, min_x: int, tolerance: int = 10) -> list[Band]:
    """Solid blocks of ``hex_color`` right of ``min_x``, about a bar high: the waterfall's bars.

    A failed span's bar is outlined (2 px, half inside), so its fill is a few
    pixels lower. Node outlines in the service map (2 px lines) are too thin
    and its arrow heads too narrow to count (every synthetic span is long
    enough to be drawn wider than ``MIN_BAR_W``); the legend's swatches sit
    left of the bar area.
    """
    target = _rgb(hex_color)
    px = img.load()
    rows: dict[int, tuple[int, int]] = {}
    for y in range(img.height):
        run_start, best = None, None
        for x in range(min_x, img.width):
            r, g, b = px[x, y][:3]
            hit = (
                abs(r - target[0]) <= tolerance and abs(g - target[1]) <= tolerance and abs(b - target[2]) <= tolerance
            )
            if hit and run_start is None:
                run_start = x
            if (not hit or x == img.width - 1) and run_start is not None:
                end = x - 1 if not hit else x
                if end - run_start + 1 >= 3 and best is None:
                    best = (run_start, end)
                run_start = None
        if best is not None:
            rows[y] = best
    bands: list[Band] = []
    for y in sorted(rows):
        x0, x1 = rows[y]
        if bands and bands[-1][3] == y - 1 and abs(bands[-1][0] - x0) <= 2:
            bx0, by0, bx1, _ = bands[-1]
            bands[-1] = (min(bx0, x0), by0, max(bx1, x1), y)
        else:
            bands.append((x0, y, x1, y))
    return [b for b in bands if WF_BAR_H - 5 <= b[3] - b[1] + 1 <= WF_BAR_H + 1 and b[2] - b[0] + 1 >= MIN_BAR_W]


def error_box(img: Any) -> Band | None:
    """The function-error box (``.fnerr``): rows where a red left rule meets the pale red background.

    Returns (x of the rule, first row, last x of the background, last row) of the tallest such run.
    """
    px = img.load()
    red, pale = _rgb("#dc2626"), _rgb("#fef2f2")

    def near(x: int, y: int, color: tuple[int, int, int], tol: int) -> bool:
        return all(abs(a - b) <= tol for a, b in zip(px[x, y][:3], color, strict=True))

    rows: dict[int, tuple[int, int]] = {}
    for y in range(img.height):
        for x in range(0, 200):
            if near(x, y, red, 40) and near(x + 4, y, pale, 3):
                right = x + 4
                while right + 1 < img.width and near(right + 1, y, pale, 3):
                    right += 1
                rows[y] = (x, right)
                break
    runs: list[Band] = []
    for y in sorted(rows):
        x, right = rows[y]
        if runs and runs[-1][3] == y - 1:
            runs[-1] = (runs[-1][0], runs[-1][1], max(runs[-1][2], right), y)
        else:
            runs.append((x, y, right, y))
    return max(runs, key=lambda r: r[3] - r[1], default=None)


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)"
)
def test_screenshot_shows_the_waterfall(tmp_path: Path) -> None:
    from PIL import Image  # the dev extra's pillow

    page = write_html(synthetic_report(tmp_path / "traces"))
    assert page == tmp_path / "traces" / "index.html"
    png = tmp_path / "report.png"
    output = screenshot(page, png, tmp_path / "chromium-profile")
    assert png.is_file(), f"no screenshot written; chromium said:\n{output}"

    img = Image.open(png).convert("RGB")
    assert img.size == (WIDTH, HEIGHT)
    bar_area = WF_BAR_X  # the page margin only moves bars further right
    dynamo = bars_of(img, SERVICE_COLORS["DynamoDB"], min_x=bar_area)
    api = bars_of(img, SERVICE_COLORS["API Gateway"], min_x=bar_area)
    lam = bars_of(img, SERVICE_COLORS["Lambda"], min_x=bar_area)
    client = bars_of(img, SERVICE_COLORS["client"], min_x=bar_area)
    # Four tests' traces: PutItem in three, an API call and a stage in two, two Lambda spans in three and
    # three in the last (Invoke, the Lambda service, the function), four clients; then, in the Unattributed
    # section, the trace no test started: its function and its GetItem.
    assert len(dynamo) == 4, dynamo
    assert len(api) == 4, api
    assert len(lam) == 10, lam
    assert len(client) == 4, client
    # The unattributed trace is drawn last, below every test's trace.
    assert dynamo[3][1] > max(b[1] for b in [*dynamo[:3], *api, *lam[:9], *client])
    # On the time axis: in the first trace the PutItem starts right of the API call it belongs to,
    # and ends before it; every row is below the previous one.
    first_api, first_put = api[0], dynamo[0]
    assert first_put[0] > first_api[0] + 20 and first_put[2] < first_api[2], (first_api, first_put)
    assert first_api[1] < lam[0][1] < first_put[1]
    # The failed PutItem (second trace) is outlined in red: red right above and below its bar.
    failed = dynamo[1]
    px = img.load()
    red = _rgb("#dc2626")
    mid = (failed[0] + failed[2]) // 2

    def reddish(x: int, y: int) -> bool:
        r, g, b = px[x, y]
        return r > 180 and g < 90 and b < 90 and abs(r - red[0]) < 60

    assert any(reddish(mid, y) for y in range(failed[1] - 3, failed[1])), "no red outline above the failed bar"
    assert any(reddish(mid, y) for y in range(failed[3] + 1, failed[3] + 4)), "no red outline below the failed bar"
    ok = dynamo[0]
    ok_mid = (ok[0] + ok[2]) // 2
    assert not any(reddish(ok_mid, y) for y in range(ok[1] - 3, ok[3] + 4)), "a passing span is outlined red"

    # The raising function's error is shown above its waterfall: a pale red box with a red left rule,
    # tall enough for the headline, the stack line and the three log lines.
    box = error_box(img)
    assert box is not None, "no function error box in the page"
    (x0, y0, x1, y1) = box
    assert x1 - x0 > WIDTH // 2 and y1 - y0 >= 60, box
    assert y0 > lam[5][3], "the box is not in the last trace's section"  # below the third trace's bars


# -- a real run: JUnit XML and the report the plugin writes --------------------------


def test_real_run_junit_carries_trace_ids_and_the_html_report_names_them(
    make_project: ProjectFactory, run: Runner
) -> None:
    project = make_project()
    res = run(project, "tests/integration", "-p", "no:randomly", "--junitxml=junit.xml")
    assert res.returncode == 0, res.output

    cases = ET.parse(project / "junit.xml").getroot().iter("testcase")
    ids = {}
    for case in cases:
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert "trace_id" in props, (case.get("name"), props)
        assert TRACE_ID_RE.match(props["trace_id"] or ""), props
        ids[case.get("name")] = props["trace_id"]
    assert set(ids) == {"test_table_and_function", "test_sam_style_env"}, ids
    assert len(set(ids.values())) == 2  # one trace per test

    traces = project / "harness-report" / "traces"
    [line] = res.lines("traces: HTML report -> ")
    assert line.endswith(str(traces / "index.html")), line
    page = (traces / "index.html").read_text(encoding="utf-8")
    index = json.loads((traces / "index.json").read_text())
    assert {e["trace_id"] for e in index} == set(ids.values())
    for tid in ids.values():
        assert tid in page
    assert 'class="waterfall"' in page and 'class="service-map"' in page
    assert "DynamoDB PutItem" in page and "Lambda Invoke" in page


def _bands(img: Any, hex_color: str, x: int) -> list[tuple[int, int]]:
    """Vertical runs (first row, last row) of ``hex_color`` at column ``x``."""
    px, color = img.load(), _rgb(hex_color)
    rows = [y for y in range(img.height) if all(abs(a - b) <= 2 for a, b in zip(px[x, y][:3], color, strict=True))]
    runs: list[tuple[int, int]] = []
    for y in rows:
        if runs and runs[-1][1] == y - 1:
            runs[-1] = (runs[-1][0], y)
        else:
            runs.append((y, y))
    return runs


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)"
)
def test_screenshot_shows_the_behaviour_section(tmp_path: Path) -> None:
    """The behaviour snapshot's section: one tinted row per difference, above the service map and the waterfalls."""
    from PIL import Image

    from harness.behaviour.compare import compare
    from harness.behaviour.derive import Apart
    from harness.behaviour.render import html_section

    before = {"calls": {"DynamoDB GetItem OrdersTable": 1, "DynamoDB PutItem OrdersTable": 1}}
    after = {"calls": {"DynamoDB GetItem OrdersTable": 2}}
    outcomes = [
        compare("scenarios/orders.yaml::create then read an order", before, after, Apart()),
        compare("scenarios/orders.yaml::a new scenario", None, after, Apart()),
        compare("scenarios/orders.yaml::unchanged", after, after, Apart()),
    ]
    report = synthetic_report(tmp_path / "traces")
    report.html_sections.append(html_section(outcomes, "gate"))
    page = write_html(report)
    text = page.read_text()
    assert "DynamoDB GetItem OrdersTable: 1 -&gt; 2" in text and text.index('id="behaviour"') < text.index(
        'id="service-map"'
    )
    png = tmp_path / "behaviour.png"
    output = screenshot(page, png, tmp_path / "chromium-profile")
    assert png.is_file(), f"no screenshot written; chromium said:\n{output}"
    img = Image.open(png).convert("RGB")
    changed = _bands(img, "#fff7ed", img.width - 40)  # .behaviour tr.changed, right of any text
    new = _bands(img, "#eff6ff", img.width - 40)  # .behaviour tr.new
    assert len(changed) == 2, changed  # "GetItem 1 -> 2" and "removed: PutItem", one row each
    assert len(new) == 1, new
    assert changed[0][1] < changed[1][0] < new[0][0]
    assert all(b - a >= 10 for a, b in [*changed, *new])  # rows, not stray pixels
    first_bar = min(b[1] for b in bars_of(img, SERVICE_COLORS["DynamoDB"], min_x=WF_BAR_X))
    assert new[0][1] < first_bar  # the section comes before the traces
