"""The CI configurations shipped with the project.

`.circleci/config.yml`, `buildspec.yml` (CodeBuild) and
`.github/workflows/integration.yml` each run the Makefile contract (setup,
lint, test, integration), publish JUnit XML and `harness-report/`, and never
write the branch into a command: the harness reads it from the CI's own
environment, and a branch name is attacker-chosen text (script injection).
Fast, no network, no subprocesses.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = ROOT / "Makefile"
README = ROOT / "README.md"
CIRCLECI = ROOT / ".circleci" / "config.yml"
CODEBUILD = ROOT / "buildspec.yml"
GITHUB = ROOT / ".github" / "workflows" / "integration.yml"
CONFIGS = {"circleci": CIRCLECI, "codebuild": CODEBUILD, "github": GITHUB}

REPORT_DIR = "harness-report"
CONTRACT = ("setup", "lint", "test", "integration")
PYTEST_GOALS = {"test", "conformance", "integration"}  # the targets that append $(PYTEST_ARGS) to pytest


# --- loading ---------------------------------------------------------------------------------------------------


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans (only true/false), as GitHub and CircleCI read YAML.

    PyYAML follows YAML 1.1, where `on`, `off`, `yes` and `no` are booleans: GitHub's
    `on:` key would become the key True.
    """


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load(text: str) -> dict[str, Any]:
    doc = yaml.load(text, Loader=Yaml12Loader)  # a SafeLoader subclass
    assert isinstance(doc, dict), "a CI config is a mapping at the top level"
    return doc


@cache
def config(kind: str) -> dict[str, Any]:
    return load(CONFIGS[kind].read_text())


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    """The `on:` of a GitHub workflow, whether it was read as "on" (YAML 1.2) or True (PyYAML's YAML 1.1)."""
    on = workflow["on"] if "on" in workflow else workflow.get(True)
    assert on is not None, "the workflow has no `on:` triggers"
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return dict(on)


# --- commands --------------------------------------------------------------------------------------------------


def circleci_commands(doc: dict[str, Any]) -> list[str]:
    """Every `run` command anywhere in a CircleCI config (jobs, reusable commands, conditional steps)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "run" and isinstance(value, str):
                    found.append(value)
                elif key == "run" and isinstance(value, dict) and isinstance(value.get("command"), str):
                    found.append(value["command"])
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(doc)
    return found


def codebuild_commands(doc: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for phase in (doc.get("phases") or {}).values():
        for key in ("commands", "finally"):
            found.extend(str(c) for c in (phase or {}).get(key) or [])
    return found


def github_commands(doc: dict[str, Any]) -> list[str]:
    return [
        step["run"]
        for job in (doc.get("jobs") or {}).values()
        for step in job.get("steps") or []
        if isinstance(step, dict) and "run" in step
    ]


COMMANDS = {"circleci": circleci_commands, "codebuild": codebuild_commands, "github": github_commands}


def commands(kind: str, doc: dict[str, Any] | None = None) -> list[str]:
    return COMMANDS[kind](config(kind) if doc is None else doc)


# --- make invocations ------------------------------------------------------------------------------------------

# `make` as a word (at the start, or after whitespace or ; & | ( `) and its arguments up to the end of that
# shell command. It errs on the side of checking: `echo make x` counts as a call (and fails loudly).
_MAKE_CALL_RE = re.compile(r"(?<![^\s;&|(`])make(?=[ \t]|$)(?P<args>[^;&|\n)`#]*)", re.M)
_MAKE_OPTIONS_WITH_ARG = {"-C", "-f", "-I", "-j", "-l", "-o", "-W", "--directory", "--file", "--makefile"}
_OTHER_MAKEFILE = {"-C", "-f", "--directory", "--file", "--makefile"}


@dataclass(frozen=True)
class MakeCall:
    goals: tuple[str, ...]
    variables: dict[str, str]
    other_makefile: bool
    text: str


def make_calls(command: str) -> list[MakeCall]:
    calls = []
    for m in _MAKE_CALL_RE.finditer(command):
        words = shlex.split(m.group("args"))
        goals: list[str] = []
        variables: dict[str, str] = {}
        other_makefile = False
        skip_next = False
        for word in words:
            if skip_next:
                skip_next = False
            elif word in _MAKE_OPTIONS_WITH_ARG:
                skip_next = True
                other_makefile |= word in _OTHER_MAKEFILE
            elif word.startswith("-"):
                other_makefile |= word.startswith(("-C", "-f", "--directory=", "--file=", "--makefile="))
            elif "=" in word:
                name, _, value = word.partition("=")
                variables[name] = value
            else:
                goals.append(word)
        calls.append(MakeCall(tuple(goals), variables, other_makefile, m.group(0).strip()))
    return calls


@cache
def makefile_targets() -> frozenset[str]:
    """Targets of the Makefile's rule lines (`^name:`, several names allowed; not `name := value`)."""
    rule = re.compile(r"^(?P<names>[A-Za-z0-9_][\w.-]*(?:[ \t]+[A-Za-z0-9_][\w.-]*)*)[ \t]*::?(?!=)", re.M)
    return frozenset(name for m in rule.finditer(MAKEFILE.read_text()) for name in m.group("names").split())


