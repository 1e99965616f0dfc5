"""The table of settings: one short row per setting, and the frozen :class:`Settings` it resolves to.

A row names the setting, its default, its converter and its help; the flag
(``--name-with-dashes``), the ``[tool.harness]`` key (``name-with-dashes``) and
the environment variable (``HARNESS_NAME``) follow from the name, and can be
given explicitly where one must differ. Choices are Enums.

To add a setting: one row in :data:`SETTINGS` and the typed attribute in :class:`Settings`.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from harness.settings import convert as c
from harness.settings.convert import Converter, Display


class Target(StrEnum):
    """Where the stack runs."""

    LOCAL = "local"  # the embedded emulator
    AWS = "aws"  # a real AWS account
    ENDPOINT = "endpoint"  # an emulator already listening at --endpoint-url


class Retained(StrEnum):
    """What the teardown does with resources the template retains."""

    DELETE = "delete"  # a branch copy is not production
    KEEP = "keep"  # named, left for `harness gc`, the run does not fail


class DeployKind(StrEnum):
    """What the deploy command leaves: CloudFormation stacks, or resources found by the harness's tags."""

    CLOUDFORMATION = "cloudformation"
    TAGGED = "tagged"  # Terraform, Pulumi, scripts: no stack, resources carry $HARNESS_STACK_TAGS
    AUTO = "auto"  # CloudFormation stacks if any carry the tags, else tagged resources


class StackMode(StrEnum):
    """Whether a session deploys the branch stack."""

    AUTO = "auto"
    ON = "on"
    OFF = "off"


class BehaviourMode(StrEnum):
    """What a run does with the scenarios' behaviour against the committed snapshot."""

    OFF = "off"  # not derived, not compared
    REPORT = "report"  # compared and reported (terminal, HTML, Markdown); never fails the run
    GATE = "gate"  # compared; any difference fails the run and that scenario's JUnit case


class RuntimeMismatchMode(StrEnum):
    """What a run does when a function's declared runtime has no matching local interpreter."""

    WARN = "warn"  # say so once (after the deploy and in the summary), run it on another
    ERROR = "error"  # refuse the run


@dataclass(frozen=True)
class Setting:
    """One setting: its name, default, converter and help; flag, key and env follow from the name.

    ``switch`` makes the flag take no value (``store_true``); otherwise it takes
    one, shown as ``metavar``. ``default_doc`` replaces the displayed default in
    help and docs when the real default is computed elsewhere.
    """

    name: str
    default: object
    convert: Converter
    help: str
    expected: str = ""
    metavar: str | None = None
    switch: bool = False
    display: Display = c.show
    default_doc: str | None = None
    flag: str = ""
    key: str = ""
    env: str = ""

    def __post_init__(self) -> None:
        dashed = self.name.replace("_", "-")
        for attr, derived in (("flag", f"--{dashed}"), ("key", dashed), ("env", f"HARNESS_{self.name.upper()}")):
            if not getattr(self, attr):
                object.__setattr__(self, attr, derived)

    @property
    def choices(self) -> tuple[str, ...] | None:
        options = getattr(self.convert, "options", None)
        return tuple(o.value for o in options) if options else None

    def describe_default(self) -> str:
        if self.default_doc is not None:
            return self.default_doc
        return self.display(self.default)

    def expected_text(self) -> str:
        if self.expected:
            return self.expected
        if self.choices:
            return "one of " + ", ".join(self.choices)
        return "a valid value"

    def shown_metavar(self) -> str:
        if self.metavar:
            return self.metavar
        if self.choices:
            return "{" + ",".join(self.choices) + "}"
        return self.name.upper()


_COMMAND = (
    "a list of strings in pyproject.toml, e.g. [{}]; on the command line "
    "or in the environment a command line, split like a shell would (never run by one)"
)
_YES_NO = f"true or false (on the command line or in the environment: one of {c.BOOL_WORDS})"

