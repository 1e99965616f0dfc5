"""The event steps (EventBridge, SNS, S3, Kinesis, Step Functions) and their listeners, against moto."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from harness.errors import ExpectationFailed, ScenarioError, StepError
from harness.events import sweep
from harness.events.listeners import LISTENER_OF, SUBSCRIPTION, Listener, Listeners
from harness.scenarios.loader import load_text
from harness.scenarios.report import StepResult
from harness.scenarios.runner import run_scenario
from harness.scenarios.runtime import StepRuntime
from harness.traces import propagation

REGION = "us-east-1"
STACK_TAGS = {"harness:managed-by": "branchstack", "harness:stage": "test", "other": "not copied"}


@pytest.fixture
def aws(aws_env: None) -> Iterator[dict[str, str]]:
    """A bus, a topic, a bucket, a stream and a state machine, as a stack would have them."""
    with mock_aws():
        events = boto3.client("events", region_name=REGION)
        events.create_event_bus(Name="orders-test-Bus")
        topic = boto3.client("sns", region_name=REGION).create_topic(Name="orders-test-Topic")["TopicArn"]
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="orders-test-bucket")
        boto3.client("kinesis", region_name=REGION).create_stream(StreamName="orders-test-stream", ShardCount=1)
        machine = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
            name="orders-test-Flow",
            definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
            roleArn="arn:aws:iam::123456789012:role/flow",
        )["stateMachineArn"]
        yield {
            "Bus": "orders-test-Bus",
            "Topic": topic,
            "Bucket": "orders-test-bucket",
            "Stream": "orders-test-stream",
            "Flow": machine,
        }


@pytest.fixture
def runtime(aws: dict[str, str], make_runtime: Any) -> Iterator[StepRuntime]:
    rt: StepRuntime = make_runtime(resources=aws)
    rt.listeners = Listeners(
        rt.stack.client, stack="orders-test", tags=STACK_TAGS, owner="run1-gw0", run_id="run1", clock=rt.clock
    )
    yield rt
    rt.listeners.close()


def run(steps: str, runtime: StepRuntime) -> list[StepResult]:
    body = "".join("      " + line + "\n" for line in steps.strip().splitlines())
    [scenario] = load_text("scenarios:\n  - name: s\n    steps:\n" + body, "s.yaml").scenarios
    return run_scenario(scenario, runtime)


PUT = (
    "- put_events: {bus: Bus, entries: [{source: orders, detail_type: OrderAudited, "
    "detail: {order_id: '{{ unique }}', total: 7}}]}\n"
)


def test_expect_event_sees_a_put_event_matched_by_content(runtime: StepRuntime) -> None:
    results = run(
        PUT + "- expect_event: {bus: Bus, pattern: {detail-type: [OrderAudited], "
        "detail: {order_id: ['{{ unique }}'], total: [{numeric: ['>', 5]}]}}, within: 5}\n"
        "  expect: {count: 1, event: {source: orders, detail: {total: 7}}}\n"
        "  save: {id: event.id}\n",
        runtime,
    )
    assert [r.status for r in results] == ["passed", "passed"]


def test_the_listener_exists_before_the_first_step(runtime: StepRuntime) -> None:
    # The rule is made before put_events runs, so the event is not missed.
    run(PUT + "- expect_event: {bus: Bus, pattern: {source: [orders]}, within: 1}", runtime)
    assert runtime.listeners is not None
    [listener] = runtime.listeners.listeners
    assert listener.rule and listener.queue_url


def test_count_zero_fails_with_the_event_that_matched(runtime: StepRuntime) -> None:
    with pytest.raises(ExpectationFailed) as caught:
        run(PUT + "- expect_event: {bus: Bus, pattern: {detail-type: [OrderAudited]}, count: 0, within: 1}", runtime)
    assert "expected no match of the pattern on event bus orders-test-Bus within 1s, 1 matched" in str(caught.value)


def test_count_zero_passes_when_nothing_matches_in_the_window(runtime: StepRuntime) -> None:
    results = run(
        PUT + "- expect_event: {bus: Bus, pattern: {detail-type: [OrderRejected]}, count: 0, within: 2}", runtime
    )
    assert results[-1].status == "passed"


def test_a_miss_shows_what_arrived_instead_and_why(runtime: StepRuntime) -> None:
    with pytest.raises(ExpectationFailed) as caught:
        run(PUT + "- expect_event: {bus: Bus, pattern: {detail: {total: [{numeric: ['>', 100]}]}}, within: 1}", runtime)
    text = str(caught.value)
    assert "expected at least one match" in text and "0 matched" in text
    assert "1 mismatch:\n  - count: expected at least one match, observed 0" in text
    assert "1 other event(s) arrived during the test and did not match" in text
    assert 'because detail.total: 7 does not match [{"numeric": [">", 100]}]' in text


def test_a_bad_pattern_is_refused_at_collection_naming_the_key() -> None:
    with pytest.raises(ScenarioError) as caught:
        load_text(
            "scenarios:\n  - name: s\n    steps:\n"
            "      - expect_event: {bus: B, pattern: {detail: {total: [{numerc: ['>', 1]}]}}}\n",
            "s.yaml",
        )
    assert "s.yaml:4: pattern.detail.total[0].numerc: unknown operator 'numerc'" in str(caught.value)
    assert "did you mean 'numeric'?" in str(caught.value)


def test_publish_and_expect_message(runtime: StepRuntime) -> None:
    results = run(
        "- publish: {topic: Topic, message: {order_id: '{{ unique }}'}, subject: audited, attributes: {kind: a}}\n"
        "- expect_message: {topic: Topic, pattern: {message: {order_id: ['{{ unique }}']}}, within: 5}\n"
        "  expect: {message: {subject: audited, attributes: {kind: a}}}",
        runtime,
    )
    assert [r.status for r in results] == ["passed", "passed"]


def test_put_object_then_expect_object_with_content(runtime: StepRuntime) -> None:
    results = run(
        "- put_object: {bucket: Bucket, key: 'in/{{ unique }}.json', json: {order_id: x, qty: 2}}\n"
        "- expect_object: {bucket: Bucket, key: 'in/{{ unique }}.json', within: 2}\n"
        "  expect: {body: {qty: 2}, content_type: application/json}",
        runtime,
    )
    assert [r.status for r in results] == ["passed", "passed"]


def test_expect_object_fails_with_the_content_seen(runtime: StepRuntime) -> None:
    with pytest.raises(ExpectationFailed) as caught:
        run(
            "- put_object: {bucket: Bucket, key: k.txt, body: hello}\n"
            "- expect_object: {bucket: Bucket, key: k.txt, within: 1}\n"
            "  expect: {body: goodbye}",
            runtime,
        )
    assert "hello" in str(caught.value)


def test_put_record(runtime: StepRuntime) -> None:
    [result] = run("- put_record: {stream: Stream, data: {order_id: x}}\n  expect: {shard_id: !re shardId}", runtime)
    assert result.status == "passed"


def test_expect_execution_finds_the_execution_by_its_input(runtime: StepRuntime, aws: dict[str, str]) -> None:
    sfn = runtime.stack.client("stepfunctions")
    sfn.start_execution(stateMachineArn=aws["Flow"], input=json.dumps({"order_id": "other"}))
    mine = sfn.start_execution(stateMachineArn=aws["Flow"], input=json.dumps({"order_id": runtime.unique}))
    real_sleep = runtime.sleep

    def sleep(seconds: float) -> None:  # moto's executions run until stopped: it ends while the step polls
        sfn.stop_execution(executionArn=mine["executionArn"], error="Stopped", cause="by the test")
        real_sleep(seconds)

    runtime.sleep = sleep
    [result] = run(
        "- expect_execution: {state_machine: Flow, input: {order_id: ['{{ unique }}']}, within: 5}\n"
        "  expect: {status: ABORTED, input: {order_id: '{{ unique }}'}}",
        runtime,
    )
    assert result.status == "passed"


def test_steps_without_listeners_say_why(make_runtime: Any, aws: dict[str, str]) -> None:
    with pytest.raises(StepError, match="event listeners, which exist only in a session"):
        run("- expect_event: {bus: Bus, pattern: {source: [x]}}", make_runtime(resources=aws))


# -- listeners: tags, policy, removal, sweep --------------------------------------


def test_listener_resources_are_tagged_and_scoped_to_their_source(runtime: StepRuntime, aws: dict[str, str]) -> None:
    assert runtime.listeners is not None
    bus = runtime.listeners.bus("orders-test-Bus")
    topic = runtime.listeners.topic(aws["Topic"])
    sqs = runtime.stack.client("sqs")
    tags = sqs.list_queue_tags(QueueUrl=bus.queue_url)["Tags"]
    assert tags[LISTENER_OF] == "orders-test" and tags["harness:stage"] == "test" and "other" not in tags
    policy = json.loads(
        sqs.get_queue_attributes(QueueUrl=bus.queue_url, AttributeNames=["Policy"])["Attributes"]["Policy"]
    )
    [statement] = policy["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"].endswith(f":rule/orders-test-Bus/{bus.rule}")
    assert sqs.list_queue_tags(QueueUrl=topic.queue_url)["Tags"][SUBSCRIPTION] == topic.subscription


def test_close_removes_everything_and_a_sweep_finds_nothing(runtime: StepRuntime, aws: dict[str, str]) -> None:
    assert runtime.listeners is not None
    runtime.listeners.bus("orders-test-Bus")
    runtime.listeners.topic(aws["Topic"])
    assert runtime.listeners.close() == []
    client_for = runtime.stack.client
    assert client_for("sqs").list_queues().get("QueueUrls", []) == []
    assert client_for("events").list_rules(EventBusName="orders-test-Bus")["Rules"] == []
    assert client_for("sns").list_subscriptions()["Subscriptions"] == []
    assert sweep.sweep(client_for, ["orders-test"]) == ([], [])


def test_a_sweep_removes_what_a_killed_process_left(runtime: StepRuntime, aws: dict[str, str]) -> None:
    assert runtime.listeners is not None
    runtime.listeners.bus("orders-test-Bus")
    runtime.listeners.topic(aws["Topic"])
    client_for = runtime.stack.client  # the process "dies": close() is never called
    found, problems = sweep.sweep(client_for, ["orders-test"])
    assert problems == []
    assert [f.kind for f in found].count("queue") == 2  # and the rule, found by the tagging API or its queue
    assert client_for("sqs").list_queues().get("QueueUrls", []) == []
    assert client_for("events").list_rules(EventBusName="orders-test-Bus")["Rules"] == []
    assert client_for("sns").list_subscriptions()["Subscriptions"] == []


class Removals:
    """A client for every service whose first call of each listener's removal waits for the other listener's."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2)
        self.calls: list[tuple[str, str, bool]] = []

    def _call(self, what: str, **kw: Any) -> dict[str, Any]:
        if what in ("remove_targets", "unsubscribe"):  # each listener's first call
            self.barrier.wait(timeout=30)  # hang guard: listeners removed one after the other break it
        self.calls.append((what, threading.current_thread().name, propagation._suppressed()))
        return {}

    def __getattr__(self, what: str) -> Any:
        return lambda **kw: self._call(what, **kw)


