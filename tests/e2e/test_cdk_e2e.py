"""The CDK reference app (two stacks joined by an export) through the harness, on the emulator.

A throw-away git project holds a copy of ``reference-cdk/`` (its own ``make
deploy``: ``cdk bootstrap`` + ``cdk deploy --all``) and its scenarios. Two
tests, one deploy each: on the local emulator with traces, and on an emulator
of the test's own (``--target endpoint``), so that what is left afterwards can
be looked at.

Both deploy the same app on the same branch, so its cloud assembly is the
same: the module synthesizes it once, by the app's own ``make synth`` (the
CDK CLI running the Python app through jsii, about 12 s of CPU each time),
and each project starts from a copy of that build. Each test's deploy is
still the app's own ``make deploy``; the CDK CLI is given the assembly
(``CDK_FLAGS`` with ``--app cdk.out``, the Makefile's own variable), so
``cdk bootstrap`` and ``cdk deploy`` read it instead of running the app
again (twice per deploy otherwise).

The synthesized app is also kept between runs (``.test-cache/cdk-synth/<key>``),
under a key of everything the synth reads: the app's files (its Makefile,
requirements, sources and ``package-lock.json``, which pins the CDK CLI), the
stage, the Python, node's version and the installed aws-cdk-lib, constructs and
jsii. A run whose key is new synthesizes as above (and checks that ``make
synth`` succeeds); a run with the same inputs reuses the same assembly.

Needs ``make setup-cdk`` (the pinned CDK CLI and aws-cdk-lib); skipped with
that hint otherwise.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.naming import stage_from_branch
from tests.e2e.e2e_support import PYTHON, Emulator, Runner, clean_env, git

pytestmark = pytest.mark.e2e

REFERENCE = Path(__file__).resolve().parents[2] / "reference-cdk"
CDK_CLI = REFERENCE / "node_modules" / ".bin" / "cdk"
BRANCH = "feature/cdk-app"
STAGE = stage_from_branch(BRANCH)
DATA, API = f"orders-cdk-data-{STAGE}", f"orders-cdk-api-{STAGE}"
#: Hang guard only: cdk synth + bootstrap + deploy take one to three minutes on a busy machine.
TIMEOUT = 900.0
#: The Makefile's CDK_FLAGS, plus the cloud assembly synthesized once for the module.
CDK_FLAGS = "--require-approval never --progress events --no-notices --app cdk.out"

PYPROJECT = """\
[tool.harness]
app = "orders-cdk"
deploy-command = ["make", "-C", "cdk", "deploy"]
stack-name-pattern = "{app}-api-{stage}"
fingerprint-paths = ["cdk/app.py", "cdk/orders_cdk/**", "cdk/functions/**", "cdk/Makefile"]
"""


def _ready() -> str | None:
    if not CDK_CLI.exists():
        return "the CDK CLI is not installed: run `make setup-cdk`"
    if importlib.util.find_spec("aws_cdk") is None:
        return "aws-cdk-lib is not installed: run `make setup-cdk`"
    return None


def synthesized_app(base: Path) -> Path:
    """A copy of the app, built and synthesized by its own ``make synth`` for the tests' stage."""
    app = base / "cdk"
    shutil.copytree(REFERENCE, app, ignore=shutil.ignore_patterns("node_modules", "cdk.out", ".build", "scenarios"))
    (app / "node_modules").symlink_to(REFERENCE / "node_modules")
    synth = subprocess.run(  # noqa: S603 - argv list
        ["make", "-C", str(app), "synth", f"STAGE={STAGE}", f"PYTHON={PYTHON}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=clean_env(),
        timeout=TIMEOUT,
    )
    assert synth.returncode == 0, f"make synth of the CDK app failed:\n{synth.stdout[-3000:]}"
    return app


def make_cdk_project(base: Path, app: Path) -> Path:
    """A git project holding a copy of the synthesized app (its build and ``cdk.out``, timestamps kept) and its scenarios."""
    root = base / "orders-cdk"
    shutil.copytree(app, root / "cdk", symlinks=True)
    shutil.copytree(REFERENCE / "scenarios", root / "scenarios")
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / ".gitignore").write_text("harness-report/\ncdk/node_modules\ncdk/cdk.out/\ncdk/.build/\n")
    git(root, "init", "-q", "-b", BRANCH)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "cdk project")
    return root


SYNTH_CACHE = REFERENCE.parent / ".test-cache" / "cdk-synth"
_NOT_READ = ("node_modules", "cdk.out", ".build", "scenarios", "__pycache__")


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def synth_key(app: Path = REFERENCE) -> str:
    """A digest of everything ``make synth`` reads: the app's files, the stage, the Python, node and the CDK libraries."""
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(app):
        dirs[:] = sorted(d for d in dirs if d not in _NOT_READ)
        for name in sorted(files):
            path = Path(folder) / name
            digest.update(f"{path.relative_to(app)}\0".encode() + path.read_bytes() + b"\0")
    node = shutil.which("node", path=clean_env()["PATH"])
    if node is not None:
        node = subprocess.run(  # noqa: S603 - fixed argv
            [node, "--version"], capture_output=True, text=True, env=clean_env(), timeout=60, check=False
        ).stdout.strip()
    libraries = [_version(name) for name in ("aws-cdk-lib", "constructs", "jsii")]
    digest.update(repr((STAGE, sys.version, node, libraries)).encode())
    return digest.hexdigest()[:20]


