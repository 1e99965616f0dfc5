"""Each event source propagates the trace as AWS documents it, neither more nor less.

One emulator (started as the harness starts it, with its adaptations and a
collector) runs a traced consumer function (``Tracing: Active``, aws-xray-sdk)
that writes the marker it finds in its event to a table. For each source, a
test sends an event with an instrumented client under its own trace, waits
for the consumer's write, then looks where the consumer's segments went:

* into the test's trace, under the call that published (SNS Publish, S3
  PutObject, EventBridge PutEvents): AWS passes the trace to these targets;
* into a trace of their own, which the run reports as unattributed (SQS,
  Kinesis, DynamoDB streams): AWS starts a new trace for polled sources
  (linked to the producer's for SQS).

The rows of docs/fidelity.md "Trace propagation" name these tests.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
import zipfile
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from e2e_support import REGION, Emulator, zip_packages
from test_traces_emulator import collector, emulator  # noqa: F401 - module fixtures

from harness.traces.collector import Collector
from harness.traces.local_source import LocalSource
from harness.traces.model import Trace
from harness.traces.propagation import CurrentContext, TraceContext, instrument

pytestmark = pytest.mark.e2e

TABLE = "propagation-marks"
FUNCTION = "propagation-consumer"
WITHIN = 30.0  # hang guard for the consumer's write, never a timing assertion

CONSUMER_CODE = """
import base64
import json
import os
import re

import boto3
from aws_xray_sdk.core import patch_all

patch_all()
TABLE = boto3.resource("dynamodb").Table(os.environ["TABLE"])
MARK = re.compile(r"mark-[0-9a-f]{12}")


def handler(event, context):
    text = json.dumps(event)
    for record in event.get("Records") or ():
        data = (record.get("kinesis") or {}).get("data")
        if data:  # Kinesis records carry their data base64-encoded
            text += base64.b64decode(data).decode()
    for mark in sorted(set(MARK.findall(text))):
        TABLE.put_item(Item={"pk": mark})
    return {"marks": MARK.findall(text)}
"""


@pytest.fixture(scope="module")
def consumer(emulator: Emulator) -> str:  # noqa: F811 - the imported module fixture
    """The marks table and the traced consumer function (its role may read every source)."""
    emulator.client("dynamodb").create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    iam = emulator.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName="propagation-consumer", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["dynamodb:*", "sqs:*", "kinesis:*"], "Resource": "*"}],
    }
    iam.put_role_policy(RoleName="propagation-consumer", PolicyName="all", PolicyDocument=json.dumps(policy))
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("app.py", CONSUMER_CODE)
        zip_packages(z, "aws_xray_sdk", "wrapt")  # the function's own SDK: the runtime does not lend the harness's
    lam = emulator.client("lambda")
    arn = lam.create_function(
        FunctionName=FUNCTION,
        Runtime=f"python3.{sys.version_info.minor}",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": code.getvalue()},
        TracingConfig={"Mode": "Active"},
        Environment={"Variables": {"TABLE": TABLE}},
        Timeout=30,
    )["FunctionArn"]
    lam.get_waiter("function_active_v2").wait(FunctionName=FUNCTION, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    return str(arn)


def allow(emu: Emulator, principal: str, sid: str) -> None:
    emu.client("lambda").add_permission(
        FunctionName=FUNCTION, StatementId=sid, Action="lambda:InvokeFunction", Principal=principal
    )


class Sent:
    """One test's send: its trace context, its traced session, and where the consumer's write went."""

    def __init__(self, emulator: Emulator, collector: Collector, name: str) -> None:  # noqa: F811
        self.emulator = emulator
        self.collector = collector
        self.mark = "mark-" + os.urandom(6).hex()
        self.ctx = TraceContext(name)
        self.current = CurrentContext()
        self.current.set(self.ctx)
        self.before = set(collector.trace_ids())
        self.started = time.time()
        session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)  # noqa: S106
        instrument(session, self.current)
        self.session = session

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.emulator.url)

    def consumed(self, ready: Callable[[Trace, dict[str, Trace]], bool]) -> tuple[Trace, dict[str, Trace]]:
        """Once the consumer wrote the mark and its segments are ``ready``: the test's trace, and the traces
        started since that no test owns.

        Lambda sends its segments when the invocation ends, after the write, and an earlier test's
        late segments may arrive meanwhile: so the wait is for the shape the test asserts, not for
        any function segment. At the deadline the test asserts on what arrived (and says what it was).
        """
        table = self.emulator.client("dynamodb")
        deadline = time.monotonic() + WITHIN
        while "Item" not in table.get_item(TableName=TABLE, Key={"pk": {"S": self.mark}}, ConsistentRead=True):
            if time.monotonic() > deadline:
                pytest.fail(f"hang guard: the consumer did not write {self.mark} within {WITHIN:g}s")
            time.sleep(0.1)
        self.ctx.finish()
        while True:
            mine, others = self._read()
            if ready(mine, others) or time.monotonic() > deadline:
                return mine, others
            time.sleep(0.1)

    def _read(self) -> tuple[Trace, dict[str, Trace]]:
        source = LocalSource(collector=self.collector)
        source.flush()
        mine = source.fetch([self.ctx.trace_id], client_documents={self.ctx.trace_id: [self.ctx.segment_document()]})
        others = source.unattributed(self.before | {self.ctx.trace_id})
        return mine[self.ctx.trace_id], others


def consumer_write(trace: Trace, since: float | None = None) -> list[Any]:
    """The consumer's writes in ``trace`` (those made after ``since``: an earlier test's late segments are not this one's)."""
    writes = trace.calls("DynamoDB", "PutItem", resource=TABLE)
    return [c for c in writes if since is None or (c.start is not None and c.start >= since)]


