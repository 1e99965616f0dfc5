"""Apps of several stacks on the emulator: a two-stack set joined by an export, a deploy that
ignores STACK_NAME, a SAM app with a nested application.

The stacks are tiny CloudFormation templates (``tests/e2e/stacks/sets/``)
deployed by a shell script, as a team's own deploy would; each run takes a
few seconds. The CDK app is ``tests/e2e/test_cdk_e2e.py``.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from harness.naming import stage_from_branch
from tests.e2e.e2e_support import HARNESS_CLI, MINIMAL_TEMPLATE, PYTHON, Emulator, Runner, git, toml_list

pytestmark = pytest.mark.e2e

SETS = Path(__file__).resolve().parent / "stacks" / "sets"
BRANCH = "feature/sets"
STAGE = stage_from_branch(BRANCH)
API, DATA = f"sets-api-{STAGE}", f"sets-data-{STAGE}"

SET_TEST = f"""
import pytest


def test_each_stack_gives_an_output(stack):
    assert stack.stacks == ["{DATA}", "{API}"]
    assert stack.output("TableName").startswith("{DATA}")
    assert stack.output("QueueUrl").startswith("http")
    assert stack.output("Region", stack="{DATA}") == "us-east-1"


def test_a_key_both_stacks_define_names_both(stack):
    with pytest.raises(KeyError) as err:
        stack.outputs["Region"]
    assert "defined by 2 stacks of the set: {DATA}, {API}" in str(err.value)
    assert 'stack.output("Region", stack="{DATA}")' in str(err.value)
