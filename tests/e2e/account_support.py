"""moto's server as the stand-in for a real AWS account.

The harness, its deploy and destroy commands and the tests reach it through
the standard ``AWS_ENDPOINT_URL``, so boto3's default chain, profiles, and
``--role-arn`` work as against an account: moto maps the keys an AssumeRole
returns to the role's account, so a profile whose role lives in account
222222222222 really is another account. Everything else (keys in the
environment, a profile's own keys) is account 123456789012.

* ``Account``: the server's URL, the AWS config and credentials files the
  test writes (profiles ``base``, ``other``, ``sandbox``), the environment a
  run gets, and boto3 clients for the test's own checks (in either account);
* ``account_project``: a throw-away git project whose deploy and destroy
  commands are small boto3 scripts that write down who they ran as (ARN, key
  id, AWS_PROFILE, region) before calling CloudFormation, and whose integration
  test calls plain ``boto3`` and writes down the same;
* ``identities``: those records.

The server runs in the test's own process (``ThreadedMotoServer`` on a free
loopback port, its state reset first), so each test is a few seconds.
"""

from __future__ import annotations

import json
import logging
import textwrap
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from e2e_support import PYTHON, git, toml_list

HOME_ACCOUNT = "123456789012"
OTHER_ACCOUNT = "222222222222"
ROLE_ARN = f"arn:aws:iam::{HOME_ACCOUNT}:role/ci-deployer"
OTHER_ROLE_ARN = f"arn:aws:iam::{OTHER_ACCOUNT}:role/other-deployer"
ENV_KEY = "AKIAENVIRONMENTKEY01"  # what the CI runner has in its environment
BASE_KEY = "AKIAPROFILEBASEKEY01"
SANDBOX_REGION = "eu-central-1"
OTHER_REGION = "eu-west-1"

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Description: The account tier's stack; services moto's CloudFormation deploys.
Resources:
  Items:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
  Jobs:
    Type: AWS::SQS::Queue
Outputs:
  TableName:
    Value: {Ref: Items}
  QueueUrl:
    Value: {Ref: Jobs}
"""

# Writes who it runs as. A region comes from the
# environment, or (as a samconfig.toml would give it) us-east-1.
_WHO = """\
import json, os, sys
import boto3

def who(role):
    region = os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    ident = boto3.client("sts", region_name=region).get_caller_identity()
    record = {
        "who": role, "arn": ident["Arn"], "account": ident["Account"],
        "key": os.environ.get("AWS_ACCESS_KEY_ID"), "profile": os.environ.get("AWS_PROFILE"),
        "region": os.environ.get("AWS_REGION"), "default_region": os.environ.get("AWS_DEFAULT_REGION"),
        "expiration": os.environ.get("AWS_CREDENTIAL_EXPIRATION"),
    }
    with open(os.environ["IDENTITY_LOG"], "a") as f:
        f.write(json.dumps(record) + "\\n")

def region_kwargs():
    return {} if os.environ.get("AWS_DEFAULT_REGION") else {"region_name": "us-east-1"}
"""

# The deploy and destroy scripts call CloudFormation through boto3 in the process that
# wrote down its identity (one interpreter per command, where the AWS CLI was two or three:
# each about half a second of CPU). boto3 and the CLI resolve credentials, profiles, regions and
# AWS_ENDPOINT_URL through the same botocore chain, so the records say who the calls ran as.
# create_stack rather than a change set: moto 5.2.5 gives a stack made from a change set no outputs.
DEPLOY = (
    _WHO
    + """
who("deploy")
stack, words = sys.argv[1], [w.split("=", 1) for w in sys.argv[2:]]
cfn = boto3.client("cloudformation", **region_kwargs())
cfn.create_stack(StackName=stack, TemplateBody=open("template.yaml").read(),
                 Tags=[{"Key": k, "Value": v} for k, v in words])
