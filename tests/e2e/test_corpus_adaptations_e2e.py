"""The adaptations the conformance corpus needed, red without them and green with them.

Each case runs the pinned MiniStack's own code in a fresh interpreter (its
CloudFormation resource handlers, its Step Functions interpreter), once as
shipped and once after ``harness.emulator.adapt.apply_all()``, and compares
what AWS would report. The corpus apps (``test_conformance_e2e.py``:
``http_api``, ``kinesis_stream``, ``step_functions``) are the same gaps met
through a real deploy, HTTP calls and the apps' own tests.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest
from e2e_support import PYTHON, clean_env

pytestmark = pytest.mark.e2e

PROBE = textwrap.dedent(
    """
    import json, sys, time
    import ministack.services.cloudformation.provisioners as cfn
    import ministack.services.apigateway as apigw
    import ministack.services.kinesis as kinesis
    import ministack.services.stepfunctions as sfn

    if sys.argv[1] == "adapted":
        from harness.emulator import adapt
        adapt.apply_all()

    BODY = {
        "openapi": "3.0.1",
        "info": {"title": "probe", "version": "1"},
        "paths": {
            "/hello/{name}": {"get": {"x-amazon-apigateway-integration": {
                "type": "aws_proxy", "httpMethod": "POST", "payloadFormatVersion": "2.0",
                "uri": "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
                       "arn:aws:lambda:us-east-1:000000000000:function:hello/invocations"}}},
            "$default": {"x-amazon-apigateway-any-method": {"x-amazon-apigateway-integration": {
                "type": "aws_proxy", "uri": "arn:aws:lambda:us-east-1:000000000000:function:fallback"}}},
        },
    }
    api_id, _ = cfn._RESOURCE_HANDLERS["AWS::ApiGatewayV2::Api"]["create"]("Api", {"Body": BODY}, "probe")
    routes = {r["routeKey"]: r["target"] for r in apigw._routes[api_id].values()}
    uris = sorted(i["integrationUri"] for i in apigw._integrations[api_id].values())

    name, _ = cfn._RESOURCE_HANDLERS["AWS::Kinesis::Stream"]["create"](
        "Clicks", {"ShardCount": 1, "StreamEncryption": {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"}},
        "probe")
    stream = kinesis._streams[name]

    execution = {"events": []}
    sfn._add_event(execution, "TaskScheduled", {"taskScheduledEventDetails": {
        "resourceType": "lambda", "resource": "arn:aws:states:::lambda:invoke"}})
    sfn._add_event(execution, "TaskSucceeded", {"taskSucceededEventDetails": {
        "output": "{}", "resource": "arn:aws:states:::aws-sdk:dynamodb:putItem"}})
    events = [{k: v for k, v in e.items() if k.endswith("Details")} for e in execution["events"]]

    print(json.dumps({
        "routes": sorted(routes), "targets": sorted(bool(t) for t in routes.values()), "uris": uris,
        "name": apigw._apis[api_id]["name"],
        "encryption": [stream["EncryptionType"], stream.get("KeyId")],
        "events": events,
    }))
    """
)


def probe(mode: str, scratch: Path) -> dict[str, object]:
    # As the launcher does (harness.targets.local.child_env): what the adaptations and MiniStack
    # write (the runtime sandbox's SDK links, Cognito's key) goes into a folder of the test's.
    env = {**clean_env(), "TMPDIR": str(scratch), "STATE_DIR": str(scratch / "state")}
    proc = subprocess.run(  # noqa: S603 - argv list
        [PYTHON, "-c", PROBE, mode], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    return probe("shipped", tmp_path_factory.mktemp("shipped"))


@pytest.fixture(scope="module")
def adapted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    return probe("adapted", tmp_path_factory.mktemp("adapted"))


def test_http_api_body_becomes_routes(shipped: dict[str, object], adapted: dict[str, object]) -> None:
    assert shipped["routes"] == []  # the gap: every request answers 404
    assert adapted["routes"] == ["$default", "GET /hello/{name}"]
    assert adapted["targets"] == [True, True]
    assert adapted["uris"] == [
        "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
        "arn:aws:lambda:us-east-1:000000000000:function:hello/invocations",
        "arn:aws:lambda:us-east-1:000000000000:function:fallback",
    ]
    assert adapted["name"] == "probe"  # info.title, as AWS names an imported API


def test_kinesis_stream_encryption_is_applied(shipped: dict[str, object], adapted: dict[str, object]) -> None:
    assert shipped["encryption"] == ["NONE", None]
    assert adapted["encryption"] == ["KMS", "alias/aws/kinesis"]


def test_sfn_history_splits_service_integration_arns(shipped: dict[str, object], adapted: dict[str, object]) -> None:
    assert shipped["events"][0]["taskScheduledEventDetails"]["resource"] == "arn:aws:states:::lambda:invoke"
    assert adapted["events"] == [
        {"taskScheduledEventDetails": {"resourceType": "lambda", "resource": "invoke"}},
        {"taskSucceededEventDetails": {"output": "{}", "resourceType": "aws-sdk:dynamodb", "resource": "putItem"}},
    ]
