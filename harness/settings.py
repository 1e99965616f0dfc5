"""One table of settings.

Every setting the harness reads is defined exactly once, in :data:`SETTINGS`:
its command-line flag, its key under ``[tool.harness]`` in ``pyproject.toml``,
its environment variable, its default, and the converter that checks and
normalises a raw value. Everything else is derived from that table: the pytest
options (:func:`add_pytest_options`), the ``harness`` CLI options
(:func:`add_argparse_options`), the README table (:func:`settings_markdown_table`)
and the resolved, frozen :class:`Settings` object (:func:`resolve`).

Precedence, highest first::

    command-line flag  >  environment variable  >  [tool.harness]  >  default

:func:`resolve` records where each value came from (``"cli"``,
``"env HARNESS_X"``, ``"pyproject.toml"`` or ``"default"``) so that the pytest
header can show it. Unknown ``[tool.harness]`` keys and bad values are refused
with a :class:`~harness.errors.ConfigError` that names the setting, where the
value came from, the value itself and what would have been accepted. All
problems are collected and reported together, not one per run.

An empty environment variable counts as unset. Environment variables with the
``HARNESS_`` prefix that are not in the table are ignored (other tools, such as
the Harness CI platform, use that prefix too), except that one spelt almost
like a setting's variable (``HARNESS_TAGRET``) gets a warning in
``Settings.notices``: a typo must not silently run against the wrong target.

Commands (``deploy-command``, ``destroy-command``) are argv lists and are never
handed to a shell: in ``pyproject.toml`` they must be written as a list of
strings; on the command line or in the environment they are split with
:func:`shlex.split`.

To add a setting: add one :class:`Setting` entry to :data:`SETTINGS` and the
matching typed attribute to :class:`Settings`.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import re
import shlex
import string
import tomllib
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from tabulate import tabulate

from harness.errors import ConfigError

__all__ = [
    "SETTINGS",
    "Invalid",
    "Setting",
    "Settings",
    "add_argparse_options",
    "add_pytest_options",
    "default_app",
    "find_root",
    "resolve",
    "setting_by_key",
    "setting_by_name",
    "settings_markdown_table",
]

PYPROJECT = "pyproject.toml"
TABLE = "[tool.harness]"

Origin = Literal["cli", "env", "toml", "default"]


# --------------------------------------------------------------------------- converters


class Invalid(ValueError):
    """Raised by a converter: ``reason`` says what is wrong with this value.

    ``expected`` overrides the setting's general description of valid values
    when the right answer depends on where the value came from.
    """

    def __init__(self, reason: str, *, expected: str | None = None) -> None:
        self.reason = reason
        self.expected = expected
        super().__init__(reason)


@dataclass(frozen=True)
class Context:
    """What a converter may need besides the raw value."""

    origin: Origin
    root: Path
    key: str

    @property
    def textual(self) -> bool:
        """True when the value came from the command line or the environment."""
        return self.origin in ("cli", "env")


Converter = Callable[[object, Context], Any]
Display = Callable[[Any], str]

_TRUE_WORDS = ("1", "true", "yes", "on")
_FALSE_WORDS = ("0", "false", "no", "off")
_BOOL_WORDS = ", ".join(w for pair in zip(_TRUE_WORDS, _FALSE_WORDS, strict=True) for w in pair)

_REGION_RE = re.compile(r"[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d", re.ASCII)
_APP_RE = re.compile(r"[a-z][a-z0-9-]{0,29}", re.ASCII)
_ROLE_ARN_RE = re.compile(r"arn:aws[a-zA-Z-]*:iam::\d{12}:role/[\w+=,.@/-]+", re.ASCII)
_PATTERN_FIELDS = ("app", "stage")


def _text(raw: object, what: str = "a string") -> str:
    if not isinstance(raw, str):
        raise Invalid(f"expected {what}, got {type(raw).__name__}")
    return raw.strip()


def choice(*choices: str) -> Converter:
    """One of a fixed set of words (exact match)."""

    def convert(raw: object, ctx: Context) -> str:
        value = _text(raw)
        if value in choices:
            return value
        close = difflib.get_close_matches(value.lower(), choices, n=1)
        extra = f"; did you mean {close[0]!r}?" if close else ""
        raise Invalid(f"not one of the choices{extra}")

    return convert


def http_url(raw: object, ctx: Context) -> str:
    value = _text(raw)
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a bad port
    except ValueError as exc:
        raise Invalid(f"not a URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise Invalid(f"scheme must be http or https, not {parts.scheme or 'missing'!r}")
    if not parts.hostname:
        raise Invalid("no host")
    if port == 0:
        raise Invalid("port 0 is not a usable port")
    return value


def matching(pattern: re.Pattern[str], what: str) -> Converter:
    """A string that fully matches ``pattern``."""

    def convert(raw: object, ctx: Context) -> str:
        value = _text(raw)
        if not pattern.fullmatch(value):
            raise Invalid(f"not {what}")
        return value

    return convert


def stack_name_pattern(raw: object, ctx: Context) -> str:
    """A ``str.format`` pattern using only ``{app}`` and ``{stage}``, plain."""
    value = _text(raw)
    try:
        parsed = list(string.Formatter().parse(value))
    except ValueError as exc:
        raise Invalid(f"not a valid format string ({exc})") from None
    fields: list[str] = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        if name == "" or name.isdigit():
            raise Invalid(f"positional field {shown} is not allowed")
        if "." in name or "[" in name:
            raise Invalid(f"attribute or index access {shown} is not allowed")
        if name not in _PATTERN_FIELDS:
            raise Invalid(f"unknown field {shown}")
        if conversion:
            raise Invalid(f"conversion {shown} is not allowed")
        if spec:
            raise Invalid(f"format spec {shown} is not allowed")
        fields.append(name)
    if "stage" not in fields:
        raise Invalid("it must contain {stage}")
    return value


def argv(raw: object, ctx: Context) -> tuple[str, ...]:
    """An argv list: a TOML list of strings, or a shlex-split string from CLI/env."""
    if isinstance(raw, str):
        if not ctx.textual:
            try:
                example = json.dumps(shlex.split(raw))
            except ValueError:
                example = '["make", "deploy"]'
            raise Invalid(
                f"a string is not accepted in {PYPROJECT} (commands never go through a shell); "
                f"write a list: {ctx.key} = {example}"
            )
        try:
            words = shlex.split(raw)
        except ValueError as exc:
            raise Invalid(f"cannot be split into words ({exc})") from None
    elif isinstance(raw, list | tuple):
        if not all(isinstance(word, str) for word in raw):
            raise Invalid("every item of the list must be a string")
        words = list(raw)
    else:
        raise Invalid(f"expected a list of strings, got {type(raw).__name__}")
    if not words:
        raise Invalid("the command is empty")
    if not words[0].strip():
        raise Invalid("the program name is blank")
    return tuple(words)


def name_list(raw: object, ctx: Context) -> tuple[str, ...]:
    """A list of names: a TOML list of strings or a comma-separated string."""
    if isinstance(raw, str):
        items = raw.split(",")
    elif isinstance(raw, list | tuple):
        if not all(isinstance(item, str) for item in raw):
            raise Invalid("every item of the list must be a string")
        items = list(raw)
    else:
        raise Invalid(f"expected a list of strings, got {type(raw).__name__}")
    names = tuple(item.strip() for item in items if item.strip())
    bad = [name for name in names if any(ch.isspace() for ch in name)]
    if bad:
        raise Invalid(f"names cannot contain whitespace: {bad[0]!r}")
    return names


def boolean(raw: object, ctx: Context) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and ctx.textual:
        word = raw.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        raise Invalid("not a yes/no word", expected=f"one of {_BOOL_WORDS} (any case)")
    raise Invalid(f"expected a TOML boolean, got {type(raw).__name__}", expected="true or false (unquoted)")


def non_empty_text(raw: object, ctx: Context) -> str:
    value = _text(raw)
    if not value:
        raise Invalid("it is empty")
    return value


def project_path(raw: object, ctx: Context) -> Path:
    """A path, relative to the project root unless absolute; returned absolute."""
    if isinstance(raw, Path):
        value = str(raw)
    else:
        value = _text(raw, "a path string")
    if not value:
        raise Invalid("it is empty")
    if "\0" in value:
        raise Invalid("it contains a NUL character")
    path = Path(value).expanduser()
    return path if path.is_absolute() else (ctx.root / path)


def shard_spec(raw: object, ctx: Context) -> tuple[int, int]:
    """``i/n`` with 1 <= i <= n: this run is shard i of n."""
    if not isinstance(raw, str):
        raise Invalid("expected text like 1/2")
    m = re.fullmatch(r"\s*(\d{1,4})\s*/\s*(\d{1,4})\s*", raw)
    if not m or not 1 <= int(m[1]) <= int(m[2]):
        raise Invalid("expected i/n with 1 <= i <= n, e.g. 1/2")
    return int(m[1]), int(m[2])


def _redact_url(url: str) -> str:
    from harness.urls import redact

    return redact(url)


def account_list(raw: object, ctx: Context) -> tuple[str, ...]:
    """12-digit AWS account ids."""
    ids = name_list(raw, ctx)
    bad = [i for i in ids if not re.fullmatch(r"\d{12}", i)]
    if bad:
        raise Invalid(f"not a 12-digit account id: {bad[0]!r}")
    return ids


def seed_number(raw: object, ctx: Context) -> int:
    """A non-negative integer seed."""
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise Invalid("expected a whole number")
    try:
        value = int(raw.strip()) if isinstance(raw, str) else raw
    except ValueError:
        raise Invalid("not a whole number") from None
    if not 0 <= value < 2**32:
        raise Invalid("must be between 0 and 4294967295")
    return value


def non_negative_number(raw: object, ctx: Context) -> int | float:
    if raw in (0, "0", 0.0) or (isinstance(raw, str) and raw.strip() in ("0", "0.0")):
        return 0
    return positive_number(raw, ctx)


def positive_number(raw: object, ctx: Context) -> int | float:
    number: int | float
    if isinstance(raw, bool):
        raise Invalid("expected a number, got a boolean")
    if isinstance(raw, int | float):
        number = raw
    elif isinstance(raw, str):
        text = raw.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise Invalid("not a number") from None
    else:
        raise Invalid(f"expected a number, got {type(raw).__name__}")
    if isinstance(number, float) and not math.isfinite(number):
        raise Invalid("not a finite number")
    if number <= 0:
        raise Invalid("it must be greater than 0")
    return number


# --------------------------------------------------------------------------- display


def show(value: object) -> str:
    """Default display of a resolved value."""
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ", ".join(str(item) for item in value) if value else "(none)"
    return str(value)


def show_argv(value: object) -> str:
    if value is None:
        return "(not set)"
    assert isinstance(value, tuple | list)
    return shlex.join(value)


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Setting:
    """One setting: every way to give it, its default and how to check it.

    ``name`` is the :class:`Settings` attribute and the argparse ``dest``.
    ``flag_action`` ``"store_true"`` makes the flag a switch; otherwise it takes
    a value (shown as ``metavar``). ``default_doc`` replaces the displayed
    default in help and docs when the real default is computed elsewhere.
    """

    name: str
    flag: str
    key: str
    env: str
    default: object
    convert: Converter
    help: str
    choices: tuple[str, ...] | None = None
    expected: str = ""
    metavar: str | None = None
    flag_action: Literal["store", "store_true"] = "store"
    display: Display = show
    default_doc: str | None = None

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


SETTINGS: tuple[Setting, ...] = (
    Setting(
        name="target",
        flag="--target",
        key="target",
        env="HARNESS_TARGET",
        default="local",
        convert=choice("local", "aws", "endpoint"),
        choices=("local", "aws", "endpoint"),
        metavar="{local,aws,endpoint}",
        help="Where the stack runs: the embedded emulator (local), a real AWS account (aws), "
        "or an emulator already listening at --endpoint-url (endpoint).",
    ),
    Setting(
        name="stack",
        flag="--stack",
        key="stack",
        env="HARNESS_STACK",
        default="auto",
        convert=choice("auto", "on", "off"),
        choices=("auto", "on", "off"),
        metavar="{auto,on,off}",
        help="Whether this session deploys the branch stack: auto deploys when the run includes "
        "one of the integration paths; on always; off never.",
    ),
    Setting(
        name="integration_paths",
        flag="--integration-paths",
        key="integration-paths",
        env="HARNESS_INTEGRATION_PATHS",
        default=("scenarios", "tests/integration"),
        convert=name_list,
        expected="a list of paths relative to the project root, or one comma-separated string",
        metavar="PATHS",
        help="Test paths that need the branch stack (stack=auto deploys when a run includes one).",
    ),
    Setting(
        name="endpoint_url",
        flag="--endpoint-url",
        key="endpoint-url",
        env="HARNESS_ENDPOINT_URL",
        default=None,
        convert=http_url,
        display=lambda v: "(not set)" if v is None else _redact_url(v),
        expected="an http:// or https:// URL with a host, e.g. http://localhost:4566",
        metavar="URL",
        help="Endpoint of an already running emulator. Required with target=endpoint, refused with target=local.",
    ),
    Setting(
        name="region",
        flag="--region",
        key="region",
        env="HARNESS_REGION",
        default="us-east-1",
        convert=matching(_REGION_RE, "an AWS region name"),
        expected="an AWS region name such as us-east-1, eu-west-2 or us-gov-west-1",
        metavar="REGION",
        help="AWS region the stack is deployed to.",
    ),
    Setting(
        name="app",
        flag="--app",
        key="app",
        env="HARNESS_APP",
        default=None,
        convert=matching(_APP_RE, "a valid app name"),
        expected="1 to 30 characters: a lowercase letter, then lowercase letters, digits or '-'",
        metavar="NAME",
        default_doc="[project].name or the project folder name",
        help="Application name, the {app} part of stack names.",
    ),
    Setting(
        name="stack_name_pattern",
        flag="--stack-name-pattern",
        key="stack-name-pattern",
        env="HARNESS_STACK_NAME_PATTERN",
        default="{app}-{stage}",
        convert=stack_name_pattern,
        expected="a format string whose only fields are {app} and {stage}, with {stage} present "
        "and no conversions or format specs, e.g. {app}-{stage}",
        metavar="PATTERN",
        help="How a stack name is built from {app} and {stage}.",
    ),
    Setting(
        name="deploy_command",
        flag="--deploy-command",
        key="deploy-command",
        env="HARNESS_DEPLOY_COMMAND",
        default=None,
        convert=argv,
        display=show_argv,
        expected='a list of strings in pyproject.toml, e.g. ["make", "deploy"]; on the command line '
        "or in the environment a command line, split like a shell would (never run by one)",
        metavar="COMMAND",
        help="Command that deploys the branch stack (an argv list, never run through a shell).",
    ),
    Setting(
        name="destroy_command",
        flag="--destroy-command",
        key="destroy-command",
        env="HARNESS_DESTROY_COMMAND",
        default=None,
        convert=argv,
        display=show_argv,
        expected='a list of strings in pyproject.toml, e.g. ["make", "destroy"]; on the command line '
        "or in the environment a command line, split like a shell would (never run by one)",
        metavar="COMMAND",
        help="Command that removes the branch stack (an argv list, never run through a shell).",
    ),
    Setting(
        name="protected_stages",
        flag="--protected-stages",
        key="protected-stages",
        env="HARNESS_PROTECTED_STAGES",
        default=("main", "master", "prod", "production"),
        convert=name_list,
        expected="a list of stage names, or one comma-separated string",
        metavar="STAGES",
        help="Stages the harness never deploys over or tears down on a shared target (aws, endpoint).",
    ),
    Setting(
        name="keep_stack",
        flag="--keep-stack",
        key="keep-stack",
        env="HARNESS_KEEP_STACK",
        default=False,
        convert=boolean,
        flag_action="store_true",
        expected=f"true or false (in the environment: one of {_BOOL_WORDS})",
        help="Leave the stack deployed after the session instead of tearing it down.",
    ),
    Setting(
        name="aws_profile",
        flag="--aws-profile",
        key="aws-profile",
        env="HARNESS_AWS_PROFILE",
        default=None,
        convert=non_empty_text,
        expected="the name of a profile in your AWS config",
        metavar="PROFILE",
        help="AWS named profile used for target=aws.",
    ),
    Setting(
        name="role_arn",
        flag="--role-arn",
        key="role-arn",
        env="HARNESS_ROLE_ARN",
        default=None,
        convert=matching(_ROLE_ARN_RE, "an IAM role ARN"),
        expected="an IAM role ARN such as arn:aws:iam::123456789012:role/deployer",
        metavar="ARN",
        help="IAM role to assume before deploying and testing.",
    ),
    Setting(
        name="iam_enforcement",
        flag="--iam-enforcement",
        key="iam-enforcement",
        env="HARNESS_IAM_ENFORCEMENT",
        default=True,
        convert=boolean,
        choices=("on", "off"),
        expected=f"true or false (on the command line or in the environment: one of {_BOOL_WORDS})",
        metavar="on|off",
        help="Enforce IAM policies in the emulator, so missing permissions fail as they would on AWS.",
    ),
    Setting(
        name="report_dir",
        flag="--report-dir",
        key="report-dir",
        env="HARNESS_REPORT_DIR",
        default="harness-report",
        convert=project_path,
        expected="a directory path, relative to the project root",
        metavar="DIR",
        help="Where reports and traces are written, relative to the project root.",
    ),
    Setting(
        name="deploy_timeout",
        flag="--deploy-timeout",
        key="deploy-timeout",
        env="HARNESS_DEPLOY_TIMEOUT",
        default=900,
        convert=positive_number,
        expected="a positive number of seconds",
        metavar="SECONDS",
        help="How long a deploy may take before it is abandoned.",
    ),
    Setting(
        name="stack_ttl_hours",
        flag="--stack-ttl-hours",
        key="stack-ttl-hours",
        env="HARNESS_STACK_TTL_HOURS",
        default=24,
        convert=positive_number,
        expected="a positive number of hours",
        metavar="HOURS",
        help="Lifetime written into the stack's expires-at tag, for cleanup of forgotten stacks.",
    ),
    Setting(
        name="fingerprint_paths",
        flag="--fingerprint-paths",
        key="fingerprint-paths",
        env="HARNESS_FINGERPRINT_PATHS",
        default=("template.yaml", "template.yml", "samconfig.toml", "src/**"),
        convert=name_list,
        expected="a list of glob patterns relative to the project root, or one comma-separated string",
        metavar="GLOBS",
        help="The deploy's inputs: when they and the deploy command are unchanged, a healthy stack is not redeployed.",
    ),
    Setting(
        name="redeploy",
        flag="--redeploy",
        key="redeploy",
        env="HARNESS_REDEPLOY",
        default=False,
        convert=boolean,
        flag_action="store_true",
        expected="true or false",
        help="Deploy even when the fingerprint of the deploy inputs is unchanged.",
    ),
    Setting(
        name="lease_wait",
        flag="--lease-wait",
        key="lease-wait",
        env="HARNESS_LEASE_WAIT",
        default=900,
        convert=non_negative_number,
        expected="a number of seconds (0: fail at once)",
        metavar="SECONDS",
        help="How long to wait for another run holding this branch's stack (deploying it, or using it "
        "with other deploy inputs); 0 fails fast, naming the holder.",
    ),
    Setting(
        name="shard",
        flag="--shard",
        key="shard",
        env="HARNESS_SHARD",
        default=None,
        convert=shard_spec,
        display=lambda v: "(not set)" if v is None else f"{v[0]}/{v[1]}",
        expected="i/n with 1 <= i <= n, e.g. 1/2",
        metavar="I/N",
        default_doc="CIRCLE_NODE_INDEX/CIRCLE_NODE_TOTAL when set",
        help="Run shard i of n of the tests; the shards share one deploy and the last one tears down.",
    ),
    Setting(
        name="shard_group",
        flag="--shard-group",
        key="shard-group",
        env="HARNESS_SHARD_GROUP",
        default=None,
        convert=non_empty_text,
        expected="an id shared by the shards of one CI run",
        metavar="ID",
        default_doc="the CI run id (CIRCLE_WORKFLOW_ID, GITHUB_RUN_ID, CODEBUILD_BUILD_ID)",
        help="Identifies the shards that belong together.",
    ),
    Setting(
        name="drift_check",
        flag="--drift-check",
        key="drift-check",
        env="HARNESS_DRIFT_CHECK",
        default=True,
        convert=boolean,
        choices=("on", "off"),
        expected="true or false",
        metavar="on|off",
        help="After the deploy (or its skip), report resources changed outside CloudFormation.",
    ),
    Setting(
        name="allowed_accounts",
        flag="--allowed-accounts",
        key="allowed-accounts",
        env="HARNESS_ALLOWED_ACCOUNTS",
        default=(),
        convert=account_list,
        expected="a list of 12-digit AWS account ids, or one comma-separated string",
        metavar="IDS",
        default_doc="any account",
        help="With target=aws, refuse to deploy or delete in any other account.",
    ),
    Setting(
        name="seed",
        flag="--seed",
        key="seed",
        env="HARNESS_SEED",
        default=None,
        convert=seed_number,
        expected="a whole number from 0 to 4294967295",
        metavar="N",
        default_doc="random per run (printed in the header)",
        help="Base seed of the per-test Faker data; a failing test prints it so the run can be repeated.",
    ),
)

_BY_NAME: Mapping[str, Setting] = types.MappingProxyType({s.name: s for s in SETTINGS})
_BY_KEY: Mapping[str, Setting] = types.MappingProxyType({s.key: s for s in SETTINGS})


def setting_by_name(name: str) -> Setting:
    return _BY_NAME[name]


def setting_by_key(key: str) -> Setting:
    return _BY_KEY[key]


# --------------------------------------------------------------------------- resolved settings


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one run. Build it with :func:`resolve`."""

    root: Path
    target: str
    stack: str
    integration_paths: tuple[str, ...]
    endpoint_url: str | None
    region: str
    app: str | None
    stack_name_pattern: str
    deploy_command: tuple[str, ...] | None
    destroy_command: tuple[str, ...] | None
    protected_stages: tuple[str, ...]
    keep_stack: bool
    aws_profile: str | None
    role_arn: str | None
    iam_enforcement: bool
    report_dir: Path
    deploy_timeout: int | float
    stack_ttl_hours: int | float
    fingerprint_paths: tuple[str, ...]
    redeploy: bool
    lease_wait: int | float
    shard: tuple[int, int] | None
    shard_group: str | None
    drift_check: bool
    allowed_accounts: tuple[str, ...]
    seed: int | None
    sources: Mapping[str, str] = field(default_factory=dict, hash=False)
    notices: tuple[str, ...] = ()  # warnings worth showing (nothing was refused)

    def source(self, name: str) -> str:
        return self.sources.get(name, "default")

    def describe(self) -> list[tuple[str, str, str]]:
        """Rows of (pyproject key, displayed value, source), in table order."""
        return [(s.key, s.display(getattr(self, s.name)), self.source(s.name)) for s in SETTINGS]