def landed(trace: Trace, since: float | None = None) -> bool:
    """The consumer's write has arrived with its function segment under Lambda's service segment."""
    for write in consumer_write(trace, since):
        function = write.parent
        if function is not None and function.kind == "function" and function.parent is not None:
            if function.parent.origin == "AWS::Lambda":
                return True
    return False


def assert_continued(sent: Sent, service: str, operation: str) -> None:
    """The consumer's function and write are in the test's trace, under the publishing call."""
    trace, others = sent.consumed(lambda mine, _: landed(mine))
    [write] = consumer_write(trace)
    function = write.parent
    assert function is not None and function.kind == "function" and function.name == FUNCTION, trace.render()
    lambda_service = function.parent  # Lambda's own service segment, then the call that invoked it
    assert lambda_service is not None and lambda_service.origin == "AWS::Lambda", trace.render()
    assert lambda_service.parent is not None and lambda_service.parent.matches(service, operation), trace.render()
    assert not [t for t in others.values() if consumer_write(t, sent.started)], (
        "the consumer also wrote in a trace of its own"
    )


def assert_new_trace(sent: Sent) -> None:
    """The consumer's segments are in a trace of their own (the run reports it as unattributed)."""
    trace, others = sent.consumed(lambda _, others: any(landed(t, sent.started) for t in others.values()))
    assert consumer_write(trace) == [], trace.render()
    stray = [t for t in others.values() if consumer_write(t, sent.started)]
    assert stray, f"the consumer's write arrived in no trace at all: {sorted(others)}"
    function = consumer_write(stray[0], sent.started)[0].parent
    assert function is not None and function.kind == "function" and function.name == FUNCTION


@pytest.fixture
def sent(emulator: Emulator, collector: Collector, consumer: str, request: pytest.FixtureRequest) -> Sent:  # noqa: F811
    return Sent(emulator, collector, request.node.nodeid)


def test_sns_passes_the_trace_to_a_lambda_subscriber(sent: Sent, consumer: str) -> None:
    sns = sent.client("sns")
    topic = sns.create_topic(Name="propagation-topic")["TopicArn"]
    allow(sent.emulator, "sns.amazonaws.com", "sns")
    sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=consumer)
    sns.publish(TopicArn=topic, Message=json.dumps({"mark": sent.mark}))
    assert_continued(sent, "SNS", "Publish")


def test_s3_notifications_pass_the_trace_to_lambda(sent: Sent, consumer: str) -> None:
    s3 = sent.client("s3")
    s3.create_bucket(Bucket="propagation-bucket")
    allow(sent.emulator, "s3.amazonaws.com", "s3")
    s3.put_bucket_notification_configuration(
        Bucket="propagation-bucket",
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [{"LambdaFunctionArn": consumer, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    s3.put_object(Bucket="propagation-bucket", Key=f"{sent.mark}.json", Body=b"{}")
    assert_continued(sent, "S3", "PutObject")


def test_sqs_consumers_start_a_trace_of_their_own(sent: Sent, consumer: str) -> None:
    sqs = sent.client("sqs")
    url = sqs.create_queue(QueueName="propagation-queue")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sent.client("lambda").create_event_source_mapping(EventSourceArn=arn, FunctionName=FUNCTION, BatchSize=1)
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"mark": sent.mark}))
    assert_new_trace(sent)


def test_kinesis_consumers_start_a_trace_of_their_own(sent: Sent, consumer: str) -> None:
    kinesis = sent.client("kinesis")
    kinesis.create_stream(StreamName="propagation-stream", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="propagation-stream", WaiterConfig={"Delay": 0.2})
    arn = kinesis.describe_stream(StreamName="propagation-stream")["StreamDescription"]["StreamARN"]
    sent.client("lambda").create_event_source_mapping(
        EventSourceArn=arn, FunctionName=FUNCTION, StartingPosition="TRIM_HORIZON", BatchSize=1
    )
    kinesis.put_record(StreamName="propagation-stream", Data=json.dumps({"mark": sent.mark}).encode(), PartitionKey="p")
    assert_new_trace(sent)


def test_dynamodb_stream_consumers_start_a_trace_of_their_own(sent: Sent, consumer: str) -> None:
    ddb = sent.client("dynamodb")
    arn = ddb.create_table(
        TableName="propagation-source",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )["TableDescription"]["LatestStreamArn"]
    sent.client("lambda").create_event_source_mapping(
        EventSourceArn=arn, FunctionName=FUNCTION, StartingPosition="TRIM_HORIZON", BatchSize=1
    )
    ddb.put_item(TableName="propagation-source", Item={"pk": {"S": sent.mark}})
    assert_new_trace(sent)


def test_eventbridge_passes_the_trace_to_a_lambda_target(sent: Sent, consumer: str) -> None:
    events = sent.client("events")
    events.put_rule(Name="propagation-rule", EventPattern=json.dumps({"source": ["propagation.test"]}))
    allow(sent.emulator, "events.amazonaws.com", "events")
    events.put_targets(Rule="propagation-rule", Targets=[{"Id": "consumer", "Arn": consumer}])
    events.put_events(
        Entries=[{"Source": "propagation.test", "DetailType": "mark", "Detail": json.dumps({"mark": sent.mark})}]
    )
    assert_continued(sent, "EventBridge", "PutEvents")
