"""One source of credentials for a run against a real account.

The harness resolves the target's credentials once, at the start of the run:
a named profile (``--aws-profile``), a role assumed from it or from boto3's
default chain (``--role-arn``), or the default chain itself. Every process
of the run then works as that one identity:

* the harness's own clients (lease, deploy checks, drift, traces, teardown,
  leak probes) use a boto3 session built on these credentials;
* the deploy command, the destroy command and the test process receive them
  as environment variables (keys, session token and its expiry), with every
  variable that could compete with them (``AWS_PROFILE``, web-identity and
  container variables) removed, so an SDK or CLI cannot pick another identity.

An assumed role is refreshed before it expires: botocore's
``AssumeRoleCredentialFetcher`` behind ``DeferredRefreshableCredentials``,
with a refresh-ahead window scaled to the session's length (AWS's shortest
session is 900 s; botocore's fixed 15-minute window would refresh such a
session on every call). Child processes started later get the refreshed
keys; the test process's environment is refreshed between tests, and its
SDK clients re-read it through ``AWS_CREDENTIAL_EXPIRATION``.

A pytest-xdist worker is a test process of its own: the controller cannot
refresh its environment. So, for a role, the controller hands each worker
what it assumed the role from (:meth:`RunCredentials.worker_spec`: the
profile, the role and the credential variables of the environment the run
started in), and the worker assumes the role itself (:func:`for_worker`),
refreshed the same way, and refreshes its own environment between tests.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.credentials
import botocore.session
from dateutil.tz import tzutc

from harness import boto_sessions, environment
from harness.stack import CLIENT_CONFIG

#: What the role's session lasts (AssumeRole's own default). Refreshing makes longer runs safe.
ROLE_SESSION_SECONDS = 3600
ROLE_SESSION_NAME = "branchstack-harness"

#: Variables that would let an SDK or CLI pick credentials other than the run's.
COMPETING_VARS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    # The SDKs pair it with the keys they find (account-based endpoints, e.g. DynamoDB's): one of another
    # account sends the run's calls to that account's endpoint.
    "AWS_ACCOUNT_ID",
)

#: The variables that say where a process's credentials come from (a worker resolves them as the run did).
SOURCE_VARS = (*COMPETING_VARS, "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")

Now = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(tzutc())


#: The clock the refresh windows are measured with (tests move it forward).
CLOCK: Now = utcnow


def refresh_windows(seconds: float) -> tuple[int, int]:
    """(advisory, mandatory) refresh-ahead windows for a session of ``seconds``.

    botocore's defaults (15 and 10 minutes) for an hour-long session; a third
    and a sixth of shorter ones, so a 900 s session is refreshed after 600 s.
    """
    return int(min(900, seconds / 3)), int(min(600, seconds / 6))


class _RoleCredentials(botocore.credentials.DeferredRefreshableCredentials):
    """Assumed-role credentials with refresh-ahead windows fitted to the session's length."""

    def __init__(self, refresh_using: Callable[[], Mapping[str, Any]], *, session_seconds: float, now: Now) -> None:
        super().__init__(refresh_using=refresh_using, method="assume-role", time_fetcher=now)
        self._advisory_refresh_timeout, self._mandatory_refresh_timeout = refresh_windows(session_seconds)


@dataclass(frozen=True)
class Source:
    """Where the run's credentials come from, in words for the terminal."""

    profile: str | None
    role_arn: str | None
    chain_method: str | None  # botocore's name for where the default chain found them

    def describe(self) -> str:
        base = f"profile {self.profile}" if self.profile else f"the default credential chain ({self.chain_method})"
        return f"role {self.role_arn} assumed with {base}" if self.role_arn else base