# --------------------------------------------------------------------------- option registration


class _OptionAdder(Protocol):
    def __call__(self, *names: str, **kwargs: Any) -> object: ...


def _help(setting: Setting) -> str:
    text = f"{setting.help} [env {setting.env}; {TABLE} {setting.key}; default: {setting.describe_default()}]"
    return text.replace("%", "%%")


def _add_all(add: _OptionAdder) -> None:
    for setting in SETTINGS:
        kwargs: dict[str, Any] = {"dest": setting.name, "default": None, "help": _help(setting)}
        if setting.flag_action == "store_true":
            kwargs["action"] = "store_true"
        else:
            kwargs["action"] = "store"
            kwargs["metavar"] = setting.metavar or setting.name.upper()
        add(setting.flag, **kwargs)


class _PytestParser(Protocol):
    def getgroup(self, name: str, description: str = ..., after: str | None = ...) -> Any: ...


def add_pytest_options(parser: _PytestParser) -> None:
    """Register every setting's flag in the pytest option group ``branchstack``.

    All defaults are ``None``, so :func:`resolve` can tell "not given" apart.
    """
    group = parser.getgroup("branchstack", "branch stacks (harness settings)")
    _add_all(group.addoption)


def add_argparse_options(parser: argparse.ArgumentParser) -> None:
    """Register every setting's flag on the ``harness`` CLI, with the same dests."""
    group = parser.add_argument_group("branchstack", "harness settings")
    _add_all(group.add_argument)