# fmt: off
SETTINGS: tuple[Setting, ...] = (
    Setting("target", Target.LOCAL, c.choice(Target),
            "Where the stack runs: the embedded emulator (local), a real AWS account (aws), "
            "or an emulator already listening at --endpoint-url (endpoint)."),
    Setting("stack", StackMode.AUTO, c.choice(StackMode),
            "Whether this session deploys the branch stack: auto deploys when the run includes "
            "one of the integration paths; on always; off never."),
    Setting("integration_paths", ("scenarios", "tests/integration"), c.name_list,
            "Test paths that need the branch stack (stack=auto deploys when a run includes one).",
            expected="a list of paths relative to the project root, or one comma-separated string", metavar="PATHS"),
    Setting("endpoint_url", None, c.http_url,
            "Endpoint of an already running emulator. Required with target=endpoint, refused with target=local.",
            expected="an http:// or https:// URL with a host, e.g. http://localhost:4566", metavar="URL",
            display=c.show_url),
    Setting("region", "us-east-1", c.region,
            "AWS region the stack is deployed to (on aws, only a region set here or by AWS is given to the deploy).",
            expected="an AWS region name such as us-east-1, eu-west-2 or us-gov-west-1", metavar="REGION",
            default_doc="target aws: AWS_REGION, AWS_DEFAULT_REGION or the profile's, else us-east-1"),
    Setting("app", None, c.app_name, "Application name, the {app} part of stack names.",
            expected="1 to 30 characters: a lowercase letter, then lowercase letters, digits or '-'", metavar="NAME",
            default_doc="[project].name or the project folder name"),
    Setting("stack_name_pattern", "{app}-{stage}", c.stack_name_pattern,
            "How a stack name is built from {app} and {stage}.",
            expected="a format string whose only fields are {app} and {stage}, with {stage} present "
            "and no conversions or format specs, e.g. {app}-{stage}", metavar="PATTERN"),
    Setting("deploy_command", None, c.argv,
            "Command that deploys the branch stack (an argv list, never run through a shell).",
            expected=_COMMAND.format('"make", "deploy"'), metavar="COMMAND", display=c.show_argv),
    Setting("destroy_command", None, c.argv,
            "Command that removes the branch stack (an argv list, never run through a shell).",
            expected=_COMMAND.format('"make", "destroy"'), metavar="COMMAND", display=c.show_argv),
    Setting("deploy_kind", DeployKind.CLOUDFORMATION, c.choice(DeployKind),
            "What the deploy command creates: CloudFormation stacks (cloudformation); resources carrying "
            "the harness's tags without a stack, e.g. Terraform or Pulumi (tagged; needs destroy-command); "
            "or whichever is found after the deploy (auto)."),
    Setting("outputs_command", None, c.argv,
            "Command printing the deploy's outputs as JSON on stdout (terraform output -json, or a flat object "
            "such as pulumi stack output --json), run after the deploy; sensitive outputs are never shown.",
            expected=_COMMAND.format('"terraform", "output", "-json"'), metavar="COMMAND", display=c.show_argv),
    Setting("protected_stages", ("main", "master", "prod", "production"), c.name_list,
            "Stages the harness never deploys over or tears down on a shared target (aws, endpoint).",
            expected="a list of stage names, or one comma-separated string", metavar="STAGES"),
    Setting("keep_stack", False, c.boolean,
            "Leave the stack deployed after the session instead of tearing it down.",
            expected=f"true or false (in the environment: one of {c.BOOL_WORDS})", switch=True),
    Setting("aws_profile", None, c.non_empty_text, "AWS named profile used for target=aws.",
            expected="the name of a profile in your AWS config", metavar="PROFILE"),
    Setting("role_arn", None, c.role_arn, "IAM role to assume before deploying and testing.",
            expected="an IAM role ARN such as arn:aws:iam::123456789012:role/deployer", metavar="ARN"),
    Setting("iam_enforcement", True, c.boolean,
            "Enforce IAM policies in the emulator, so missing permissions fail as they would on AWS.",
            expected=_YES_NO, metavar="on|off"),
    Setting("runtime_mismatch", RuntimeMismatchMode.WARN, c.choice(RuntimeMismatchMode),
            "When no local interpreter matches a function's declared runtime (on the emulator): "
            "warn and run it on another, or refuse it."),
    Setting("report_dir", "harness-report", c.project_path,
            "Where reports and traces are written, relative to the project root.",
            expected="a directory path, relative to the project root", metavar="DIR"),
    Setting("deploy_timeout", 900, c.positive_number, "How long a deploy may take before it is abandoned.",
            expected="a positive number of seconds", metavar="SECONDS"),
    Setting("stack_ttl_hours", 24, c.positive_number,
            "Lifetime written into the stack's expires-at tag, for cleanup of forgotten stacks.",
            expected="a positive number of hours", metavar="HOURS"),
    Setting("fingerprint_paths", (), c.name_list,
            "The deploy's inputs: when they and the deploy command are unchanged, a healthy stack is not redeployed.",
            expected="a list of glob patterns relative to the project root, or one comma-separated string",
            metavar="GLOBS",
            default_doc="every project file but the test side (tests, scenarios, docs, CI configuration)"),
    Setting("redeploy", False, c.boolean, "Deploy even when the fingerprint of the deploy inputs is unchanged.",
            expected="true or false", switch=True),
    Setting("lease_wait", 900, c.non_negative_number,
            "How long to wait for another run holding this branch's stack (deploying it, or using it "
            "with other deploy inputs); 0 fails fast, naming the holder.",
            expected="a number of seconds (0: fail at once)", metavar="SECONDS"),
    Setting("shard", None, c.shard_spec,
            "Run shard i of n of the tests; the shards share one deploy and the last one tears down.",
            expected="i/n with 1 <= i <= n, e.g. 1/2", metavar="I/N",
            display=lambda v: "(not set)" if v is None else f"{v[0]}/{v[1]}",
            default_doc="CIRCLE_NODE_INDEX/CIRCLE_NODE_TOTAL when set"),
    Setting("shard_group", None, c.non_empty_text, "Identifies the shards that belong together.",
            expected="an id shared by the shards of one CI run", metavar="ID",
            default_doc="the CI run id (CIRCLE_WORKFLOW_ID, GITHUB_RUN_ID, CODEBUILD_BUILD_ID)"),
    Setting("drift_check", True, c.boolean,
            "After the deploy (or its skip), report resources changed outside CloudFormation.",
            expected="true or false", metavar="on|off"),
    Setting("retained", Retained.DELETE, c.choice(Retained),
            "After the teardown, what becomes of resources the template retains (DeletionPolicy: Retain, "
            "SAM layer versions): delete them (a branch copy is not production), or keep them, named, "
            "without failing the run."),
    Setting("allowed_accounts", (), c.account_list, "With target=aws, refuse to deploy or delete in any other account.",
            expected="a list of 12-digit AWS account ids, or one comma-separated string", metavar="IDS",
            default_doc="any account"),
    Setting("behaviour", BehaviourMode.REPORT, c.choice(BehaviourMode),
            "Each scenario's behaviour (calls, invocations, errors from its trace) against the committed "
            "snapshot: off, report the differences, or gate (a difference fails the run)."),
    Setting("behaviour_update", False, c.boolean,
            "Rewrite the behaviour snapshot from this run (new scenarios added, removed ones pruned).",
            expected="true or false", switch=True),
    Setting("behaviour_latency", None, c.ratio_above_one,
            "Opt-in latency check: report a call whose median duration in a scenario exceeds this ratio "
            "times its median over the previous runs (history in the report folder); reported, never gated.",
            expected="a ratio greater than 1, e.g. 3", metavar="RATIO", default_doc="off"),
    Setting("seed", None, c.seed_number,
            "Base seed of the per-test Faker data; a failing test prints it so the run can be repeated.",
            expected="a whole number from 0 to 4294967295", metavar="N", default_doc="random per run (printed in the header)"),
)
# fmt: on