def makefile_recipe(target: str) -> list[str]:
    lines = MAKEFILE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"^{re.escape(target)}[ \t]*:(?!=)", line))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def junit_paths(command: str) -> list[str]:
    return re.findall(r"--junit-?xml[= ]([^\s\"']+)", command)


def is_under(path: str, directory: str) -> bool:
    return PurePosixPath(directory.rstrip("/")) in PurePosixPath(path).parents


# --- branch interpolation (script injection) -------------------------------------------------------------------

BRANCH_INTERPOLATIONS = {
    "GitHub expression github.head_ref": re.compile(r"\$\{\{\s*github\.head_ref"),
    "GitHub expression github.ref / github.ref_name": re.compile(r"\$\{\{\s*github\.ref"),
    "GitHub PR head ref": re.compile(r"github\.event\.pull_request\.head\.ref"),
    "GitHub branch variable": re.compile(r"\$\{?(?:GITHUB_HEAD_REF|GITHUB_REF_NAME)\b"),
    "CircleCI branch variable": re.compile(r"\$\{?CIRCLE_BRANCH\b"),
    "CircleCI pipeline value pipeline.git.branch": re.compile(r"<<\s*pipeline\.git\.branch\s*>>"),
    "CodeBuild head ref variable": re.compile(r"\$\{?CODEBUILD_WEBHOOK_HEAD_REF\b"),
    "CodeBuild source version variable": re.compile(r"\$\{?CODEBUILD_SOURCE_VERSION\b"),
}


def injection_findings(kind: str, doc: dict[str, Any]) -> list[str]:
    """Every command of a config that writes the branch (or, on GitHub, any expression) into its script."""
    findings = []
    for command in commands(kind, doc):
        for what, pattern in BRANCH_INTERPOLATIONS.items():
            if pattern.search(command):
                findings.append(f"{what} in {command!r}")
        if kind == "github" and "${{" in command:
            findings.append(f"GitHub expression in a run: script (pass it through env:) in {command!r}")
    return findings


# --- every config ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_config_parses_as_yaml(kind: str) -> None:
    doc = config(kind)
    assert doc
    assert commands(kind), f"{CONFIGS[kind].name}: no commands found (the checks below would be vacuous)"


