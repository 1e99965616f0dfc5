"""YAML scenarios against a real branch stack: passing, failing with a readable report, and under xdist."""

from __future__ import annotations

import textwrap

import pytest
from e2e_support import Emulator, ProjectFactory, Runner, no_traceback

pytestmark = pytest.mark.e2e

SCENARIOS = """\
scenarios:
  - name: item round trip
    steps:
      - name: write
        put: {table: TableName, item: {pk: "{{ unique }}", n: 3}}
      - name: read
        get: {table: Items, key: {pk: "{{ unique }}"}}
        expect: {item: {pk: "{{ unique }}", n: 3}}
      - name: echo
        invoke: {function: Echo, payload: {hello: "{{ unique }}"}}
        expect: {status: 200, payload: {echo: {hello: "{{ unique }}"}}}
  - name: wrong expectation
    steps:
      - put: {table: TableName, item: {pk: "{{ unique }}", n: 3}}
      - name: read back
        get: {table: TableName, key: {pk: "{{ unique }}"}}
        expect: {item: {n: !gt 10}}
"""


def project_with_scenarios(make_project: ProjectFactory):
    project = make_project()
    (project / "scenarios").mkdir()
    (project / "scenarios" / "items.yaml").write_text(textwrap.dedent(SCENARIOS))
    return project


def test_yaml_scenarios_run_and_failures_show_step_expected_observed(
    make_project: ProjectFactory, run: Runner, emulator: Emulator
) -> None:
    project = project_with_scenarios(make_project)
    env = {"HARNESS_TARGET": "endpoint", "HARNESS_ENDPOINT_URL": emulator.url}
    res = run(project, "scenarios", "-rA", env=env)

    assert res.returncode == 1, res.output
    assert "1 failed, 1 passed" in res.output
    assert "PASSED scenarios/items.yaml::item round trip" in res.output
    # The failure names the step, what was expected and what was observed.
    assert "step 2/2 'read back'" in res.output
    assert "item.n: expected a number > 10, observed 3" in res.output
    assert "faker seed:" in res.output
    no_traceback(res.output)
    assert res.lines("0 left)"), res.output


def test_xdist_gives_the_same_results(make_project: ProjectFactory, run: Runner, emulator: Emulator) -> None:
    project = project_with_scenarios(make_project)
    env = {"HARNESS_TARGET": "endpoint", "HARNESS_ENDPOINT_URL": emulator.url}
    serial = run(project, "scenarios", "-rA", "-p", "no:randomly", env=env)
    parallel = run(project, "scenarios", "-rA", "-n", "2", env=env)

    def outcomes(output: str) -> set[str]:
        return {line.split(" - ")[0] for line in output.splitlines() if line.startswith(("PASSED ", "FAILED "))}

    assert outcomes(serial.output) == outcomes(parallel.output) != set()
    assert len(parallel.lines("branchstack: deploying")) == 1, parallel.output
