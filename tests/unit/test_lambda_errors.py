"""Function errors as AWS reports them, and as a failing test's report tells them (no emulator).

Error payloads and logs (``harness.emulator.invocations``), Lambda's segments
with their cause (``lambda_segments``), the cause read back from a trace
(``traces.causes``), an invocation's log from CloudWatch Logs (``lambda_logs``,
against moto's FilterLogEvents), the report section (``function_errors``) and
the runtime check after a deploy (``runtime_check``).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from harness import function_errors, lambda_logs, runtime_check
from harness.emulator import invocations, lambda_segments
from harness.emulator.invocations import Record, shape_result, trace_header
from harness.emulator.runtimes import Resolution
from harness.errors import RuntimeMismatch
from harness.traces.causes import failures
from harness.traces.model import Trace

ROOT = "1-6b043315-23214c168721134c5ded6f95"
CODE = "/tmp/run/emulator-tmp/ministack-lambda-orders-Fn-ab12/code/"  # noqa: S108 - a path in a text


def record(**kw: Any) -> Record:
    base: dict[str, Any] = dict(
        function="orders-Fn",
        arn="arn:aws:lambda:us-east-1:000000000000:function:orders-Fn",
        runtime="python3.11",
        request_id="req-1",
        tracing=True,
        start=100.0,
    )
    return Record(**{**base, **kw})


def test_the_invocation_runs_under_the_function_segment() -> None:
    rec = record()
    invocations._current.record = rec
    try:
        header = trace_header(f"Root={ROOT};Parent=c000000000000002;Sampled=1")
        assert trace_header("ignored: asked twice, same answer") == header
    finally:
        invocations._current.record = None
    assert header == f"Root={ROOT};Parent={rec.function_id};Sampled=1"
    assert rec.parent == "c000000000000002" and rec.root == ROOT


def test_untraced_or_unsampled_invocations_keep_their_header() -> None:
    for rec, header in (
        (record(tracing=False), f"Root={ROOT};Parent=c000000000000002;Sampled=1"),
        (record(), f"Root={ROOT};Parent=c000000000000002;Sampled=0"),
    ):
        invocations._current.record = rec
        try:
            assert trace_header(header) == header and rec.function_id is None
        finally:
            invocations._current.record = None


def test_an_import_error_becomes_aws_s_payload_and_log() -> None:
    exc = RuntimeError(
        "Worker init failed: HARNESS_INIT_ERROR"
        + json.dumps(
            {
                "errorType": "Runtime.ImportModuleError",
                "errorMessage": "Unable to import module 'app': No module named 'requests'",
                "trace": "",
            }
        )
    )
    rec = record(init=(100.0, 100.25), init_error=invocations.init_error_from(exc))
    raw = {"body": {"errorMessage": str(exc), "errorType": "RuntimeError"}, "error": True, "log": ""}
    out = shape_result(raw, rec)
    assert out["body"] == {
        "errorMessage": "Unable to import module 'app': No module named 'requests'",
        "errorType": "Runtime.ImportModuleError",
        "requestId": "req-1",
        "stackTrace": [],
    }
    assert out["log"].splitlines() == [
        "[ERROR] Runtime.ImportModuleError: Unable to import module 'app': No module named 'requests'",
        "Traceback (most recent call last):",
        "INIT_REPORT Init Duration: 250.00 ms\tPhase: init\tStatus: error\tError Type: Runtime.ImportModuleError",
    ]


def test_an_unhandled_exception_keeps_its_class_and_stack_with_aws_paths() -> None:
    log = (
        "about to fail\n[ERROR] ValueError: boom\nTraceback (most recent call last):\n"
        f'  File "{CODE}app.py", line 3, in handler\n    raise ValueError("boom")'
    )
    raw = {"body": {"errorMessage": "boom", "errorType": "Runtime.HandlerError"}, "error": True, "log": log}
    rec = record()
    out = shape_result(raw, rec)
    assert out["body"]["errorType"] == "ValueError" and out["body"]["errorMessage"] == "boom"
    assert out["body"]["stackTrace"] == ['  File "/var/task/app.py", line 3, in handler\n']
    assert CODE not in out["log"] and '"/var/task/app.py"' in out["log"]
    assert rec.error == {
        "type": "ValueError",
        "message": "boom",
        "stack": [{"path": "/var/task/app.py", "line": 3, "label": "handler"}],
    }


def test_a_timeout_is_logged_as_aws_logs_it() -> None:
    rec = record(timed_out="Task timed out after 3.00 seconds")
    raw = {"body": {"errorMessage": "Task timed out after 3.00 seconds", "errorType": "Sandbox.Timedout"}}
    out = shape_result({**raw, "error": True, "log": "working..."}, rec)
    assert out["body"]["errorType"] == "Sandbox.Timedout"
    assert out["log"].splitlines()[0] == "working..."
    assert out["log"].splitlines()[1].endswith("Z req-1 Task timed out after 3.00 seconds")


def test_an_unsupported_runtime_is_an_error_not_a_mock() -> None:
    rec = record(runtime="java21")
    out = invocations.unsupported_result(rec, Resolution("java21", None, "it needs Docker", False, supported=False))
    assert out["error"] is True and out["body"]["errorType"] == "Harness.UnsupportedRuntime"
    assert "orders-Fn" in out["body"]["errorMessage"] and "java21" in out["body"]["errorMessage"]


def _received(rec: Record) -> list[dict[str, Any]]:
    """Send the segments to a UDP socket, as to the collector, and read them back."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        sent = lambda_segments.send(rec, f"127.0.0.1:{sock.getsockname()[1]}")
        return [json.loads(sock.recv(65535).split(b"\n", 1)[1]) for _ in range(sent)]