def test_close_removes_listeners_side_by_side_each_in_order_and_untraced() -> None:
    client = Removals()
    made: list[str] = []

    def client_for(service: str) -> Removals:
        made.append(f"{service} on {threading.current_thread().name}")
        return client

    listeners = Listeners(client_for, stack="s", tags={}, owner="o", run_id="r")
    listeners._by_source[("bus", "b")] = Listener("bus", "b", "arn:b", "https://q/1", rule="r1")
    listeners._by_source[("topic", "t")] = Listener("topic", "t", "arn:t", "https://q/2", subscription="sub")
    assert listeners.close() == [] and listeners.listeners == []
    assert made == ["events on MainThread", "sqs on MainThread", "sns on MainThread"]
    assert all(thread != "MainThread" and untraced for _what, thread, untraced in client.calls)
    by_thread: dict[str, list[str]] = {}
    for what, thread, _untraced in client.calls:
        by_thread.setdefault(thread, []).append(what)
    assert sorted(by_thread.values()) == [
        ["remove_targets", "delete_rule", "delete_queue"],
        ["unsubscribe", "delete_queue"],
    ]


class TaggingPages:
    """The tagging API's GetResources in two pages, and no paginator: find() follows the token itself."""

    def __init__(self) -> None:
        self.asked: list[dict[str, object]] = []

    def get_resources(self, **kw: object) -> dict[str, object]:
        self.asked.append(kw)
        arn = (
            "arn:aws:sqs:us-east-1:123456789012:q-1" if len(self.asked) == 1 else "arn:aws:events:us-east-1:1:rule/b/r"
        )
        return {
            "ResourceTagMappingList": [{"ResourceARN": arn, "Tags": [{"Key": LISTENER_OF, "Value": "s"}]}],
            "PaginationToken": "next" if len(self.asked) == 1 else "",
        }


