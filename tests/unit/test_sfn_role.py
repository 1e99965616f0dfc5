"""The calls a Step Functions task makes, as the role adaptation checks them (harness.emulator.sfn_role)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.emulator import sfn_role

R, A = "us-east-1", "111122223333"


@pytest.mark.parametrize(
    ("resource", "params", "expected"),
    [
        (
            "arn:aws:lambda:us-east-1:111122223333:function:price",
            {},
            [("lambda", "lambda:InvokeFunction", "arn:aws:lambda:us-east-1:111122223333:function:price")],
        ),
        (
            "arn:aws:states:::lambda:invoke",
            {"FunctionName": "price", "Qualifier": "live"},
            [("lambda", "lambda:InvokeFunction", "arn:aws:lambda:us-east-1:111122223333:function:price:live")],
        ),
        (
            "arn:aws:states:::lambda:invoke.waitForTaskToken",
            {"FunctionName": "999988887777:function:price"},
            [("lambda", "lambda:InvokeFunction", "arn:aws:lambda:us-east-1:999988887777:function:price")],
        ),
        (
            "arn:aws:states:::dynamodb:putItem",
            {"TableName": "Orders"},
            [("dynamodb", "dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:111122223333:table/Orders")],
        ),
        (
            "arn:aws:states:::sqs:sendMessage",
            {"QueueUrl": "http://127.0.0.1:4566/111122223333/jobs"},
            [("sqs", "sqs:SendMessage", "arn:aws:sqs:us-east-1:111122223333:jobs")],
        ),
        ("arn:aws:states:::sns:publish", {"TopicArn": "arn:t"}, [("sns", "sns:Publish", "arn:t")]),
        (
            "arn:aws:states:::events:putEvents",
            {"Entries": [{"EventBusName": "orders"}, {}]},
            [
                ("events", "events:PutEvents", "arn:aws:events:us-east-1:111122223333:event-bus/default"),
                ("events", "events:PutEvents", "arn:aws:events:us-east-1:111122223333:event-bus/orders"),
            ],
        ),
        (
            "arn:aws:states:::states:startExecution.sync:2",
            {"StateMachineArn": "arn:sm"},
            [("states", "states:StartExecution", "arn:sm")],
        ),
        ("arn:aws:states:::aws-sdk:dynamodb:query", {"TableName": "Orders"}, []),  # not checked: named by fidelity
        ("arn:aws:states:::dynamodb:putItem", {}, []),  # no table named: the emulator's own error decides
    ],
)
def test_the_call_each_task_makes(resource: str, params: dict[str, Any], expected: list[tuple[str, str, str]]) -> None:
    assert list(sfn_role.calls(resource, params, R, A)) == expected


def test_a_denial_is_worded_as_aws_words_it() -> None:
    error, cause = sfn_role.denial(
        ("dynamodb", "dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:1:table/Orders"),
        "arn:aws:sts::1:assumed-role/flow/NoTable",
        explicit=False,
    )
    assert error == "DynamoDB.AmazonDynamoDBException"
    assert cause == (
        "User: arn:aws:sts::1:assumed-role/flow/NoTable is not authorized to perform: dynamodb:PutItem on resource: "
        "arn:aws:dynamodb:us-east-1:1:table/Orders because no identity-based policy allows the dynamodb:PutItem action "
        "(Service: AmazonDynamoDBv2; Status Code: 400; Error Code: AccessDeniedException)"
    )