def test_pyyaml_reads_githubs_on_key_as_true_and_both_readings_are_handled() -> None:
    text = GITHUB.read_text()
    yaml11 = yaml.safe_load(text)
    assert True in yaml11 and "on" not in yaml11  # the YAML 1.1 gotcha
    assert "on" in config("github")
    assert triggers(yaml11) == triggers(config("github"))


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_config_runs_the_whole_makefile_contract(kind: str) -> None:
    goals = {goal for command in commands(kind) for call in make_calls(command) for goal in call.goals}
    assert set(CONTRACT) <= goals, f"{CONFIGS[kind].name} never runs make {sorted(set(CONTRACT) - goals)}"


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_every_make_target_invoked_exists_in_the_makefile(kind: str) -> None:
    calls = [call for command in commands(kind) for call in make_calls(command)]
    assert calls, f"{CONFIGS[kind].name} invokes no make target"
    for call in calls:
        assert not call.other_makefile, f"{call.text!r}: the contract is the project's own Makefile"
        assert call.goals, f"{call.text!r}: make without a goal runs the default goal (help)"
        missing = [goal for goal in call.goals if goal not in makefile_targets()]
        assert not missing, f"{CONFIGS[kind].name}: {call.text!r} invokes {missing}, not targets of the Makefile"


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_no_command_interpolates_the_branch(kind: str) -> None:
    assert injection_findings(kind, config(kind)) == []


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_every_pytest_run_writes_its_own_junit_file(kind: str) -> None:
    paths = []
    for command in commands(kind):
        for call in make_calls(command):
            if PYTEST_GOALS & set(call.goals):
                assert len(PYTEST_GOALS & set(call.goals)) == 1, (
                    f"{call.text!r}: test and integration would share one JUnit file"
                )
                found = junit_paths(call.variables.get("PYTEST_ARGS", ""))
                assert found, f"{call.text!r} writes no JUnit XML (PYTEST_ARGS=--junitxml=...)"
                paths += found
    assert paths and len(paths) == len(set(paths)), (
        f"{CONFIGS[kind].name}: JUnit files {paths} are missing or overwrite each other"
    )
    for path in paths:
        assert is_under(path, REPORT_DIR), f"{path}: JUnit XML belongs under {REPORT_DIR}/"


# --- the Makefile side of the contract -------------------------------------------------------------------------


def test_makefile_targets_are_parsed_from_rule_lines() -> None:
    targets = makefile_targets()
    assert {*CONTRACT, "deploy", "destroy"} <= targets
    assert not {"SHELL", ".PHONY", ".DEFAULT_GOAL", "PYTEST_ARGS"} & targets


@pytest.mark.parametrize("target", sorted(PYTEST_GOALS))
def test_makefile_passes_pytest_args_through(target: str) -> None:
    recipe = makefile_recipe(target)
    assert any("pytest" in line and "$(PYTEST_ARGS)" in line for line in recipe), (
        f"make {target} must append $(PYTEST_ARGS) to pytest, or CI publishes no JUnit XML"
    )


def test_make_call_extraction() -> None:
    [call] = make_calls("make setup lint test")
    assert call.goals == ("setup", "lint", "test")
    [call] = make_calls('make integration PYTEST_ARGS="--junitxml=harness-report/junit/i.xml -x"')
    assert call.goals == ("integration",)
    assert call.variables == {"PYTEST_ARGS": "--junitxml=harness-report/junit/i.xml -x"}
    calls = make_calls("set -e\ncd x && make -j 2 setup; make -C other build | tee log\ncmake . && echo made")
    assert [c.goals for c in calls] == [("setup",), ("build",)]
    assert [c.other_makefile for c in calls] == [False, True]
    assert make_calls("echo remake; make-setup") == []


def test_a_make_target_missing_from_the_makefile_is_flagged() -> None:
    [call] = make_calls("make setup lint tests")
    assert [goal for goal in call.goals if goal not in makefile_targets()] == ["tests"]


# --- negative controls: the injection check can fail -----------------------------------------------------------

