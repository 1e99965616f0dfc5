"""The conformance corpus on the default target (embedded emulator, IAM enforced).

Each app under ``tests/conformance/`` is written the way its community writes
it: a SAM template, handlers as in the AWS samples, a Makefile whose
``deploy`` packages and deploys with ``aws cloudformation``, and its own
integration tests reading the stack's outputs through ``AWS_SAM_STACK_NAME``.
Nothing in an app knows about the harness but its ``[tool.harness]`` table
(the deploy command).

Each test copies one app into a throw-away git project and runs
``pytest tests/integration`` there as a developer would. It passes when the
app's own tests all pass, the stack is verified gone afterwards, and every
warning the app is expected to get before its tests (``harness.fidelity``)
is printed.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from e2e_support import Runner, git, no_traceback

pytestmark = [pytest.mark.e2e, pytest.mark.conformance]

CORPUS = Path(__file__).resolve().parent.parent / "conformance"
APPS = sorted(p.name for p in CORPUS.iterdir() if (p / "template.yaml").is_file())

#: Warnings an app's template earns before its tests run (substrings of the fidelity lines).
EXPECTED_WARNINGS: dict[str, list[str]] = {
    "apigw_sqs": ["InboxApi POST /inbox x-amazon-apigateway-integration credentials: "],
    "kinesis_stream": ["ClickConsumerFunctionStream MaximumRetryAttempts, BisectBatchOnFunctionError: "],
}

#: Apps that need an emulator gap closed that is not closed yet: strict, so the mark goes when it is.
PENDING: dict[str, str] = {}

#: Resources an app's template retains, named by the teardown as deleted by the harness (``harness.retained``).
RETAINED: dict[str, list[str]] = {"lambda_layers": ["(AWS::Lambda::LayerVersion) arn:aws:lambda:"]}

#: Hang guard of one app's run (deploy, tests, teardown); never a timing assertion.
APP_TIMEOUT = 420.0

#: How a fidelity warning appears in the header (``harness.fidelity.report``).
FIDELITY_WARNING = "branchstack:   warning: "

SUMMARY_RE = re.compile(r"=+ (?P<summary>.*\b(passed|failed|error)\b.*) in [\d.]+s")


def _cases() -> list[object]:
    return [
        pytest.param(app, marks=pytest.mark.xfail(strict=True, reason=PENDING[app])) if app in PENDING else app
        for app in APPS
    ]


def test_the_corpus_has_the_apps_it_promises() -> None:
    assert len(APPS) >= 8, APPS
    for app in APPS:
        root = CORPUS / app
        assert (root / "Makefile").is_file() and (root / "pyproject.toml").is_file(), app
        assert list((root / "tests" / "integration").glob("test_*.py")), app


def project_from(app: str, base: Path) -> Path:
    """The app as a developer's checkout: its own git repository on a feature branch."""
    root = base / app
    shutil.copytree(CORPUS / app, root, ignore=shutil.ignore_patterns(".aws-sam", "harness-report", "__pycache__"))
    git(root, "init", "-q", "-b", "feature/conformance")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", app)
    return root


@pytest.mark.parametrize("app", _cases())
def test_app_passes_on_the_default_target(app: str, tmp_path: Path, run: Runner) -> None:
    project = project_from(app, tmp_path)
    result = run(project, "tests/integration", "-p", "no:randomly", "-rA", timeout=APP_TIMEOUT)
    summary = SUMMARY_RE.search(result.output)
    assert result.returncode == 0, f"{app}: exit {result.returncode}\n{result.output[-6000:]}"
    assert summary is not None and "failed" not in summary["summary"], result.output[-3000:]
    assert "verified gone" in result.output, result.output[-3000:]
    warnings = [line for line in result.output.splitlines() if line.startswith(FIDELITY_WARNING)]
    expected = EXPECTED_WARNINGS.get(app, [])
    assert len(warnings) == len(expected), f"{app}: fidelity warnings {warnings}, expected {expected}"
    for needle in expected:
        assert any(needle in line for line in warnings), f"{app}: no warning {needle!r} in {warnings}"
    if warnings:  # said before the tests run, not after a failure
        first_test = result.output.index("\ntests/integration/", result.output.index("collected "))
        assert result.output.index(warnings[0]) < first_test, result.output[:4000]
    for needle in RETAINED.get(app, []):
        assert "retained by the template, deleted by the harness:" in result.output, result.output[-3000:]
        assert needle in result.output.split("retained by the template, deleted by the harness:", 1)[1], app
    no_traceback(result.output)
