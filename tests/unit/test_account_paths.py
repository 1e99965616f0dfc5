"""The aws path's failure handling, with fakes at the botocore boundary.

AWS errors in words (call, identity, permission), trace collection that
never raises and publishes the tests' segments, drift that survives an
unparseable answer, a leak check that waits out eventually consistent
deletes, gc and REVIEW_IN_PROGRESS / nested stacks, and the least-privilege
policy covering every IAM action the harness's own code names.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import botocore.exceptions
import botocore.parsers
import pytest

from harness import aws_errors, drift, inventory, leaks, tags
from harness.traces.aws_source import XRayApiSource
from harness.traces.run import collect

WHO = "arn:aws:sts::123456789012:assumed-role/ci/branchstack-harness (profile ci)"
ROOT = Path(__file__).resolve().parents[2]


def client_error(code: str, op: str, message: str = "no") -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": message}}, op)


# --------------------------------------------------------------------------- messages


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("AccessDeniedException", "was denied to " + WHO),
        ("ExpiredTokenException", "have expired"),
        ("ThrottlingException", "throttled by AWS"),
        ("InvalidClientTokenId", "does not accept the credentials"),
    ],
)
def test_an_aws_error_names_the_call_the_identity_and_the_cause(code: str, words: str) -> None:
    text = aws_errors.explain(client_error(code, "BatchGetTraces"), identity=WHO)
    assert text.startswith("xray:BatchGetTraces ") and words in text


def test_a_denied_call_names_the_permission_to_grant() -> None:
    text = aws_errors.explain(client_error("AccessDenied", "DeleteItem"), identity=WHO)
    assert "needs the permission dynamodb:DeleteItem" in text
    assert aws_errors.permission_for("HeadBucket") == "s3:ListBucket"


# --------------------------------------------------------------------------- traces


class FakeXRay:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.put: list[dict[str, Any]] = []
        self.gets = 0

    def put_trace_segments(self, TraceSegmentDocuments: list[str]) -> dict[str, Any]:  # noqa: N803
        self.put.extend(json.loads(d) for d in TraceSegmentDocuments)
        return {"UnprocessedTraceSegments": []}

    def batch_get_traces(self, TraceIds: list[str], **kw: Any) -> dict[str, Any]:  # noqa: N803
        self.gets += 1
        if self.error is not None:
            raise self.error
        by_id: dict[str, list[dict[str, Any]]] = {}
        for d in self.put:
            by_id.setdefault(d["trace_id"], []).append(d)
        traces = [
            {"Id": t, "Segments": [{"Id": d["id"], "Document": json.dumps(d)} for d in by_id[t]]}
            for t in TraceIds
            if t in by_id
        ]
        return {"Traces": traces, "UnprocessedTraceIds": []}


def record(tid: str, *calls: dict[str, Any]) -> Any:
    client = {
        "name": "t",
        "id": "a" * 16,
        "trace_id": tid,
        "start_time": 1.0,
        "end_time": 2.0,
        "subsegments": list(calls),
    }
    return {"nodeid": f"tests/test_x.py::test_{tid[-4:]}", "trace_id": tid, "outcome": "passed", "client": client}


DDB = {"id": "b" * 16, "name": "DynamoDB", "namespace": "aws", "aws": {"operation": "PutItem"}}
LAMBDA = {"id": "c" * 16, "name": "Lambda", "namespace": "aws", "aws": {"operation": "Invoke"}}


def source(xray: FakeXRay, clock: list[float]) -> XRayApiSource:
    def sleep(s: float) -> None:
        clock[0] += s

    return XRayApiSource(xray, sleep=sleep, clock=lambda: clock[0])


def test_a_denied_batch_get_traces_is_a_problem_named_not_a_traceback(tmp_path: Path) -> None:
    src = source(FakeXRay(client_error("AccessDeniedException", "BatchGetTraces")), [0.0])
    src.identity = WHO
    report = collect([record("1-00000001-000000000000000000000001", DDB)], src, tmp_path, within=60)
    [problem] = report.problems
    assert f"xray:BatchGetTraces was denied to {WHO}" in problem
    assert (tmp_path / "index.json").exists()


@pytest.mark.parametrize(
    "error",
    [
        client_error("ExpiredTokenException", "BatchGetTraces"),
        botocore.exceptions.EndpointConnectionError(endpoint_url="x"),
    ],
)
def test_other_aws_errors_while_collecting_are_problems(tmp_path: Path, error: BaseException) -> None:
    report = collect(
        [record("1-00000001-000000000000000000000002")], source(FakeXRay(error), [0.0]), tmp_path, within=5
    )
    assert len(report.problems) == 1 and "xray:BatchGetTraces" in report.problems[0]


def test_the_tests_segments_are_published_and_a_trace_without_reporting_services_needs_no_wait(
    tmp_path: Path,
) -> None:
    """Nothing sent the tests' segments: a DynamoDB-only test had no trace, and the run waited 60 s for it."""
    xray, clock = FakeXRay(), [0.0]
    tid = "1-00000001-000000000000000000000003"
    report = collect([record(tid, DDB)], source(xray, clock), tmp_path, within=60)
    assert [d["trace_id"] for d in xray.put] == [tid]
    assert report.problems == [] and list(report.traces) == [tid]
    assert clock[0] == 0.0  # no wait at all
    assert len(report.traces[tid].documents) == 1  # ours once, not again as X-Ray's copy


