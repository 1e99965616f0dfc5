"""A real AWS account: boto3's default chain, a named profile, or an assumed role.

The harness adds nothing to the deploy's environment but the region (and the
assumed role's temporary credentials, if ``role-arn`` is set), so the deploy
is the production one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
import botocore.exceptions

from harness.errors import EmulatorDied, TargetError
from harness.stack import CLIENT_CONFIG, TargetInfo

if TYPE_CHECKING:
    from harness.settings import Settings


class AwsTarget:
    kind = "aws"

    pid: int | None = None  # no emulator process of ours
    died: EmulatorDied | None = None  # a remote target does not die under the run

    def __init__(self, settings: Settings, session: boto3.Session | None = None) -> None:
        self.settings = settings
        self._base = session or boto3.Session(profile_name=settings.aws_profile, region_name=settings.region)
        self._creds: dict[str, str] | None = None
        self.account: str | None = None
        self.arn: str | None = None

    def start(self) -> TargetInfo:
        sts = self._base.client("sts", config=CLIENT_CONFIG)
        try:
            if self.settings.role_arn:
                resp = sts.assume_role(RoleArn=self.settings.role_arn, RoleSessionName="branchstack-harness")
                c = resp["Credentials"]
                self._creds = {
                    "AWS_ACCESS_KEY_ID": c["AccessKeyId"],
                    "AWS_SECRET_ACCESS_KEY": c["SecretAccessKey"],
                    "AWS_SESSION_TOKEN": c["SessionToken"],
                }
                sts = boto3.Session(
                    aws_access_key_id=c["AccessKeyId"],
                    aws_secret_access_key=c["SecretAccessKey"],
                    aws_session_token=c["SessionToken"],
                    region_name=self.settings.region,
                ).client("sts", config=CLIENT_CONFIG)
            ident = sts.get_caller_identity()
        except botocore.exceptions.NoCredentialsError:
            raise TargetError(
                "no AWS credentials found for --target aws",
                hint="configure a profile (--aws-profile), environment keys, or an instance/OIDC role",
            ) from None
        except botocore.exceptions.ClientError as exc:
            raise TargetError(f"AWS refused the credentials: {exc}", hint="check --aws-profile / --role-arn") from None
        self.account, self.arn = ident["Account"], ident["Arn"]
        allowed = self.settings.allowed_accounts
        if allowed and self.account not in allowed:
            from harness.errors import GuardError

            raise GuardError(
                f"the credentials are for account {self.account}, which is not in allowed-accounts "
                f"({', '.join(allowed)}); refusing to deploy or delete anything there",
                hint="use a profile or role for one of the allowed accounts, or extend allowed-accounts",
            )
        return self.info()

    def info(self) -> TargetInfo:
        creds = self._creds or {}
        return TargetInfo(
            kind="aws",
            region=self.settings.region,
            endpoint_url=None,
            access_key_id=creds.get("AWS_ACCESS_KEY_ID"),
            secret_access_key=creds.get("AWS_SECRET_ACCESS_KEY"),
            session_token=creds.get("AWS_SESSION_TOKEN"),
            profile=None if creds else self.settings.aws_profile,
        )

    def check(self) -> None:
        return None

    def env(self) -> dict[str, str]:
        env = {"AWS_REGION": self.settings.region, "AWS_DEFAULT_REGION": self.settings.region}
        if self._creds:
            env.update(self._creds)
        elif self.settings.aws_profile:
            env["AWS_PROFILE"] = self.settings.aws_profile
        return env

    def describe(self) -> str:
        return f"AWS account {self.account} as {self.arn} in {self.settings.region}"

    def stop(self, *, keep: bool = False) -> None:
        return None