cfn.get_waiter("stack_create_complete").wait(StackName=stack, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
"""
)

DESTROY = (
    _WHO
    + """
who("destroy")
boto3.client("cloudformation", **region_kwargs()).delete_stack(StackName=sys.argv[1])
"""
)

TEST = """\
import json
import os

import boto3
import who


def test_plain_boto3_works_as_the_run_identity(stack):
    who.who("test")
    assert "AWS_PROFILE" not in os.environ
    table = stack.outputs["TableName"]
    boto3.client("dynamodb").put_item(TableName=table, Item={"pk": {"S": "plain"}})
    item = stack.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": "plain"}})["Item"]
    assert item["pk"]["S"] == "plain"
"""


@dataclass
class Account:
    url: str
    home: Path

    @property
    def identity_log(self) -> Path:
        return self.home / "identities.jsonl"

    def env(self, extra: Mapping[str, str] | None = None, *, keys: bool = True) -> dict[str, str]:
        """A run's environment: the endpoint, the config files, and (``keys``) a CI runner's environment keys."""
        env = {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_CONFIG_FILE": str(self.home / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.home / "credentials"),
            "IDENTITY_LOG": str(self.identity_log),
            "HARNESS_BRANCH": "feature/account",
            "HARNESS_LEASE_WAIT": "0",
        }
        if keys:
            env |= {"AWS_ACCESS_KEY_ID": ENV_KEY, "AWS_SECRET_ACCESS_KEY": "env-secret"}
        return env | dict(extra or {})

    def client(self, service: str, *, region: str = "us-east-1", account: str = HOME_ACCOUNT) -> Any:
        """A client for the test's own checks, in ``account`` (another account through an assumed role)."""
        session = boto3.Session(aws_access_key_id=ENV_KEY, aws_secret_access_key="env-secret", region_name=region)
        if account != HOME_ACCOUNT:
            role = f"arn:aws:iam::{account}:role/checker"
            c = session.client("sts", endpoint_url=self.url).assume_role(RoleArn=role, RoleSessionName="check")
            creds = c["Credentials"]
            session = boto3.Session(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
                region_name=region,
            )
        return session.client(service, endpoint_url=self.url)

    def stacks(self, *, region: str = "us-east-1", account: str = HOME_ACCOUNT) -> dict[str, str]:
        """Live stacks: name -> status."""
        out = self.client("cloudformation", region=region, account=account).describe_stacks()["Stacks"]
        return {s["StackName"]: s["StackStatus"] for s in out if s["StackStatus"] != "DELETE_COMPLETE"}

    def identities(self) -> list[dict[str, Any]]:
        if not self.identity_log.exists():
            return []
        return [json.loads(line) for line in self.identity_log.read_text().splitlines()]


def start_account(home: Path) -> Iterator[Account]:
    """moto's server on a free loopback port, its state reset, with the test's AWS config files."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=30).read()  # noqa: S310 - loopback
        home.mkdir(parents=True, exist_ok=True)
        (home / "credentials").write_text(
            f"[base]\naws_access_key_id = {BASE_KEY}\naws_secret_access_key = base-secret\n"
            f"[sandbox]\naws_access_key_id = {BASE_KEY}\naws_secret_access_key = base-secret\n"
        )
        (home / "config").write_text(
            "[profile base]\n"
            f"[profile other]\nrole_arn = {OTHER_ROLE_ARN}\nsource_profile = base\nregion = {OTHER_REGION}\n"
            f"[profile sandbox]\nregion = {SANDBOX_REGION}\n"
        )
        yield Account(url, home)
    finally:
        server.stop()


def account_project(root: Path, *, branch: str = "feature/account", extra_toml: str = "") -> Path:
    """A git project deploying ``TEMPLATE`` with the identity-recording deploy and destroy scripts."""
    root.mkdir(parents=True, exist_ok=True)
    deploy = [PYTHON, "deploy.py", "{stack_name}", "{tags}"]
    destroy = [PYTHON, "destroy.py", "{stack_name}"]
    (root / "pyproject.toml").write_text(
        f'[tool.harness]\napp = "acct"\ndeploy-command = {toml_list(deploy)}\n'
        f"destroy-command = {toml_list(destroy)}\n"
        'fingerprint-paths = ["template.yaml"]\n' + extra_toml
    )
    (root / "template.yaml").write_text(TEMPLATE)
    (root / "who.py").write_text(_WHO)
    (root / "deploy.py").write_text(DEPLOY)
    (root / "destroy.py").write_text(DESTROY)
    (root / "conftest.py").write_text("import sys, pathlib\nsys.path.insert(0, str(pathlib.Path(__file__).parent))\n")
    tests = root / "tests" / "integration"
    tests.mkdir(parents=True)
    (tests / "test_account.py").write_text(textwrap.dedent(TEST))
    (root / ".gitignore").write_text("harness-report/\n__pycache__/\n")
    git(root, "init", "-q", "-b", branch)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "account project")
    return root
