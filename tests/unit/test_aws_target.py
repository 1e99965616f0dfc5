"""The aws target against moto's STS: one identity, refreshed; the region rules; the account allow-list."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from harness import deploy, tags
from harness.errors import DeployError, GuardError
from harness.settings import resolve
from harness.targets import aws_credentials
from harness.targets.aws import AwsTarget
from harness.targets.aws_credentials import RunCredentials, refresh_windows

ROLE = "arn:aws:iam::123456789012:role/deployer"
OTHER_ROLE = "arn:aws:iam::222222222222:role/other"


@pytest.fixture(autouse=True)
def creds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    for var in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENTKEY01")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    (tmp_path / "credentials").write_text("[base]\naws_access_key_id = AKIABASE\naws_secret_access_key = b\n")
    (tmp_path / "config").write_text(
        f"[profile base]\n[profile other]\nrole_arn = {OTHER_ROLE}\nsource_profile = base\nregion = eu-west-1\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    with mock_aws():
        yield


def settings(tmp_path: Path, **env: str):
    return resolve({}, {"HARNESS_TARGET": "aws", **env}, tmp_path)


def whoami(env: dict[str, str]) -> str:
    """The account an SDK started with ``env`` works in (moto maps assumed-role keys to the role's account)."""
    session = boto3.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env.get("AWS_SESSION_TOKEN"),
        region_name="us-east-1",
    )
    return str(session.client("sts").get_caller_identity()["Account"])


def test_the_deploy_gets_the_profile_identity_not_the_environment_keys(tmp_path: Path) -> None:
    """A profile named beside environment keys: the deploy used to run with the keys, in another account."""
    target = AwsTarget(settings(tmp_path, HARNESS_AWS_PROFILE="other"))
    target.start()
    assert target.account == "222222222222"
    base = {
        **dict(os.environ),
        "AWS_PROFILE": "other",
        "AWS_WEB_IDENTITY_TOKEN_FILE": "/t",
        "AWS_ACCOUNT_ID": "123456789012",  # the shell's, of another account
    }
    env = deploy.deploy_env(base, target.env(), {})
    assert "AWS_PROFILE" not in env and "AWS_WEB_IDENTITY_TOKEN_FILE" not in env
    assert env["AWS_ACCESS_KEY_ID"] != "AKIAENVIRONMENTKEY01" and env["AWS_SESSION_TOKEN"]
    assert whoami(env) == "222222222222"
    # The SDKs pair AWS_ACCOUNT_ID with the keys (account-based endpoints): it is the keys' own account.
    assert env["AWS_ACCOUNT_ID"] == "222222222222"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"  # the profile's region


def test_the_test_process_gets_the_role_and_loses_competing_variables(tmp_path: Path) -> None:
    target = AwsTarget(settings(tmp_path, HARNESS_ROLE_ARN=ROLE))
    info = target.start()
    changes = target.process_env()
    assert changes["AWS_PROFILE"] is None and changes["AWS_WEB_IDENTITY_TOKEN_FILE"] is None
    assert changes["AWS_ACCOUNT_ID"] == "123456789012"  # the role's account, whatever the shell had
    assert changes["AWS_SESSION_TOKEN"] and changes["AWS_CREDENTIAL_EXPIRATION"]
    assert "assumed-role/deployer/branchstack-harness" in target.describe()
    assert info["access_key_id"] is None  # no secret travels in the stack description


def test_an_assumed_role_is_refreshed_before_it_expires() -> None:
    """The role was assumed once for the whole run: after its hour, every call failed."""
    now = [dt.datetime.now(dt.UTC)]
    creds = RunCredentials(profile=None, role_arn=ROLE, region="us-east-1", session_seconds=900, now=lambda: now[0])
    first = creds.env()
    assert creds.assumed == 1 and creds.env() == first  # fresh: no second AssumeRole
    now[0] += dt.timedelta(seconds=650)  # inside the 300 s refresh-ahead window of a 900 s session
    second = creds.env()
    assert creds.assumed == 2 and second["AWS_ACCESS_KEY_ID"] != first["AWS_ACCESS_KEY_ID"]
    assert creds.session().get_credentials() is creds.credentials  # every client shares them, refreshed in place


