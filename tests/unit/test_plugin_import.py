"""Free until needed: loading the plugin, or running tests that need no stack, loads no AWS, data or engine code.

Every pytest run in a project that installs the plugin pays for what its
import loads, also unit-test runs that never touch a stack. boto3/botocore,
Faker, PyYAML, the scenario engine and the traces package are loaded only
when a stack session or a scenario file needs them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

# What a run that needs no stack must not load (prefix match on module names).
HEAVY = (
    "boto3",
    "botocore",
    "s3transfer",
    "faker",
    "yaml",
    "requests",
    "psutil",
    "harness.traces",
    "harness.pytest.report_extras",  # only when --html or --alluredir asks for it
)
# The scenario package's engine; ``collect`` (the collection hook) and ``runtime`` (a stash key) are light.
SCENARIO_LIGHT = {"harness.scenarios", "harness.scenarios.collect", "harness.scenarios.runtime"}


def _heavy(modules: list[str]) -> list[str]:
    found = [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    found += [m for m in modules if m.startswith("harness.scenarios.") and m not in SCENARIO_LIGHT]
    return sorted(set(found))


def _imported(code: str, cwd: Path | None = None) -> tuple[list[str], str]:
    """The modules ``python -X importtime -c code`` imported, and its output.

    Other installed pytest plugins are not loaded (Faker's own plugin imports Faker).
    """
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    modules = [line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    return [m for m in modules if m != "imported package"], done.stdout + done.stderr


def test_importing_the_plugin_loads_no_aws_faker_yaml_engine_or_traces() -> None:
    modules, _ = _imported("import harness.pytest.plugin")
    assert "harness.pytest.plugin" in modules  # the probe really saw the import
    assert _heavy(modules) == []


def test_importing_the_library_package_loads_no_boto3() -> None:
    modules, _ = _imported("import harness; import harness.errors")
    assert "harness.errors" in modules
    assert _heavy(modules) == []


def test_stack_stays_reachable_from_the_package_on_first_use() -> None:
    import harness
    from harness.stack import Stack, StackInfo

    assert harness.Stack is Stack
    assert harness.StackInfo is StackInfo


def test_a_unit_run_with_the_plugin_loads_none_of_it(tmp_path: Path) -> None:
    """A whole pytest session (configure, collection, one test, finish) that needs no stack."""
    (tmp_path / "test_one.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
    code = textwrap.dedent(
        """
        import sys, pytest
        rc = pytest.main(["-q", "-p", "no:cacheprovider", "-p", "harness.pytest.plugin", "test_one.py"])
        assert "harness.pytest.plugin" in sys.modules, "the branchstack plugin was not loaded"
        sys.exit(int(rc))
        """
    )
    modules, output = _imported(code, cwd=tmp_path)
    assert "1 passed" in output
    assert _heavy(modules) == []


#: pytest plugins that installing the plugin brings with its required dependencies, beside its own:
#: every pytest start in the user's project loads them. Faker's builds a Faker for every session (about
#: a second on a slow machine); a project that does not use its ``faker`` fixture can add ``-p no:faker``
#: to its addopts (the harness's ``fake`` fixture does not need it). README, "Start-up".
KNOWN_DEPENDENCY_PLUGINS = {"faker": "faker"}


def _required(dist: str) -> list[str]:
    """The names of ``dist``'s required (not extra) dependencies."""
    import re
    from importlib import metadata

    names = []
    for req in metadata.requires(dist) or []:
        if "extra ==" in req.split(";", 1)[-1] and ";" in req:
            continue
        match = re.match(r"[A-Za-z0-9._-]+", req)
        assert match, req
        names.append(match.group(0))
    return names


def test_the_required_dependencies_bring_no_other_pytest_plugin() -> None:
    """hypothesis, say, registers a plugin that cost every pytest start about 1.7 s on a 2-core machine."""
    from importlib import metadata

    brought = {}
    for name in _required("pytest-branchstack"):
        if name.lower() == "pytest":
            continue
        dist = metadata.distribution(name)
        for ep in dist.entry_points.select(group="pytest11"):
            brought[ep.name] = dist.metadata["Name"].lower()
    assert brought == KNOWN_DEPENDENCY_PLUGINS
