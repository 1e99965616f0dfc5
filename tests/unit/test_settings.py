"""Unit tests for harness.settings: the one table of settings."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from pathlib import Path

import pytest

from harness.errors import ConfigError, HarnessError
from harness.settings import (
    SETTINGS,
    Settings,
    add_argparse_options,
    add_pytest_options,
    default_app,
    find_root,
    resolve,
    setting_by_name,
)
from harness.settings.render import settings_markdown_table

# --------------------------------------------------------------------------- helpers


def write_toml(root: Path, body: str) -> Path:
    path = root / "pyproject.toml"
    path.write_text(body, encoding="utf-8")
    return path


def harness_toml(root: Path, body: str) -> Path:
    return write_toml(root, "[tool.harness]\n" + body)


def run(root: Path, cli: Mapping[str, object] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    return resolve(cli or {}, env or {}, root)


def refused(root: Path, cli: Mapping[str, object] | None = None, env: Mapping[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        run(root, cli, env)
    return str(info.value)


# --------------------------------------------------------------------------- defaults and precedence


def test_defaults_without_pyproject(tmp_path: Path) -> None:
    s = run(tmp_path)
    assert s.root == tmp_path.resolve()
    assert s.target == "local"
    assert s.endpoint_url is None
    assert s.region == "us-east-1"
    assert s.app is None
    assert s.stack_name_pattern == "{app}-{stage}"
    assert s.deploy_command is None
    assert s.destroy_command is None
    assert s.protected_stages == ("main", "master", "prod", "production")
    assert s.keep_stack is False
    assert s.aws_profile is None
    assert s.role_arn is None
    assert s.iam_enforcement is True
    assert s.report_dir == tmp_path.resolve() / "harness-report"
    assert s.deploy_timeout == 900
    assert s.stack_ttl_hours == 24
    assert set(s.sources) == {x.name for x in SETTINGS}
    assert set(s.sources.values()) == {"default"}


def test_pyproject_without_harness_table_is_fine(tmp_path: Path) -> None:
    write_toml(tmp_path, '[project]\nname = "x"\n[tool.other]\na = 1\n')
    assert run(tmp_path).target == "local"


@pytest.mark.parametrize(
    ("cli", "env", "toml", "expected", "source"),
    [
        (None, None, None, "us-east-1", "default"),
        (None, None, "eu-west-1", "eu-west-1", "pyproject.toml"),
        (None, "eu-west-2", "eu-west-1", "eu-west-2", "env HARNESS_REGION"),
        ("eu-west-3", "eu-west-2", "eu-west-1", "eu-west-3", "cli"),
        ("eu-west-3", None, None, "eu-west-3", "cli"),
        ("eu-west-3", None, "eu-west-1", "eu-west-3", "cli"),
        (None, "eu-west-2", None, "eu-west-2", "env HARNESS_REGION"),
    ],
)
def test_precedence_cli_env_toml_default(
    tmp_path: Path, cli: str | None, env: str | None, toml: str | None, expected: str, source: str
) -> None:
    if toml is not None:
        harness_toml(tmp_path, f'region = "{toml}"\n')
    s = run(
        tmp_path,
        cli={"region": cli},
        env={"HARNESS_REGION": env} if env is not None else {},
    )
    assert s.region == expected
    assert s.sources["region"] == source
    assert s.source("region") == source


def test_empty_env_var_counts_as_unset(tmp_path: Path) -> None:
    harness_toml(tmp_path, 'region = "eu-west-1"\n')
    s = run(tmp_path, env={"HARNESS_REGION": "  "})
    assert s.region == "eu-west-1"
    assert s.sources["region"] == "pyproject.toml"


def test_cli_none_means_not_given_and_unrelated_cli_entries_ignored(tmp_path: Path) -> None:
    s = run(tmp_path, cli={"target": None, "verbose": 2, "keep_stack": None}, env={"HARNESS_TARGET": "aws"})
    assert s.target == "aws"
    assert s.sources["target"] == "env HARNESS_TARGET"
    assert s.keep_stack is False


def test_unrelated_harness_env_vars_are_ignored(tmp_path: Path) -> None:
    # The Harness CI platform's own variables, and what the harness exports to the deploy command.
    env = {
        "HARNESS_BUILD_ID": "42",
        "HARNESS_ACCOUNT_ID": "x",
        "HARNESS_PIPELINE_ID": "p",
        "HARNESS_STAGE": "feature-x",
        "HARNESS_STACK_NAME": "app-feature-x",
        "HARNESS_STACK_TAGS": "a=b",
        "HARNESS_RUN_ID": "abc",
        "HARNESS_BRANCH": "feature/x",
    }
    s = run(tmp_path, env=env)
    assert s.target == "local"
    assert s.notices == ()


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("HARNESS_TAGRET", "HARNESS_TARGET"),
        ("HARNESS_REGOIN", "HARNESS_REGION"),
        ("HARNESS_KEEP_STACKS", "HARNESS_KEEP_STACK"),
        ("harness_target", "HARNESS_TARGET"),
    ],
)
def test_a_misspelt_setting_variable_is_warned_about(tmp_path: Path, typo: str, meant: str) -> None:
    s = run(tmp_path, env={typo: "aws"})
    assert s.target == "local"  # still ignored: only a warning
    assert s.notices == (f"{typo} is not a harness setting and is ignored; did you mean {meant}?",)


def test_every_setting_reads_its_own_env_var(tmp_path: Path) -> None:
    good = {
        "HARNESS_TARGET": "aws",
        "HARNESS_STACK": "on",
        "HARNESS_INTEGRATION_PATHS": "it,e2e",
        "HARNESS_ENDPOINT_URL": "https://example.com",
        "HARNESS_REGION": "eu-central-1",
        "HARNESS_APP": "shop",
        "HARNESS_STACK_NAME_PATTERN": "{stage}-{app}",
        "HARNESS_DEPLOY_COMMAND": "make deploy",
        "HARNESS_DESTROY_COMMAND": "make destroy",
        "HARNESS_DEPLOY_KIND": "tagged",
        "HARNESS_OUTPUTS_COMMAND": "terraform output -json",
        "HARNESS_PROTECTED_STAGES": "live",
        "HARNESS_KEEP_STACK": "yes",
        "HARNESS_AWS_PROFILE": "dev",
        "HARNESS_ROLE_ARN": "arn:aws:iam::123456789012:role/deployer",
        "HARNESS_IAM_ENFORCEMENT": "off",
        "HARNESS_RUNTIME_MISMATCH": "error",
        "HARNESS_REPORT_DIR": "out",
        "HARNESS_DEPLOY_TIMEOUT": "60",
        "HARNESS_STACK_TTL_HOURS": "2",
        "HARNESS_SEED": "7",
        "HARNESS_DRIFT_CHECK": "off",
        "HARNESS_RETAINED": "keep",
        "HARNESS_ALLOWED_ACCOUNTS": "123456789012",
        "HARNESS_FINGERPRINT_PATHS": "stack/**",
        "HARNESS_REDEPLOY": "1",
        "HARNESS_LEASE_WAIT": "0",
        "HARNESS_SHARD": "2/3",
        "HARNESS_SHARD_GROUP": "ci-42",
        "HARNESS_BEHAVIOUR": "gate",
        "HARNESS_BEHAVIOUR_UPDATE": "1",
        "HARNESS_BEHAVIOUR_LATENCY": "3",
    }
    assert set(good) == {x.env for x in SETTINGS}
    s = run(tmp_path, env=good)
    for setting in SETTINGS:
        assert s.sources[setting.name] == f"env {setting.env}"


def test_every_setting_reads_its_own_toml_key_and_flag(tmp_path: Path) -> None:
    harness_toml(
        tmp_path,
        """
