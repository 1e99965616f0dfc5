"""Gap: EventBridge delivers to an SQS queue whatever the queue's policy says.

AWS: a rule with a queue as target delivers only if the queue's policy lets
``events.amazonaws.com`` send to it (usually for that rule, ``aws:SourceArn``);
otherwise the invocation fails (``FailedInvocations``) and nothing arrives
("Amazon SQS permissions", EventBridge user guide,
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sqs-permissions).

MiniStack 1.5.33 checks the queue policy for SNS subscriptions and S3
notifications (``sqs.queue_policy_allows``, with ``AUTH=true``) but not for
EventBridge targets (``eventbridge._invoke_target`` -> ``_dispatch_to_sqs``):
a template that forgets the queue policy passes locally and loses every
event on AWS.

The adaptation: ``_invoke_target`` asks ``sqs.queue_policy_allows`` for
``events.amazonaws.com`` with the rule's ARN as ``aws:SourceArn`` before an
SQS delivery, and drops the event (logging why) when the policy does not
allow it, as AWS does. With IAM enforcement off every delivery passes, as the
emulator's own check does for SNS.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from harness.emulator import guard

NAME = "eventbridge-sqs-targets-need-a-queue-policy"
SERVICE = "events.amazonaws.com"
logger = logging.getLogger(__name__)


def denied(target: Any, rule: Any, allows: Any) -> str | None:
    """Why the rule may not send to its SQS target (``None``: not an SQS target, or allowed)."""
    arn = target.get("Arn", "") if isinstance(target, dict) else ""
    if arn.split(":")[2:3] != ["sqs"]:
        return None
    rule_arn = rule.get("Arn", "") if isinstance(rule, dict) else ""
    account = arn.split(":")[4] if arn.count(":") >= 5 else ""
    if allows(arn, SERVICE, rule_arn, account):
        return None
    return f"the policy of queue {arn} does not let {SERVICE} send for rule {rule_arn}"


def apply() -> None:
    """Make EventBridge's SQS deliveries obey the queue's policy."""
    eventbridge = guard.module("ministack.services.eventbridge", NAME)
    sqs = guard.module("ministack.services.sqs", NAME)
    invoke = guard.function(eventbridge, "_invoke_target", ("target", "event", "rule", "view"), NAME)
    allows = guard.function(sqs, "queue_policy_allows", ("queue_arn", "service", "source_arn", "source_account"), NAME)
    guard.calls_by_name(eventbridge, "_dispatch_event", "_invoke_target", NAME)
    if guard.adapted(invoke, NAME):
        return

    @functools.wraps(invoke)
    def _invoke_target(target: Any, event: Any, rule: Any, view: Any = None) -> Any:
        why = denied(target, rule, allows)
        if why is not None:
            logger.warning("EventBridge: event %s not delivered: %s", (event or {}).get("EventId"), why)
            return None
        return invoke(target, event, rule, view)

    eventbridge._invoke_target = guard.mark(_invoke_target, NAME)
