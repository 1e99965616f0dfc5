"""Case 8: secrets in the environment never reach an output, a log, a JUnit file or a report.

A session on the local target runs with credential-shaped values exported
(an ``AKIA...`` key id, a 40-character secret key, a session token, a GitHub
``ghp_`` token, an npm token, a password inside a database URL) and
``LOG_LEVEL=DEBUG`` for the emulator; one test fails on purpose (with
``--showlocals``) so failure reports are produced too. Then every output is
scanned for each value (and for its first 12 characters): the terminal
output, every file under the report folder (emulator and deploy logs, traces,
JUnit XML). The environments of the emulator and its Lambda runtimes are
checked too, while the test holds them: exposure, not output.

A second session uses the endpoint target with a password in
``--endpoint-url`` (``http://user:password@127.0.0.1:PORT``): the one secret a
user hands to the harness itself.
"""

from __future__ import annotations

import os
import random
import string
import threading
from pathlib import Path

from reliability.support import (
    TARGET_RE,
    CaseResult,
    Ctx,
    Emulator,
    make_project,
    processes_on,
    psutil,
)

NUMBER = 8
FAULT = "secrets in the environment (AWS keys, ghp_ token, password in a URL), emulator LOG_LEVEL=DEBUG"
RUNS = 1
QUICK_RUNS = 1

SECRET_TEST = """
import json
import time


def test_uses_the_stack(stack):
    ddb = stack.client("dynamodb")
    ddb.put_item(TableName=stack.outputs["TableName"], Item={"pk": {"S": "s"}})
    resp = stack.client("lambda").invoke(FunctionName=stack.outputs["FunctionName"], Payload=b'{"n": 1}')
    assert json.loads(resp["Payload"].read()) == {"echo": {"n": 1}}
    time.sleep(2)  # the matrix reads the emulator's and the runtime's environment now


def test_fails_on_purpose(stack):
    import os
    client = stack.client("dynamodb")
    env_names = sorted(os.environ)
    assert client.describe_table(TableName=stack.outputs["TableName"])["Table"]["TableStatus"] == "NOPE"
"""


def _secrets(rng: random.Random) -> dict[str, str]:
    up = string.ascii_uppercase + "234567"
    alnum = string.ascii_letters + string.digits
    password = "".join(rng.choice(alnum) for _ in range(18)) + "!9"
    return {
        "AWS_ACCESS_KEY_ID": "AKIA" + "".join(rng.choice(up) for _ in range(16)),
        "AWS_SECRET_ACCESS_KEY": "".join(rng.choice(alnum + "/+") for _ in range(40)),
        "AWS_SESSION_TOKEN": "FwoGZXIvYXdzE" + "".join(rng.choice(alnum + "/+") for _ in range(200)),
        "GITHUB_TOKEN": "ghp_" + "".join(rng.choice(alnum) for _ in range(36)),
        "NPM_TOKEN": "npm_" + "".join(rng.choice(alnum) for _ in range(36)),
        "DATABASE_URL": f"postgres://app_user:{password}@db.internal.example:5432/orders",
        "DB_PASSWORD": password,
    }


def _needles(secrets: dict[str, str]) -> dict[str, str]:
    """What to look for: each value, and its first 12 characters (a truncated echo)."""
    out = {}
    for name, value in secrets.items():
        out[name] = value
        out[f"{name} (first 12 chars)"] = value[:12]
    return out


def _scan(texts: dict[str, str], needles: dict[str, str]) -> list[str]:
    hits = []
    for where, text in texts.items():
        for name, value in needles.items():
            if value and value in text:
                hits.append(f"{name} in {where}")
    return hits


def _files(root: Path) -> dict[str, str]:
    """The report folder's files, without a stopped emulator's scratch folder (a detached remover removes it)."""
    found = []
    for folder, dirs, names in os.walk(root):
        if Path(folder) == root:
            dirs[:] = [d for d in dirs if d != "emulator-tmp"]
        found += [Path(folder, n) for n in names]
    out = {}
    for p in sorted(found):
        if p.is_file():
            try:
                out[str(p.relative_to(root.parent))] = p.read_bytes().decode("utf-8", "replace")
            except OSError:
                continue
    return out


def _watch_envs(
    port_holder: list[int], values: dict[str, str], stop: threading.Event, found: dict[str, set[str]]
) -> None:
    """While the session runs: which secret names sit in the environment of the emulator's processes."""
    while not stop.wait(0.3):
        if not port_holder:
            continue
        for p in psutil.process_iter(["pid", "name"]):
            try:
                env = p.environ()
            except psutil.Error:
                continue
            if env.get("GATEWAY_PORT") != str(port_holder[0]):
                continue
            kind = _kind(p)
            for name, value in values.items():
                if value in env.values():
                    found.setdefault(name, set()).add(kind)


