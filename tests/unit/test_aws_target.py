"""The aws target against moto's STS: identity, assumed role, account allow-list."""

from __future__ import annotations

from pathlib import Path

import pytest
from moto import mock_aws

from harness.errors import GuardError
from harness.settings import resolve
from harness.targets.aws import AwsTarget


@pytest.fixture(autouse=True)
def creds(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


def settings(tmp_path: Path, **env: str):
    return resolve({}, {"HARNESS_TARGET": "aws", **env}, tmp_path)


def test_identity_and_assumed_role_credentials_reach_the_deploy_env(tmp_path: Path) -> None:
    role = "arn:aws:iam::123456789012:role/deployer"
    target = AwsTarget(settings(tmp_path, HARNESS_ROLE_ARN=role))
    info = target.start()
    assert target.account == "123456789012"
    env = target.env()
    assert env["AWS_SESSION_TOKEN"] and env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert info["endpoint_url"] is None and info["session_token"] == env["AWS_SESSION_TOKEN"]


def test_an_account_outside_the_allow_list_is_refused(tmp_path: Path) -> None:
    target = AwsTarget(settings(tmp_path, HARNESS_ALLOWED_ACCOUNTS="111111111111,222222222222"))
    with pytest.raises(GuardError, match="not in allowed-accounts"):
        target.start()
    AwsTarget(settings(tmp_path, HARNESS_ALLOWED_ACCOUNTS="123456789012")).start()
