"""The Serverless Framework v3 example app through the harness, on the embedded emulator.

``tests/conformance/serverless_rest/`` is a Serverless Framework REST app as
its community writes it (``serverless.yml``, Python handlers, a DynamoDB
table, its own ``make deploy`` / ``make remove`` and integration tests that
find the stack by ``STAGE``). A throw-away git project holds a copy of it; the
harness deploys it with ``serverless deploy`` (through the serverless-localstack
plugin, enabled for the branch stage only because ``AWS_ENDPOINT_URL`` is set),
runs its tests, removes it with its destroy command (``serverless remove``)
and verifies every resource gone. A second test reads the resolved
configuration (``serverless print``) to show the plugin inactive without an
emulator endpoint, and the stack tags built from ``HARNESS_STACK_TAGS``.
Needs ``make setup-serverless`` (npm ci); skipped with that hint otherwise.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.naming import stage_from_branch
from tests.e2e.e2e_support import Runner, clean_env, emulators_in, git, no_traceback, wait_gone

pytestmark = pytest.mark.e2e

APP = Path(__file__).resolve().parents[1] / "conformance" / "serverless_rest"
SLS = APP / "node_modules" / ".bin" / "serverless"
BRANCH = "feature/Serverless-App"
STAGE = stage_from_branch(BRANCH)
STACK = f"notes-sls-{STAGE}"
#: Hang guard only: a deploy and a remove with the Framework take about a minute on a busy machine.
TIMEOUT = 600.0
#: The Framework polls CloudFormation every 5 s by default; an emulator answers at once.
FAST_POLL = {"SLS_AWS_MONITORING_FREQUENCY": "1000"}


@pytest.fixture
def sls_ready() -> None:  # function scope: the two tests may run on two workers
    if not SLS.exists():
        pytest.skip("serverless is not installed: run `make setup-serverless`")


def make_sls_project(base: Path) -> Path:
    root = base / "notes-sls"
    shutil.copytree(APP, root, ignore=shutil.ignore_patterns("node_modules", ".serverless", "harness-report"))
    (root / "node_modules").symlink_to(APP / "node_modules")
    git(root, "init", "-q", "-b", BRANCH)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "notes-sls")
    return root


def test_the_serverless_app_is_green_and_nothing_is_left(sls_ready: None, tmp_path: Path, run: Runner) -> None:
    project = make_sls_project(tmp_path)

    res = run(project, "tests/integration", "-p", "no:randomly", "-rA", env=FAST_POLL, timeout=TIMEOUT)

    out = res.output
    assert res.returncode == 0, out
    no_traceback(out)
    assert "3 passed" in out, out
    deploy_log = (project / "harness-report" / "deploy.log").read_text()
    assert "Using serverless-localstack" in deploy_log, deploy_log
    assert f"Service deployed to stack {STACK}" in deploy_log, deploy_log
    assert "did not pass $HARNESS_STACK_TAGS" not in out, out  # provider.stackTags carried the harness's tags
    teardown_log = (project / "harness-report" / "teardown.log").read_text()
    assert "serverless remove" in teardown_log and "successfully removed" in teardown_log, teardown_log
    [gone] = res.lines(f"teardown: {STACK} deleted in")
    assert "0 left)" in gone, gone
    assert "LEFT BEHIND" not in out, out
    # The Framework publishes each function's version with DeletionPolicy: Retain: checked gone with their functions.
    assert "AWS::Lambda::Version" not in gone.partition("not checkable")[2], gone
    [(pid, port)] = emulators_in(out)
    assert wait_gone(pid, port, project), f"the emulator (pid {pid}) outlived the run"


def _print(project: Path, **env: str) -> dict:
    """The Framework's resolved configuration for the branch stage (no AWS call)."""
    proc = subprocess.run(  # noqa: S603 - argv list
        [str(SLS), "print", "--stage", STAGE, "--format", "json"],
        cwd=project,
        env=clean_env({"SLS_TELEMETRY_DISABLED": "1", "SLS_NOTIFICATIONS_MODE": "off", **env}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_the_plugin_acts_only_on_an_emulator_and_the_stack_tags_come_from_the_harness(
    sls_ready: None, tmp_path: Path
) -> None:
    project = make_sls_project(tmp_path)
    tags = "harness:managed-by=branchstack harness:stage=" + STAGE

    on_aws = _print(project, HARNESS_STACK_TAGS=tags)
    on_emulator = _print(project, HARNESS_STACK_TAGS=tags, AWS_ENDPOINT_URL="http://127.0.0.1:1")

    assert on_aws["custom"]["localstack"]["stages"] == []
    assert on_emulator["custom"]["localstack"]["stages"] == [STAGE]
    assert on_aws["provider"]["stackTags"] == {"harness:managed-by": "branchstack", "harness:stage": STAGE}
    assert on_emulator["provider"]["stackTags"] == on_aws["provider"]["stackTags"]