BAD_CONFIGS = {
    "github head_ref": (
        "github",
        "GitHub expression github.head_ref",
        """
        on: pull_request
        jobs:
          integration:
            steps:
              - run: make integration BRANCH="${{ github.head_ref }}"
        """,
    ),
    "github any expression": (
        "github",
        "GitHub expression in a run: script",
        """
        on: pull_request
        jobs:
          integration:
            steps:
              - run: |
                  echo "${{ github.event.pull_request.title }}"
        """,
    ),
    "github PR head ref": (
        "github",
        "GitHub PR head ref",
        """
        jobs:
          test:
            steps:
              - run: git checkout ${{ github.event.pull_request.head.ref }}
        """,
    ),
    "github branch variable": (
        "github",
        "GitHub branch variable",
        """
        jobs:
          integration:
            steps:
              - run: make integration STAGE="$GITHUB_HEAD_REF"
        """,
    ),
    "circleci variable": (
        "circleci",
        "CircleCI branch variable",
        """
        version: 2.1
        jobs:
          integration:
            steps:
              - run: make integration STAGE=$CIRCLE_BRANCH
        """,
    ),
    "circleci braced variable in a reusable command": (
        "circleci",
        "CircleCI branch variable",
        """
        version: 2.1
        commands:
          deploy:
            steps:
              - run:
                  name: deploy
                  command: echo "${CIRCLE_BRANCH}"
        """,
    ),
    "circleci pipeline value": (
        "circleci",
        "pipeline.git.branch",
        """
        version: 2.1
        jobs:
          integration:
            steps:
              - when:
                  condition: true
                  steps:
                    - run: make integration STAGE=<< pipeline.git.branch >>
        """,
    ),
    "codebuild head ref": (
        "codebuild",
        "CodeBuild head ref variable",
        """
        version: 0.2
        phases:
          build:
            commands:
              - make integration STAGE=$CODEBUILD_WEBHOOK_HEAD_REF
        """,
    ),
    "codebuild source version in finally": (
        "codebuild",
        "CodeBuild source version variable",
        """
        version: 0.2
        phases:
          post_build:
            commands:
              - make destroy
            finally:
              - echo ${CODEBUILD_SOURCE_VERSION}
        """,
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_injection_check_flags_a_bad_config(case: str) -> None:
    kind, reason, text = BAD_CONFIGS[case]
    findings = injection_findings(kind, load(text.replace("\n        ", "\n")))
    assert any(reason in finding for finding in findings), f"{case}: not flagged for {reason!r}: {findings}"


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_injection_check_passes_a_clean_command(kind: str) -> None:
    clean = {
        "github": {"jobs": {"integration": {"steps": [{"run": 'make integration PYTEST_ARGS="-x"'}]}}},
        "circleci": {"jobs": {"integration": {"steps": [{"run": {"command": "make integration"}}]}}},
        "codebuild": {"phases": {"build": {"commands": ["make integration"]}}},
    }[kind]
    assert commands(kind, clean) and injection_findings(kind, clean) == []


# --- CircleCI --------------------------------------------------------------------------------------------------


def circleci_job_steps(doc: dict[str, Any], job: str) -> list[Any]:
    """The job's steps with reusable commands expanded."""
    reusable = doc.get("commands") or {}

    def expand(steps: list[Any]) -> list[Any]:
        out = []
        for step in steps:
            name = step if isinstance(step, str) else next(iter(step))
            if name in reusable:
                out += expand(reusable[name]["steps"])
            else:
                out.append(step)
        return out

    return expand(doc["jobs"][job]["steps"])


def step_value(step: Any, key: str) -> Any:
    return step.get(key) if isinstance(step, dict) else None


def test_circleci_structure() -> None:
    doc = config("circleci")
    assert str(doc["version"]) == "2.1"
    assert {"test", "integration"} <= set(doc["jobs"])
    workflow_jobs = {
        job if isinstance(job, str) else next(iter(job))
        for workflow in doc["workflows"].values()
        if isinstance(workflow, dict)
        for job in workflow["jobs"]
    }
    assert {"test", "integration"} <= workflow_jobs
    assert workflow_jobs <= set(doc["jobs"]), "a workflow runs a job that is not defined"
    for name in ("test", "integration"):
        job = doc["jobs"][name]
        executor = doc["executors"][job["executor"]] if "executor" in job else job
        assert executor["docker"][0]["image"] == "cimg/python:3.11"


@pytest.mark.parametrize("job", ["test", "integration"])
def test_circleci_publishes_junit_and_the_report(job: str) -> None:
    doc = config("circleci")
    steps = circleci_job_steps(doc, job)
    test_results = [step_value(s, "store_test_results") for s in steps if step_value(s, "store_test_results")]
    artifacts = [step_value(s, "store_artifacts") for s in steps if step_value(s, "store_artifacts")]
    assert [a["path"].rstrip("/") for a in artifacts] == [REPORT_DIR]
    [results_dir] = [r["path"] for r in test_results]
    runs = [step_value(s, "run") for s in steps if step_value(s, "run")]
    junit = [p for run in runs for p in junit_paths(run if isinstance(run, str) else run["command"])]
    assert junit, f"job {job} writes no JUnit XML"
    assert all(is_under(p, results_dir) for p in junit), f"{junit} are not under store_test_results {results_dir}"


# --- CodeBuild -------------------------------------------------------------------------------------------------


def test_codebuild_structure() -> None:
    doc = config("codebuild")
    assert str(doc["version"]) == "0.2"
    assert {"install", "build"} <= set(doc["phases"])
    assert str(doc["phases"]["install"]["runtime-versions"]["python"]) == "3.11"
    assert doc["phases"]["build"]["commands"]


def test_codebuild_publishes_junit_and_the_report() -> None:
    doc = config("codebuild")
    groups = [g for g in doc["reports"].values() if g.get("file-format") == "JUNITXML"]
    assert groups, "no report group with file-format JUNITXML"
    for path in (p for command in commands("codebuild") for p in junit_paths(command)):
        assert any(
            is_under(path, g.get("base-directory", "."))
            and any(
                fnmatch.fnmatch(str(PurePosixPath(path).relative_to(g.get("base-directory", "."))), pattern)
                for pattern in g["files"]
            )
            for g in groups
        ), f"JUnit file {path} is in no JUNITXML report group"
    artifacts = doc["artifacts"]
    if artifacts.get("base-directory", "").rstrip("/") == REPORT_DIR:
        assert "**/*" in artifacts["files"]
    else:
        assert f"{REPORT_DIR}/**/*" in artifacts["files"]


# --- GitHub Actions --------------------------------------------------------------------------------------------

TEST_REPORT_ACTIONS = (
    "dorny/test-reporter",
    "mikepenz/action-junit-report",
    "EnricoMi/publish-unit-test-result-action",
)


def github_steps(job: str) -> list[dict[str, Any]]:
    return config("github")["jobs"][job]["steps"]


def uses(step: dict[str, Any], action: str) -> bool:
    return str(step.get("uses", "")).split("@")[0] == action


def test_github_triggers() -> None:
    on = triggers(config("github"))
    assert "pull_request" in on
    assert "main" in on["push"]["branches"]
    # These run with write tokens and secrets on code from forks.
    assert not {"pull_request_target", "workflow_run"} & set(on)


def test_github_permissions_are_read_only() -> None:
    doc = config("github")
    all_steps = [step for job in doc["jobs"].values() for step in job["steps"]]
    allowed = {"contents": "read"}
    if any(str(s.get("uses", "")).startswith(TEST_REPORT_ACTIONS) for s in all_steps):
        allowed["checks"] = "write"
    assert isinstance(doc["permissions"], dict) and doc["permissions"].items() <= allowed.items()
    assert doc["permissions"].get("contents") == "read"
    for name, job in doc["jobs"].items():
        granted = dict(job.get("permissions", {}))
        if _uses(job, "aws-actions/configure-aws-credentials"):
            # OIDC into a sandbox account: only the opt-in job that exchanges the token may ask for one.
            assert granted.pop("id-token", None) == "write", f"job {name} needs id-token: write for OIDC"
            assert job.get("if") == "vars.HARNESS_AWS_TESTS == '1'", f"job {name} must be opt-in"
        assert granted.items() <= allowed.items(), f"job {name} widens the permissions"


def _uses(job: dict[str, Any], action: str) -> bool:
    return any(str(s.get("uses", "")).split("@")[0] == action for s in job.get("steps", []))


def test_only_the_opt_in_aws_job_reaches_an_account() -> None:
    jobs = config("github")["jobs"]
    aws = [name for name, job in jobs.items() if _uses(job, "aws-actions/configure-aws-credentials")]
    assert aws == ["aws"]
    assert jobs["aws"]["env"]["HARNESS_TARGET"] == "aws" and "HARNESS_ALLOWED_ACCOUNTS" in jobs["aws"]["env"]
    for name in ("test", "integration"):
        assert "id-token" not in jobs[name].get("permissions", {})


def test_github_integration_is_a_stable_required_check() -> None:
    jobs = config("github")["jobs"]
    assert {"test", "integration"} <= set(jobs)
    for name in ("test", "integration"):
        job = jobs[name]
        # The check's name is the job's name: no expression, no matrix suffix.
        assert job.get("name", name) == name
        assert "strategy" not in job
        # A job skipped because a job it needs failed would not block the merge.
        assert "needs" not in job
        assert isinstance(job.get("timeout-minutes"), int)


@pytest.mark.parametrize("job", ["test", "integration"])
def test_github_sets_up_python_311_with_pip_cache(job: str) -> None:
    steps = github_steps(job)
    checkout = [s for s in steps if uses(s, "actions/checkout")]
    assert [s["uses"] for s in checkout] == ["actions/checkout@v4"]
    [setup] = [s for s in steps if uses(s, "actions/setup-python")]
    assert setup["uses"] == "actions/setup-python@v5"
    assert setup["with"]["python-version"] == "3.11"  # a string: YAML reads 3.10 as 3.1
    assert setup["with"]["cache"] == "pip"


def test_github_concurrency_cancels_per_ref() -> None:
    concurrency = config("github")["concurrency"]
    assert "github.ref" in concurrency["group"]
    assert concurrency["cancel-in-progress"] is True


@pytest.mark.parametrize("job", ["test", "integration"])
def test_github_publishes_junit_and_the_report(job: str) -> None:
    steps = github_steps(job)
    uploads = [s for s in steps if uses(s, "actions/upload-artifact")]
    assert uploads, f"job {job} uploads no artifact"
    for upload in uploads:
        assert upload["uses"] == "actions/upload-artifact@v4"
        assert upload.get("if") in ("always()", "${{ always() }}", "${{ !cancelled() }}", "!cancelled()"), (
            "the report matters most when the job failed"
        )
    uploaded = [line.strip().rstrip("/") for u in uploads for line in str(u["with"]["path"]).splitlines()]
    assert REPORT_DIR in uploaded
    junit = [p for s in steps if "run" in s for p in junit_paths(s["run"])]
    assert junit and all(is_under(p, REPORT_DIR) for p in junit)


def test_github_no_expression_in_any_run_script() -> None:
    for command in commands("github"):
        assert "${{" not in command, f"expression in a run: script (pass it through env:): {command!r}"


# --- official schemas (vendored in check-jsonschema: offline) ---------------------------------------------------


def schema_errors(schema_name: str, doc: dict[str, Any]) -> list[str]:
    jsonschema = pytest.importorskip("jsonschema")
    pytest.importorskip("check_jsonschema")
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / schema_name).read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc))


