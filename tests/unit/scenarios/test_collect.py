"""Pytest nodes: collection, marks, step reports, clean failures, file detection."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.scenarios.collect import ScenarioItem, is_scenario_file

pytest_plugins = ["pytester"]

_INTERNAL_FRAME = re.compile(r"harness[/\\][\w/\\]+\.py")

CONFTEST = """
import io
import json

import pytest
import requests
from faker import Faker

from harness.scenarios import collect
from harness.scenarios.runtime import RUNTIME_FACTORY_KEY, StepRuntime


class EchoLambda:
    def invoke(self, **params):
        payload = json.loads(params["Payload"])
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps({"echo": payload}).encode())}


class FakeStack:
    name, stage, region = "orders-test", "test", "us-east-1"
    outputs = {}
    resources = {"Echo": "orders-test-Echo"}

    def client(self, service):
        return EchoLambda()


def pytest_configure(config):
    if config.getoption("--no-runtime", False):
        return

    def factory(item):
        fake = Faker()
        fake.seed_instance(42)
        return StepRuntime(stack=FakeStack(), unique="u-" + item.name[:3], fake=fake, seed=42,
                           resolve_url=lambda url: url, http=requests.Session(), env={})

    config.stash[RUNTIME_FACTORY_KEY] = factory


def pytest_addoption(parser):
    parser.addoption("--no-runtime", action="store_true")


def pytest_collect_file(parent, file_path):
    return collect.collect_scenario_file(parent, file_path)
"""

SCENARIOS = """\
vars: {who: world}
scenarios:
  - name: echo works
    marks: [smoke]
    steps:
      - name: say hello
        invoke: {function: Echo, payload: {hello: "{{ vars.who }}", id: "{{ unique }}"}}
        expect: {status: 200, payload: {echo: {hello: world}}}
        save: {id: payload.echo.id}
      - name: pause
        wait: {seconds: 0}
      - name: again
        invoke: {function: Echo, payload: {id: "{{ saved.id }}"}}
        expect: {payload: {echo: {id: u-ech}}}

  - name: echo is wrong
    steps:
      - name: first
        invoke: {function: Echo, payload: {n: 1}}
      - name: compare
        invoke: {function: Echo, payload: {n: 2, items: [1, 2]}}
        expect: {payload: {echo: {n: !gt 5, items: [1, 3]}}}
      - name: never reached
        wait: {seconds: 0}

  - name: known bug
    marks: [{xfail: {reason: upstream bug, strict: true}}]
    steps:
      - invoke: {function: Echo, payload: {}}
        expect: {status: 500}

  - name: template failure at runtime
    steps:
      - invoke: {function: Echo, payload: {x: "{{ env.NOT_SET_ANYWHERE }}"}}
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nmarkers =\n    smoke: quick checks\n")
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios" / "echo.yaml").write_text(SCENARIOS)
    return pytester


def runpytest(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "-p", "no:branchstack", *args)


def test_runs_scenarios_as_items(project: pytest.Pytester) -> None:
    result = runpytest(project, "-v", "-rA")
    out = result.stdout.str()
    result.assert_outcomes(passed=1, failed=2, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            "*scenarios/echo.yaml::echo works PASSED*",
            "*scenarios/echo.yaml::echo is wrong FAILED*",
            "*scenarios/echo.yaml::known bug XFAIL*",
        ]
    )
    # The failure shows step, mismatches, expectation, observation and seed, without internals.
    assert "step 2/3 'compare' (line 20): invoke Echo (function orders-test-Echo)" in out
    assert "payload.echo.n: expected a number > 5, observed 2" in out
    assert "payload.echo.items[1]: expected 3, observed 2" in out
    assert "faker seed: 42" in out
    assert "Traceback" not in out
    assert not _INTERNAL_FRAME.search(out), out
    # Each step is reported by name with its status.
    assert re.search(r"1\. first\s+invoke\s+passed", out)
    assert re.search(r"2\. compare\s+invoke\s+failed", out)
    assert re.search(r"3\. never reached\s+wait\s+not run", out)
    assert re.search(r"2\. pause\s+wait\s+passed", out)
    # Runtime template errors are clean too.
    assert "scenarios/echo.yaml:34: scenario 'template failure at runtime', step 1" in out
    assert "environment variable NOT_SET_ANYWHERE is not set" in out


def test_marks_select_scenarios(project: pytest.Pytester) -> None:
    result = runpytest(project, "-m", "smoke")
    result.assert_outcomes(passed=1, deselected=3)


def test_keyword_selection_by_scenario_name(project: pytest.Pytester) -> None:
    result = runpytest(project, "-k", "wrong")
    result.assert_outcomes(failed=1, deselected=3)


def test_steps_are_user_properties(project: pytest.Pytester) -> None:
    runpytest(project, "--junitxml=report.xml", "-k", "works")
    xml = (project.path / "report.xml").read_text()
    assert 'name="step 1"' in xml and "say hello" in xml and "'status': 'passed'" in xml


def test_item_location_points_at_the_scenario(project: pytest.Pytester) -> None:
    items, _ = project.inline_genitems("-p", "no:branchstack")
    by_name = {item.name: item for item in items}
    item = by_name["echo is wrong"]
    assert isinstance(item, ScenarioItem)
    assert item.location == ("scenarios/echo.yaml", 15, "scenario: echo is wrong")
    assert [m.name for m in by_name["echo works"].iter_markers()] == ["smoke"]


def test_without_runtime_factory_the_error_is_clear(project: pytest.Pytester) -> None:
    result = runpytest(project, "--no-runtime", "-k", "works")
    out = result.stdout.str()
    result.assert_outcomes(failed=1)
    assert "no stack runtime is configured" in out
    assert "Traceback" not in out


def test_scenario_file_detection(tmp_path: Path) -> None:
    (tmp_path / "scenarios" / "nested").mkdir(parents=True)
    inside = tmp_path / "scenarios" / "nested" / "a.yml"
    inside.write_text("anything: 1\n")
    top_key = tmp_path / "checks.yaml"
    top_key.write_text("# checks\nvars: {a: 1}\nscenarios:\n  - name: x\n")
    other = tmp_path / "template.yaml"
    other.write_text("Resources:\n  scenarios: 1\n")
    not_yaml = tmp_path / "scenarios" / "notes.md"
    not_yaml.write_text("scenarios:\n")
    assert is_scenario_file(inside, tmp_path)
    assert is_scenario_file(top_key, tmp_path)
    assert not is_scenario_file(other, tmp_path)
    assert not is_scenario_file(not_yaml, tmp_path)
    # A `scenarios` directory above the rootdir does not count.
    project = tmp_path / "scenarios" / "project"
    project.mkdir()
    (project / "data.yaml").write_text("items: []\n")
    assert not is_scenario_file(project / "data.yaml", project)
    assert is_scenario_file(project / "data.yaml", tmp_path)