def test_a_worker_assumes_the_role_from_the_runs_source_and_refreshes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """An xdist worker's keys were the controller's at spawn: static, gone with the role's session."""
    import json

    now = [dt.datetime.now(dt.UTC)]
    run = RunCredentials(profile="base", role_arn=OTHER_ROLE, region="us-east-1", session_seconds=900)
    spec = json.loads(json.dumps(run.worker_spec()))  # through workerinput
    assert RunCredentials(profile=None, role_arn=None, region="us-east-1").worker_spec() is None  # nothing expires
    # The worker's environment: the controller's exported keys; the profile's files only in the spec.
    exported = run.env()
    for var in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(var)
    for k, v in exported.items():
        monkeypatch.setenv(k, v)
    worker = aws_credentials.for_worker(spec, now=lambda: now[0])
    assert "AWS_CONFIG_FILE" not in os.environ  # the worker's environment is as it was
    assert os.environ["AWS_ACCESS_KEY_ID"] == exported["AWS_ACCESS_KEY_ID"]
    first = worker.env()
    assert worker.assumed == 1 and worker.source.describe() == f"role {OTHER_ROLE} assumed with profile base"
    assert first["AWS_ACCESS_KEY_ID"] != exported["AWS_ACCESS_KEY_ID"] and whoami(first) == "222222222222"
    now[0] += dt.timedelta(seconds=650)  # inside the refresh-ahead window of a 900 s session
    second = aws_credentials.process_env(worker)
    assert worker.assumed == 2 and second["AWS_ACCESS_KEY_ID"] != first["AWS_ACCESS_KEY_ID"]
    assert second["AWS_PROFILE"] is None and second["AWS_CREDENTIAL_EXPIRATION"]


def test_refresh_windows_fit_the_session() -> None:
    assert refresh_windows(3600) == (900, 600)  # botocore's own for an hour
    assert refresh_windows(900) == (300, 150)
    assert aws_credentials.ROLE_SESSION_SECONDS == 3600


@pytest.mark.parametrize(
    ("env", "region", "source", "forced"),
    [
        ({}, "us-east-1", "fallback: no region set", False),
        ({"AWS_DEFAULT_REGION": "eu-north-1"}, "eu-north-1", "AWS_DEFAULT_REGION", True),
        ({"AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "eu-north-1"}, "ap-south-1", "AWS_REGION", True),
        ({"HARNESS_REGION": "ca-central-1", "AWS_REGION": "ap-south-1"}, "ca-central-1", "env HARNESS_REGION", True),
        ({"HARNESS_AWS_PROFILE": "other"}, "eu-west-1", "profile other", True),
    ],
)
def test_region_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], region: str, source: str, forced: bool
) -> None:
    """The region was us-east-1 whatever the environment or profile said, and forced onto the deploy."""
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    harness_env = {k: v for k, v in env.items() if k.startswith("HARNESS_")}
    target = AwsTarget(settings(tmp_path, **harness_env))
    target.start()
    assert (target.region, target.region_source) == (region, source)
    assert ("AWS_REGION" in target.env()) is forced
    if forced:
        assert target.env()["AWS_DEFAULT_REGION"] == region


def test_an_account_outside_the_allow_list_is_refused(tmp_path: Path) -> None:
    target = AwsTarget(settings(tmp_path, HARNESS_ALLOWED_ACCOUNTS="111111111111,222222222222"))
    with pytest.raises(GuardError, match="not in allowed-accounts"):
        target.start()
    AwsTarget(settings(tmp_path, HARNESS_ALLOWED_ACCOUNTS="123456789012")).start()


def test_the_tag_update_stays_within_cloudformations_fifty_tags() -> None:
    ours = {f"harness:{i}": "v" for i in range(8)}
    assert len(tags.merged({f"team:{i}": "v" for i in range(42)}, ours, stack="s")) == 50
    # A key the stack already has is replaced, not sent twice.
    assert tags.merged({"harness:0": "old"}, ours, stack="s")["harness:0"] == "v"
    with pytest.raises(DeployError, match="50 tags") as err:
        tags.merged({f"team:{i}": "v" for i in range(43)}, ours, stack="s")
    assert "at most 42 tags of its own" in err.value.render()
