import subprocess
from pathlib import Path

from harness.fingerprint import compute, inputs, matching, on_test_side


def _repo(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text(".build/\n")
    (tmp_path / "stack").mkdir()
    (tmp_path / "stack" / "template.yaml").write_text("Resources: {}\n")
    (tmp_path / "stack" / "app.py").write_text("x = 1\n")
    (tmp_path / "README.md").write_text("docs\n")
    return tmp_path


def test_same_inputs_same_fingerprint_and_any_input_change_changes_it(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    first, n = compute(root, ["stack/**"], extra=["make deploy"])
    assert n == 2
    assert compute(root, ["stack/**"], extra=["make deploy"])[0] == first
    (root / "README.md").write_text("other docs\n")
    assert compute(root, ["stack/**"], extra=["make deploy"])[0] == first  # not an input
    (root / "stack" / ".build").mkdir()
    (root / "stack" / ".build" / "out.zip").write_bytes(b"zip")
    assert compute(root, ["stack/**"], extra=["make deploy"])[0] == first  # ignored build output
    assert compute(root, ["stack/**"], extra=["sam deploy"])[0] != first
    (root / "stack" / "app.py").write_text("x = 2\n")
    assert compute(root, ["stack/**"], extra=["make deploy"])[0] != first


def test_renaming_a_file_changes_the_fingerprint(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    before = compute(root, ["stack/**"])[0]
    (root / "stack" / "app.py").rename(root / "stack" / "main.py")
    assert compute(root, ["stack/**"])[0] != before


def test_glob_matching() -> None:
    files = ["template.yaml", "src/a.py", "src/b/c.py", "tests/t.py"]
    assert matching(files, ["template.y*ml", "src/**"]) == ["template.yaml", "src/a.py", "src/b/c.py"]


def test_outside_git_build_output_and_caches_are_not_inputs(tmp_path: Path) -> None:
    """A deploy's own output (or a test's bytecode) must not make the next run redeploy."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("x = 1\n")
    (tmp_path / "template.yaml").write_text("Resources: {}\n")
    globs = ["template.yaml", "src/**", "cdk.out/**"]
    first, n = compute(tmp_path, globs)
    assert n == 2
    for made in ("src/__pycache__/app.cpython-312.pyc", "src/app.pyc", "src/node_modules/x/index.js",
                 "cdk.out/manifest.json", "src/.aws-sam/build/app.py"):  # fmt: skip
        (tmp_path / made).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / made).write_text("output")
    assert compute(tmp_path, globs) == (first, 2)
    (tmp_path / "src" / "app.py").write_text("x = 2\n")
    assert compute(tmp_path, globs)[0] != first  # the source still counts
    (tmp_path / "src" / "build").mkdir()
    (tmp_path / "src" / "build" / "module.py").write_text("y = 1\n")  # a folder merely named build is source
    assert compute(tmp_path, globs)[1] == 3


def _sam_app(root: Path) -> Path:
    """A SAM app laid out as `sam init` lays out its multi-function templates."""
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    files = {
        ".gitignore": ".aws-sam/\nharness-report/\n",
        "template.yaml": "Resources: {}\n",
        "Makefile": "deploy:\n\tsam build && sam deploy\n",
        "functions/stock_buyer/app.py": "TYPE = 'buy'\n",
        "functions/stock_buyer/requirements.txt": "",
        "statemachine/stock_trader.asl.json": "{}\n",
        "layers/common/python/shared.py": "X = 1\n",
        "tests/integration/test_flow.py": "def test(): pass\n",
        "tests/unit/test_buyer.py": "def test(): pass\n",
        "scenarios/flow.yaml": "scenarios: []\n",
        "conftest.py": "",
        "README.md": "docs\n",
        "docs/design.md": "docs\n",
        ".github/workflows/ci.yml": "on: push\n",
        "e2e/flow.yaml": "scenarios: []\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_unset_paths_count_every_deploy_input_of_an_app_laid_out_any_way(tmp_path: Path) -> None:
    """With no fingerprint-paths, an edit to any function, state machine, layer or the Makefile redeploys.

    A narrower default (the template and src/**) let a SAM app's edited function under functions/
    pass on its old code: the deploy was skipped as unchanged.
    """
    root = _sam_app(tmp_path)
    first, n = compute(root, [], excluded=["e2e", str(root / "harness-report")])
    assert n == 7  # .gitignore, template, Makefile, the function's two files, the ASL, the layer
    for rel in ("functions/stock_buyer/app.py", "statemachine/stock_trader.asl.json",
                "layers/common/python/shared.py", "Makefile", "template.yaml"):  # fmt: skip
        before = compute(root, [], excluded=["e2e"])[0]
        (root / rel).write_text((root / rel).read_text() + "# edited\n")
        assert compute(root, [], excluded=["e2e"])[0] != before, rel
    new_function = root / "functions" / "stock_seller" / "app.py"  # untracked, not yet added: still an input
    new_function.parent.mkdir()
    before = compute(root, [], excluded=["e2e"])[0]
    new_function.write_text("TYPE = 'sell'\n")
    assert compute(root, [], excluded=["e2e"])[0] != before


def test_unset_paths_leave_the_test_side_out(tmp_path: Path) -> None:
    """Editing a test, a scenario, the docs or CI does not redeploy; neither does the run's own report."""
    root = _sam_app(tmp_path)
    first = compute(root, [], excluded=["e2e", str(root / "harness-report")])[0]
    for rel in ("tests/integration/test_flow.py", "tests/unit/test_buyer.py", "scenarios/flow.yaml", "conftest.py",
                "README.md", "docs/design.md", ".github/workflows/ci.yml", "e2e/flow.yaml",
                "functions/stock_buyer/test_app.py", "functions/__pycache__/app.cpython-311.pyc"):  # fmt: skip
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("changed\n")
    (root / ".gitignore").write_text(".aws-sam/\n")  # the report folder no longer ignored: still not an input
    (root / "harness-report" / "traces").mkdir(parents=True)
    (root / "harness-report" / "traces" / "index.html").write_text("<html>")
    changed_ignore = compute(root, [], excluded=["e2e", str(root / "harness-report")])[0]
    (root / ".gitignore").write_text(".aws-sam/\nharness-report/\n")
    assert compute(root, [], excluded=["e2e", str(root / "harness-report")])[0] == first
    assert changed_ignore != first  # .gitignore itself is a project file like any other


def test_set_paths_are_exactly_the_inputs(tmp_path: Path) -> None:
    root = _sam_app(tmp_path)
    assert inputs(root, ["functions/**"]) == ["functions/stock_buyer/app.py", "functions/stock_buyer/requirements.txt"]
    assert on_test_side("tests/x.py") and on_test_side("a/b/test_c.py") and not on_test_side("functions/x/app.py")
    assert on_test_side("it/flow.yaml", ["it"]) and not on_test_side("itself/flow.yaml", ["it"])