target = "endpoint"
stack = "off"
integration-paths = ["it"]
endpoint-url = "http://localhost:4566"
region = "eu-central-1"
app = "shop"
stack-name-pattern = "{app}--{stage}"
deploy-command = ["sam", "deploy", "--stack-name", "x y"]
destroy-command = ["sam", "delete"]
deploy-kind = "auto"
outputs-command = ["pulumi", "stack", "output", "--json"]
protected-stages = ["live", "prod"]
keep-stack = true
aws-profile = "dev"
role-arn = "arn:aws-us-gov:iam::123456789012:role/path/deployer"
iam-enforcement = false
runtime-mismatch = "error"
report-dir = "out/reports"
deploy-timeout = 12.5
stack-ttl-hours = 3
seed = 42
drift-check = false
retained = "keep"
allowed-accounts = ["123456789012"]
fingerprint-paths = ["stack/**"]
redeploy = true
lease-wait = 30
shard = "1/2"
shard-group = "g"
behaviour = "off"
behaviour-update = true
behaviour-latency = 2.5
""",
    )
    s = run(tmp_path)
    assert (s.behaviour, s.behaviour_update, s.behaviour_latency) == ("off", True, 2.5)
    assert set(s.sources.values()) == {"pyproject.toml"}
    assert s.target == "endpoint"
    assert s.endpoint_url == "http://localhost:4566"
    assert s.deploy_command == ("sam", "deploy", "--stack-name", "x y")
    assert s.destroy_command == ("sam", "delete")
    assert s.deploy_kind == "auto"
    assert s.outputs_command == ("pulumi", "stack", "output", "--json")
    assert s.protected_stages == ("live", "prod")
    assert s.keep_stack is True
    assert s.iam_enforcement is False
    assert s.report_dir == tmp_path.resolve() / "out" / "reports"
    assert s.deploy_timeout == 12.5
    assert s.stack_ttl_hours == 3
    assert s.retained == "keep"

    parser = argparse.ArgumentParser()
    add_argparse_options(parser)
    ns = parser.parse_args(["--target", "aws", "--keep-stack", "--iam-enforcement", "on", "--region", "us-west-2"])
    s2 = run(tmp_path, cli=vars(ns))
    assert (s2.target, s2.keep_stack, s2.iam_enforcement, s2.region) == ("aws", True, True, "us-west-2")
    assert s2.sources["target"] == "cli"
    assert s2.sources["keep_stack"] == "cli"
    assert s2.sources["iam_enforcement"] == "cli"
    assert s2.sources["app"] == "pyproject.toml"


# --------------------------------------------------------------------------- the table and the frozen object


def test_table_matches_settings_dataclass() -> None:
    fields = {f.name for f in dataclasses.fields(Settings)} - {"root", "sources", "notices"}
    assert [x.name for x in SETTINGS] and {x.name for x in SETTINGS} == fields
    for attr in ("name", "flag", "key", "env"):
        values = [getattr(x, attr) for x in SETTINGS]
        assert len(values) == len(set(values)), attr
    for x in SETTINGS:
        assert x.flag == "--" + x.key
        assert x.env == "HARNESS_" + x.name.upper()
        assert x.name == x.key.replace("-", "_")


def test_settings_is_frozen(tmp_path: Path) -> None:
    s = run(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.target = "aws"  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.sources["target"] = "cli"  # type: ignore[index]
    hash(s)


def test_config_error_is_a_harness_error(tmp_path: Path) -> None:
    with pytest.raises(HarnessError):
        run(tmp_path, env={"HARNESS_TARGET": "mars"})


# --------------------------------------------------------------------------- converters: good values


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("target", "local", "local"),
        ("target", "aws", "aws"),
        ("target", " aws ", "aws"),
        ("region", "us-east-1", "us-east-1"),
        ("region", "ap-southeast-2", "ap-southeast-2"),
        ("region", "us-gov-west-1", "us-gov-west-1"),
        ("region", "us-isob-east-1", "us-isob-east-1"),
        ("app", "a", "a"),
        ("app", "orders-2", "orders-2"),
        ("app", "a" * 30, "a" * 30),
        ("stack_name_pattern", "{app}-{stage}", "{app}-{stage}"),
        ("stack_name_pattern", "{stage}", "{stage}"),
        ("stack_name_pattern", "pr-{stage}-{app}-{{x}}", "pr-{stage}-{app}-{{x}}"),
        ("deploy_command", "make deploy", ("make", "deploy")),
        (
            "deploy_command",
            "sam deploy --parameter-overrides 'A=1 B=2'",
            ("sam", "deploy", "--parameter-overrides", "A=1 B=2"),
        ),
        ("destroy_command", "./destroy.sh 'my stack'", ("./destroy.sh", "my stack")),
        ("protected_stages", "main, release ,,prod", ("main", "release", "prod")),
        ("protected_stages", "", None),  # empty env counts as unset -> default
        ("keep_stack", "1", True),
        ("keep_stack", "TRUE", True),
        ("keep_stack", "Yes", True),
        ("keep_stack", "on", True),
        ("keep_stack", "0", False),
        ("keep_stack", "false", False),
        ("keep_stack", "NO", False),
        ("keep_stack", "Off", False),
        ("iam_enforcement", "off", False),
        ("iam_enforcement", "ON", True),
        ("aws_profile", "my-profile", "my-profile"),
        ("role_arn", "arn:aws:iam::123456789012:role/deployer", "arn:aws:iam::123456789012:role/deployer"),
        (
            "role_arn",
            "arn:aws-cn:iam::123456789012:role/a/b+c=d,e.f@g-h_i",
            "arn:aws-cn:iam::123456789012:role/a/b+c=d,e.f@g-h_i",
        ),
        ("deploy_timeout", "30", 30),
        ("deploy_timeout", "2.5", 2.5),
        ("stack_ttl_hours", "0.5", 0.5),
        ("stack_ttl_hours", "48", 48),
    ],
)
def test_converter_good_values_from_env(tmp_path: Path, name: str, raw: str, expected: object) -> None:
    setting = setting_by_name(name)
    s = run(tmp_path, env={setting.env: raw})
    if expected is None:
        expected = setting.default
    assert getattr(s, name) == expected


def test_endpoint_url_good_values(tmp_path: Path) -> None:
    for url in (
        "http://localhost:4566",
        "https://emulator.example.com",
        "http://127.0.0.1:4566/",
        "http://[::1]:4566",
    ):
        s = run(tmp_path, env={"HARNESS_TARGET": "endpoint", "HARNESS_ENDPOINT_URL": url})
        assert s.endpoint_url == url


def test_report_dir_relative_and_absolute(tmp_path: Path) -> None:
    assert run(tmp_path, cli={"report_dir": "a/b"}).report_dir == tmp_path.resolve() / "a" / "b"
    absolute = tmp_path / "elsewhere"
    assert run(tmp_path, cli={"report_dir": str(absolute)}).report_dir == absolute
    assert run(tmp_path, cli={"report_dir": "x"}).report_dir.is_absolute()


def test_numbers_from_toml(tmp_path: Path) -> None:
    harness_toml(tmp_path, "deploy-timeout = 60\nstack-ttl-hours = 0.25\n")
    s = run(tmp_path)
    assert s.deploy_timeout == 60 and isinstance(s.deploy_timeout, int)
    assert s.stack_ttl_hours == 0.25


def test_protected_stages_toml_string_is_comma_separated(tmp_path: Path) -> None:
    harness_toml(tmp_path, 'protected-stages = "main,live"\n')
    assert run(tmp_path).protected_stages == ("main", "live")


def test_protected_stages_may_be_emptied(tmp_path: Path) -> None:
    harness_toml(tmp_path, "protected-stages = []\n")
    assert run(tmp_path).protected_stages == ()


def test_keep_stack_store_true_from_cli(tmp_path: Path) -> None:
    s = run(tmp_path, cli={"keep_stack": True}, env={"HARNESS_KEEP_STACK": "no"})
    assert s.keep_stack is True and s.sources["keep_stack"] == "cli"


def test_deploy_command_shlex_split_from_env(tmp_path: Path) -> None:
    env = {"HARNESS_DEPLOY_COMMAND": "sh -c 'echo hi; rm -rf /'"}
    s = run(tmp_path, env=env)
    # split into argv, never a shell string: the ';' stays inside one argument
    assert s.deploy_command == ("sh", "-c", "echo hi; rm -rf /")
    assert s.sources["deploy_command"] == "env HARNESS_DEPLOY_COMMAND"


def test_deploy_command_from_cli_is_split(tmp_path: Path) -> None:
    s = run(tmp_path, cli={"deploy_command": "npx cdk deploy --require-approval never"})
    assert s.deploy_command == ("npx", "cdk", "deploy", "--require-approval", "never")


# --------------------------------------------------------------------------- converters: bad values


@pytest.mark.parametrize(
    ("name", "raw", "fragment"),
    [
        ("target", "mars", "local, aws, endpoint"),
        ("target", "AWS", "did you mean 'aws'"),
        ("endpoint_url", "localhost:4566", "http"),
        ("endpoint_url", "ftp://host", "scheme must be http or https"),
        ("endpoint_url", "http://", "no host"),
        ("endpoint_url", "http://host:99999", "not a URL"),
        ("region", "us-east", "AWS region"),
        ("region", "US-EAST-1", "AWS region"),
        ("region", "useast1", "AWS region"),
        ("app", "Orders", "lowercase letter"),
        ("app", "1orders", "lowercase letter"),
        ("app", "a" * 31, "1 to 30 characters"),
        ("app", "my_app", "lowercase letters, digits or '-'"),
        ("deploy_command", "make 'deploy", "cannot be split"),
        ("destroy_command", "   ", None),  # blank env -> unset, not an error
        ("keep_stack", "maybe", "1, 0, true, false, yes, no, on, off"),
        ("keep_stack", "2", "1, 0, true, false, yes, no, on, off"),
        ("iam_enforcement", "enabled", "1, 0, true, false, yes, no, on, off"),
        ("role_arn", "arn:aws:iam::12345:role/x", "IAM role ARN"),
        ("role_arn", "arn:aws:iam::123456789012:user/x", "IAM role ARN"),
        ("role_arn", "deployer", "arn:aws:iam::123456789012:role/deployer"),
        ("role_arn", "arn:aws:iam::123456789012:role/", "IAM role ARN"),
        ("deploy_timeout", "0", "greater than 0"),
        ("deploy_timeout", "-5", "greater than 0"),
        ("deploy_timeout", "soon", "not a number"),
        ("deploy_timeout", "nan", "finite"),
        ("deploy_timeout", "inf", "finite"),
        ("stack_ttl_hours", "0", "positive number of hours"),
        ("protected_stages", "main, my stage", "whitespace"),
    ],
)
def test_converter_bad_values_from_env(tmp_path: Path, name: str, raw: str, fragment: str | None) -> None:
    setting = setting_by_name(name)
    env = {setting.env: raw}
    if fragment is None:
        run(tmp_path, env=env)
        return
    message = refused(tmp_path, env=env)
    assert fragment in message
    assert f"{setting.env} (environment)" in message
    assert repr(raw) in message
    assert setting.key in message


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ('target = "mars"', "one of local, aws, endpoint"),
        ("region = 1", "expected a string, got int"),
        ('keep-stack = "yes"', "true or false"),
        ("iam-enforcement = 1", "TOML boolean"),
        ("deploy-timeout = true", "got a boolean"),
        ('deploy-timeout = "fast"', "not a number"),
        ("deploy-timeout = -1", "greater than 0"),
        ("stack-ttl-hours = 0", "greater than 0"),
        ("deploy-command = []", "the command is empty"),
        ('deploy-command = ["make", 1]', "every item"),
        ('deploy-command = [""]', "program name is blank"),
        ("destroy-command = 3", "expected a list of strings"),
        ('protected-stages = ["main", 2]', "every item"),
        ("protected-stages = 5", "expected a list of strings"),
        ('report-dir = ""', "it is empty"),
        ('aws-profile = ""', "it is empty"),
        ('stack-name-pattern = "{app}-{stage"', "not a valid format string"),
    ],
)
def test_converter_bad_values_from_toml(tmp_path: Path, line: str, fragment: str) -> None:
    path = harness_toml(tmp_path, line + "\n")
    message = refused(tmp_path)
    key = line.split(" = ")[0]
    assert fragment in message
    assert f"[tool.harness] {key} in {path.resolve()}" in message


def test_bad_cli_value_names_the_flag(tmp_path: Path) -> None:
    message = refused(tmp_path, cli={"deploy_timeout": "abc"})
    assert "--deploy-timeout (command line)" in message
    assert "'abc'" in message
    assert "positive number of seconds" in message


# --------------------------------------------------------------------------- stack name pattern


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        ("{app.__class__}-{stage}", "attribute or index access"),
        ("{app[0]}-{stage}", "attribute or index access"),
        ("{0}-{stage}", "positional field"),
        ("{}-{stage}", "positional field"),
        ("{app}-{stage!r}", "conversion"),
        ("{app}-{stage:>10}", "format spec"),
        ("{x}-{stage}", "unknown field {x}"),
        ("{app}", "must contain {stage}"),
        ("static-name", "must contain {stage}"),
        ("{app}-{{stage}}", "must contain {stage}"),
    ],
)
def test_stack_name_pattern_refused(tmp_path: Path, pattern: str, fragment: str) -> None:
    message = refused(tmp_path, cli={"stack_name_pattern": pattern})
    assert fragment in message
    assert "--stack-name-pattern (command line)" in message
    assert "only fields are {app} and {stage}" in message


# --------------------------------------------------------------------------- commands


def test_deploy_command_string_in_toml_refused_with_list_hint(tmp_path: Path) -> None:
    harness_toml(tmp_path, "deploy-command = \"sam deploy --stack-name 'a b'\"\n")
    message = refused(tmp_path)
    assert "a string is not accepted" in message
    assert 'deploy-command = ["sam", "deploy", "--stack-name", "a b"]' in message
    assert "[tool.harness] deploy-command" in message


def test_destroy_command_string_in_toml_refused(tmp_path: Path) -> None:
    harness_toml(tmp_path, 'destroy-command = "make destroy"\n')
    message = refused(tmp_path)
    assert 'destroy-command = ["make", "destroy"]' in message


def test_empty_command_from_cli_refused(tmp_path: Path) -> None:
    message = refused(tmp_path, cli={"deploy_command": "  "})
    assert "the command is empty" in message


# --------------------------------------------------------------------------- endpoint rules


def test_endpoint_target_requires_url(tmp_path: Path) -> None:
    message = refused(tmp_path, cli={"target": "endpoint"})
    assert "endpoint-url" in message and "required" in message
    assert "HARNESS_ENDPOINT_URL" in message


def test_endpoint_target_with_url(tmp_path: Path) -> None:
    s = run(tmp_path, cli={"target": "endpoint", "endpoint_url": "http://localhost:4566"})
    assert s.endpoint_url == "http://localhost:4566"


def test_endpoint_url_refused_with_local_target(tmp_path: Path) -> None:
    message = refused(tmp_path, env={"HARNESS_ENDPOINT_URL": "http://localhost:4566"})
    assert "target is 'local'" in message
    assert "HARNESS_ENDPOINT_URL (environment)" in message


def test_endpoint_url_allowed_with_aws_target(tmp_path: Path) -> None:
    s = run(tmp_path, env={"HARNESS_TARGET": "aws", "HARNESS_ENDPOINT_URL": "https://vpce.example.com"})
    assert s.endpoint_url == "https://vpce.example.com"


def test_bad_endpoint_url_with_endpoint_target_reported_once(tmp_path: Path) -> None:
    message = refused(tmp_path, cli={"target": "endpoint", "endpoint_url": "nope"})
    assert message.startswith("invalid harness setting:")
    assert "required" not in message


# --------------------------------------------------------------------------- unknown keys and many errors


def test_unknown_key_suggests_closest_and_lists_valid(tmp_path: Path) -> None:
    path = harness_toml(tmp_path, 'regoin = "eu-west-1"\n')
    message = refused(tmp_path)
    assert "unknown key 'regoin'" in message
    assert "did you mean 'region'?" in message
    assert str(path.resolve()) in message
    for setting in SETTINGS:
        assert setting.key in message


def test_unknown_key_with_underscores_suggests_dashes(tmp_path: Path) -> None:
    harness_toml(tmp_path, 'deploy_command = ["make"]\n')
    assert "did you mean 'deploy-command'?" in refused(tmp_path)


def test_unknown_key_without_close_match(tmp_path: Path) -> None:
    harness_toml(tmp_path, "zzzzzz = 1\n")
    message = refused(tmp_path)
    assert "unknown key 'zzzzzz'" in message and "did you mean" not in message


def test_all_problems_reported_together(tmp_path: Path) -> None:
    harness_toml(tmp_path, 'regoin = "x"\ndeploy-command = "make deploy"\nkeep-stack = "yes"\n')
    message = refused(
        tmp_path,
        cli={"deploy_timeout": "-1"},
        env={"HARNESS_TARGET": "mars", "HARNESS_ROLE_ARN": "nope"},
    )
    assert "(6 problems)" in message
    for fragment in (
        "unknown key 'regoin'",
        "[tool.harness] deploy-command",
        "[tool.harness] keep-stack",
        "--deploy-timeout (command line)",
        "HARNESS_TARGET (environment)",
        "HARNESS_ROLE_ARN (environment)",
    ):
        assert fragment in message
    assert message.count("\n  - ") == 6


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    write_toml(tmp_path, "[tool.harness\n")
    assert "not valid TOML" in refused(tmp_path)


def test_harness_table_must_be_a_table(tmp_path: Path) -> None:
    write_toml(tmp_path, "[tool]\nharness = 3\n")
    assert "must be a table" in refused(tmp_path)


# --------------------------------------------------------------------------- describe and docs


def test_describe_rows(tmp_path: Path) -> None:
    harness_toml(tmp_path, 'app = "shop"\ndeploy-command = ["sam", "deploy", "--tags", "a b"]\n')
    s = run(tmp_path, cli={"keep_stack": True}, env={"HARNESS_REGION": "eu-west-1"})
    rows = s.describe()
    assert [r[0] for r in rows] == [x.key for x in SETTINGS]
    by_key = {key: (value, source) for key, value, source in rows}
    assert by_key["app"] == ("shop", "pyproject.toml")
    assert by_key["deploy-command"] == ("sam deploy --tags 'a b'", "pyproject.toml")
    assert by_key["keep-stack"] == ("true", "cli")
    assert by_key["region"] == ("eu-west-1", "env HARNESS_REGION")
    assert by_key["target"] == ("local", "default")
    assert by_key["destroy-command"] == ("(not set)", "default")
    assert by_key["protected-stages"] == ("main, master, prod, production", "default")
    assert by_key["iam-enforcement"] == ("true", "default")
    assert by_key["report-dir"] == (str(tmp_path.resolve() / "harness-report"), "default")
    assert all(isinstance(cell, str) for row in rows for cell in row)


def test_markdown_table_lists_every_setting() -> None:
    table = settings_markdown_table()
    lines = table.splitlines()
    assert lines[0].startswith("| setting")
    for header in ("flag", "pyproject key", "env var", "default", "description"):
        assert header in lines[0]
    assert len(lines) == 2 + len(SETTINGS)
    for setting in SETTINGS:
        assert setting.env in table
        assert setting.flag in table
        assert f"`{setting.key}`" in table
    # a literal pipe would break the Markdown row
    assert "on\\|off" in table
    assert all(line.count("|") - line.count("\\|") == 7 for line in lines)


# --------------------------------------------------------------------------- option registration


def test_argparse_options_default_to_none() -> None:
    parser = argparse.ArgumentParser()
    add_argparse_options(parser)
    ns = vars(parser.parse_args([]))
    assert ns == {x.name: None for x in SETTINGS}
    ns = vars(parser.parse_args(["--keep-stack", "--deploy-command", "make deploy", "--iam-enforcement", "off"]))
    assert ns["keep_stack"] is True
    assert ns["deploy_command"] == "make deploy"
    assert ns["iam_enforcement"] == "off"


class _FakeGroup:
    def __init__(self) -> None:
        self.options: list[tuple[tuple[str, ...], dict[str, object]]] = []

    def addoption(self, *names: str, **kwargs: object) -> None:
        self.options.append((names, kwargs))


class _FakeParser:
    def __init__(self) -> None:
        self.groups: dict[str, _FakeGroup] = {}

    def getgroup(self, name: str, description: str = "", after: str | None = None) -> _FakeGroup:
        return self.groups.setdefault(name, _FakeGroup())


def test_pytest_options_registered_in_branchstack_group() -> None:
    parser = _FakeParser()
    add_pytest_options(parser)
    assert list(parser.groups) == ["branchstack"]
    options = parser.groups["branchstack"].options
    assert [names for names, _ in options] == [(x.flag,) for x in SETTINGS]
    for (_, kwargs), setting in zip(options, SETTINGS, strict=True):
        assert kwargs["dest"] == setting.name
        assert kwargs["default"] is None
        assert setting.env in str(kwargs["help"])
    keep = dict(zip([x.name for x in SETTINGS], [k for _, k in options], strict=True))["keep_stack"]
    assert keep["action"] == "store_true"


def test_pytest_options_with_real_pytest_parser() -> None:
    from _pytest.config.argparsing import Parser

    parser = Parser(_ispytest=True)
    add_pytest_options(parser)
    ns = parser.parse(["--target", "aws", "--keep-stack"])
    assert ns.target == "aws" and ns.keep_stack is True and ns.region is None


# --------------------------------------------------------------------------- roots and app names


def test_find_root_walks_up(tmp_path: Path) -> None:
    write_toml(tmp_path, "")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_root(deep) == tmp_path.resolve()
    assert find_root(tmp_path) == tmp_path.resolve()
    (deep / "test_x.py").write_text("")
    assert find_root(deep / "test_x.py") == tmp_path.resolve()


def test_find_root_without_pyproject_returns_start(tmp_path: Path) -> None:
    # tmp_path lives outside the repository; nothing above it should hold a pyproject.toml
    start = tmp_path / "x"
    start.mkdir()
    expected = start.resolve()
    found = find_root(start)
    assert found == expected or (found / "pyproject.toml").is_file()


def test_default_app_from_project_name(tmp_path: Path) -> None:
    write_toml(tmp_path, '[project]\nname = "Orders-Service"\n')
    assert default_app(tmp_path) == "orders-service"


def test_default_app_from_folder_name(tmp_path: Path) -> None:
    root = tmp_path / "MyShop"
    root.mkdir()
    assert default_app(root) == "myshop"


def test_default_app_is_always_a_valid_app(tmp_path: Path) -> None:
    write_toml(tmp_path, '[project]\nname = "2_Cool.Package_name_that_is_really_long_indeed"\n')
    app = default_app(tmp_path)
    assert app == "cool-package-name-that-is-real"
    run(tmp_path, cli={"app": app})


def test_shard_spec_is_validated(tmp_path: Path) -> None:
    assert run(tmp_path, env={"HARNESS_SHARD": " 2 / 3 "}).shard == (2, 3)
    for bad in ("0/2", "3/2", "1", "a/b"):
        with pytest.raises(ConfigError, match="i/n"):
            run(tmp_path, env={"HARNESS_SHARD": bad})


def test_behaviour_settings_refuse_what_they_cannot_use(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="behaviour") as info:
        run(tmp_path, env={"HARNESS_BEHAVIOUR": "strict"})
    assert "gate" in info.value.render()
    with pytest.raises(ConfigError, match="greater than 1"):
        run(tmp_path, env={"HARNESS_BEHAVIOUR_LATENCY": "0.5"})