def test_lambda_segments_as_aws_records_them() -> None:
    rec = record(root=ROOT, parent="c000000000000002", lambda_id="1" * 16, function_id="f" * 16)
    rec.init, rec.invoke, rec.end = (100.0, 100.3), (100.0, 100.4), 100.45
    rec.error = {"type": "ValueError", "message": "boom", "stack": [{"path": "/var/task/app.py", "line": 3}]}
    service, function = _received(rec)
    assert (service["origin"], service["parent_id"], service["aws"]["request_id"]) == (
        "AWS::Lambda",
        "c" + "0" * 14 + "2",
        "req-1",
    )
    assert (function["origin"], function["parent_id"], function["fault"]) == ("AWS::Lambda::Function", "1" * 16, True)
    assert [(s["name"], s["start_time"], s["end_time"]) for s in function["subsegments"]] == [
        ("Initialization", 100.0, 100.3),
        ("Invocation", 100.3, 100.4),
        ("Overhead", 100.4, 100.45),
    ]
    [cause] = function["cause"]["exceptions"]
    assert (cause["type"], cause["message"], cause["stack"][0]["line"]) == ("ValueError", "boom", 3)

    trace = Trace(ROOT, [service, function])
    [failure] = failures(trace)
    assert failure.headline() == "orders-Fn: ValueError: boom" and failure.request_id == "req-1"
    assert failure.stack == ("/var/task/app.py:3 in None",)


def test_an_untraced_invocation_sends_nothing() -> None:
    assert lambda_segments.send(record(tracing=False, end=101.0), "127.0.0.1:9") == 0


# -- the invocation's log, from CloudWatch Logs --------------------------------------


def _events(stream: str, t0: int, lines: list[str]) -> list[dict[str, Any]]:
    return [{"logStreamName": stream, "timestamp": t0 + i, "message": m} for i, m in enumerate(lines)]


def test_slice_finds_one_invocation_in_a_shared_stream() -> None:
    events = _events(
        "s1",
        1000,
        [
            "START RequestId: a Version: $LATEST",
            "first",
            "END RequestId: a",
            "REPORT RequestId: a\tDuration: 1 ms",
            "START RequestId: b Version: $LATEST",
            "second",
            "END RequestId: b",
            "REPORT RequestId: b\tDuration: 2 ms",
        ],
    )
    assert lambda_logs.slice_invocation(events[::-1], "b") == tuple(e["message"] for e in events[4:])
    assert lambda_logs.slice_invocation(events, "missing") == ()


@mock_aws
def test_fetch_reads_filter_log_events_from_moto() -> None:
    logs = boto3.client("logs", region_name="us-east-1")
    group = lambda_logs.log_group("orders-Fn")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="2026/01/01/[$LATEST]abc")
    now = 1_795_437_334_000
    lines = ["START RequestId: req-1 Version: $LATEST", "about to fail", "[ERROR] ValueError: boom"]
    lines += ["END RequestId: req-1", "REPORT RequestId: req-1\tDuration: 3 ms"]
    logs.put_log_events(
        logGroupName=group,
        logStreamName="2026/01/01/[$LATEST]abc",
        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(lines)],
    )
    found = lambda_logs.fetch(logs, "orders-Fn", "req-1", now / 1000, now / 1000 + 1)
    assert found.complete and found.lines == tuple(lines)
    assert found.tail(2) == ["about to fail", "[ERROR] ValueError: boom"]
    missing = lambda_logs.fetch(logs, "other-Fn", "req-1", now / 1000, now / 1000 + 1)
    assert missing.lines[0].startswith("(no log: ResourceNotFoundException")


