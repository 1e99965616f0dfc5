"""Listeners the harness attaches to a branch stack, and removes again.

A test that waits for an EventBridge event or an SNS message needs a place
where those arrive. The app has none to offer (and must not be changed), so
the harness adds its own, per process and per source, on first use:

* an event bus: a rule on that bus matching every event of the account,
  targeting a queue the harness creates;
* an SNS topic: a queue subscribed to the topic.

The queue's policy lets only that rule (or topic) send to it. Every resource
is tagged with the stack's ``harness:*`` tags plus :data:`LISTENER_OF` (the
stack) and :data:`LISTENER_RUN` (the run), and a queue subscribed to a topic
carries its subscription's ARN in :data:`SUBSCRIPTION` (a queue of a rule, the
rule's in :data:`RULE`): so the teardown of the
run and ``harness gc`` find them by tags (:mod:`harness.events.sweep`) when
the process that made them could not remove them.

Events are judged by the harness's own matcher (:mod:`harness.events.pattern`),
on every target: what arrives is every event of the bus, and a test's
pattern picks its own (patterns carry ``{{ unique }}``). A rule per bus,
made before the scenario's first step, misses no event the steps cause.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from harness.procs import block_main_signals
from harness.traces.propagation import untraced

ClientFor = Callable[[str], Any]

LISTENER_OF = "harness:listener-of"
LISTENER_RUN = "harness:listener-run"
SUBSCRIPTION = "harness:subscription"
RULE = "harness:rule"
TARGET_ID = "harness-listener"
#: Kept per listener; older arrivals are dropped (a long session's memory stays bounded).
MAX_ARRIVALS = 5000
_TAG_VALUE_LIMIT = 256
#: Error codes that say the resource is not there (any more).
GONE = frozenset(
    {"ResourceNotFoundException", "NotFound", "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"}
)


@dataclass(frozen=True)
class Arrival:
    """One event (EventBridge) or message (SNS, as ``{message, subject, attributes, ...}``) that arrived."""

    body: Any
    at: float


@dataclass
class Listener:
    """One source (a bus or a topic) and the queue the harness made for it."""

    kind: str  # "bus" | "topic"
    source: str  # the bus name or the topic ARN
    source_arn: str
    queue_url: str
    rule: str | None = None
    subscription: str | None = None
    arrivals: list[Arrival] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"event bus {self.source}" if self.kind == "bus" else f"topic {self.source_arn}"


def listener_name(stack: str, owner: str, source: str) -> str:
    """A name valid for a queue and a rule (64 characters at most), unique per stack, process and source."""
    digest = hashlib.sha256(f"{stack}|{owner}|{source}".encode()).hexdigest()[:10]
    return f"{stack[:40].rstrip('-')}-listen-{digest}"


def arn_account(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 else ""


class Listeners:
    """One process's listeners on one stack: made on first use, removed by :meth:`close`.

    ``tags`` are the stack's tags (its ``harness:*`` ones are copied);
    ``owner`` names the process (run id and worker), ``run_id`` the run.
    """

    def __init__(
        self,
        client_for: ClientFor,
        *,
        stack: str,
        tags: Mapping[str, str],
        owner: str,
        run_id: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client_for = client_for
        self.stack = stack
        self.owner = owner
        self.clock = clock
        self.tags = {k: v for k, v in tags.items() if k.startswith("harness:")}
        self.tags.update({LISTENER_OF: stack, LISTENER_RUN: run_id})
        self._by_source: dict[tuple[str, str], Listener] = {}

    @property
    def listeners(self) -> list[Listener]:
        return list(self._by_source.values())

    # -- making them -------------------------------------------------------------
    def bus(self, bus: str) -> Listener:
        """The listener of an event bus (a name or an ARN), made if needed."""
        name = bus.split("event-bus/", 1)[1] if bus.startswith("arn:") else bus
        found = self._by_source.get(("bus", name))
        if found is None:
            with untraced():
                found = self._make_bus_listener(name)
            self._by_source[("bus", name)] = found
        return found

    def topic(self, topic_arn: str) -> Listener:
        """The listener of an SNS topic (its ARN), made if needed."""
        found = self._by_source.get(("topic", topic_arn))
        if found is None:
            with untraced():
                found = self._make_topic_listener(topic_arn)
            self._by_source[("topic", topic_arn)] = found
        return found

    def _make_bus_listener(self, bus: str) -> Listener:
        events = self.client_for("events")
        bus_arn = events.describe_event_bus(Name=bus)["Arn"]
        name = listener_name(self.stack, self.owner, bus_arn)
        rule_arn = events.put_rule(
            Name=name,
            EventBusName=bus,
            EventPattern=json.dumps({"account": [arn_account(bus_arn)]}),
            State="ENABLED",
            Description=f"harness listener of stack {self.stack}: every event of the bus, to a queue",
            Tags=[{"Key": k, "Value": v} for k, v in self.tags.items()],
        )["RuleArn"]
        listener = Listener("bus", bus, bus_arn, "", rule=name)
        self._by_source[("bus", bus)] = listener  # known before the queue exists: close() removes what was made
        queue_url, queue_arn = self._make_queue(name, "events.amazonaws.com", rule_arn, {RULE: rule_arn})
        listener.queue_url = queue_url
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": TARGET_ID, "Arn": queue_arn}])
        return listener

    def _make_topic_listener(self, topic_arn: str) -> Listener:
        name = listener_name(self.stack, self.owner, topic_arn)
        listener = Listener("topic", topic_arn, topic_arn, "")
        self._by_source[("topic", topic_arn)] = listener
        listener.queue_url, queue_arn = self._make_queue(name, "sns.amazonaws.com", topic_arn, {})
        sns = self.client_for("sns")
        listener.subscription = sns.subscribe(
            TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, ReturnSubscriptionArn=True
        )["SubscriptionArn"]
        if len(listener.subscription) <= _TAG_VALUE_LIMIT:  # so a sweep can unsubscribe it
            self.client_for("sqs").tag_queue(QueueUrl=listener.queue_url, Tags={SUBSCRIPTION: listener.subscription})
        return listener

    def _make_queue(self, name: str, service: str, source_arn: str, extra: dict[str, str]) -> tuple[str, str]:
        """A tagged queue that only ``source_arn`` (through ``service``) may send to."""
        sqs = self.client_for("sqs")
        url = sqs.create_queue(QueueName=name, tags={**self.tags, **extra})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sqs.set_queue_attributes(
            QueueUrl=url, Attributes={"Policy": json.dumps(queue_policy(arn, service, source_arn))}
        )
        return url, arn

    # -- reading -----------------------------------------------------------------
    def drain(self, listener: Listener) -> list[Arrival]:
        """Receive what is waiting on the listener's queue (and delete it); returns the new arrivals."""
        sqs = self.client_for("sqs")
        new: list[Arrival] = []
        with untraced():
            for _ in range(10):  # at most 100 messages a call; the next poll takes the rest
                got = sqs.receive_message(QueueUrl=listener.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
                messages = got.get("Messages") or []
                if not messages:
                    break
                now = self.clock()
                new += [Arrival(_decoded(listener.kind, m.get("Body", "")), now) for m in messages]
                sqs.delete_message_batch(
                    QueueUrl=listener.queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
                )
        listener.arrivals += new
        del listener.arrivals[:-MAX_ARRIVALS]
        return new

    # -- removing them -----------------------------------------------------------
    def close(self) -> list[str]:
        """Remove every listener made; returns what could not be removed (empty when all went).

        Each listener's resources go in order (a rule's target, the rule, a
        subscription, the queue); several listeners are removed side by side.
        """
        listeners = list(self._by_source.values())
        if len(listeners) < 2:
            problems = [p for listener in listeners for p in _remove_untraced(self.client_for, listener)]
        else:
            # The clients are made here, on the caller (making them is not thread-safe); calls on them are.
            made = {s: self.client_for(s) for s in dict.fromkeys(s for x in listeners for s in _services(x))}
            with ThreadPoolExecutor(
                max_workers=len(listeners), thread_name_prefix="harness-listener-close", initializer=block_main_signals
            ) as pool:
                removed = list(pool.map(lambda listener: _remove_untraced(made.__getitem__, listener), listeners))
            problems = [p for found in removed for p in found]
        self._by_source.clear()
        return problems


def _services(listener: Listener) -> list[str]:
    """The clients removing ``listener`` calls."""
    return [
        s
        for s, used in (("events", listener.rule), ("sns", listener.subscription), ("sqs", listener.queue_url))
        if used
    ]


def _remove_untraced(client_for: ClientFor, listener: Listener) -> list[str]:
    with untraced():  # per thread
        return remove_listener(client_for, listener)


def remove_listener(client_for: ClientFor, listener: Listener) -> list[str]:
    problems: list[str] = []
    if listener.rule:
        bus = listener.source
        problems += quietly(
            f"rule {listener.rule}",
            lambda: client_for("events").remove_targets(Rule=listener.rule, EventBusName=bus, Ids=[TARGET_ID]),
            lambda: client_for("events").delete_rule(Name=listener.rule, EventBusName=bus),
        )
    if listener.subscription:
        sub = listener.subscription
        problems += quietly(f"subscription {sub}", lambda: client_for("sns").unsubscribe(SubscriptionArn=sub))
    if listener.queue_url:
        url = listener.queue_url
        problems += quietly(f"queue {url}", lambda: client_for("sqs").delete_queue(QueueUrl=url))
    return problems


def quietly(what: str, *calls: Callable[[], Any]) -> list[str]:
    """Run the calls in order; a resource already gone is fine, any other error is reported."""
    from botocore.exceptions import BotoCoreError, ClientError

    for call in calls:
        try:
            call()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in GONE:
                continue
            return [f"{what}: {code}: {exc.response.get('Error', {}).get('Message', '')}"]
        except BotoCoreError as exc:
            return [f"{what}: {exc}"]
    return []


def queue_policy(queue_arn: str, service: str, source_arn: str) -> dict[str, Any]:
    """Send rights on the queue for one rule or topic only (``aws:SourceArn``)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "HarnessListener",
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": source_arn}},
            }
        ],
    }


def _decoded(kind: str, body: str) -> Any:
    try:
        value = json.loads(body)
    except ValueError:
        return body
    return sns_message(value) if kind == "topic" and isinstance(value, dict) else value


def sns_message(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """An SNS delivery as tests see it: the message (JSON-decoded when it is JSON), subject, attributes."""
    text = envelope.get("Message", "")
    try:
        message = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        message = text
    attributes = {k: (v or {}).get("Value") for k, v in (envelope.get("MessageAttributes") or {}).items()}
    return {
        "message": message,
        "subject": envelope.get("Subject"),
        "attributes": attributes,
        "topic_arn": envelope.get("TopicArn"),
        "message_id": envelope.get("MessageId"),
    }
