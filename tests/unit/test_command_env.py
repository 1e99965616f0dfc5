"""The variables the harness hands its commands and the tests are the ones its table documents."""

from __future__ import annotations

from harness import command_env, deploy
from harness.stack import StackInfo, TargetInfo, exported_env
from harness.targets.base import EMULATOR_ACCOUNT, emulator_env

#: Only on aws with temporary credentials.
AWS_ONLY = {"AWS_SESSION_TOKEN", "AWS_CREDENTIAL_EXPIRATION"}


def _info(**over: object) -> StackInfo:
    target = TargetInfo(
        kind="local",
        region="eu-west-1",
        endpoint_url="http://127.0.0.1:1",
        access_key_id="test",
        secret_access_key="test",
        session_token=None,
        profile=None,
    )
    base = dict(name="app-dev", stage="dev", branch="dev", outputs={}, resources={}, resource_types={}, tags={})
    return StackInfo(**{**base, "target": target, **over})  # type: ignore[typeddict-item]


def test_the_deploy_commands_variables_are_the_documented_ones() -> None:
    env = command_env.deploy_vars(
        stage="dev", stack_name="app-dev", run_id="r1", stack_tags="a=1", stack_tags_json='{"a": "1"}'
    )
    assert set(env) == command_env.names_for("deploy", from_target=False, per_command=False)
    assert env["STACK_NAME"] == env["HARNESS_STACK_NAME"] == "app-dev"


def test_the_destroy_command_gets_the_name_and_the_id_apart() -> None:
    arn = "arn:aws:cloudformation:eu-west-1:000000000000:stack/app-dev/0f1e2d3c-aaaa-bbbb-cccc-000000000000"
    env = command_env.destroy_vars(stage="dev", stack_name=command_env.stack_name_of(arn), stack_id=arn)
    assert set(env) == command_env.names_for("destroy", from_target=False, per_command=False)
    assert env["STACK_NAME"] == env["HARNESS_STACK_NAME"] == "app-dev"
    assert env["HARNESS_STACK_ID"] == arn
    assert "HARNESS_STACK_ID" not in command_env.destroy_vars(stage="dev", stack_name="app-dev", stack_id=None)


def test_stack_name_of_an_id_or_a_name() -> None:
    assert command_env.stack_name_of("arn:aws:cloudformation:us-east-1:1:stack/a-b/uuid") == "a-b"
    assert command_env.stack_name_of("a-b") == "a-b"


def test_the_tests_variables_are_the_documented_ones() -> None:
    env = exported_env(_info(stacks=["app-data-dev", "app-dev"]))
    assert set(env) == command_env.names_for("tests") - AWS_ONLY
    assert env["STAGE"] == env["HARNESS_STAGE"] == "dev"


def test_the_targets_variables_are_documented_for_every_receiver() -> None:
    target = set(emulator_env(_info()["target"]))
    for who in command_env.RECEIVERS:
        assert target <= command_env.names_for(who, from_target=True)
    # The commands' account (the embedded emulator's or the aws account's): not an endpoint's.
    assert command_env.names_for("deploy", from_target=True) - target == AWS_ONLY | {"AWS_ACCOUNT_ID"}
    assert "AWS_ACCOUNT_ID" in command_env.names_for("destroy", from_target=True)


def test_an_account_inherited_from_the_shell_never_reaches_a_command_on_an_emulator() -> None:
    shell = {"PATH": "/bin", "AWS_ACCOUNT_ID": "123456789012", "AWS_PROFILE": "prod"}
    endpoint = deploy.deploy_env(shell, emulator_env(_info()["target"]), {})
    assert "AWS_ACCOUNT_ID" not in endpoint and "AWS_PROFILE" not in endpoint
    local = deploy.deploy_env(shell, {**emulator_env(_info()["target"]), "AWS_ACCOUNT_ID": EMULATOR_ACCOUNT}, {})
    assert local["AWS_ACCOUNT_ID"] == EMULATOR_ACCOUNT