def test_fetch_waits_for_the_report_line_within_its_deadline() -> None:
    class Logs:
        calls = 0

        def get_paginator(self, name: str) -> Any:
            outer = self

            class Pages:
                def paginate(self, **kw: Any) -> list[dict[str, Any]]:
                    outer.calls += 1
                    lines = ["START RequestId: r Version: 1", "x"] + (
                        ["REPORT RequestId: r"] if outer.calls > 2 else []
                    )
                    return [{"events": _events("s", 0, lines)}]

            return Pages()

    now = [0.0]
    found = lambda_logs.fetch(
        Logs(), "fn", "r", 1.0, 2.0, within=10, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s)
    )
    assert found.complete and now[0] == 1.0


def failed_trace(error_type: str, message: str) -> Trace:
    """The trace of one invocation that raised ``error_type: message`` at /var/task/app.py:3 in h."""
    rec = record(root=ROOT, lambda_id="1" * 16, function_id="f" * 16, end=100.5, invoke=(100.0, 100.4))
    rec.error = {
        "type": error_type,
        "message": message,
        "stack": [{"path": "/var/task/app.py", "line": 3, "label": "h"}],
    }
    return Trace(ROOT, lambda_segments.documents(rec))


def test_the_report_section_names_type_message_stack_and_log_tail() -> None:
    trace = failed_trace("ValueError", "boom")

    class Logs:
        def get_paginator(self, name: str) -> Any:
            class Pages:
                def paginate(self, **kw: Any) -> list[dict[str, Any]]:
                    lines = ["START RequestId: req-1 Version: $LATEST", "about to fail", "END RequestId: req-1"]
                    return [{"events": _events("s", 0, [*lines, "REPORT RequestId: req-1"])}]

            return Pages()

    errors = function_errors.collect(lambda: trace, Logs)
    assert function_errors.section(errors).splitlines() == [
        "orders-Fn: ValueError: boom  (request id req-1)",
        "  at /var/task/app.py:3 in h",
        "  last 2 log lines:",
        "    | START RequestId: req-1 Version: $LATEST",
        "    | about to fail",
    ]


def test_a_consumer_s_failure_in_a_trace_linking_to_the_test_s_follows_naming_that_trace() -> None:
    """An SQS or stream consumer of the test's writes fails in a trace of its own that links to the test's."""
    consumer = "1-6b043316-00000000000000000000c0de"
    rec = record(root=consumer, lambda_id="1" * 16, function_id="f" * 16, end=100.5, invoke=(100.0, 100.4))
    rec.links = [{"trace_id": ROOT, "id": "c000000000000002"}]
    rec.error = {"type": "Runtime.ImportModuleError", "message": "Unable to import module 'app': No module named 'x'"}
    linked = Trace(consumer, lambda_segments.documents(rec))
    own = Trace(ROOT, [])  # the test's own trace: no failed invocation of its own

    errors = function_errors.collect(lambda: own, None, linked=lambda: [linked])
    assert [(e["function"], e["error_type"], e.get("linked_trace")) for e in errors] == [
        ("orders-Fn", "Runtime.ImportModuleError", consumer)
    ]
    assert function_errors.section(errors).splitlines()[:2] == [
        "orders-Fn: Runtime.ImportModuleError: Unable to import module 'app': No module named 'x'  (request id req-1)",
        f"  in trace {consumer}, which links to this test's: a consumer of its writes",
    ]
    assert function_errors.collect(lambda: own, None) == []  # without the linked traces: nothing to say

    def unreadable() -> list[Trace]:
        raise OSError("spool gone")

    mine = failed_trace("ValueError", "boom")  # the test's own error is still told when the linked ones are not
    told = function_errors.collect(lambda: mine, None, linked=unreadable)
    assert [(e["error_type"], e["message"]) for e in told] == [
        ("ValueError", "boom"),
        ("(trace not read)", "OSError: spool gone"),
    ]


