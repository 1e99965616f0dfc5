"""The emulator on loopback stands in for AWS's TLS endpoints: ``aws:SecureTransport`` is true.

With IAM enforced, a bucket policy that denies plain-HTTP requests (the CDK
bootstrap bucket's) must let SDK calls through, as on AWS; every other
condition, and the deny itself, still applies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest

from harness import procs
from harness.emulator import OFF_VARIABLE, secure_transport
from tests.e2e.e2e_support import Emulator, start_emulator

pytestmark = pytest.mark.e2e


def _policy(bucket: str, secure: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": secure}},
                }
            ],
        }
    )


def _publisher(emulator: Emulator) -> Any:
    """An S3 client for an IAM user allowed s3:* (as CDK's file-publishing role is on its bucket)."""
    iam = emulator.client("iam")
    iam.create_user(UserName="publisher")
    iam.put_user_policy(
        UserName="publisher",
        PolicyName="s3",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        ),
    )
    key = iam.create_access_key(UserName="publisher")["AccessKey"]
    return boto3.client(
        "s3",
        endpoint_url=emulator.url,
        region_name="us-east-1",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )


def test_a_deny_of_plain_http_lets_sdk_calls_through(emulator: Emulator) -> None:
    emulator.client("s3").create_bucket(Bucket="tls-only")
    emulator.client("s3").put_bucket_policy(Bucket="tls-only", Policy=_policy("tls-only", "false"))
    s3 = _publisher(emulator)
    s3.put_object(Bucket="tls-only", Key="k", Body=b"v")
    assert s3.list_objects_v2(Bucket="tls-only")["KeyCount"] == 1


def test_a_deny_of_plain_http_denies_everything_as_shipped(tmp_path: Path) -> None:
    shipped = start_emulator(tmp_path / "shipped", extra_env={OFF_VARIABLE: secure_transport.NAME})
    try:
        shipped.client("s3").create_bucket(Bucket="tls-only")
        shipped.client("s3").put_bucket_policy(Bucket="tls-only", Policy=_policy("tls-only", "false"))
        with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
            _publisher(shipped).put_object(Bucket="tls-only", Key="k", Body=b"v")
    finally:
        procs.stop_tree(shipped.pid)


def test_the_condition_is_still_evaluated_and_a_deny_still_denies(emulator: Emulator) -> None:
    # The mirror policy: deny when the transport IS secure. Loopback counts as
    # secure, so this denies: the condition is evaluated, not skipped.
    emulator.client("s3").create_bucket(Bucket="deny-tls")
    emulator.client("s3").put_bucket_policy(Bucket="deny-tls", Policy=_policy("deny-tls", "true"))
    s3 = _publisher(emulator)
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        s3.put_object(Bucket="deny-tls", Key="k", Body=b"v")


def test_the_adaptation_refuses_an_emulator_of_another_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    from harness.emulator import guard

    fake = types.ModuleType("ministack.app")
    fake.pin_request_origin = lambda source_ip, secure_transport: None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ministack.app", fake)
    with pytest.raises(guard.AdaptationError, match="no longer the evaluator's"):
        secure_transport.apply()
