"""Deploys without CloudFormation (Terraform, Pulumi, scripts): found, verified and collected by tags.

The project (``stacks/tagged``) deploys from its Makefile with a boto3 script: a
table, a role, a function and a queue, each tagged with the harness's tags;
``make -s --no-print-directory outputs`` prints Terraform's ``output -json`` shape with one
sensitive output; ``make destroy`` removes them (``FORGET_QUEUE=1``: all but
the queue). The runs use an emulator of their own (target endpoint), so what
is left afterwards can be listed.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from e2e_support import BRANCH, HARNESS_CLI, Emulator, Runner, git, toml_list

from harness.tagged.discover import find, wanted_tags

pytestmark = pytest.mark.e2e

STACK = Path(__file__).resolve().parent / "stacks" / "tagged"


def tagged_project(root: Path, *, destroy: list[str], kind: str = "tagged", extra_toml: str = "") -> Path:
    shutil.copytree(STACK, root, ignore=shutil.ignore_patterns("__pycache__", ".state", ".build"))
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [tool.harness]
            app = "tagged"
            deploy-kind = "{kind}"
            deploy-command = ["make", "deploy"]
            destroy-command = {toml_list(destroy)}
            outputs-command = ["make", "-s", "--no-print-directory", "outputs"]
            fingerprint-paths = ["Makefile", "deploy.py", "handler.py"]
            """
        )
        + extra_toml
    )
    (root / ".gitignore").write_text("harness-report/\n.state/\n.build/\n")
    git(root, "init", "-q", "-b", BRANCH)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "tagged project")
    return root


def endpoint_args(emu: Emulator) -> list[str]:
    return ["--target", "endpoint", "--endpoint-url", f"http://127.0.0.1:{emu.port}"]


def left(emu: Emulator) -> list[str]:
    """ARNs of every managed resource of app 'tagged' still in the emulator."""
    return [r.arn for r in find(emu.client, wanted_tags(app="tagged"), region="us-east-1")]


def test_a_tagged_deploy_is_tested_torn_down_and_verified_and_its_secret_never_written(
    tmp_path: Path, run: Runner, emulator: Emulator
) -> None:
    project = tagged_project(tmp_path / "p", destroy=["make", "destroy"])
    junit, sink = tmp_path / "junit.xml", tmp_path / "secret"
    res = run(
        project,
        "-rA",
        "-v",
        f"--junitxml={junit}",
        "-o",
        "junit_logging=all",
        *endpoint_args(emulator),
        env={"SECRET_SINK": str(sink)},
    )
    out = res.output
    assert res.returncode == 0, out
    assert "4 passed" in out, out
    assert "1 sensitive, never shown" in out, out
    assert "outputs: api_key, function_name, queue_name, table_name" in out, out
    assert res.lines("verified gone by tags (4 resources, 0 still tagged)"), out
    assert left(emulator) == []
    # The test saw the secret (and printed it); no output and no file has it.
    secret = sink.read_text()
    assert len(secret) == 32
    assert "the api key is ***" in out, out
    assert secret not in out
    written = [p for p in [*project.rglob("*"), junit] if p.is_file()]
    assert any(p.parent.name == "harness-report" for p in written)
    assert [p for p in written if secret.encode() in p.read_bytes()] == []
    assert "the api key is ***" in junit.read_text()


