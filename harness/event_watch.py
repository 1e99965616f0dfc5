"""The ``events`` fixture's object: wait for EventBridge events and SNS messages from Python tests.

The same listeners, matcher and failure text as the YAML steps
``expect_event`` / ``expect_message``::

    def test_order_audited(http, events, unique_id):
        events.listen("OrdersBus")                 # before the action: nothing is missed
        http.post("/orders", json={"customer_id": unique_id, ...})
        [event] = events.wait_for({"detail-type": ["OrderAudited"],
                                   "detail": {"customer_id": [unique_id]}}, bus="OrdersBus")
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from harness.errors import ExpectationFailed
from harness.events import pattern as patterns
from harness.events import watch
from harness.events.listeners import Listener, Listeners
from harness.scenarios.waiting import WaitTimeout, eventually
from harness.stack import Stack, resolve_name, topic_arn_named


class EventWatch:
    """Listeners of one test: ``listen``/``wait_for`` (buses), ``listen_topic``/``wait_for_message`` (SNS)."""

    def __init__(
        self,
        stack: Stack,
        listeners: Listeners,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.stack = stack
        self.listeners = listeners
        self.clock = clock
        self.sleep = sleep
        self.started = clock()

    def listen(self, bus: str = "default") -> None:
        """Make sure the bus's listener exists (call it before the action that emits)."""
        self._bus(bus)

    def listen_topic(self, topic: str) -> None:
        """Make sure the topic's listener exists (call it before the action that publishes)."""
        self._topic(topic)

    def wait_for(
        self, pattern: Mapping[str, Any], *, bus: str = "default", within: float = 10.0, count: int | None = None
    ) -> list[Any]:
        """The events matching ``pattern`` (at least one, or exactly ``count``; ``0``: none for ``within``)."""
        return self._wait(self._bus(bus), pattern, within, count, "event")

    def wait_for_message(
        self,
        topic: str,
        pattern: Mapping[str, Any] | None = None,
        *,
        within: float = 10.0,
        count: int | None = None,
    ) -> list[Any]:
        """The messages (``{message, subject, attributes, ...}``) matching ``pattern`` on the topic."""
        return self._wait(self._topic(topic), pattern, within, count, "message")

    def _bus(self, bus: str) -> Listener:
        return self.listeners.bus(resolve_name(self.stack, bus))

    def _topic(self, topic: str) -> Listener:
        arn = resolve_name(self.stack, topic)
        if not arn.startswith("arn:"):
            arn = topic_arn_named(self.stack, arn) or arn
        return self.listeners.topic(arn)

    def _wait(
        self, listener: Listener, pattern: Mapping[str, Any] | None, within: float, count: int | None, what: str
    ) -> list[Any]:
        __tracebackhide__ = True
        if pattern is not None:
            patterns.validate(pattern)
        last = watch.Outcome(count=count)

        def attempt() -> None:
            nonlocal last
            self.listeners.drain(listener)
            last = watch.judge(listener.arrivals, pattern, since=self.started, count=count)
            assert last.done, watch.expected_words(count)

        try:
            eventually(attempt, within=within, interval=0.2, clock=self.clock, sleep=self.sleep)
        except WaitTimeout:
            pass
        if not last.passed:
            headline, appendix = watch.failure_text(last, what, listener.label, within)
            raise ExpectationFailed(f"{headline}\n{appendix}")
        return list(last.matched)
