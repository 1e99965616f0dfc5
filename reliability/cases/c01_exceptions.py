"""Case 1: an exception or failing assertion at a random point of the session.

Points: at collection (module, syntax, conftest), in fixture set-up, in a test
(assertion, exception, AWS error, ``sys.exit``, ``KeyboardInterrupt``), in a
finalizer (yield fixture, ``addfinalizer``, session fixture), in a conftest
hook (``pytest_sessionfinish``, an INTERNALERROR), and an xdist worker that
dies. Each run is a real session on the endpoint target against one
long-lived emulator; afterwards the emulator must hold nothing of the stack
(no stack but DELETE_COMPLETE, no table/function/role of it), no lease item,
and no deploy process may be left.
"""

from __future__ import annotations

from reliability.support import (
    BRANCH,
    CaseResult,
    Ctx,
    deploy_processes,
    force_clean,
    lease_state,
    leftovers,
    make_project,
    median,
    secs,
    stack_for,
)

NUMBER = 1
FAULT = "exception / failing assertion at a random point (collection, fixture, test, finalizer, hook, worker)"
RUNS = 20
QUICK_RUNS = 3

_TEST = """
def test_{i}(stack{extra}):
    ddb = stack.client("dynamodb")
    table = stack.outputs["TableName"]
    ddb.put_item(TableName=table, Item={{"pk": {{"S": "t{i}"}}}})
    assert ddb.get_item(TableName=table, Key={{"pk": {{"S": "t{i}"}}}})["Item"]
{body}
"""

_CONFTEST_FIXTURES = """
import pytest


@pytest.fixture
def broken_setup():
    raise RuntimeError("injected: fixture set-up")


@pytest.fixture(scope="session")
def broken_session():
    assert 1 + 1 == 3, "injected: session fixture assertion"


@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("injected: yield-fixture finalizer")


@pytest.fixture
def broken_addfinalizer(request):
    def fin():
        raise RuntimeError("injected: addfinalizer")
    request.addfinalizer(fin)


@pytest.fixture(scope="session")
def broken_session_finalizer():
    yield
    raise RuntimeError("injected: session finalizer")
"""

# point -> (fixture the chosen test uses, extra body of the chosen test, extra files, extra pytest args)
POINTS: dict[str, tuple[str, str, dict[str, str], list[str]]] = {
    "collection: module raises on import": (
        "",
        "",
        {"tests/integration/test_broken.py": "raise RuntimeError('injected: at collection')\n"},
        [],
    ),
    "collection: syntax error": ("", "", {"tests/integration/test_broken.py": "def test_x(:\n    pass\n"}, []),
    "collection: conftest raises on import": (
        "",
        "",
        {"tests/integration/conftest.py": "raise RuntimeError('injected: conftest import')\n"},
        [],
    ),
    "fixture set-up raises": ("broken_setup", "", {}, []),
    "session fixture assertion fails": ("broken_session", "", {}, []),
    "test: failing assertion": ("", "    assert table == 'not-the-table', 'injected: assertion'", {}, []),
    "test: exception": ("", "    raise RuntimeError('injected: in the test')", {}, []),
    "test: AWS error": ("", "    ddb.get_item(TableName='no-such-table', Key={'pk': {'S': 'x'}})", {}, []),
    "test: sys.exit(3)": ("", "    import sys; sys.exit(3)", {}, []),
    "test: KeyboardInterrupt": ("", "    raise KeyboardInterrupt('injected')", {}, []),
    "finalizer: yield fixture raises": ("broken_teardown", "", {}, []),
    "finalizer: addfinalizer raises": ("broken_addfinalizer", "", {}, []),
    "finalizer: session fixture raises": ("broken_session_finalizer", "", {}, []),
    "hook: conftest pytest_sessionfinish raises": (
        "",
        "",
        {"conftest.py": "def pytest_sessionfinish(session):\n    raise RuntimeError('injected: sessionfinish')\n"},
        [],
    ),
    "hook: INTERNALERROR (conftest hook raises)": (
        "",
        "",
        {
            "conftest.py": "def pytest_runtest_logreport(report):\n"
            "    if report.when == 'call' and report.nodeid.endswith('{target}'):\n"
            "        raise RuntimeError('injected: internal error')\n"
        },
        [],
    ),
    "xdist: worker process dies (-n 2)": ("", "    import os; os._exit(1)", {}, ["-n", "2"]),
}