def test_find_reads_every_page_of_the_tagging_api() -> None:
    api = TaggingPages()
    found = sweep.find(lambda service: api, ["s"])
    assert [(f.kind, f.stack) for f in found] == [("rule", "s"), ("queue", "s")]  # rules first
    filters = {"TagFilters": [{"Key": LISTENER_OF, "Values": ["s"]}], "ResourceTypeFilters": ["events:rule", "sqs"]}
    assert api.asked == [filters, {**filters, "PaginationToken": "next"}]


def test_gc_takes_listeners_of_stacks_gone_or_held_by_no_run(runtime: StepRuntime) -> None:
    assert runtime.listeners is not None
    runtime.listeners.bus("orders-test-Bus")
    client_for = runtime.stack.client
    held = {"orders-test": True}
    assert sweep.collect(client_for, held, yes=True) == ([], [])  # a run uses it: left alone
    found, problems = sweep.collect(client_for, {"orders-test": False}, yes=False)  # dry run
    assert found and problems == [] and client_for("sqs").list_queues().get("QueueUrls")
    found, problems = sweep.collect(client_for, {}, yes=True)  # the stack is gone
    assert found and problems == [] and not client_for("sqs").list_queues().get("QueueUrls")
    assert client_for("events").list_rules(EventBusName="orders-test-Bus")["Rules"] == []


