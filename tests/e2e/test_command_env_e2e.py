"""What the deploy command, the destroy command and the tests receive, seen from inside each.

The deploy and destroy commands are wrapped by a tiny recorder that writes
its environment to a file and then runs the real command; the integration
test writes its own. Each must hold exactly what the README's table of
variables (``harness.command_env.VARIABLES``) promises on the emulator, with
the names meaning what they say: ``STACK_NAME`` a name, never the ARN.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from e2e_support import PYTHON, REGION, ProjectFactory, Runner, deploy_argv, no_traceback, toml_list

from harness import command_env
from harness import deploy as deploy_mod
from harness.naming import stage_from_branch
from reliability.support import MINIMAL_TEMPLATE

pytestmark = pytest.mark.e2e

BRANCH = "feature/Names-Say-What"
STAGE = stage_from_branch(BRANCH)
STACK = f"mini-{STAGE}"
#: Variables of the aws target only (temporary credentials): absent on the emulator.
AWS_ONLY = {"AWS_SESSION_TOKEN", "AWS_CREDENTIAL_EXPIRATION"}
#: Only for a set of two or more stacks.
SETS_ONLY = {"HARNESS_STACKS"}

RECORDER = """\
import json, os, subprocess, sys
names = json.loads(os.environ["RECORD_NAMES"])
with open(sys.argv[1], "w") as out:
    json.dump({k: os.environ[k] for k in names if k in os.environ}, out)
if len(sys.argv) > 2:
    sys.exit(subprocess.call(sys.argv[2:]))
"""

RECORDING_TEST = """\
import json
import os


def test_records_its_environment(stack):
    names = json.loads(os.environ["RECORD_NAMES"])
    with open("tests.json", "w") as out:
        json.dump({k: os.environ[k] for k in names if k in os.environ}, out)
    assert os.environ["STAGE"] == stack.stage
"""


def test_each_command_and_the_tests_see_the_documented_names(make_project: ProjectFactory, run: Runner) -> None:
    deploy = [PYTHON, "record.py", "deploy.json", *deploy_argv(MINIMAL_TEMPLATE)]
    destroy = [
        PYTHON,
        "record.py",
        "destroy.json",
        "aws",
        "cloudformation",
        "delete-stack",
        "--stack-name",
        "{stack_name}",
    ]
    project = make_project(
        branch=BRANCH,
        tests={"test_env.py": RECORDING_TEST},
        extra_toml=f"destroy-command = {toml_list(destroy)}\n",
        deploy_command=deploy,
    )
    (project / "record.py").write_text(RECORDER)
    names = sorted({v.name for v in command_env.VARIABLES} | {"HARNESS_STACK_TAGS", "HARNESS_RUN_ID"})

    result = run(project, "tests/integration", "-p", "no:randomly", env={"RECORD_NAMES": json.dumps(names)})

    assert result.returncode == 0, result.output
    no_traceback(result.output)
    assert "verified gone" in result.output, result.output
    seen = {who: json.loads((project / f"{who}.json").read_text()) for who in command_env.RECEIVERS}
    for who, env in seen.items():
        promised = command_env.names_for(who) - AWS_ONLY - SETS_ONLY
        if who == "tests" and "TMPDIR" in os.environ:  # the tests keep the machine's own
            promised |= {"TMPDIR"}
        assert set(env) == promised, (who, sorted(set(env) ^ promised))
        assert env["STAGE"] == env["HARNESS_STAGE"] == STAGE, (who, env)
        assert env["HARNESS_STACK_NAME"] == STACK, (who, env)
        assert env["AWS_REGION"] == REGION and env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:"), (who, env)
    assert seen["deploy"]["STACK_NAME"] == seen["destroy"]["STACK_NAME"] == STACK
    for who in ("deploy", "destroy"):  # a temporary folder of each command's own, gone with it
        tmp = Path(seen[who]["TMPDIR"])
        assert tmp.name.startswith(deploy_mod.COMMAND_TMP_PREFIX) and not tmp.exists(), (who, tmp)
    assert seen["deploy"]["TMPDIR"] != seen["destroy"]["TMPDIR"]
    assert seen["tests"]["AWS_SAM_STACK_NAME"] == STACK
    stack_id = seen["destroy"]["HARNESS_STACK_ID"]
    assert stack_id.startswith("arn:aws:cloudformation:") and f":stack/{STACK}/" in stack_id, stack_id
    # The account the commands are told is the one the emulator writes in its ARNs.
    assert seen["deploy"]["AWS_ACCOUNT_ID"] == seen["destroy"]["AWS_ACCOUNT_ID"] == stack_id.split(":")[4]
