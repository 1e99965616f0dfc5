"""The emulator-gap adaptations' pure parts and their shape guards, without an emulator process.

The end-to-end proof (each gap reproduced on MiniStack, closed with its
adaptation and open without it) is ``tests/e2e/test_emulator_gaps.py``.
"""

from __future__ import annotations

import types

import pytest

from harness.emulator import OFF_VARIABLE, adapt, guard
from harness.emulator.apigw_openapi_integration import integration_data, integration_responses, method_responses
from harness.emulator.lambda_env_strings import cfn_string, string_variables
from harness.emulator.lambda_name_length import name_error


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.1, "0.1"), (True, "true"), (False, "false"), (3, "3"), (1.0, "1.0"), ("x", "x"), (None, None)],
)
def test_cfn_string_writes_scalars_as_cloudformation_does(value: object, expected: object) -> None:
    assert cfn_string(value) == expected


def test_string_variables_copies_only_when_something_changes() -> None:
    props = {"Runtime": "python3.11", "Environment": {"Variables": {"RATE": 0.1, "ON": True, "NAME": "n"}}}
    out = string_variables(props)
    assert out["Environment"]["Variables"] == {"RATE": "0.1", "ON": "true", "NAME": "n"}
    assert props["Environment"]["Variables"]["RATE"] == 0.1  # the template's props are not mutated
    already = {"Environment": {"Variables": {"A": "1"}}}
    assert string_variables(already) is already
    assert string_variables({"Runtime": "x"}) == {"Runtime": "x"}


@pytest.mark.parametrize(
    ("name", "refused"),
    [
        ("f" * 64, False),
        ("f" * 65, True),
        ("arn:aws:lambda:us-east-1:123456789012:function:" + "f" * 64, False),
        ("arn:aws:lambda:us-east-1:123456789012:function:" + "f" * 65, True),
        (None, False),
    ],
)
def test_name_error_refuses_names_over_64(name: object, refused: bool) -> None:
    error = name_error(name)
    assert (error is not None) is refused
    if refused:
        assert "Member must have length less than or equal to 64" in str(error)


def test_openapi_integration_is_read_whole() -> None:
    integration = {
        "type": "aws",
        "httpMethod": "POST",
        "uri": "arn:aws:apigateway:us-east-1:sqs:path/123456789012/q",
        "credentials": "arn:aws:iam::123456789012:role/r",
        "requestParameters": {"integration.request.header.Content-Type": "'application/x-www-form-urlencoded'"},
        "requestTemplates": {"application/json": "Action=SendMessage&MessageBody=$input.body"},
        "passthroughBehavior": "never",
        "timeoutInMillis": "5000",
        "responses": {
            "default": {"statusCode": "200", "responseTemplates": {"application/json": "{}"}},
            "4\\d{2}": {"statusCode": 400},
            "broken": "not an object",
        },
    }
    data = integration_data(integration)
    assert data["type"] == "AWS" and data["timeoutInMillis"] == 5000
    assert data["credentials"] == integration["credentials"]
    assert data["requestTemplates"] == integration["requestTemplates"]
    assert data["requestParameters"] == integration["requestParameters"]
    assert "responses" not in data
    assert integration_responses(integration) == [
        ("200", {"responseTemplates": {"application/json": "{}"}, "selectionPattern": ""}),
        ("400", {"selectionPattern": "4\\d{2}"}),
    ]


def test_openapi_method_responses() -> None:
    operation = {"responses": {"200": {"headers": {"X-Id": {}}}, "default": {}, "500": {}}}
    assert method_responses(operation) == [
        ("200", {"responseParameters": {"method.response.header.X-Id": False}}),
        ("500", {"responseParameters": {}}),
    ]


def test_off_switch_names_adaptations_or_all() -> None:
    names = [name for name, _fn in adapt.ADAPTATIONS]
    assert adapt.disabled({}) == set()
    assert adapt.disabled({OFF_VARIABLE: f" {names[1]} , {names[2]}"}) == {names[1], names[2]}
    assert adapt.disabled({OFF_VARIABLE: "all"}) == set(names)
    with pytest.raises(guard.AdaptationError, match="unknown adaptations \\['typo'\\]"):
        adapt.disabled({OFF_VARIABLE: "typo"})


def test_every_gap_adaptation_is_registered_once() -> None:
    names = [name for name, _fn in adapt.ADAPTATIONS]
    assert len(names) == len(set(names))
    for name in (
        "iam-s3-list-buckets-resource",
        "apigateway-openapi-integration-fields",
        "lambda-environment-as-strings",
        "lambda-function-name-length",
        "eventbridge-sqs-targets-need-a-queue-policy",
    ):
        assert name in names


def test_eventbridge_sqs_delivery_asks_the_queue_policy_for_the_rule() -> None:
    from harness.emulator.eventbridge_sqs_policy import denied

    asked: list[tuple[str, ...]] = []

    def allows(queue: str, service: str, source: str, account: str) -> bool:
        asked.append((queue, service, source, account))
        return queue.endswith(":open")

    rule = {"Arn": "arn:aws:events:us-east-1:123456789012:rule/bus/r"}
    assert denied({"Arn": "arn:aws:sqs:us-east-1:123456789012:open"}, rule, allows) is None
    assert denied({"Arn": "arn:aws:sqs:us-east-1:123456789012:closed"}, rule, allows) == (
        "the policy of queue arn:aws:sqs:us-east-1:123456789012:closed does not let events.amazonaws.com send "
        "for rule arn:aws:events:us-east-1:123456789012:rule/bus/r"
    )
    assert denied({"Arn": "arn:aws:lambda:us-east-1:123456789012:function:f"}, rule, allows) is None  # not asked
    assert asked[0] == ("arn:aws:sqs:us-east-1:123456789012:open", "events.amazonaws.com", rule["Arn"], "123456789012")
    assert len(asked) == 2


def test_guard_refuses_a_changed_signature() -> None:
    mod = types.ModuleType("fake_ministack")
    mod.f = lambda data, extra: None  # type: ignore[attr-defined]
    with pytest.raises(
        guard.AdaptationError, match=r"a-fix: fake_ministack.f takes \(data, extra\), expected \(data\)"
    ):
        guard.function(mod, "f", ("data",), "a-fix")
    with pytest.raises(guard.AdaptationError, match="fake_ministack.g is missing"):
        guard.function(mod, "g", ("data",), "a-fix")


def test_guard_refuses_a_caller_that_holds_its_own_copy() -> None:
    mod = types.ModuleType("fake_ministack")
    exec("def target(x):\n    return x\n\nbound = target\n\ndef caller(x):\n    return bound(x)\n", mod.__dict__)  # noqa: S102
    guard.calls_by_name(mod, "caller", "bound", "a-fix")
    with pytest.raises(guard.AdaptationError, match="no longer calls target by name"):
        guard.calls_by_name(mod, "caller", "target", "a-fix")


def test_guard_marks_accumulate_through_wrappers() -> None:
    import functools

    def inner() -> None: ...

    guard.mark(inner, "one")

    @functools.wraps(inner)
    def outer() -> None: ...

    guard.mark(outer, "two")
    assert guard.adapted(outer, "one") and guard.adapted(outer, "two") and not guard.adapted(inner, "two")