# --------------------------------------------------------------------------- resolution


def find_root(start: Path) -> Path:
    """The nearest directory at or above ``start`` holding a pyproject.toml, else ``start``."""
    start = Path(start).resolve()
    base = start if start.is_dir() or not start.exists() else start.parent
    for directory in (base, *base.parents):
        if (directory / PYPROJECT).is_file():
            return directory
    return start


def _read_pyproject(path: Path) -> dict[str, Any] | None:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return None


def default_app(root: Path) -> str:
    """App name when none is configured: [project].name, else the root folder name.

    Lowercased; characters that are not allowed in an app name become ``-``,
    leading non-letters are dropped and the result is cut to 30 characters.
    """
    name: object = None
    try:
        data = _read_pyproject(Path(root) / PYPROJECT)
    except (OSError, tomllib.TOMLDecodeError):
        data = None
    if data is not None:
        project = data.get("project")
        if isinstance(project, dict):
            name = project.get("name")
    if not isinstance(name, str) or not name.strip():
        name = Path(root).resolve().name
    assert isinstance(name, str)
    slug = re.sub(r"[^a-z0-9-]+", "-", name.strip().lower())
    slug = re.sub(r"^[^a-z]+", "", slug)[:30].rstrip("-")
    return slug or "app"


def _where(setting: Setting, origin: Origin, pyproject: Path) -> str:
    if origin == "cli":
        return f"{setting.flag} (command line)"
    if origin == "env":
        return f"{setting.env} (environment)"
    if origin == "toml":
        return f"{TABLE} {setting.key} in {pyproject}"
    return "default"