@pytest.mark.parametrize(("kind", "schema_name"), [("github", "github-workflows.json"), ("circleci", "circle-ci.json")])
def test_config_matches_the_official_schema(kind: str, schema_name: str) -> None:
    assert schema_errors(schema_name, config(kind)) == []


def test_schema_check_can_fail() -> None:
    bad = load("on: pull_request\njobs:\n  integration:\n    runs-on: ubuntu-latest\n    stepz: []\n")
    assert schema_errors("github-workflows.json", bad)
    bad = load("version: 2.1\njobs:\n  test:\n    docker: [{image: cimg/python:3.11}]\n    steps: [{run: {nam: x}}]\n")
    assert schema_errors("circle-ci.json", bad)


# --- README ----------------------------------------------------------------------------------------------------


def test_readme_documents_ci_and_the_merge_gate() -> None:
    text = README.read_text()
    assert "## In CI and as a merge gate" in text
    section = text[text.index("## In CI and as a merge gate") :]
    for name in (".circleci/config.yml", "buildspec.yml", ".github/workflows/integration.yml", "`integration`"):
        assert name in section, f"the README's CI section does not mention {name}"


# --- behaviour snapshots ----------------------------------------------------------------------------------------


def test_each_config_gates_pull_requests_on_the_behaviour_snapshot() -> None:
    """README "Behaviour snapshots": `behaviour = gate` on pull requests, report otherwise."""
    gh = config("github")["jobs"]["integration"]["steps"]
    [step] = [s for s in gh if "make integration" in str(s.get("run", ""))]
    assert step["env"]["HARNESS_BEHAVIOUR"] == "${{ github.event_name == 'pull_request' && 'gate' || 'report' }}"
    assert config("github")["jobs"]["aws"]["env"]["HARNESS_BEHAVIOUR"] == "report"
    circle = "\n".join(commands("circleci"))
    assert 'if [ -n "${CIRCLE_PULL_REQUEST:-}" ]; then export HARNESS_BEHAVIOUR=gate; fi' in circle
    codebuild = commands("codebuild")
    gate = codebuild.index(
        'if [[ "${CODEBUILD_WEBHOOK_EVENT:-}" == PULL_REQUEST_* ]]; then export HARNESS_BEHAVIOUR=gate; fi'
    )
    assert "make integration" in codebuild[gate + 1]
