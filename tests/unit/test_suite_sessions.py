"""What the suite's conftest does to botocore sessions for speed changes no session's handlers.

A session starts from a copy of the built-in handlers another session registered
(``tests/conftest.py``); it must hold exactly the handlers, in the same order, that
botocore's own registration gives it, keep its own registrations to itself, and see a
change to the list of built-in handlers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import botocore.handlers
import botocore.hooks
import botocore.session
import pytest

#: Events a client emits, with and without a service and an operation (the trie matches by prefix).
EVENTS = [
    "before-send.cloudformation.CreateStack",
    "before-parameter-build.s3.PutObject",
    "before-call.sqs.SendMessage",
    "needs-retry.dynamodb.GetItem",
    "after-call.s3.GetBucketLocation",
    "creating-client-class.s3",
    "choose-signer.cognito-identity.GetId",
    "before-sign.s3",
    "provide-client-params.s3.ListObjects",
    "request-created.ec2.CopySnapshot",
]


def _by_botocore() -> botocore.session.Session:
    """A session whose built-in handlers botocore itself registered."""
    session = botocore.session.Session(include_builtin_handlers=False)
    botocore.session.Session._register_builtin_handlers.__wrapped__(session, session._events)  # type: ignore[attr-defined]
    return session


def _handlers(session: botocore.session.Session, event: str) -> list[Any]:
    emitter = session._events._emitter  # type: ignore[attr-defined]
    return list(emitter._handlers.prefix_search(session._events._alias_event_name(event)))  # type: ignore[attr-defined]


def _every_event() -> list[str]:
    return sorted({spec[0] for spec in botocore.handlers.BUILTIN_HANDLERS} | set(EVENTS))


def test_a_session_holds_the_handlers_botocore_registers_in_its_order() -> None:
    botocore.session.Session()  # the copy's source exists
    shared, own = botocore.session.Session(), _by_botocore()
    for event in _every_event():
        assert _handlers(shared, event) == _handlers(own, event), event
    assert sum(len(_handlers(shared, e)) for e in _every_event()) >= len(botocore.handlers.BUILTIN_HANDLERS)


def test_a_sessions_own_handlers_stay_its_own() -> None:
    one, two = botocore.session.Session(), botocore.session.Session()

    def mine(**kwargs: Any) -> None:
        return None

    one.register("before-send.sqs", mine)
    assert mine in _handlers(one, "before-send.sqs.SendMessage")
    assert mine not in _handlers(two, "before-send.sqs.SendMessage")
    assert mine not in _handlers(botocore.session.Session(), "before-send.sqs.SendMessage")


@pytest.fixture
def added() -> Iterator[Any]:
    def handler(**kwargs: Any) -> None:
        return None

    spec = ("before-send.sqs", handler)
    botocore.handlers.BUILTIN_HANDLERS.append(spec)
    try:
        yield handler
    finally:
        botocore.handlers.BUILTIN_HANDLERS.remove(spec)


def test_a_new_built_in_handler_reaches_the_next_session(added: Any) -> None:
    assert added in _handlers(botocore.session.Session(), "before-send.sqs.SendMessage")
    assert added in _handlers(botocore.session.Session(), "before-send.sqs.SendMessage")  # and the copies of it


def test_a_session_given_its_own_event_hooks_keeps_them() -> None:
    hooks = botocore.hooks.HierarchicalEmitter()

    def theirs(**kwargs: Any) -> None:
        return None

    hooks.register("before-send.sqs", theirs)
    session = botocore.session.Session(event_hooks=hooks)
    assert theirs in _handlers(session, "before-send.sqs.SendMessage")
    assert _handlers(session, "before-call.sqs.SendMessage") == _handlers(_by_botocore(), "before-call.sqs.SendMessage")