BY_NAME: Mapping[str, Setting] = types.MappingProxyType({s.name: s for s in SETTINGS})
BY_KEY: Mapping[str, Setting] = types.MappingProxyType({s.key: s for s in SETTINGS})


def setting_by_name(name: str) -> Setting:
    return BY_NAME[name]


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one run. Build it with :func:`harness.settings.resolve`."""

    root: Path
    target: Target
    stack: StackMode
    integration_paths: tuple[str, ...]
    endpoint_url: str | None
    region: str
    app: str | None
    stack_name_pattern: str
    deploy_command: tuple[str, ...] | None
    destroy_command: tuple[str, ...] | None
    deploy_kind: DeployKind
    outputs_command: tuple[str, ...] | None
    protected_stages: tuple[str, ...]
    keep_stack: bool
    aws_profile: str | None
    role_arn: str | None
    iam_enforcement: bool
    runtime_mismatch: RuntimeMismatchMode
    report_dir: Path
    deploy_timeout: int | float
    stack_ttl_hours: int | float
    fingerprint_paths: tuple[str, ...]
    redeploy: bool
    lease_wait: int | float
    shard: tuple[int, int] | None
    shard_group: str | None
    drift_check: bool
    retained: Retained
    allowed_accounts: tuple[str, ...]
    behaviour: BehaviourMode
    behaviour_update: bool
    behaviour_latency: int | float | None
    seed: int | None
    sources: Mapping[str, str] = field(default_factory=dict, hash=False)
    notices: tuple[str, ...] = ()  # warnings worth showing (nothing was refused)

    def source(self, name: str) -> str:
        return self.sources.get(name, "default")

    def describe(self) -> list[tuple[str, str, str]]:
        """Rows of (pyproject key, displayed value, source), in table order."""
        return [(s.key, s.display(getattr(self, s.name)), self.source(s.name)) for s in SETTINGS]


def _check_table() -> None:
    """Guard the table against typos: names must match Settings' attributes."""
    fields = set(Settings.__dataclass_fields__) - {"root", "sources", "notices"}
    names = [s.name for s in SETTINGS]
    if len(set(names)) != len(names) or set(names) != fields:
        raise RuntimeError(f"SETTINGS and Settings disagree: {sorted(set(names) ^ fields)}")
    for attr in ("flag", "key", "env"):
        seen = [getattr(s, attr) for s in SETTINGS]
        if len(set(seen)) != len(seen):
            raise RuntimeError(f"duplicate {attr} in SETTINGS")


_check_table()