def _label(setting: Setting, origin: Origin) -> str:
    return {
        "cli": "cli",
        "env": f"env {setting.env}",
        "toml": PYPROJECT,
        "default": "default",
    }[origin]


def _pick(
    setting: Setting, cli: Mapping[str, object], env: Mapping[str, str], table: Mapping[str, object]
) -> tuple[object, Origin]:
    value = cli.get(setting.name)
    if value is not None:
        return value, "cli"
    env_value = env.get(setting.env)
    if env_value is not None and env_value.strip() != "":
        return env_value, "env"
    if setting.key in table:
        return table[setting.key], "toml"
    return setting.default, "default"


def _load_table(pyproject: Path, problems: list[str]) -> Mapping[str, object]:
    try:
        data = _read_pyproject(pyproject)
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{pyproject} is not valid TOML: {exc}")
        return {}
    except OSError as exc:
        problems.append(f"cannot read {pyproject}: {exc}")
        return {}
    if data is None:
        return {}
    tool = data.get("tool", {})
    table = tool.get("harness", {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        problems.append(f"{TABLE} in {pyproject} must be a table, not {type(table).__name__}")
        return {}
    valid = [s.key for s in SETTINGS]
    for key in table:
        if key in _BY_KEY:
            continue
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        if not close:
            close = difflib.get_close_matches(key.replace("_", "-").lower(), valid, n=1, cutoff=0.6)
        suggestion = f"; did you mean {close[0]!r}?" if close else ""
        problems.append(f"unknown key {key!r} in {TABLE} in {pyproject}{suggestion} Valid keys: {', '.join(valid)}")
    return table


def resolve(cli: Mapping[str, object], env: Mapping[str, str], root: Path) -> Settings:
    """Resolve every setting once: CLI > environment > [tool.harness] > default.

    ``cli`` maps attribute names (argparse dests) to values, ``None`` meaning
    "not given"; other entries (e.g. unrelated pytest options) are ignored.
    Raises one :class:`ConfigError` listing every problem found.
    """
    root = Path(root).resolve()
    pyproject = root / PYPROJECT
    problems: list[str] = []
    table = _load_table(pyproject, problems)

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    origins: dict[str, Origin] = {}
    for setting in SETTINGS:
        raw, origin = _pick(setting, cli, env, table)
        origins[setting.name] = origin
        sources[setting.name] = _label(setting, origin)
        if raw is None:
            values[setting.name] = None
            continue
        try:
            values[setting.name] = setting.convert(raw, Context(origin, root, setting.key))
        except Invalid as exc:
            expected = exc.expected or setting.expected_text()
            problems.append(
                f"{setting.key}: {_where(setting, origin, pyproject)} is {raw!r}: {exc.reason}. Expected {expected}."
            )
            values[setting.name] = None

    _check_together(values, origins, pyproject, problems)

    if problems:
        if len(problems) == 1:
            message = f"invalid harness setting: {problems[0]}"
        else:
            listed = "\n".join(f"  - {p}" for p in problems)
            message = f"invalid harness settings ({len(problems)} problems):\n{listed}"
        raise ConfigError(
            message,
            hint="fix the values above; every setting is listed under 'branchstack' in `pytest --help`.",
        )
    return Settings(root=root, sources=types.MappingProxyType(sources), notices=_env_typos(env), **values)


#: Variables the harness itself sets for the deploy command and the tests (not settings).
EXPORTED_ENV = ("HARNESS_BRANCH", "HARNESS_RUN_ID", "HARNESS_STAGE", "HARNESS_STACK_NAME", "HARNESS_STACK_TAGS")


def _env_typos(env: Mapping[str, str]) -> tuple[str, ...]:
    """Warnings for ``HARNESS_*`` variables that look like a misspelt setting (others are left alone)."""
    known = [st.env for st in SETTINGS]
    out = []
    for name in sorted(env):
        upper = name.upper()
        if not upper.startswith("HARNESS_") or name in known or upper in EXPORTED_ENV:
            continue
        close = difflib.get_close_matches(upper, known, n=1, cutoff=0.85)
        if close:
            out.append(f"{name} is not a harness setting and is ignored; did you mean {close[0]}?")
    return tuple(out)


def _check_together(
    values: Mapping[str, Any], origins: Mapping[str, Origin], pyproject: Path, problems: list[str]
) -> None:
    """Rules that involve more than one setting (only checked on valid values)."""
    target = values.get("target")
    endpoint = values.get("endpoint_url")
    url_setting = _BY_NAME["endpoint_url"]
    target_setting = _BY_NAME["target"]
    target_where = _where(target_setting, origins["target"], pyproject)
    if target == "endpoint" and endpoint is None and origins["endpoint_url"] == "default":
        problems.append(
            f"endpoint-url: required when target is 'endpoint' (target from {target_where}). "
            f"Set {url_setting.flag}, {url_setting.env} or {TABLE} {url_setting.key}."
        )
    if target == "local" and endpoint is not None:
        problems.append(
            f"endpoint-url: {_where(url_setting, origins['endpoint_url'], pyproject)} is {_redact_url(str(endpoint))!r}, "
            f"but target is 'local' (from {target_where}), which starts its own emulator. "
            "Use target 'endpoint' to test against this URL, or remove the endpoint URL."
        )


# --------------------------------------------------------------------------- docs


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def settings_markdown_table() -> str:
    """The settings table in GitHub Markdown, for the README."""
    rows = []
    for s in SETTINGS:
        flag = s.flag if s.flag_action == "store_true" else f"{s.flag} {s.metavar or s.name.upper()}"
        rows.append(
            [
                f"`{s.name}`",
                f"`{_md(flag)}`",
                f"`{s.key}`",
                f"`{s.env}`",
                _md(s.describe_default()),
                _md(s.help),
            ]
        )
    return tabulate(
        rows,
        headers=["setting", "flag", "pyproject key", "env var", "default", "description"],
        tablefmt="github",
    )


def _check_table(settings: Sequence[Setting]) -> None:
    """Guard the table against typos: names must match Settings' attributes."""
    fields = set(Settings.__dataclass_fields__) - {"root", "sources", "notices"}
    names = [s.name for s in settings]
    if len(set(names)) != len(names) or set(names) != fields:
        raise RuntimeError(f"SETTINGS and Settings disagree: {sorted(set(names) ^ fields)}")
    for attr in ("flag", "key", "env"):
        seen = [getattr(s, attr) for s in settings]
        if len(set(seen)) != len(seen):
            raise RuntimeError(f"duplicate {attr} in SETTINGS")


_check_table(SETTINGS)