@pytest.mark.parametrize(
    ("message", "says"),
    [
        (
            "[Errno 2] No such file or directory: '/opt/bin/ffmpeg'",
            "/opt/bin/ffmpeg is under /opt",
        ),
        ("[Errno 2] No such file or directory: '/opt/python/config.json'", "a layer ships it"),
        ("[Errno 20] Not a directory: '/opt/data/x'", "/opt/data/x is under /opt"),
        ("ENOENT: no such file or directory, open '/opt/nodejs/data.json'", "/opt/nodejs/data.json"),
        ("[Errno 2] No such file or directory: '/var/task/templates/a.html'", "LAMBDA_TASK_ROOT"),
        ("[Errno 2] No such file or directory: '/opt'", "/opt is under /opt"),
    ],
)
def test_a_missing_aws_lambda_path_is_named_as_the_emulators(message: str, says: str) -> None:
    note = function_errors.local_note(message)
    assert note is not None and says in note and "--target aws" in note


@pytest.mark.parametrize(
    "message",
    [
        "[Errno 2] No such file or directory: '/tmp/x'",  # not an AWS path
        "[Errno 2] No such file or directory: '/optional/x'",  # only a prefix of the word
        "[Errno 13] Permission denied: '/opt/x'",  # the path exists: not the missing folder
        "no item for '/opt/x'",  # not a missing file
    ],
)
def test_other_errors_get_no_note(message: str) -> None:
    assert function_errors.local_note(message) is None


def test_the_note_is_given_on_the_embedded_emulator_only_and_shown_in_the_section() -> None:
    trace = failed_trace("FileNotFoundError", "[Errno 2] No such file or directory: '/opt/bin/tool'")

    [remote] = function_errors.collect(lambda: trace, None)
    assert "note" not in remote
    [local] = function_errors.collect(lambda: trace, None, local=True)
    lines = function_errors.section([local]).splitlines()
    assert lines[:2] == [
        "orders-Fn: FileNotFoundError: [Errno 2] No such file or directory: '/opt/bin/tool'  (request id req-1)",
        "  at /var/task/app.py:3 in h",
    ]
    assert lines[2].startswith("  note: /opt/bin/tool is under /opt, where AWS extracts the function's layers")


def test_an_unreadable_trace_is_said_not_raised() -> None:
    def broken() -> Trace:
        raise OSError("collector gone")

    [err] = function_errors.collect(broken, None)
    assert err["error_type"] == "(trace not read)" and "collector gone" in err["message"]


# -- the runtime check after a deploy -----------------------------------------------