"""


def project(tmp_path: Path, *, deploy: list[str], pattern: str, test: str, name: str = "p") -> Path:
    root = tmp_path / name
    shutil.copytree(SETS, root / "stack")
    (root / "tests" / "integration").mkdir(parents=True)
    (root / "tests" / "integration" / "test_it.py").write_text(textwrap.dedent(test))
    (root / "pyproject.toml").write_text(
        f'[tool.harness]\napp = "sets"\ndeploy-command = {toml_list(deploy)}\nstack-name-pattern = "{pattern}"\n'
    )
    (root / ".gitignore").write_text("harness-report/\nstack/packaged.yaml\n")
    git(root, "init", "-q", "-b", BRANCH)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "sets project")
    return root


def endpoint_args(emu: Emulator) -> list[str]:
    return ["--target", "endpoint", "--endpoint-url", emu.url]


def live_stacks(emu: Emulator) -> list[str]:
    cfn = emu.client("cloudformation")
    return sorted(s["StackName"] for s in cfn.describe_stacks()["Stacks"] if s["StackStatus"] != "DELETE_COMPLETE")


# -- a set of two stacks ------------------------------------------------------------------


def test_a_two_stack_set_reads_outputs_across_it_and_tears_down_importer_first(
    tmp_path: Path, run: Runner, emulator: Emulator
) -> None:
    # "sets-api-..." sorts before "sets-data-...": the dependent stack is found first by name,
    # and its import still puts it after the data stack.
    root = project(tmp_path, deploy=["sh", "stack/deploy.sh"], pattern="{app}-api-{stage}", test=SET_TEST)
    res = run(root, "tests/integration", "-v", *endpoint_args(emulator))
    out = res.output
    assert res.returncode == 0, out
    assert "2 passed" in out, out
    assert res.lines(f"stack set of 2 (in deploy order): {DATA}, {API}"), out
    order = res.lines("teardown: deleting")
    assert order and f"{API}, then {DATA}" in order[0], out
    gone = res.lines("verified gone")
    assert gone and "0 left" in gone[-1] and f"{API}, {DATA}" in gone[-1], out
    assert "LEFT BEHIND" not in out, out
    assert live_stacks(emulator) == [], live_stacks(emulator)
    assert emulator.client("dynamodb").list_tables()["TableNames"] == ["harness-leases"]


def test_every_stack_of_a_set_is_warned_about_and_its_retained_resources_deleted(tmp_path: Path, run: Runner) -> None:
    """Fidelity warnings and retained resources for each member, not only the stack STACK_NAME names."""
    root = project(
        tmp_path,
        deploy=["env", "RETAIN=yes", "sh", "stack/deploy.sh"],
        pattern="{app}-api-{stage}",
        test="def test_up(stack):\n    assert len(stack.stacks) == 2\n",
    )
    res = run(root, "tests/integration", "-v")
    out = res.output
    assert res.returncode == 0, out
    assert "fidelity: 1 feature(s) of the templates of this stack set behave differently" in out, out
    assert f"warning: {DATA}:Inbox POST /inbox x-amazon-apigateway-integration credentials:" in out, out
    assert out.index("fidelity:") < out.index("::test_up PASSED"), out  # said before the tests run
    at = out.index("retained by the template, deleted by the harness:")
    named = [line.removeprefix("branchstack: ").strip() for line in out[at:].splitlines()[1:3]]
    assert sorted(named) == [
        f"AuditLog (AWS::Logs::LogGroup) /sets/{API}/audit",
        f"AuditLog (AWS::Logs::LogGroup) /sets/{DATA}/audit",
    ], out
    gone = res.lines("verified gone")
    assert gone and f"{API}, {DATA} deleted" in gone[-1] and "0 left" in gone[-1], out
    assert "LEFT BEHIND" not in out, out


def test_delete_failed_in_a_set_is_reported_and_the_exporter_it_holds_is_named(
    tmp_path: Path, run: Runner, emulator: Emulator
) -> None:
    root = project(
        tmp_path,
        deploy=["sh", "stack/deploy.sh"],
        pattern="{app}-api-{stage}",
        test="def test_up(stack):\n    assert stack.stacks\n",
    )
    res = run(root, "tests/integration", *endpoint_args(emulator), env={"UNDELETABLE": "yes"})
    out = res.output
    assert res.returncode != 0, out
    assert f"stack {API} was not deleted: status DELETE_FAILED" in out, out
    assert "refuses to be deleted" in out, out
    assert "left things behind" in out, out
    # AWS refuses to delete the data stack while the failed api stack imports from it; the
    # emulator drops the import with the failed delete, and deletes it.
    assert API in live_stacks(emulator)
    assert DATA not in live_stacks(emulator) or f"stack {DATA} was not deleted" in out, out


def test_a_failed_create_of_another_stack_of_the_set_is_reported_and_deleted(
    tmp_path: Path, run: Runner, emulator: Emulator
) -> None:
    root = project(
        tmp_path,
        deploy=["sh", "stack/deploy.sh"],
        pattern="{app}-api-{stage}",
        test="def test_up(stack):\n    pass\n",
    )
    res = run(root, "tests/integration", *endpoint_args(emulator), env={"BROKEN": "yes"})
    out = res.output
    assert res.returncode != 0, out
    assert f"{DATA}: BrokenQueue (AWS::SQS::Queue): CREATE_FAILED" in out, out
    assert "ignores STACK_NAME" not in out, out
    assert res.lines(f"teardown: deleting {DATA}"), out
    assert live_stacks(emulator) == [], live_stacks(emulator)


# -- a deploy that ignores STACK_NAME ---------------------------------------------------------

MISNAMED = [
    PYTHON,
    str(SETS / "cfn_deploy.py"),  # `aws cloudformation deploy`'s words and steps, through boto3
    "--template-file",
    str(MINIMAL_TEMPLATE),
    "--stack-name",
    "myapp-dev",
    "--capabilities",
    "CAPABILITY_IAM",
    "--tags",
    "{tags}",
]


@pytest.mark.parametrize("target", ["local", "endpoint"])
def test_a_deploy_that_ignores_stack_name_is_told_plainly_and_its_stack_deleted(
    tmp_path: Path, run: Runner, request: pytest.FixtureRequest, target: str
) -> None:
    root = project(tmp_path, deploy=MISNAMED, pattern="{app}-{stage}", test="def test_x(stack):\n    pass\n")
    # An emulator of the test's own only for the endpoint target: the local run starts its own.
    emulator: Emulator | None = request.getfixturevalue("emulator") if target == "endpoint" else None
    args = endpoint_args(emulator) if emulator is not None else []
    res = run(root, "tests/integration", *args)
    out = res.output
    assert res.returncode != 0, out
    assert f"the deploy command created no stack named sets-{STAGE}, but it did create myapp-dev" in out, out
    assert "it ignores STACK_NAME" in out and "--stack-name $STACK_NAME" in out, out
    assert res.lines("teardown: deleting myapp-dev"), out
    assert res.lines("verified gone"), out
    if emulator is not None:
        assert "myapp-dev" not in live_stacks(emulator)


# -- a nested application -------------------------------------------------------------------------


def test_the_resources_of_a_nested_stack_are_in_the_leak_check(tmp_path: Path, run: Runner) -> None:
    test = """
    def test_the_nested_table(stack):
        ddb = stack.client("dynamodb")
        ddb.put_item(TableName=stack.output("TableName"), Item={"pk": {"S": "n"}})
        assert sorted(stack.resources) == ["Inner", "Inner/Table", "Inner/Topic", "Outer"]
    """
    root = project(tmp_path, deploy=["sh", "stack/deploy_nested.sh"], pattern="{app}-{stage}", test=test)
    res = run(root, "tests/integration", "-v")
    out = res.output
    assert res.returncode == 0, out
    assert "1 passed" in out, out
    gone = res.lines("verified gone")
    assert gone and "(4 resources checked, 0 left)" in gone[-1], out


# -- gc over seeded sets -------------------------------------------------------------------------


def _seed_set(emu: Emulator, stage: str, *, expired: bool) -> tuple[str, str]:
    """A two-stack set of app 'sets' (api imports from data), tagged as the harness tags it."""
    cfn = emu.client("cloudformation")
    when = "2020-01-01T00:00:00Z" if expired else "2999-01-01T00:00:00Z"
    t = {
        "harness:managed-by": "branchstack",
        "harness:app": "sets",
        "harness:stage": stage,
        "harness:branch": stage,
        "harness:run-id": f"seed-{stage}",
        "harness:created-at": "2020-01-01T00:00:00Z",
        "harness:expires-at": when,
    }
    tag_list = [{"Key": k, "Value": v} for k, v in t.items()]
    api, data = f"sets-api-{stage}", f"sets-data-{stage}"
    for name, template in ((data, "data.yaml"), (api, "api.yaml")):
        cfn.create_stack(
            StackName=name,
            TemplateBody=(SETS / template).read_text(),
            Parameters=[{"ParameterKey": "Stage", "ParameterValue": stage}],
            Capabilities=["CAPABILITY_IAM"],
            Tags=tag_list,
        )
        cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig={"Delay": 1})
    return api, data


def test_gc_deletes_each_expired_set_importers_first_and_skips_a_set_in_use(
    tmp_path: Path, run: Runner, emulator: Emulator
) -> None:
    from harness.lease import Lease

    sets = {stage: _seed_set(emulator, stage, expired=True) for stage in ("old-one", "old-two", "old-held")}
    fresh = _seed_set(emulator, "fresh", expired=False)
    # A run holds the lease of the held set's primary (the api stack): the whole set must stay.
    lease = Lease(emulator.client("dynamodb"), sets["old-held"][0], "e2e-holder", fingerprint="f")
    lease.ensure_table()
    lease.acquire(wait=0)
    lease._stop_heartbeat()
    lease.deployed()
    root = project(tmp_path, deploy=["true"], pattern="{app}-api-{stage}", test="def test_x():\n    pass\n")
    target = ["--target", "endpoint", "--endpoint-url", emulator.url]
    before = live_stacks(emulator)

    listed = run(root, argv=[HARNESS_CLI, "ls", *target])
    assert listed.returncode == 0, listed.output
    assert (
        f"stack set sets/old-one (2 stacks, one unit for gc and leases): {', '.join(sorted(sets['old-one']))}"
        in listed.output
    ), listed.output

    dry = run(root, argv=[HARNESS_CLI, "gc", *target])
    assert dry.returncode == 0, dry.output
    assert live_stacks(emulator) == before, "a dry run deleted something"
    plan = {line.split()[0]: line for line in dry.output.splitlines() if line.startswith("sets-")}
    for stage in ("old-one", "old-two"):
        for name in sets[stage]:
            assert plan[name].rstrip().endswith("would delete"), dry.output
    for name in sets["old-held"]:
        assert plan[name].rstrip().endswith("skip"), dry.output
    assert "its set sets/old-held is skipped" in plan[sets["old-held"][1]], dry.output
    assert all(name not in plan or plan[name].rstrip().endswith("keep") for name in fresh), dry.output

    done = run(root, argv=[HARNESS_CLI, "gc", *target, "--yes"])
    assert done.returncode == 0, done.output
    assert "after its importer" not in done.output, done.output  # each set went importers first
    left = live_stacks(emulator)
    assert left == sorted([*sets["old-held"], *fresh]), left


def test_the_emulators_immediate_refusal_of_a_wrong_order_delete_is_retried(emulator: Emulator) -> None:
    """The exporter handed over first (as with no dependency known): refused at once, retried after its importer."""
    from harness import stackset

    api, data = _seed_set(emulator, "wrong-order", expired=False)
    cfn = emulator.client("cloudformation")
    ids = {s["StackName"]: s["StackId"] for s in cfn.describe_stacks()["Stacks"]}
    said: list[str] = []
    result = stackset.delete_set(cfn, [(data, ids[data]), (api, ids[api])], delay=1, max_attempts=60, out=said.append)
    assert result.deleted == [api, data] and result.errors == [], result
    assert said == [f"teardown: {data} is still imported by another stack of the set; retrying after it"]
    assert live_stacks(emulator) == []
