import subprocess
from pathlib import Path

from harness.fingerprint import compute, matching


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