def test_an_event_an_earlier_test_received_is_not_this_tests(
    runtime: StepRuntime, make_runtime: Any, aws: dict[str, str]
) -> None:
    # The listener is the process's: the first test drains its own event; the next test, whose
    # pattern does not carry its unique id, must not take that event for its own.
    run(PUT + "- expect_event: {bus: Bus, pattern: {source: [orders]}, count: 1, within: 5}", runtime)
    runtime.sleep(0.5)
    later: StepRuntime = make_runtime(resources=aws)
    later.listeners = runtime.listeners
    results = run("- expect_event: {bus: Bus, pattern: {source: [orders]}, count: 0, within: 1}", later)
    assert results[-1].status == "passed"


def test_a_topic_named_by_its_name_is_found_and_an_unknown_one_is_named(runtime: StepRuntime) -> None:
    results = run(
        "- publish: {topic: orders-test-Topic, message: {order_id: '{{ unique }}'}}\n"
        "- expect_message: {topic: orders-test-Topic, pattern: {message: {order_id: ['{{ unique }}']}}, within: 5}",
        runtime,
    )
    assert [r.status for r in results] == ["passed", "passed"]
    with pytest.raises(StepError, match="no SNS topic named 'no-such-topic'"):
        run("- publish: {topic: no-such-topic, message: hi}", runtime)
