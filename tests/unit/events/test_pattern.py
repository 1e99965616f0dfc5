"""The event pattern matcher against EventBridge's documented examples.

Each case is a pattern and an event from the EventBridge user guide
("Content filtering in Amazon EventBridge event patterns", "Comparison
operators for use in event patterns", "Creating event patterns"), with the
verdict AWS documents for it, plus the near miss that must not match.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import PatternError
from harness.events.pattern import matches, mismatch, validate, wildcard_regex

EC2_EVENT = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "111122223333",
    "time": "2017-12-22T18:43:48Z",
    "region": "us-west-1",
    "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
    "detail": {"instance-id": "i-1234567890abcdef0", "state": "terminated"},
}

# (id, pattern, event, documented verdict)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    # Matching values, the documented first example
    (
        "exact fields",
        {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
        EC2_EVENT,
        True,
    ),
    ("exact nested", {"detail": {"state": ["terminated"]}}, EC2_EVENT, True),
    ("exact is case sensitive", {"detail": {"state": ["Terminated"]}}, EC2_EVENT, False),
    ("one of the values", {"detail": {"state": ["pending", "terminated"]}}, EC2_EVENT, True),
    ("missing field", {"detail": {"reason": ["x"]}}, EC2_EVENT, False),
    # Arrays: a match when the event's array and the pattern's share a value
    (
        "array intersects",
        {"resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0", "arn:other"]},
        EC2_EVENT,
        True,
    ),
    ("array disjoint", {"resources": ["arn:other"]}, EC2_EVENT, False),
    # Prefix
    ("prefix", {"time": [{"prefix": "2017-12-22"}]}, EC2_EVENT, True),
    ("prefix no", {"time": [{"prefix": "2017-10-02"}]}, EC2_EVENT, False),
    (
        "prefix ignore case",
        {"detail": {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}},
        {"detail": {"service": "eventbridge"}},
        True,
    ),
    # Suffix
    ("suffix", {"FileName": [{"suffix": ".png"}]}, {"FileName": "image.png"}, True),
    ("suffix no", {"FileName": [{"suffix": ".png"}]}, {"FileName": "image.PNG"}, False),
    (
        "suffix ignore case",
        {"detail": {"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]}},
        {"detail": {"FileName": "image.PNG"}},
        True,
    ),
    # Anything-but
    (
        "anything-but string",
        {"detail": {"state": [{"anything-but": "initializing"}]}},
        {"detail": {"state": "running"}},
        True,
    ),
    (
        "anything-but string no",
        {"detail": {"state": [{"anything-but": "initializing"}]}},
        {"detail": {"state": "initializing"}},
        False,
    ),
    ("anything-but number", {"detail": {"x-limit": [{"anything-but": 123}]}}, {"detail": {"x-limit": 456}}, True),
    ("anything-but number no", {"detail": {"x-limit": [{"anything-but": 123}]}}, {"detail": {"x-limit": 123}}, False),
    (
        "anything-but list",
        {"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}},
        {"detail": {"state": "overloaded"}},
        False,
    ),
    (
        "anything-but numbers",
        {"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}},
        {"detail": {"x-limit": 150}},
        True,
    ),
    (
        "anything-but prefix",
        {"detail": {"state": [{"anything-but": {"prefix": "init"}}]}},
        {"detail": {"state": "initializing"}},
        False,
    ),
    (
        "anything-but suffix",
        {"detail": {"path": [{"anything-but": {"suffix": ".txt"}}]}},
        {"detail": {"path": "notes.md"}},
        True,
    ),
    (
        "anything-but ignore case",
        {"detail": {"state": [{"anything-but": {"equals-ignore-case": "initializing"}}]}},
        {"detail": {"state": "INITIALIZING"}},
        False,
    ),
    (
        "anything-but wildcard",
        {"detail": {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]}},
        {"detail": {"FilePath": "/usr/lib/x.so"}},
        False,
    ),
    ("anything-but needs the field", {"detail": {"state": [{"anything-but": "initializing"}]}}, {"detail": {}}, False),
    # Numeric, the documented example (c-count, d-count, x-limit)
    (
        "numeric",
        {
            "detail": {
                "c-count": [{"numeric": [">", 0, "<=", 5]}],
                "d-count": [{"numeric": ["<", 10]}],
                "x-limit": [{"numeric": ["=", 3.018e2]}],
            }
        },
        {"detail": {"c-count": 5, "d-count": 7, "x-limit": 301.8}},
        True,
    ),
    (
        "numeric out of range",
        {"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}]}},
        {"detail": {"c-count": 6}},
        False,
    ),
    ("numeric on a string", {"detail": {"c-count": [{"numeric": [">", 0]}]}}, {"detail": {"c-count": "5"}}, False),
    # IP address
    (
        "cidr",
        {"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}},
        {"detail": {"sourceIPAddress": "10.0.0.255"}},
        True,
    ),
    (
        "cidr no",
        {"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}},
        {"detail": {"sourceIPAddress": "10.0.1.1"}},
        False,
    ),
    # Exists
    ("exists", {"detail": {"state": [{"exists": True}]}}, EC2_EVENT, True),
    ("exists false", {"detail": {"state": [{"exists": False}]}}, {"detail": {"c-count": 1}}, True),
    ("exists false no", {"detail": {"state": [{"exists": False}]}}, EC2_EVENT, False),
    ("exists on an object is not a leaf", {"detail": [{"exists": True}]}, EC2_EVENT, False),
    # Equals-ignore-case
    (
        "ignore case",
        {"detail-type": [{"equals-ignore-case": "ec2 instance state-change notification"}]},
        EC2_EVENT,
        True,
    ),
    # Wildcard
    (
        "wildcard",
        {"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}]},
        {"EventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/orders"},
        True,
    ),
    (
        "wildcard no",
        {"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}]},
        {"EventBusArn": "arn:aws:events:us-west-2:123456789012:event-bus/orders"},
        False,
    ),
    ("wildcard escaped star", {"name": [{"wildcard": "a\\*b"}]}, {"name": "axb"}, False),
    # Null and empty values
    ("null", {"responseElements": [None]}, {"responseElements": None}, True),
    ("null is not missing", {"responseElements": [None]}, {}, False),
    ("empty string", {"eTag": [""]}, {"eTag": ""}, True),
    # $or, the documented example
    (
        "or",
        {
            "detail": {
                "$or": [
                    {"c-count": [{"numeric": [">", 0, "<=", 5]}]},
                    {"d-count": [{"numeric": ["<", 10]}]},
                    {"x-limit": [{"numeric": ["=", 3.018e2]}]},
                ]
            }
        },
        {"detail": {"c-count": 50, "d-count": 3}},
        True,
    ),
    ("or none", {"$or": [{"source": ["a"]}, {"detail-type": ["b"]}]}, EC2_EVENT, False),
    # A list of objects in the event: one element must match
    (
        "array of objects",
        {"detail": {"items": {"sku": ["B"]}}},
        {"detail": {"items": [{"sku": "A"}, {"sku": "B"}]}},
        True,
    ),
]


@pytest.mark.parametrize(("pattern", "event", "verdict"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_documented_examples(pattern: dict[str, Any], event: dict[str, Any], verdict: bool) -> None:
    validate(pattern)
    assert matches(pattern, event) is verdict
    assert matches(json.loads(json.dumps(pattern)), event) is verdict  # as it comes from JSON


def test_mismatch_names_the_key_and_what_was_there() -> None:
    reason = mismatch({"detail": {"total": [{"numeric": [">", 100]}]}}, {"detail": {"total": 3}})
    assert reason == 'detail.total: 3 does not match [{"numeric": [">", 100]}]'
    assert mismatch({"detail": {"state": ["x"]}}, {"detail": {}}) == 'detail.state: missing does not match ["x"]'


BAD: list[tuple[Any, str, str]] = [
    ({}, "", "non-empty mapping"),
    ({"source": "aws.ec2"}, "source", "must be in a list"),
    ({"detail": {"state": []}}, "detail.state", "empty list"),
    ({"detail": {"state": [{"prefx": "a"}]}}, "detail.state[0].prefx", "unknown operator 'prefx'"),
    ({"detail": {"n": [{"numeric": [">", "five"]}]}}, "detail.n[0].numeric", "'five' is not a number"),
    ({"detail": {"n": [{"numeric": ["<", 5, ">", 1]}]}}, "detail.n[0].numeric", "lower bound"),
    ({"detail": {"n": [{"exists": "yes"}]}}, "detail.n[0].exists", "true or false"),
    ({"ip": [{"cidr": "10.0.0.0/99"}]}, "ip[0].cidr", "not a CIDR block"),
    ({"f": [{"wildcard": "a**b"}]}, "f[0].wildcard", "consecutive wildcard"),
    ({"f": [{"anything-but": {"regex": "a"}}]}, "f[0].anything-but", "nests one of"),
    ({"f": [{"anything-but": ["a", 1]}]}, "f[0].anything-but", "only strings or only numbers"),
    ({"f": [{"prefix": "a", "suffix": "b"}]}, "f[0]", "exactly one operator"),
    ({"$or": [{"a": [1]}]}, "$or", "at least two"),
    ({"f": [True]}, "f[0]", "true/false"),
]


@pytest.mark.parametrize(("pattern", "path", "message"), BAD, ids=[b[1] or "empty" for b in BAD])
def test_invalid_patterns_name_the_bad_key(pattern: Any, path: str, message: str) -> None:
    with pytest.raises(PatternError) as caught:
        validate(pattern)
    assert caught.value.path == path
    assert message in caught.value.reason
    assert caught.value.hint


def test_unknown_operator_suggests_the_right_one() -> None:
    with pytest.raises(PatternError) as caught:
        validate({"a": [{"prefx": "x"}]})
    assert "did you mean 'prefix'?" in str(caught.value.hint)


def test_wildcard_escapes() -> None:
    assert wildcard_regex("a\\*b").fullmatch("a*b")
    assert wildcard_regex("a\\\\b").fullmatch("a\\b")
    assert wildcard_regex("dir/*.png").fullmatch("dir/sub/x.png")
    assert not wildcard_regex("dir/*.png").fullmatch("dir/x.png.bak")


# -- invariants ----------------------------------------------------------------

# Generation is cheap; a loaded machine is not: no deadline, no slowness check.
relaxed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
scalars = st.one_of(st.text(max_size=8), st.integers(-1000, 1000), st.none())
events = st.dictionaries(st.sampled_from(["a", "b", "c"]), scalars, max_size=3)


@relaxed
@given(event=events)
def test_an_event_matches_the_pattern_of_its_own_values(event: dict[str, Any]) -> None:
    pattern = {k: [v] for k, v in event.items()}
    if pattern:
        validate(pattern)
        assert matches(pattern, event)


@relaxed
@given(event=events, key=st.sampled_from(["a", "b", "c"]), value=scalars)
def test_anything_but_is_the_complement_of_the_value(event: dict[str, Any], key: str, value: Any) -> None:
    if value is None or key not in event or event[key] is None:
        return
    exact = matches({key: [value]}, event)
    assert matches({key: [{"anything-but": value}]}, event) is not exact


@relaxed
@given(event=events, key=st.sampled_from(["a", "b", "c"]))
def test_exists_true_and_false_split_every_event(event: dict[str, Any], key: str) -> None:
    assert matches({key: [{"exists": True}]}, event) is not matches({key: [{"exists": False}]}, event)


@relaxed
@given(event=events, first=st.sampled_from(["a", "b"]), second=st.sampled_from(["b", "c"]), value=scalars)
def test_or_is_the_union_of_its_branches(event: dict[str, Any], first: str, second: str, value: Any) -> None:
    one, two = {first: [value]}, {second: [{"exists": True}]}
    assert matches({"$or": [one, two]}, event) is (matches(one, event) or matches(two, event))
