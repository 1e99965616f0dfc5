"""The README's shell examples, run as written against the emulator.

Every line of every ```sh block is either run here (through ``/bin/sh`` in a
throw-away project, with the project's virtualenv first on PATH) or listed in
``NOT_RUN`` with the reason; a new example fails the first test until it is
one or the other.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from e2e_support import HARNESS_CLI, Emulator, ProjectFactory, Runner, clean_env, no_traceback

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"

NEEDS_AWS = "needs a real AWS account (the aws-target tests run with HARNESS_AWS_TESTS=1)"
NOT_RUN = {
    "make integration": "the CI integration job runs it (the whole reference stack, minutes)",
    "make test": "it is the suite this test is part of",
    "make test-fast": "its unit and plugin tiers, part of the suite this test is part of",
    "pytest --target aws": NEEDS_AWS,
    "pytest --target aws --aws-profile test-account": NEEDS_AWS,
    "pytest --target aws --role-arn arn:aws:iam::123456789012:role/ci-deployer": NEEDS_AWS,
    "harness ls --target aws --region eu-west-1": NEEDS_AWS,
    "harness gc --target aws --region eu-west-1": NEEDS_AWS,
    "harness gc --target aws --region eu-west-1 --yes": NEEDS_AWS,
    "make integration PYTEST_ARGS=--behaviour-update": (
        "tests/e2e/test_behaviour_e2e.py runs --behaviour-update on a copy of the reference stack"
    ),
    'git add scenarios/__snapshots__ && git commit -m "behaviour: get-order reads the order twice"': (
        "commits to the reader's own repository"
    ),
    "gh api -X PUT repos/OWNER/REPO/branches/main/protection --input - <<'JSON'": "changes a GitHub repository",
    "pytest scenarios/orders.yaml --watch": (
        "it runs until Ctrl-C: tests/e2e/test_watch_e2e.py runs --watch in a throw-away project, changes its files "
        "and stops it"
    ),
}
DEVELOPER_LOOP = ["pytest --keep-stack", "pytest --keep-stack", "harness destroy"]
GC_ENDPOINT = "harness gc --target endpoint --endpoint-url http://localhost:4566"
UP_DOWN = 'eval "$(harness up)"; aws --endpoint-url "$AWS_ENDPOINT_URL" sqs list-queues; harness down'
ONLY_ITS_PLUGINS = "pytest --disable-plugin-autoload -p harness.pytest.plugin -p xdist.plugin"
RUN = {*DEVELOPER_LOOP, GC_ENDPOINT, UP_DOWN, ONLY_ITS_PLUGINS}


def _commands() -> list[str]:
    """The first line of a heredoc and every other command line of the README's sh blocks, comments dropped."""
    lines: list[str] = []
    for block in re.findall(r"^\s*```sh\n(.*?)^\s*```", README.read_text(), flags=re.S | re.M):
        heredoc = None
        for raw in block.splitlines():
            line = raw.strip()
            if heredoc is not None:
                heredoc = None if line == heredoc else heredoc
                continue
            line = re.sub(r"\s+#.*$", "", line)
            if line:
                lines.append(line)
            if m := re.search(r"<<'?(\w+)'?$", line):
                heredoc = m.group(1)
    return lines


def _sh(project: Path, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - README's own example, fixed text
        ["/bin/sh", "-c", script], cwd=project, env=clean_env(), capture_output=True, text=True, timeout=600
    )


def test_every_readme_shell_line_is_run_or_excused() -> None:
    commands = _commands()
    unknown = [c for c in commands if c not in RUN and c not in NOT_RUN]
    assert not unknown, f"README shell examples neither run by this test nor excused: {unknown}"
    assert set(RUN) <= set(commands), f"examples this test runs are gone from the README: {set(RUN) - set(commands)}"


def test_readme_up_sqs_down(make_project: ProjectFactory) -> None:
    project = make_project()
    done = _sh(project, UP_DOWN)
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"QueueUrls"' in done.stdout or done.stdout.strip() == "", done.stdout
    assert "emulator stopped" in done.stderr, done.stderr
    no_traceback(done.stdout + done.stderr)


def test_readme_gc_on_an_endpoint(make_project: ProjectFactory, emulator: Emulator) -> None:
    project = make_project()
    done = _sh(project, GC_ENDPOINT.replace("http://localhost:4566", emulator.url))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "dry run: 0 stack(s) would be deleted" in done.stderr, done.stderr


def test_readme_developer_loop(make_project: ProjectFactory, run: Runner) -> None:
    project = make_project()
    try:
        done = _sh(project, " && ".join(DEVELOPER_LOOP))
        out = done.stdout + done.stderr
        assert done.returncode == 0, out
        assert out.count("branchstack: keeping stack") == 2, out
        assert "attached to kept MiniStack" in out and "deploy skipped" in out, out
        assert "harness: teardown: deleting" in out and "harness: emulator stopped" in out, out
        no_traceback(out)
    finally:
        run(project, argv=[HARNESS_CLI, "destroy"])


def test_readme_a_stack_session_with_only_its_plugins(make_project: ProjectFactory) -> None:
    """Autoloading off, the harness's and xdist's plugins named: the whole session, as `make integration` runs it."""
    project = make_project()
    done = _sh(project, ONLY_ITS_PLUGINS + " -n 2")
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "2 passed" in out and "branchstack: deployed " in out, out
    assert "verified gone" in out and "branchstack: emulator stopped" in out, out
    no_traceback(out)