def _kind(p: psutil.Process) -> str:
    try:
        cmd = " ".join(p.cmdline())
    except psutil.Error:
        return "?"
    if "harness.emulator.launch" in cmd:
        return "MiniStack"
    if "_worker.py" in cmd or "bootstrap" in cmd:
        return "Lambda runtime"
    return "other emulator child"


def env_secrets(ctx: Ctx, notes: list[str]) -> tuple[list[str], dict[str, set[str]], int]:
    """Session 1: (matches in outputs, where the values sit in the emulator's processes, number of secrets)."""
    secrets = _secrets(ctx.rng)
    needles = _needles(secrets)
    project = make_project(ctx.dir("c8"), files={"tests/integration/test_secret.py": SECRET_TEST})
    env = {**secrets, "LOG_LEVEL": "DEBUG"}
    stop = threading.Event()
    port: list[int] = []
    exposed: dict[str, set[str]] = {}
    s = ctx.session(
        project,
        "tests/integration",
        "-v",
        "-rA",
        "--showlocals",
        "--tb=long",
        "--junitxml=harness-report/junit/secrets.xml",
        env=env,
    )
    watcher = threading.Thread(target=_watch_envs, args=(port, secrets, stop, exposed), daemon=True)
    watcher.start()
    if s.wait_for(TARGET_RE, timeout=60) is not None:
        port.append(s.emulators()[0][1])
        ctx.registry.emulators.append(s.emulators()[0])
    s.finish()
    stop.set()
    watcher.join(5)
    report_dir = project / "harness-report"
    texts = {"terminal output": s.output, **_files(report_dir)}
    hits = _scan(texts, needles)
    emulator_log = report_dir / "emulator.log"
    debug = emulator_log.exists() and ("DEBUG" in emulator_log.read_text(errors="replace"))
    junit = (report_dir / "junit" / "secrets.xml").exists()
    notes.append(
        f"session 1 (local target, secrets exported, LOG_LEVEL=DEBUG, a failing test with --showlocals): exit "
        f"{s.returncode}; scanned the terminal output and {len(texts) - 1} files under harness-report "
        f"({', '.join(sorted(Path(k).name for k in texts if k != 'terminal output'))}); JUnit written: {junit}; "
        f"emulator log at DEBUG: {debug}; matches: {len(hits)} {hits if hits else ''}".rstrip()
    )
    notes.append(
        "environment of the emulator's processes during the run (not an output, but where the values sit): "
        + (", ".join(f"{k} in {'/'.join(sorted(v))}" for k, v in sorted(exposed.items())) or "none of the secrets")
        + ". The local target strips AWS_* from the emulator; other variables (tokens, URLs) pass to MiniStack "
        "and, through it, into every Lambda runtime it starts"
    )
    stray = processes_on(port[0]) if port else []
    if stray or s.returncode != 1:
        hits.append(f"(session did not end as expected: exit {s.returncode}, processes left {stray})")
    return hits, exposed, len(secrets)


def url_password(ctx: Ctx, notes: list[str]) -> list[str]:
    """Session 2: a password in --endpoint-url. Returns where it was printed."""
    emu: Emulator = ctx.emulator("c8-emulator")
    password = "Url" + "".join(ctx.rng.choice(string.ascii_letters + string.digits) for _ in range(20))
    url = f"http://admin:{password}@127.0.0.1:{emu.port}"
    project2 = make_project(
        ctx.dir("c8-url"), files={"tests/integration/test_secret.py": SECRET_TEST.split("def test_fails")[0]}
    )
    s2 = ctx.run(
        project2,
        "tests/integration",
        "-v",
        "--junitxml=harness-report/junit/url.xml",
        env={"HARNESS_TARGET": "endpoint", "HARNESS_ENDPOINT_URL": url},
    )
    texts2 = {"terminal output": s2.output, **_files(project2 / "harness-report")}
    hits2 = _scan(texts2, {"password in --endpoint-url": password})
    where2 = sorted({line.strip()[:90] for line in s2.output.splitlines() if password in line})
    notes.append(
        f"session 2 (endpoint target, --endpoint-url http://admin:<password>@127.0.0.1:PORT): exit {s2.returncode}; "
        f"the password appears {sum(t.count(password) for t in texts2.values())} times: {hits2}; e.g. "
        f"{[w.replace(password, '<password>') for w in where2[:4]]}"
    )
    return hits2


def run(ctx: Ctx, runs: int) -> CaseResult:
    notes: list[str] = []
    hits, exposed, n_secrets = env_secrets(ctx, notes)
    hits2 = url_password(ctx, notes)
    ok = not hits and not hits2
    return CaseResult(
        NUMBER,
        FAULT,
        2,
        f"matches in outputs/logs/JUnit/report: {len(hits)} (environment secrets), {len(hits2)} (password in "
        "--endpoint-url)",
        f"secrets visible in the emulator/Lambda environment: {len(exposed)} of {n_secrets}",
        ok,
        notes,
        data={"hits": hits, "hits_url": hits2, "exposed": sorted(exposed)},
    )
