"""A real AWS account: boto3's default chain, a named profile, or an assumed role.

The credentials are resolved once (``aws_credentials.RunCredentials``) and
every process of the run works as that one identity: the harness's clients,
the deploy and destroy commands, and the tests. The deploy command gets the
keys (never ``AWS_PROFILE`` beside them) and the region, and nothing else, so
it is the production deploy run as the checked identity.

The region: ``--region`` (or ``HARNESS_REGION``, ``[tool.harness]``) if set;
else ``AWS_REGION``, ``AWS_DEFAULT_REGION``, the profile's ``region``; else
us-east-1 for the harness's own calls, and then the deploy gets no region
from the harness (its own configuration decides, as in production).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import boto3
import botocore.exceptions

from harness import environment
from harness.aws_errors import explain
from harness.errors import EmulatorDied, GuardError, TargetError
from harness.stack import CLIENT_CONFIG, TargetInfo
from harness.targets.aws_credentials import COMPETING_VARS, RunCredentials

if TYPE_CHECKING:
    from harness.settings import Settings

FALLBACK_REGION = "us-east-1"


def resolve_region(settings: Settings, env: Mapping[str, str]) -> tuple[str, str]:
    """(region, where it came from): the setting, the environment, the profile, or the fallback."""
    if settings.source("region") != "default":
        return settings.region, settings.source("region")
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if env.get(var):
            return env[var], var
    try:
        with environment.LOCK:
            profile_region = boto3.Session(profile_name=settings.aws_profile).region_name
    except botocore.exceptions.ProfileNotFound:
        profile_region = None
    if profile_region:
        return profile_region, f"profile {settings.aws_profile or 'default'}"
    return FALLBACK_REGION, "fallback: no region set"


class AwsTarget:
    kind = "aws"

    pid: int | None = None  # no emulator process of ours
    started_empty = False
    died: EmulatorDied | None = None  # a remote target does not die under the run

    def __init__(
        self, settings: Settings, session: boto3.Session | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        import os

        self.settings = settings
        self.region, self.region_source = resolve_region(settings, os.environ if env is None else env)
        self._given = session
        self.credentials: RunCredentials | None = None
        self.account: str | None = None
        self.arn: str | None = None

    @property
    def identity(self) -> str:
        """Who the run works as, for messages: the ARN and where its credentials came from."""
        if self.credentials is None:
            return "(credentials not resolved yet)"
        return f"{self.arn or '?'} ({self.credentials.source.describe()})"

    def start(self) -> TargetInfo:
        s = self.settings
        try:
            self.credentials = RunCredentials(
                profile=s.aws_profile, role_arn=s.role_arn, region=self.region, base=self._given
            )
            ident = self.session().client("sts", config=CLIENT_CONFIG).get_caller_identity()
        except botocore.exceptions.NoCredentialsError:
            raise TargetError(
                "no AWS credentials found for --target aws",
                hint="configure a profile (--aws-profile), environment keys, or an instance/OIDC role",
            ) from None
        except botocore.exceptions.ProfileNotFound as exc:
            raise TargetError(f"{exc}", hint="name a profile of your AWS config with --aws-profile") from None
        except Exception as exc:  # noqa: BLE001 - any AWS failure here is the user's to fix
            who = self.credentials.source.describe() if self.credentials else f"profile {s.aws_profile or 'default'}"
            raise TargetError(
                explain(exc, identity=who, call="sts:AssumeRole" if s.role_arn else "sts:GetCallerIdentity"),
                hint="check --aws-profile / --role-arn and the role's trust policy",
            ) from None
        self.account, self.arn = ident["Account"], ident["Arn"]
        allowed = s.allowed_accounts
        if allowed and self.account not in allowed:
            raise GuardError(
                f"the credentials are for account {self.account} ({self.identity}), which is not in "
                f"allowed-accounts ({', '.join(allowed)}); refusing to deploy or delete anything there",
                hint="use a profile or role for one of the allowed accounts, or extend allowed-accounts",
            )
        return self.info()

    def session(self) -> boto3.Session:
        """The run's boto3 session (its credentials refresh in place)."""
        if self.credentials is None:
            raise TargetError("the aws target is not started")
        return self.credentials.session()

    def info(self) -> TargetInfo:
        # No secret travels in the stack description: every process reads the
        # run's credentials from its environment (see exported_env).
        return TargetInfo(
            kind="aws",
            region=self.region,
            endpoint_url=None,
            access_key_id=None,
            secret_access_key=None,
            session_token=None,
            profile=None,
        )

    def check(self) -> None:
        return None

    def region_env(self) -> dict[str, str]:
        """The region for child processes, unless nobody chose one (then their own configuration decides)."""
        if self.region_source.startswith("fallback"):
            return {}
        return {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region}

    def env(self) -> dict[str, str]:
        """Credentials (fresh), their account and the region for the deploy and destroy commands and the tests."""
        assert self.credentials is not None
        account = {"AWS_ACCOUNT_ID": self.account} if self.account else {}
        return {**self.region_env(), **self.credentials.env(), **account}

    def process_env(self) -> dict[str, str | None]:
        """The test process's environment changes: the run's credentials in, every competing variable out."""
        return {**dict.fromkeys(COMPETING_VARS), **self.env()}

    def worker_credentials(self) -> dict[str, Any] | None:
        """What an xdist worker needs to hold refreshable credentials of its own (a role only)."""
        return self.credentials.worker_spec() if self.credentials is not None else None

    def describe(self) -> str:
        where = f"{self.region} ({self.region_source})"
        return f"AWS account {self.account} as {self.identity} in {where}"

    def stop(self, *, keep: bool = False) -> None:
        return None