def files_for(point: str, k: int) -> tuple[dict[str, str], list[str]]:
    fixture, body, extra, args = POINTS[point]
    tests = []
    for i in range(3):
        chosen = i == k
        uses = f", {fixture}" if chosen and fixture else ""
        tests.append(_TEST.format(i=i, extra=uses, body=body if chosen else ""))
    files = {
        "tests/integration/test_it.py": "\n".join(tests),
        "tests/integration/conftest.py": _CONFTEST_FIXTURES,
    }
    for path, text in extra.items():
        files[path] = text.replace("{target}", f"test_{k}")
    return files, args


def run(ctx: Ctx, runs: int) -> CaseResult:
    emu = ctx.emulator("c1-emulator")
    env = {"HARNESS_TARGET": "endpoint", "HARNESS_ENDPOINT_URL": emu.url}
    stack = stack_for(BRANCH)
    names = list(POINTS)
    ctx.rng.shuffle(names)
    plan = [names[i % len(names)] for i in range(runs)]
    leaked_runs: list[str] = []
    lease_left: list[str] = []
    strays: list[str] = []
    zero_exit: list[str] = []
    deployed = 0
    times: list[float] = []
    notes: list[str] = []
    for i, point in enumerate(plan):
        k = ctx.rng.randrange(3)
        files, args = files_for(point, k)
        project = make_project(ctx.dir("c1"), files=files)
        s = ctx.run(project, "tests/integration", "-v", *args, env=env)
        times.append(s.seconds)
        did_deploy = bool(s.grep("branchstack: deployed "))
        deployed += did_deploy
        left = leftovers(emu, stack)
        lease = lease_state(emu, stack)
        stray = deploy_processes(stack)
        teardown = (s.grep("branchstack: teardown:") or ["(no teardown line: nothing was deployed)"])[-1]
        ctx.log(f"  c1 run {i + 1}/{runs}: {point} (test_{k}): exit {s.returncode}, left {len(left)}; {teardown}")
        if s.hung:
            leaked_runs.append(f"{point}: HUNG")
        if left:
            leaked_runs.append(f"{point}: {left}")
        if lease:
            lease_left.append(f"{point}: phase {lease.get('phase')}")
        if stray:
            strays.append(f"{point}: {stray}")
        if s.returncode == 0:
            zero_exit.append(point)
        if left or lease:
            force_clean(emu, stack)
    ok = not leaked_runs and not strays and not lease_left and not zero_exit
    notes.append(f"points run: {', '.join(sorted(set(plan)))}")
    notes.append(f"{deployed} of {runs} sessions had deployed the stack when the fault hit; the others failed earlier")
    if zero_exit:
        notes.append(f"exit code 0 despite the fault: {zero_exit}")
    if lease_left:
        notes.append(f"lease items left: {lease_left}")
    if strays:
        notes.append(f"deploy processes left: {strays}")
    if leaked_runs:
        notes.append(f"leaks: {leaked_runs}")
    return CaseResult(
        NUMBER,
        FAULT,
        runs,
        f"leaked = {len(leaked_runs)} of {runs}; exit != 0 in {runs - len(zero_exit)} of {runs}; "
        f"lease items left {len(lease_left)}, deploy processes left {len(strays)}",
        f"median session {secs(median(times))}",
        ok,
        notes,
        data={"leaked": len(leaked_runs), "zero_exit": len(zero_exit), "strays": len(strays)},
    )