class RunCredentials:
    """The run's one set of AWS credentials (see the module docstring)."""

    def __init__(
        self,
        *,
        profile: str | None,
        role_arn: str | None,
        region: str,
        session_seconds: int | None = None,
        now: Now | None = None,
        base: boto3.Session | None = None,
    ) -> None:
        self.region = region
        self.profile = profile
        self.role_arn = role_arn
        #: the credential variables this run started from (what a worker needs to assume the role itself)
        env = environment.snapshot()
        self.source_env = {k: env[k] for k in SOURCE_VARS if k in env}
        self.now = now or CLOCK
        self.session_seconds = session_seconds = session_seconds or ROLE_SESSION_SECONDS
        with environment.LOCK:  # botocore reads the environment here
            self._base = base or boto3.Session(profile_name=profile, region_name=region)
            source = self._base.get_credentials()
        if source is None:
            from botocore.exceptions import NoCredentialsError

            raise NoCredentialsError()
        self.assumed = 0  # AssumeRole calls made (the first one and each refresh)
        self.source = Source(profile, role_arn, None if profile else getattr(source, "method", "?"))
        if role_arn:
            core = self._base._session  # noqa: SLF001 - boto3 exposes no other way to its botocore session
            fetcher = botocore.credentials.AssumeRoleCredentialFetcher(
                client_creator=functools.partial(core.create_client, region_name=region, config=CLIENT_CONFIG),
                source_credentials=source,
                role_arn=role_arn,
                extra_args={"RoleSessionName": ROLE_SESSION_NAME, "DurationSeconds": session_seconds},
                cache={},
                expiry_window_seconds=0,
            )
            self.credentials: botocore.credentials.Credentials = _RoleCredentials(
                self._assume(fetcher), session_seconds=session_seconds, now=self.now
            )
        else:
            self.credentials = source

    def _assume(self, fetcher: botocore.credentials.AssumeRoleCredentialFetcher) -> Callable[[], Mapping[str, Any]]:
        def fetch() -> Mapping[str, Any]:
            fetcher._cache.clear()  # noqa: SLF001 - the refresh windows above decide when to assume again
            self.assumed += 1
            with environment.LOCK:  # builds an STS client, on whichever thread finds the credentials due
                return fetcher.fetch_credentials()

        return fetch

    def session(self) -> boto3.Session:
        """A boto3 session on these credentials (refreshed in place for a role)."""
        with environment.LOCK:
            core = botocore.session.Session(profile=self.profile)
            core._credentials = self.credentials  # noqa: SLF001 - the documented way to share refreshable credentials
            return boto_sessions.session(core, region_name=self.region)

    def expiry(self) -> dt.datetime | None:
        """When the current credentials end (None: long-term keys that do not expire)."""
        self.credentials.get_frozen_credentials()  # refreshes first if due
        return getattr(self.credentials, "_expiry_time", None)

    def worker_spec(self) -> dict[str, Any] | None:
        """What a pytest-xdist worker needs to assume the role itself (None without a role: nothing expires)."""
        if self.role_arn is None:
            return None
        return {
            "profile": self.profile,
            "role_arn": self.role_arn,
            "region": self.region,
            "session_seconds": self.session_seconds,
            "source_env": dict(self.source_env),
        }

    def env(self) -> dict[str, str]:
        """The credentials as the environment any SDK or CLI reads (fresh: refreshed first if due)."""
        frozen = self.credentials.get_frozen_credentials()
        env = {"AWS_ACCESS_KEY_ID": frozen.access_key, "AWS_SECRET_ACCESS_KEY": frozen.secret_key}
        if frozen.token:
            env["AWS_SESSION_TOKEN"] = frozen.token
        expiry = getattr(self.credentials, "_expiry_time", None)
        if isinstance(expiry, dt.datetime):
            env["AWS_CREDENTIAL_EXPIRATION"] = expiry.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return env


def for_worker(spec: Mapping[str, Any], now: Now | None = None) -> RunCredentials:
    """The run's role, assumed by a worker from the credentials the run started from (see ``worker_spec``).

    The worker's environment holds the controller's exported keys; the source
    credentials are resolved in the run's original credential variables instead.
    """
    with environment.replaced(SOURCE_VARS, spec["source_env"]):
        base = boto3.Session(profile_name=spec["profile"], region_name=spec["region"])
        base.get_credentials()  # resolved now, in that environment
    return RunCredentials(
        profile=spec["profile"],
        role_arn=spec["role_arn"],
        region=spec["region"],
        session_seconds=int(spec["session_seconds"]),
        now=now,
        base=base,
    )


def process_env(credentials: RunCredentials) -> dict[str, str | None]:
    """A test process's environment changes: the credentials' keys in, every competing variable out."""
    return {**dict.fromkeys(COMPETING_VARS), **credentials.env()}


def without_competing(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without any variable that could choose other credentials."""
    return {k: v for k, v in env.items() if k not in COMPETING_VARS}
