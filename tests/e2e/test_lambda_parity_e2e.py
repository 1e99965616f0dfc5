"""Lambda parity on the embedded emulator: what fails on AWS fails here, and says why.

A throw-away project deploys ``stacks/parity`` the way a SAM/Makefile app does
(``aws cloudformation package`` zips each function's folder: its bundle) and
runs scenarios invoking each function, once:

* ``Unbundled`` imports ``tabulate``, installed for the harness but not in its
  bundle: its scenario fails, naming the module and ``Runtime.ImportModuleError``,
  invoked directly and through a REST API (a 502, as on AWS);
* ``Bundled`` is the same code with ``tabulate`` in its folder: it passes;
* ``ImportsPytest`` imports ``pytest``: it fails;
* ``Boom`` raises ``ValueError("boom")``: the failure shows the type, the
  message and the invocation's log tail; the trace JSON has the cause on the
  function segment; the HTML report shows it; ``LogType=Tail`` returns the log;
* the ``logs`` fixture and an ``expect_log`` step find the Boom invocation's
  log line through the test's trace;
* ``QueueConsumer`` is ``Unbundled``'s code consuming a queue: a test that sends it a
  message and waits in vain fails, and its report shows the consumer's import error
  (its invocation runs in a trace of its own, linked to the test's);
* ``Old`` declares ``python3.9``; the runtime lookup is given a search path
  holding only the harness's Python, so no 3.9 is found on any machine: the
  run prints the mismatch line, and ``runtime-mismatch = error`` refuses it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from e2e_support import Result, Runner, git, packaged_project

pytestmark = pytest.mark.e2e

STACK = Path(__file__).parent / "stacks" / "parity"
RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"

SCENARIOS = """\
import base64
import json


def invoke(stack, logical, event=None, **kw):
    r = stack.client("lambda").invoke(
        FunctionName=stack.resources[logical], Payload=json.dumps(event or {}).encode(), **kw
    )
    payload = json.loads(r["Payload"].read())
    assert "FunctionError" not in r, f"{logical} failed: {payload}"
    return payload


def test_unbundled_import(stack):
    invoke(stack, "Unbundled")


def test_unbundled_import_through_api_gateway(stack):
    import requests

    r = requests.get(stack.outputs["ApiUrl"] + "/unbundled", timeout=30)
    assert r.status_code == 200, f"HTTP {r.status_code}: {r.text}"


def test_bundled_import(stack):
    assert invoke(stack, "Bundled")["tabulate"]


def test_imports_pytest(stack):
    invoke(stack, "ImportsPytest")


def test_boom(stack):
    invoke(stack, "Boom", {"order_id": "o-42"})