def cached_synthesized_app(base: Path) -> Path:
    """The synthesized app of ``synth_key()``: from the cache, else synthesized in ``base`` and kept there."""
    kept = SYNTH_CACHE / synth_key()
    if not (kept / "cdk" / "cdk.out" / "manifest.json").is_file():
        app = synthesized_app(base)
        SYNTH_CACHE.mkdir(parents=True, exist_ok=True)
        staging = SYNTH_CACHE / f".{kept.name}.{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(app, staging / "cdk", symlinks=True)  # timestamps kept: make finds the build current
        for old in SYNTH_CACHE.iterdir():  # one assembly kept: an older key's is of inputs that changed
            if old.name != kept.name and not old.name.startswith("."):
                shutil.rmtree(old, ignore_errors=True)
        try:
            staging.rename(kept)
        except OSError:  # another run kept the same assembly first
            shutil.rmtree(staging, ignore_errors=True)
    return kept / "cdk"


@pytest.fixture(scope="module")
def cdk_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = _ready()
    if missing:
        pytest.skip(missing)
    return cached_synthesized_app(tmp_path_factory.mktemp("cdk-app"))


@pytest.fixture
def cdk_project(tmp_path: Path, cdk_app: Path) -> Path:
    return make_cdk_project(tmp_path, cdk_app)


def test_the_synth_key_follows_the_apps_inputs_and_ignores_its_outputs(tmp_path: Path) -> None:
    """A kept assembly is reused only for the same inputs: any edit of the app's files gives a new key."""
    app = tmp_path / "app"
    for rel in ("app.py", "Makefile", "orders_cdk/stack.py", "node_modules/x/index.js", "cdk.out/manifest.json"):
        (app / rel).parent.mkdir(parents=True, exist_ok=True)
        (app / rel).write_text(rel)
    key = synth_key(app)
    assert synth_key(app) == key
    for output in ("node_modules/x/index.js", "cdk.out/manifest.json", ".build/api.stamp"):
        (app / output).parent.mkdir(parents=True, exist_ok=True)
        (app / output).write_text("changed")
    assert synth_key(app) == key  # what the synth and the build write, and the CLI installed, are no input
    (app / "orders_cdk" / "stack.py").write_text("edited")
    edited = synth_key(app)
    assert edited != key
    (app / "orders_cdk" / "api.py").write_text("new")
    assert synth_key(app) not in (key, edited)


def test_the_cdk_app_on_the_local_emulator(cdk_project: Path, run: Runner) -> None:
    """Every scenario (YAML and Python, one reading the trace API Gateway -> Lambda -> DynamoDB)
    passes; the teardown deletes the importer first and verifies both stacks' resources gone."""
    res = run(cdk_project, "scenarios", "-v", "-p", "no:randomly", env={"CDK_FLAGS": CDK_FLAGS}, timeout=TIMEOUT)
    out = res.output
    assert res.returncode == 0, out
    assert "6 passed" in out, out
    [line] = res.lines("stack set of 2 (in deploy order)")
    assert f"{DATA}, {API}" in line and "ApiUrl" in line and "OrdersTableName" in line, line
    [order] = res.lines("teardown: deleting 2 stacks, importers first")
    assert order.endswith(f"{API}, then {DATA}"), order
    [gone] = res.lines("verified gone")
    assert f"teardown: {API}, {DATA} deleted in" in gone, gone
    assert "0 left" in gone and "not checkable:" in gone, gone
    assert "LEFT BEHIND" not in out, out


def test_the_cdk_app_on_an_endpoint_leaves_nothing(cdk_project: Path, run: Runner, emulator: Emulator) -> None:
    """On an emulator that outlives the run: afterwards no stack of the set, no table, no function, no API.

    The endpoint target has no trace source, so the scenarios reading traces are left out here.
    """
    args = ["--target", "endpoint", "--endpoint-url", emulator.url, "-k", "not trace and not never and not refused"]
    res = run(cdk_project, "scenarios", "-v", *args, env={"CDK_FLAGS": CDK_FLAGS}, timeout=TIMEOUT)
    assert res.returncode == 0, res.output
    assert "3 passed" in res.output, res.output
    cfn = emulator.client("cloudformation")
    live = sorted(s["StackName"] for s in cfn.describe_stacks()["Stacks"] if s["StackStatus"] != "DELETE_COMPLETE")
    # The CDK bootstrap stack is the toolkit's, shared by every app of an account: left alone.
    assert live == ["CDKToolkit"], live
    assert emulator.client("dynamodb").list_tables()["TableNames"] == ["harness-leases"]
    functions = [f["FunctionName"] for f in emulator.client("lambda").list_functions()["Functions"]]
    assert [f for f in functions if STAGE in f] == [], functions
    apis = [a.get("name", "") for a in emulator.client("apigateway").get_rest_apis()["items"]]
    assert [a for a in apis if STAGE in a] == [], apis
