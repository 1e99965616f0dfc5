"""Resources a template retains (``DeletionPolicy: Retain``, SAM layer versions) on a branch stack.

The app in ``stacks/retained/`` is a SAM app written as its community writes
it: a layer (SAM retains layer versions by default), an audit log group with
``DeletionPolicy: Retain``, a function using both, a production-style
``make deploy`` (package to an artifact bucket, deploy) and its own tests.

* default (``retained = delete``): green, exit 0, both named as "retained by
  the template, deleted by the harness", and really gone;
* ``retained = keep``: green, exit 0, both named and left; ``harness gc``
  removes them later, from the record the teardown left in the lease table.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from e2e_support import BRANCH, HARNESS_CLI, Emulator, Result, Runner, git, no_traceback

pytestmark = pytest.mark.e2e

APP = Path(__file__).parent / "stacks" / "retained"
STACK_RE = re.compile(r"-> stack (\S+)")


def greeter_project(tmp_path: Path, extra_toml: str = "") -> Path:
    root = tmp_path / "greeter"
    shutil.copytree(APP, root, ignore=shutil.ignore_patterns("app_tests"))
    (root / "tests" / "integration").mkdir(parents=True)
    shutil.copy(APP / "app_tests" / "greeter.py", root / "tests" / "integration" / "test_greeter.py")
    if extra_toml:
        (root / "pyproject.toml").write_text((root / "pyproject.toml").read_text() + extra_toml)
    git(root, "init", "-q", "-b", BRANCH)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "greeter")
    return root


def block(output: str, heading: str) -> list[str]:
    """The indented lines under the first line containing ``heading``."""
    lines = [line.removeprefix("branchstack: ") for line in output.splitlines()]
    at = next(i for i, line in enumerate(lines) if heading in line)
    out = []
    for line in lines[at + 1 :]:
        if not line.startswith("  "):
            break
        out.append(line.strip())
    return out


def retained_lines(result: Result, heading: str) -> list[str]:
    assert heading in result.output, result.output[-3000:]
    return block(result.output, heading)


def test_retained_resources_are_deleted_by_the_harness(tmp_path: Path, run: Runner) -> None:
    project = greeter_project(tmp_path)
    result = run(project, "-q")
    no_traceback(result.output)
    assert result.returncode == 0, result.output[-3000:]
    assert "2 passed" in result.output
    named = retained_lines(result, "retained by the template, deleted by the harness:")
    assert len(named) == 2, named
    assert any(x.startswith("AuditLog (AWS::Logs::LogGroup) /app/") for x in named), named
    assert any(x.startswith("SharedLayer") and "(AWS::Lambda::LayerVersion) arn:aws:lambda:" in x for x in named)
    assert "LEFT BEHIND" not in result.output


def resources_left(emu: Emulator) -> tuple[list[str], list[str]]:
    groups = [
        g["logGroupName"] for g in emu.client("logs").describe_log_groups(logGroupNamePrefix="/app/")["logGroups"]
    ]
    layers = [
        v["LayerVersionArn"]
        for layer in emu.client("lambda").list_layers()["Layers"]
        for v in emu.client("lambda").list_layer_versions(LayerName=layer["LayerName"])["LayerVersions"]
    ]
    return groups, layers


def test_retained_keep_names_and_leaves_them_then_gc_removes_them(
    tmp_path: Path, run: Runner, emulator: Emulator
) -> None:
    target = f'target = "endpoint"\nendpoint-url = "{emulator.url}"\nretained = "keep"\nstack-ttl-hours = 0.0003\n'
    project = greeter_project(tmp_path, extra_toml=target)
    result = run(project, "-q")
    no_traceback(result.output)
    assert result.returncode == 0, result.output[-3000:]
    kept = retained_lines(result, "retained by the template, left in place (retained = keep;")
    assert len(kept) == 2, kept
    assert "LEFT BEHIND" not in result.output
    stack = STACK_RE.search(result.output).group(1)  # type: ignore[union-attr]
    groups, layers = resources_left(emulator)
    assert groups == [f"/app/{stack}/audit"]
    assert len(layers) == 1 and any(layers[0] in line for line in kept)

    gc_dry = run(project, argv=[HARNESS_CLI, "gc"])
    assert gc_dry.returncode == 0, gc_dry.output
    assert "resources retained by the templates of deleted stacks:" in gc_dry.output
    assert "would delete" in gc_dry.output and stack in gc_dry.output
    assert resources_left(emulator) == (groups, layers)  # a dry run touches nothing

    gc = run(project, argv=[HARNESS_CLI, "gc", "--yes"])
    assert gc.returncode == 0, gc.output
    assert f"retained resources of {stack}: 2 deleted" in gc.output
    assert resources_left(emulator) == ([], [])
    again = run(project, argv=[HARNESS_CLI, "gc", "--yes"])
    assert "resources retained" not in again.output  # the record is gone with them


def test_an_update_s_old_layer_version_is_deleted_by_the_harness(
    tmp_path: Path, run: Runner, emulator: Emulator
) -> None:
    """A kept stack redeployed with a changed layer: SAM gives the new version a new logical id and keeps the old."""
    project = greeter_project(tmp_path, extra_toml=f'target = "endpoint"\nendpoint-url = "{emulator.url}"\n')
    first = run(project, "-q", "--keep-stack")
    assert first.returncode == 0, first.output[-3000:]
    (_group,), (old,) = resources_left(emulator)

    layer = project / "layer" / "python" / "greeting.py"
    layer.write_text(layer.read_text() + "# the layer changed\n")
    second = run(project, "-q", "--keep-stack")
    no_traceback(second.output)
    assert second.returncode == 0, second.output[-3000:]
    named = retained_lines(second, "retained by the update, deleted by the harness:")
    assert len(named) == 1 and named[0].startswith("SharedLayer") and named[0].endswith(old), named
    _groups, layers = resources_left(emulator)
    assert len(layers) == 1 and layers != [old]  # only the version the stack uses

    destroy = run(project, argv=[HARNESS_CLI, "destroy"])
    assert destroy.returncode == 0, destroy.output[-3000:]
    assert resources_left(emulator) == ([], [])