class FakeLambda:
    """Lambda with functions and their runtimes; ``unlisted`` ones are missing from ListFunctions' pages."""

    def __init__(self, runtimes: dict[str, str], unlisted: tuple[str, ...] = ()) -> None:
        self.runtimes, self.unlisted = runtimes, unlisted
        self.calls: list[str] = []

    def get_function_configuration(self, FunctionName: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.calls.append(f"GetFunctionConfiguration {FunctionName}")
        return {"Runtime": self.runtimes[FunctionName], "PackageType": "Zip"}

    def list_functions(self, Marker: str = "0") -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.calls.append(f"ListFunctions {Marker}")
        listed = [n for n in sorted(self.runtimes) if n not in self.unlisted]
        page = listed[int(Marker) : int(Marker) + 1]  # one function a page: the pages are followed
        end = int(Marker) + 1 < len(listed)
        functions = [{"FunctionName": n, "Runtime": self.runtimes[n], "PackageType": "Zip"} for n in page]
        return {"Functions": functions, **({"NextMarker": str(int(Marker) + 1)} if end else {})}


INFO: Any = {
    "resources": {"Old": "orders-Old", "New": "orders-New", "Table": "orders-table"},
    "resource_types": {"Old": "AWS::Lambda::Function", "New": "AWS::Lambda::Function", "Table": "AWS::DynamoDB::Table"},
}
TABLE = {
    "python3.12": Resolution("python3.12", "/p", "Python 3.12.1", exact=True),
    "python3.9": Resolution("python3.9", "/v", "Python 3.11.7 (the emulator's): no python3.9 found", exact=False),
    "java21": Resolution("java21", None, "it needs Docker", exact=False, supported=False),
}


def test_warn_names_function_declared_and_used_once() -> None:
    client = FakeLambda({"orders-Old": "python3.9", "orders-New": "python3.12"})
    found = runtime_check.check(client, INFO, "warn", resolver=TABLE.__getitem__)
    assert runtime_check.lines(found) == [
        "runtime mismatch: orders-Old: declares python3.9, runs on Python 3.11.7 (the emulator's): "
        "no python3.9 found (runtime-mismatch = warn)"
    ]


def test_error_refuses_with_what_to_do() -> None:
    client = FakeLambda({"orders-Old": "python3.9", "orders-New": "python3.12"})
    with pytest.raises(RuntimeMismatch) as err:
        runtime_check.check(client, INFO, "error", resolver=TABLE.__getitem__)
    assert "orders-Old: declares python3.9" in err.value.message
    assert "runtime-mismatch = warn" in (err.value.hint or "")


def test_the_functions_are_read_by_one_listing_and_one_it_misses_by_its_own_read() -> None:
    client = FakeLambda({"orders-Old": "python3.9", "orders-New": "python3.12"}, unlisted=("orders-Old",))
    with pytest.raises(RuntimeMismatch, match="orders-Old: declares python3.9"):
        runtime_check.check(client, INFO, "error", resolver=TABLE.__getitem__)
    assert client.calls == ["ListFunctions 0", "GetFunctionConfiguration orders-Old"]
    listed = FakeLambda({"orders-Old": "python3.9", "orders-New": "python3.12", "other-stack-Fn": "java21"})
    found = runtime_check.check(listed, INFO, "warn", resolver=TABLE.__getitem__)  # another stack's java: not ours
    assert [f.function for f in found] == ["orders-Old"]
    assert listed.calls == ["ListFunctions 0", "ListFunctions 1"]  # every page until both were found


def test_the_runtimes_the_templates_name_are_found_in_yaml_and_json(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(
        "Globals:\n  Function:\n    Runtime: python3.12\nResources:\n  L:\n    Properties:\n"
        "      CompatibleRuntimes: [python3.8]\n  F:\n    Properties: {Runtime: 'nodejs20.x'}\n"
    )
    (tmp_path / "cdk.template.json").write_text('{"Properties": {"Runtime": "python3.9", "Handler": "a.h"}}')
    (tmp_path / "app.py").write_text('Runtime: "python3.7"')  # not a template
    files = ["template.yaml", "cdk.template.json", "app.py", "gone.yaml"]
    assert runtime_check.named_runtimes(tmp_path, files) == ["nodejs20.x", "python3.12", "python3.9"]


def test_a_runtime_that_cannot_run_here_is_refused_even_with_warn() -> None:
    client = FakeLambda({"orders-Old": "java21", "orders-New": "python3.12"})
    with pytest.raises(RuntimeMismatch, match="orders-Old: runtime java21 cannot run here"):
        runtime_check.check(client, INFO, "warn", resolver=TABLE.__getitem__)


# -- the logs fixture and expect_log ----------------------------------------------


@mock_aws
def test_function_logs_are_the_invocations_of_the_test_s_trace() -> None:
    from harness.errors import ExpectationFailed
    from harness.function_logs import FunctionLogs

    logs = boto3.client("logs", region_name="us-east-1")
    group = lambda_logs.log_group("orders-Fn")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    now = 1_795_437_334_000
    lines = ["START RequestId: req-1 Version: $LATEST", "stored order o-1", "END RequestId: req-1"]
    lines += ["REPORT RequestId: req-1\tDuration: 3 ms", "START RequestId: other Version: $LATEST", "not ours"]
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(lines)],
    )
    rec = record(root=ROOT, lambda_id="1" * 16, function_id="f" * 16, start=now / 1000, end=now / 1000 + 0.01)
    trace = Trace(ROOT, lambda_segments.documents(rec))
    clock = [0.0]
    found = FunctionLogs(
        lambda: trace,
        lambda: logs,
        within=2,
        clock=lambda: clock[0],
        sleep=lambda s: clock.__setitem__(0, clock[0] + s),
    )
    assert found.lines() == lines[:4]
    assert found.wait_for(r"stored order o-\d", "orders") == ["stored order o-1"]
    assert found.lines("other-Fn") == []
    with pytest.raises(ExpectationFailed, match="no log line matching 'not ours'") as err:
        found.wait_for("not ours")
    assert "| stored order o-1" in err.value.message and clock[0] >= 2


def test_expect_log_is_refused_without_exactly_one_of_contains_and_matches() -> None:
    from harness.scenarios.log_steps import _validate
    from harness.scenarios.schema import SpecError

    with pytest.raises(SpecError, match="exactly one of `contains`"):
        _validate({"function": "Fn"}, 3)
    with pytest.raises(SpecError, match="exactly one of `contains`"):
        _validate({"contains": "a", "matches": "b"}, 3)
    with pytest.raises(SpecError, match="not a regular expression"):
        _validate({"matches": "("}, 3)
    _validate({"contains": "("}, 3)  # text, not a pattern