def test_queued_work_is_done(stack):
    import time

    sqs, url = stack.client("sqs"), stack.outputs["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody='{"order_id": "o-7"}')
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the consumer took it (in flight), then failed to import its module
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
        if attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1":
            break
        time.sleep(0.2)
    time.sleep(3)  # its invocation ends meanwhile
    raise AssertionError("order o-7 was never processed")


def test_old_runtime_still_runs(stack):
    assert invoke(stack, "Old")["python"]


def test_log_tail(stack):
    r = stack.client("lambda").invoke(
        FunctionName=stack.resources["Boom"], Payload=b'{"order_id": "tail"}', LogType="Tail"
    )
    tail = base64.b64decode(r["LogResult"]).decode()
    assert r["FunctionError"] == "Unhandled"
    assert "about to fail on tail" in tail and "[ERROR] ValueError: boom" in tail, tail


def test_logs_of_this_test(stack, logs):
    stack.client("lambda").invoke(FunctionName=stack.resources["Boom"], Payload=b'{"order_id": "seen-by-logs"}')
    [line] = logs.wait_for("about to fail on seen-by-logs", "Boom")
    assert line == "about to fail on seen-by-logs"
    [invocation] = logs.invocations()
    assert invocation.lines[0].startswith("START RequestId: " + invocation.request_id)
    assert logs.lines("Bundled") == []  # not invoked by this test
"""

SCENARIO_YAML = """\
scenarios:
  - name: the function's log line is found through the trace
    steps:
      - invoke: {function: Boom, payload: {order_id: "{{ unique }}"}}
        expect: {function_error: Unhandled}
      - expect_log: {function: Boom, contains: "about to fail on {{ unique }}"}
        expect: {invocations: 1}
"""


def _project(root: Path) -> Path:
    tests = {"test_parity.py": SCENARIOS, "parity.yaml": SCENARIO_YAML}
    # The bundle: tabulate copied into the function's folder, as `pip install -t` would.
    project = packaged_project(STACK, root, tests, app="parity", bundles={"src/bundled": ["tabulate"]})
    template = project / "template.yaml"
    template.write_text(template.read_text().replace("PYTHON_RUNTIME", RUNTIME))
    git(project, "commit", "-q", "-am", "runtime")
    return project


def _search_path(base: Path) -> str:
    """A directory whose only interpreter is the harness's own Python, as ``pythonX.Y``."""
    bindir = base / "interpreters"
    bindir.mkdir()
    real = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    (bindir / RUNTIME).symlink_to(real)
    return str(bindir)


@pytest.fixture(scope="module")
def parity(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result, str]:
    base = tmp_path_factory.mktemp("parity")
    project, search = _project(base / "project"), _search_path(base)
    runner = Runner()
    try:
        res = runner(
            project, "tests/integration", "-p", "no:randomly", "-rf", env={"HARNESS_RUNTIME_SEARCH_PATH": search}
        )
    finally:
        runner.cleanup()
    return project, res, search


def _failure(res: Result, name: str) -> str:
    """The failure report of one inner test (from its ``___ name ___`` header to the next)."""
    out = res.output
    start = out.find(f"_ {name} _")
    assert start >= 0, f"no failure report for {name}:\n{out}"
    end = out.find("\n___", start + 1)
    return out[start : end if end > 0 else len(out)]


def test_only_the_parity_failures_fail(parity: tuple[Path, Result, str]) -> None:
    _, res, _ = parity
    failed = {line.split("::")[-1].split(" ")[0] for line in res.lines("FAILED tests/integration")}
    assert failed == {
        "test_unbundled_import",
        "test_unbundled_import_through_api_gateway",
        "test_imports_pytest",
        "test_boom",
        "test_queued_work_is_done",
    }, res.output
    assert res.returncode == 1, res.output
    assert "5 failed, 5 passed" in res.output, res.output  # the log tail, logs fixture and expect_log included


def test_an_unbundled_import_fails_naming_the_module(parity: tuple[Path, Result, str]) -> None:
    _, res, _ = parity
    report = _failure(res, "test_unbundled_import")
    assert "Runtime.ImportModuleError" in report and "No module named 'tabulate'" in report, report
    assert "branchstack: function errors" in report, report
    assert "Unable to import module 'app': No module named 'tabulate'" in report, report
    assert "| [ERROR] Runtime.ImportModuleError" in report, report  # the invocation's log, as AWS writes it


def test_through_api_gateway_it_is_a_502_naming_the_module(parity: tuple[Path, Result, str]) -> None:
    _, res, _ = parity
    report = _failure(res, "test_unbundled_import_through_api_gateway")
    assert "HTTP 502" in report, report
    section = report[report.find("branchstack: function errors") :]
    assert "Runtime.ImportModuleError: Unable to import module 'app': No module named 'tabulate'" in section, report


def test_a_queue_consumer_s_failure_is_shown_in_the_test_that_sent_its_message(
    parity: tuple[Path, Result, str],
) -> None:
    project, res, _ = parity
    report = _failure(res, "test_queued_work_is_done")
    section = report[report.find("branchstack: function errors") :]
    assert "Runtime.ImportModuleError: Unable to import module 'app': No module named 'tabulate'" in section, report
    assert "which links to this test's: a consumer of its writes" in section, report
    page = (project / "harness-report" / "traces" / "index.html").read_text()
    assert "which links to this test's: a consumer of its writes" in page


def test_importing_pytest_fails_as_on_aws(parity: tuple[Path, Result, str]) -> None:
    _, res, _ = parity
    report = _failure(res, "test_imports_pytest")
    assert "Runtime.ImportModuleError" in report and "No module named 'pytest'" in report, report


def test_a_raising_function_shows_type_message_and_log_tail(parity: tuple[Path, Result, str]) -> None:
    project, res, _ = parity
    report = _failure(res, "test_boom")
    section = report[report.find("branchstack: function errors") :]
    assert "ValueError: boom" in section, report
    assert "about to fail on o-42" in section, report  # the invocation's log tail
    assert "/var/task/app.py:3 in handler" in section, report

    index = json.loads((project / "harness-report" / "traces" / "index.json").read_text())
    [entry] = [e for e in index if e["nodeid"].endswith("::test_boom")]
    trace = json.loads((project / "harness-report" / "traces" / entry["file"]).read_text())
    [function] = [d for d in trace["documents"] if d.get("origin") == "AWS::Lambda::Function"]
    assert function["fault"] is True
    [cause] = function["cause"]["exceptions"]
    assert (cause["type"], cause["message"]) == ("ValueError", "boom"), cause
    page = (project / "harness-report" / "traces" / "index.html").read_text()
    assert "Lambda function " in page and "ValueError</span>: boom" in page
    assert "about to fail on o-42" in page


def test_the_functions_have_lambda_segments_without_the_sdk(parity: tuple[Path, Result, str]) -> None:
    """None of these functions bundles aws-xray-sdk: Lambda's own segments put them in their traces."""
    project, _, _ = parity
    index = json.loads((project / "harness-report" / "traces" / "index.json").read_text())
    [entry] = [e for e in index if e["nodeid"].endswith("::test_bundled_import")]
    trace = json.loads((project / "harness-report" / "traces" / entry["file"]).read_text())
    origins = sorted(d.get("origin") or "" for d in trace["documents"] if d.get("origin"))
    assert origins == ["AWS::Lambda", "AWS::Lambda::Function"], trace["documents"]
    [function] = [d for d in trace["documents"] if d.get("origin") == "AWS::Lambda::Function"]
    assert [s["name"] for s in function["subsegments"]][:2] == ["Initialization", "Invocation"]


def test_a_passthrough_function_has_no_lambda_segments(parity: tuple[Path, Result, str]) -> None:
    """``Old`` has no TracingConfig (PassThrough): as on AWS, Lambda records nothing for it."""
    project, _, _ = parity
    index = json.loads((project / "harness-report" / "traces" / "index.json").read_text())
    [entry] = [e for e in index if e["nodeid"].endswith("::test_old_runtime_still_runs")]
    trace = json.loads((project / "harness-report" / "traces" / entry["file"]).read_text())
    assert not [d for d in trace["documents"] if str(d.get("origin", "")).startswith("AWS::Lambda")], trace


def test_the_run_names_the_runtime_mismatch(parity: tuple[Path, Result, str]) -> None:
    _, res, _ = parity
    lines = res.lines("runtime mismatch:")
    assert lines, res.output
    assert all("-Old-" in line and "declares python3.9" in line and "no python3.9 found" in line for line in lines)
    assert len(lines) == 2, lines  # after the deploy, and in the summary


def test_runtime_mismatch_error_refuses_the_run(parity: tuple[Path, Result, str]) -> None:
    project, _, search = parity
    runner = Runner()
    try:
        res = runner(
            project,
            "tests/integration",
            env={"HARNESS_RUNTIME_SEARCH_PATH": search, "HARNESS_RUNTIME_MISMATCH": "error"},
        )
    finally:
        runner.cleanup()
    assert res.returncode != 0, res.output
    assert "cannot run on their declared runtime here" in res.output, res.output
    assert "declares python3.9" in res.output and "runtime-mismatch = warn" in res.output
    assert "passed" not in res.output.splitlines()[-1], res.output
    assert "Traceback" not in res.output, res.output