def test_a_destroy_that_forgets_the_queue_fails_the_run_naming_it_and_gc_removes_it(
    tmp_path: Path, run: Runner, emulator: Emulator
) -> None:
    # deploy-kind auto: no stack, so the tagged resources. Expired a moment after the deploy: `harness gc` collects it.
    project = tagged_project(
        tmp_path / "p",
        destroy=["make", "destroy", "FORGET_QUEUE=1"],
        kind="auto",
        extra_toml="stack-ttl-hours = 0.0003\n",
    )
    res = run(project, "-q", *endpoint_args(emulator))
    out = res.output
    assert res.returncode != 0, out
    assert "4 passed" in out, out
    assert "deploy-kind auto: no CloudFormation stack, 4 resources carry the harness's tags" in out, out
    assert "teardown: LEFT BEHIND:" in out, out
    queue_lines = [line for line in out.splitlines() if "arn:aws:sqs:us-east-1:" in line and "-events (sqs" in line]
    assert queue_lines, out
    assert [a for a in left(emulator) if ":sqs:" in a] and len(left(emulator)) == 1
    ls = run(project, argv=[HARNESS_CLI, "ls", *endpoint_args(emulator)])
    assert ls.returncode == 0, ls.output
    assert "0 managed stack(s), 1 tagged deployment(s) (no stack)" in ls.output, ls.output
    assert "TAGGED (1 resource)" in ls.output and "?" not in ls.output, ls.output
    dry = run(project, argv=[HARNESS_CLI, "gc", "--orphan-grace", "0", *endpoint_args(emulator)])
    assert dry.returncode == 0, dry.output
    assert "would delete" in dry.output, dry.output
    assert len(left(emulator)) == 1
    gc = run(project, argv=[HARNESS_CLI, "gc", "--yes", "--orphan-grace", "0", *endpoint_args(emulator)])
    assert gc.returncode == 0, gc.output
    assert "deleted (destroy command ran; deleted by the harness: arn:aws:sqs:" in gc.output, gc.output
    assert left(emulator) == [], gc.output


def test_the_emulators_tagging_api_is_blind_to_rest_apis_and_log_groups_and_find_is_not(emulator: Emulator) -> None:
    """MiniStack 1.5.33: GetResources lists tagged tables, queues... but no REST API and no log group (AWS lists
    both); IAM roles are in it on neither. The finder's per-service listings cover all three."""
    from harness.tagged.discover import by_tagging_api

    wanted = wanted_tags(app="gap", stage="s1")
    tags_map = dict(wanted)
    c = emulator.client
    c("sqs").create_queue(QueueName="gap-q", tags=tags_map)
    api = c("apigateway").create_rest_api(name="gap-api", tags=tags_map)["id"]
    c("logs").create_log_group(logGroupName="/gap/lg", tags=tags_map)
    c("iam").create_role(
        RoleName="gap-role",
        AssumeRolePolicyDocument='{"Version": "2012-10-17", "Statement": []}',
        Tags=[{"Key": k, "Value": v} for k, v in wanted.items()],
    )
    listed = {r.kind for r in by_tagging_api(c, wanted)}
    assert listed == {"sqs"}  # the gap: no apigateway:restapis, no logs:log-group, no iam:role
    found = {r.arn for r in find(c, wanted, region="us-east-1")}
    assert f"arn:aws:apigateway:us-east-1::/restapis/{api}" in found
    assert "arn:aws:logs:us-east-1:000000000000:log-group:/gap/lg" in found
    assert "arn:aws:iam::000000000000:role/gap-role" in found and len(found) == 4


def test_harness_deploy_keeps_it_skips_an_unchanged_redeploy_and_harness_destroy_removes_it(
    tmp_path: Path, run: Runner, emulator: Emulator
) -> None:
    project = tagged_project(tmp_path / "p", destroy=["make", "destroy"])
    where = endpoint_args(emulator)
    first = run(project, argv=[HARNESS_CLI, "deploy", *where])
    assert first.returncode == 0, first.output
    assert "keeping stack tagged-" in first.output, first.output
    assert len(left(emulator)) == 4
    again = run(project, argv=[HARNESS_CLI, "deploy", *where])
    assert again.returncode == 0, again.output
    assert "deploy skipped: 4 resource(s) of tagged-" in again.output, again.output
    assert "make deploy" not in again.output, again.output
    gone = run(project, argv=[HARNESS_CLI, "destroy", *where])
    assert gone.returncode == 0, gone.output
    assert "does not exist" not in gone.output, gone.output
    assert gone.lines("verified gone by tags (4 resources, 0 still tagged)"), gone.output
    assert left(emulator) == []