def test_a_trace_that_reached_lambda_still_waits_for_lambdas_segments(tmp_path: Path) -> None:
    xray, clock = FakeXRay(), [0.0]
    tid = "1-00000001-000000000000000000000004"
    report = collect([record(tid, LAMBDA)], source(xray, clock), tmp_path, within=10)
    assert clock[0] >= 10 and "missing" in report.problems[0]


# --------------------------------------------------------------------------- drift


class ParserErrorCfn:
    def detect_stack_drift(self, StackName: str) -> None:  # noqa: N803
        raise botocore.parsers.ResponseParserError("Unable to parse response (syntax error), invalid XML received")


def test_drift_survives_an_answer_botocore_cannot_parse() -> None:
    """ResponseParserError is no BotoCoreError: it ended the run with INTERNALERROR before any test."""
    summary, lines = drift.detect(ParserErrorCfn(), "s", identity=WHO)
    assert summary.startswith(f"drift detection not available: cloudformation:DetectStackDrift failed for {WHO}")
    assert "not an AWS response" in summary and lines == []


# --------------------------------------------------------------------------- leaks


class SlowQueues:
    """A deleted queue that answers ``answers`` more times, as SQS may for up to 60 s."""

    def __init__(self, answers: int) -> None:
        self.answers = answers

    def get_queue_attributes(self, QueueUrl: str) -> dict[str, Any]:  # noqa: N803
        if self.answers > 0:
            self.answers -= 1
            return {"Attributes": {}}
        raise client_error("AWS.SimpleQueueService.NonExistentQueue", "GetQueueAttributes")


def test_a_deleted_queue_that_still_answers_for_a_while_is_not_a_leak() -> None:
    clock = [0.0]

    def sleep(s: float) -> None:
        clock[0] += s

    kw: dict[str, Any] = {"clock": lambda: clock[0], "sleep": sleep}
    queues = SlowQueues(answers=3)
    res = {"Jobs": "https://q/1"}, {"Jobs": "AWS::SQS::Queue"}
    assert leaks.probe(lambda s: queues, *res, settle=75, **kw).leftovers == []
    assert 0 < clock[0] < 75
    # Without the settle window (the emulator), or past it, it is reported.
    assert leaks.probe(lambda s: SlowQueues(answers=3), *res, **kw).leftovers == ["Jobs (AWS::SQS::Queue) https://q/1"]
    forever = SlowQueues(answers=10**6)
    assert leaks.probe(lambda s: forever, *res, settle=75, **kw).leftovers == ["Jobs (AWS::SQS::Queue) https://q/1"]


# --------------------------------------------------------------------------- gc


NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def desc(name: str, status: str = "CREATE_COMPLETE", **extra: Any) -> dict[str, Any]:
    t = tags.StackTags(
        branch="feature/x",
        stage="feature-x",
        commit="abc1234",
        run_id="r",
        created_at=NOW - dt.timedelta(days=3),
        ttl_hours=24,
    )
    return {"StackName": name, "StackId": f"arn:{name}", "StackStatus": status, "Tags": t.as_cfn(), **extra}


def test_gc_deletes_an_expired_review_in_progress_stack() -> None:
    """A deploy killed between creating and executing its change set left REVIEW_IN_PROGRESS: never collected."""
    plan = inventory.plan_gc(
        [inventory.StackRecord.from_description(desc("a", "REVIEW_IN_PROGRESS"))],
        now=NOW,
        protected_stages=("main",),
        remote=None,
    )
    [d] = plan.decisions
    assert d.action == inventory.DELETE and "never executed" in d.reason
    busy = inventory.plan_gc(
        [inventory.StackRecord.from_description(desc("b", "UPDATE_IN_PROGRESS"))],
        now=NOW,
        protected_stages=(),
        remote=None,
    )
    assert busy.decisions[0].action == inventory.SKIP


class Paged:
    def __init__(self, stacks: list[dict[str, Any]]) -> None:
        self.stacks = stacks

    def get_paginator(self, name: str) -> Any:
        stacks = self.stacks

        class P:
            def paginate(self) -> list[dict[str, Any]]:
                return [{"Stacks": stacks}]

        return P()


def test_nested_stacks_are_never_listed_on_their_own() -> None:
    parent = desc("parent")
    child = desc("parent-Child-1", ParentId="arn:parent", RootId="arn:parent")
    assert [r.name for r in inventory.list_stacks(Paged([parent, child]))] == ["parent"]


# --------------------------------------------------------------------------- the policy


def test_the_policy_grants_every_action_the_harness_names_and_the_readme_shows_it() -> None:
    policy = aws_errors.policy()
    actions = set(aws_errors.policy_actions())
    named = set(aws_errors.IRREGULAR.values())
    for path in (ROOT / "harness").rglob("*.py"):
        named.update(re.findall(r'call="([a-z0-9-]+:[A-Za-z]+)"', path.read_text()))
    # sts:AssumeRole is the caller's, granted on the role (--role-arn); the README says so.
    assert named - {"sts:AssumeRole"} <= actions, named - actions
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- iam-policy:start -->")[1].split("<!-- iam-policy:end -->")[0]
    shown = json.loads(block.strip().removeprefix("```json").removesuffix("```"))
    assert shown == policy
