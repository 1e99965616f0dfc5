"""Find and remove listeners by their tags, when the process that made them could not.

A process removes its own listeners when its session ends. A process that
was killed cannot: its rules, queues and subscriptions stay, tagged
:data:`~harness.events.listeners.LISTENER_OF` with their stack. The teardown
of a stack removes every listener of that stack before it deletes the stack
(and names what it could not remove); ``harness gc`` removes the listeners of
stacks that no longer exist. Both find them through the Resource Groups
Tagging API (on AWS and on the emulator).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.events.listeners import GONE, LISTENER_OF, RULE, SUBSCRIPTION, TARGET_ID, quietly

ClientFor = Callable[[str], Any]


@dataclass(frozen=True)
class Found:
    """One listener resource (an EventBridge rule or an SQS queue) and its tags."""

    arn: str
    tags: dict[str, str]

    @property
    def kind(self) -> str:
        return "rule" if self.arn.split(":")[2] == "events" else "queue"

    @property
    def stack(self) -> str:
        return self.tags.get(LISTENER_OF, "")

    @property
    def name(self) -> str:
        return self.arn.rsplit("/", 1)[-1] if self.kind == "rule" else self.arn.rsplit(":", 1)[-1]

    def describe(self) -> str:
        what = "EventBridge rule" if self.kind == "rule" else "SQS queue"
        return f"listener {what} {self.arn} (stack {self.stack})"


def find(client_for: ClientFor, stacks: Iterable[str] | None = None) -> list[Found]:
    """Every listener resource, or those of the given stacks; rules first (they send to the queues)."""
    values = sorted(set(stacks)) if stacks is not None else None
    if values == []:
        return []
    tag_filter: dict[str, Any] = {"Key": LISTENER_OF, **({"Values": values} if values else {})}
    api = client_for("resourcegroupstaggingapi")
    found: list[Found] = []
    token = ""
    while True:  # every page, by its token (a paginator would load the service's paging model first: ~7 ms)
        page = api.get_resources(
            TagFilters=[tag_filter],
            ResourceTypeFilters=["events:rule", "sqs"],
            **({"PaginationToken": token} if token else {}),
        )
        found += [
            Found(m["ResourceARN"], {t["Key"]: t["Value"] for t in m.get("Tags") or ()})
            for m in page.get("ResourceTagMappingList") or ()
        ]
        token = page.get("PaginationToken") or ""
        if not token:
            return sorted(found, key=lambda f: (f.kind != "rule", f.arn))


def remove(client_for: ClientFor, found: Iterable[Found]) -> list[str]:
    """Remove each listener resource (a rule's target first, a queue's subscription first); returns problems."""
    problems: list[str] = []
    for item in found:
        problems += _remove_rule(client_for, item) if item.kind == "rule" else _remove_queue(client_for, item)
    return problems


def remaining(client_for: ClientFor, found: Iterable[Found]) -> list[str]:
    """The listener resources that still exist (the leak check's view of them)."""
    return [item.describe() for item in found if alive(client_for, item)]


def alive(client_for: ClientFor, item: Found) -> bool:
    from botocore.exceptions import ClientError

    try:
        if item.kind == "rule":
            bus, name = _rule_parts(item.arn)
            client_for("events").describe_rule(Name=name, EventBusName=bus)
        else:
            _queue_url(client_for, item.arn)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in GONE:
            return False
        raise
    return True


def _rule_parts(arn: str) -> tuple[str, str]:
    """(bus, rule name) of ``arn:aws:events:r:a:rule/[bus/]name``."""
    path = arn.split(":", 5)[5].removeprefix("rule/")
    bus, _, name = path.rpartition("/")
    return bus or "default", name


def _queue_url(client_for: ClientFor, arn: str) -> str:
    parts = arn.split(":")
    return str(client_for("sqs").get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"])


def _remove_rule(client_for: ClientFor, item: Found) -> list[str]:
    return _remove_rule_arn(client_for, item.arn, item.describe())


def _remove_rule_arn(client_for: ClientFor, arn: str, what: str) -> list[str]:
    bus, name = _rule_parts(arn)
    events = client_for("events")
    return quietly(
        what,
        lambda: events.remove_targets(Rule=name, EventBusName=bus, Ids=[TARGET_ID]),
        lambda: events.delete_rule(Name=name, EventBusName=bus),
    )


def _remove_queue(client_for: ClientFor, item: Found) -> list[str]:
    problems: list[str] = []
    rule = item.tags.get(RULE)  # the queue names its rule, for listings that miss rules
    if rule:
        problems += _remove_rule_arn(client_for, rule, f"listener EventBridge rule {rule} (stack {item.stack})")
    subscription = item.tags.get(SUBSCRIPTION)
    if subscription:
        problems += quietly(
            f"subscription {subscription}", lambda: client_for("sns").unsubscribe(SubscriptionArn=subscription)
        )
    return problems + quietly(
        item.describe(), lambda: client_for("sqs").delete_queue(QueueUrl=_queue_url(client_for, item.arn))
    )


def sweep(client_for: ClientFor, stacks: Iterable[str] | None = None) -> tuple[list[Found], list[str]]:
    """Remove the listeners of ``stacks`` (all when ``None``): (what was found, what is left or failed)."""
    # The tagging API may still list what was deleted a moment ago: only what exists counts.
    found = [item for item in find(client_for, stacks) if alive(client_for, item)]
    if not found:
        return [], []
    problems = remove(client_for, found)
    return found, problems + [x for x in remaining(client_for, found) if not any(x in p for p in problems)]


def orphans(found: Iterable[Found], stacks: Mapping[str, bool], deleting: Iterable[str] = ()) -> list[Found]:
    """The listeners no session can be using: their stack is gone, being deleted, or held by no run.

    ``stacks``: each live stack's name -> whether a run holds its lease now.
    """
    going = set(deleting)
    return [f for f in found if f.stack in going or not stacks.get(f.stack, False)]


def collect(
    client_for: ClientFor, stacks: Mapping[str, bool], deleting: Iterable[str] = (), *, yes: bool
) -> tuple[list[Found], list[str]]:
    """``harness gc``: the orphaned listeners, removed when ``yes`` (returns them and the problems)."""
    found = [item for item in orphans(find(client_for), stacks, deleting) if alive(client_for, item)]
    if not yes or not found:
        return found, []
    problems = remove(client_for, found)
    return found, problems + [x for x in remaining(client_for, found) if not any(x in p for p in problems)]
