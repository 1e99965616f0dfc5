"""Case 7: bad input: malformed scenarios, invalid settings, a missing or failing deploy command, hostile branch names.

* the malformed-scenario corpus (``tests/unit/scenarios/malformed/*.yaml``),
  all files in one real session that deploys the stack: each file gives a
  collection error naming ``file:line`` with the expected message, no
  traceback, and the stack is still torn down;
* invalid settings (environment and ``pyproject.toml``): refused before
  anything starts (exit 4), the setting named, no traceback, no emulator;
* a deploy command that is missing, fails, hangs past ``deploy-timeout``, is
  not executable, or is not configured: a clear error, nothing left running;
* 500+ fuzzed branch names (shell injections writing a canary file, Unicode,
  control characters, huge, empty...): through ``harness.naming``, a real
  ``harness.plan.make_plan`` (from ``HARNESS_BRANCH`` and from real git
  branches) and the stack tags; a few through real sessions whose deploy is a
  ``make`` recipe that expands ``$(STACK_NAME)`` and ``$(HARNESS_STACK_TAGS)``
  in a shell. No canary file may ever appear.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import shutil
import string
from pathlib import Path

from harness import settings as settings_mod
from harness import tags
from harness.errors import HarnessError
from harness.naming import STACK_NAME_RE, STAGE_RE, canonical_branch, stage_from_branch
from harness.plan import expand_argv, make_plan
from reliability.support import (
    MALFORMED,
    MINIMAL_TEMPLATE,
    CaseResult,
    Ctx,
    endpoint_env,
    force_clean,
    git,
    leftovers,
    make_project,
    processes_with_env,
    stack_for,
    wait_until,
)

NUMBER = 7
FAULT = "bad input: malformed scenarios, invalid settings, bad deploy command, 500+ hostile branch names"
RUNS = 1
QUICK_RUNS = 1
FUZZ = 520

_META = re.compile(r"^# expect-(line|message): (.*)$", re.M)
_INTERNAL_FRAME = re.compile(r"harness[/\\][\w/\\]+\.py\", line")
_TAG_WORD = re.compile(r"[A-Za-z0-9_.:/=+@-]+")

SCENARIO_SMOKE = """
def test_ok(stack):
    assert stack.outputs["TableName"]
"""

#: (label, env overrides, pyproject extra, the setting the error must name)
BAD_SETTINGS: list[tuple[str, dict[str, str], str, str]] = [
    ("unknown target", {"HARNESS_TARGET": "bogus"}, "", "target"),
    ("endpoint target without a URL", {"HARNESS_TARGET": "endpoint"}, "", "endpoint-url"),
    ("endpoint URL with the local target", {"HARNESS_ENDPOINT_URL": "http://127.0.0.1:9"}, "", "endpoint-url"),
    ("endpoint URL not http", {"HARNESS_TARGET": "endpoint", "HARNESS_ENDPOINT_URL": "ftp://x"}, "", "endpoint-url"),
    ("deploy timeout not a number", {"HARNESS_DEPLOY_TIMEOUT": "abc"}, "", "deploy-timeout"),
    ("deploy timeout negative", {"HARNESS_DEPLOY_TIMEOUT": "-5"}, "", "deploy-timeout"),
    ("shard out of range", {"HARNESS_SHARD": "3/2"}, "", "shard"),
    (
        "stack name pattern reaching into objects",
        {"HARNESS_STACK_NAME_PATTERN": "{app.__class__}"},
        "",
        "stack-name-pattern",
    ),
    ("stack name pattern giving an invalid name", {"HARNESS_STACK_NAME_PATTERN": "{app}_{stage}"}, "", "stack"),
    ("lease wait negative", {"HARNESS_LEASE_WAIT": "-1"}, "", "lease-wait"),
    ("yes/no not a yes/no word", {"HARNESS_IAM_ENFORCEMENT": "maybe"}, "", "iam-enforcement"),
    ("stack TTL zero", {"HARNESS_STACK_TTL_HOURS": "0"}, "", "stack-ttl-hours"),
    ("seed not a number", {"HARNESS_SEED": "x"}, "", "seed"),
    ("region with spaces", {"HARNESS_REGION": "eu west 1"}, "", "region"),
    ("app name with shell characters", {"HARNESS_APP": "app;rm -rf"}, "", "app"),
    ("deploy command with unbalanced quotes", {"HARNESS_DEPLOY_COMMAND": "aws 'deploy"}, "", "deploy-command"),
    ("unknown key in pyproject (typo)", {}, 'deploy_comand = ["x"]\n', "deploy_comand"),
    ("bad value in pyproject", {}, 'lease-wait = "soon"\n', "lease-wait"),
    ("invalid TOML in pyproject", {}, "x = [\n", "pyproject.toml"),
]
#: Settings the harness accepts or ignores on purpose; the run shows what it does with them.
INFORMATIONAL: list[tuple[str, dict[str, str]]] = [
    ("misspelt HARNESS_ variable (HARNESS_TAGRET=aws)", {"HARNESS_TAGRET": "aws"}),
]

TINY_TEST = """
def test_tiny(stack):
    assert stack.outputs["TableName"]
"""

MAKEFILE = (
    "deploy:\n"
    "\taws cloudformation deploy --template-file {template} --stack-name $(STACK_NAME) "
    "--no-fail-on-empty-changeset --capabilities CAPABILITY_IAM --tags $(HARNESS_STACK_TAGS)\n"
    "\techo deployed stage $(STAGE) of $(HARNESS_STACK_NAME)\n"
)


# --------------------------------------------------------------------------- malformed scenarios


def malformed(ctx: Ctx, emu, notes: list[str]) -> tuple[bool, str]:  # type: ignore[no-untyped-def]
    files = sorted(MALFORMED.glob("*.yaml"))
    project = make_project(
        ctx.dir("c7-malformed"), branch="feature/malformed", files={"tests/integration/test_ok.py": SCENARIO_SMOKE}
    )
    (project / "scenarios").mkdir()
    for f in files:
        shutil.copy(f, project / "scenarios" / f.name)
    s = ctx.run(project, "scenarios", "--stack", "on", "-v", env=endpoint_env(emu))
    out = s.output
    missing = []
    for f in files:
        meta = {k: v.strip().strip("'\"") for k, v in _META.findall(f.read_text())}
        where = f"scenarios/{f.name}:{meta.get('line')}: "
        if where not in out or meta.get("message", "") not in out:
            missing.append(f"{f.name} (expected {where}{meta.get('message')!r})")
    traceback = "Traceback (most recent call last)" in out or bool(_INTERNAL_FRAME.search(out))
    errors = re.search(r"(\d+) errors? during collection", out)
    left = leftovers(emu, stack_for("feature/malformed"))
    torn = any("verified gone" in line for line in out.splitlines())
    ok = not missing and not traceback and not left and torn and s.returncode != 0
    notes.append(
        f"malformed corpus: {len(files)} files in one session: {len(files) - len(missing)} named file:line with the "
        f"expected message; '{errors.group(0) if errors else 'no collection summary'}', exit {s.returncode}; "
        f"traceback: {traceback}; stack torn down after the collection errors: {torn}; left: {left or 'nothing'}"
    )
    if missing:
        notes.append(f"malformed files without their file:line message: {missing}")
    return ok, f"{len(files) - len(missing)}/{len(files)} malformed files named file:line"


# --------------------------------------------------------------------------- settings


def bad_settings(ctx: Ctx, quick: bool, notes: list[str]) -> tuple[bool, str]:
    cases = BAD_SETTINGS if not quick else BAD_SETTINGS[::3]
    bad: list[str] = []
    refused_before = 0
    for label, env, extra, name in cases:
        project = make_project(
            ctx.dir("c7-settings"),
            branch="feature/settings",
            extra_toml=extra,
            files={"tests/integration/test_t.py": TINY_TEST},
        )
        s = ctx.run(project, "tests/integration", env=env)
        out = s.output
        started = bool(s.emulators()) or "branchstack: target: " in out
        named = name in out
        tb = "Traceback (most recent call last)" in out
        spawned = processes_with_env(lambda e, p=str(project): e.get("TMPDIR", "").startswith(p))
        refused_before += not started
        problem = []
        if s.returncode == 0:
            problem.append("exit 0")
        if not named:
            problem.append(f"setting {name!r} not named")
        if tb:
            problem.append("traceback")
        if spawned:
            problem.append(f"processes left: {spawned}")
        if problem:
            first = next((line for line in out.splitlines() if "ERROR" in line or "error" in line), out[-300:])
            bad.append(f"{label}: {', '.join(problem)} (exit {s.returncode}; {first.strip()[:200]})")
        ctx.log(f"  c7 settings: {label}: exit {s.returncode}, named {named}, started target {started}")
    for label, env in INFORMATIONAL:
        project = make_project(
            ctx.dir("c7-settings"), branch="feature/settings", files={"tests/integration/test_t.py": TINY_TEST}
        )
        s = ctx.run(project, "tests/integration", "--collect-only", "-q", env=env)
        said = "HARNESS_TAGRET" in s.output
        notes.append(
            f"{label}: exit {s.returncode}, mentioned in the output: {said} (ignored silently)"
            if not said
            else f"{label}: exit {s.returncode}, reported"
        )
    notes.append(
        f"invalid settings: {len(cases) - len(bad)} of {len(cases)} refused with the setting named and no traceback; "
        f"{refused_before} of {len(cases)} before any target was started"
    )
    if bad:
        notes.append(f"invalid settings not handled as expected: {bad}")
    return not bad, f"{len(cases) - len(bad)}/{len(cases)} invalid settings refused cleanly"


# --------------------------------------------------------------------------- deploy command


def deploy_commands(ctx: Ctx, emu, quick: bool, notes: list[str]) -> tuple[bool, str]:  # type: ignore[no-untyped-def]
    base = ctx.dir("c7-deploy")
    not_exec = base / "deploy.sh"
    not_exec.write_text("#!/bin/sh\nexit 0\n")
    os.chmod(not_exec, 0o644)
    cases = [
        ("missing command", {"HARNESS_DEPLOY_COMMAND": "no-such-deploy-tool deploy"}, "was not found", ""),
        ("command fails", {"HARNESS_DEPLOY_COMMAND": "false"}, "exited 1", ""),
        (
            "command hangs past deploy-timeout",
            {"HARNESS_DEPLOY_COMMAND": "sleep 120", "HARNESS_DEPLOY_TIMEOUT": "3"},
            "did not finish within 3s",
            "",
        ),
        ("command not executable", {"HARNESS_DEPLOY_COMMAND": str(not_exec)}, "not executable", ""),
        ("no deploy command configured", {}, "no deploy command is configured", "none"),
    ]
    if quick:
        cases = [cases[0], cases[2]]
    bad = []
    for label, env, expect, mode in cases:
        branch = "feature/deploy-cmd"
        project = make_project(ctx.dir("c7-deploy"), branch=branch, files={"tests/integration/test_t.py": TINY_TEST})
        if mode == "none":
            (project / "pyproject.toml").write_text('[tool.harness]\napp = "mini"\n')
        s = ctx.run(project, "tests/integration", env=endpoint_env(emu, **env))
        stack = stack_for(branch)
        gone = wait_until(
            lambda stack=stack: (
                not processes_with_env(lambda e: e.get("HARNESS_STACK_NAME") == stack and "PYTEST_VERSION" not in e)
            ),
            10,
        )
        left = leftovers(emu, stack)
        problem = []
        if s.returncode == 0:
            problem.append("exit 0")
        if expect not in s.output:
            problem.append(f"no {expect!r}")
        if not s.no_traceback():
            problem.append("traceback")
        if not gone:
            problem.append("deploy process left running")
        if left:
            problem.append(f"left {left}")
        if problem:
            bad.append(f"{label}: {problem}")
        force_clean(emu, stack)
        ctx.log(f"  c7 deploy: {label}: exit {s.returncode} in {s.seconds:.1f}s, {problem or 'ok'}")
    notes.append(
        f"deploy command problems ({', '.join(c[0] for c in cases)}): {len(cases) - len(bad)} of {len(cases)} "
        "failed the session with the expected message, no traceback, nothing left running or deployed"
    )
    if bad:
        notes.append(f"deploy command problems not handled as expected: {bad}")
    return not bad, f"{len(cases) - len(bad)}/{len(cases)} deploy-command faults clean"


# --------------------------------------------------------------------------- branch names


def _payloads(canary: Path) -> list[str]:
    c = str(canary)
    return [
        f"$(touch {c}/CANARY-dollar)",
        f"`touch {c}/CANARY-backtick`",
        f";touch {c}/CANARY-semicolon",
        f"feature/x;touch {c}/CANARY-semi2",
        f"x && touch {c}/CANARY-and",
        f"x | touch {c}/CANARY-pipe",
        f"x\ntouch {c}/CANARY-newline",
        f"$(touch${{IFS}}{c}/CANARY-ifs)",
        f"feature/$(touch${{IFS}}{c}/CANARY-git)",
        f"feature/`touch${{IFS}}{c}/CANARY-gitbt`",
        f"x;touch${{IFS}}{c}/CANARY-gitsemi",
        f"'$(touch {c}/CANARY-quoted)'",
        f'"; touch {c}/CANARY-dq; "',
        f"$$(touch {c}/CANARY-make)",
        f"$(shell touch {c}/CANARY-makeshell)",
        "${HOME}",
        "$((1+1))",
        "%(x)s%n%s",
        "{app.__class__}",
        "{stage}{tags}",
        "../../../etc/passwd",
        "refs/heads/main",
        "refs/remotes/origin/prod",
        "main",
        "PROD",
        "-rf",
        "--help",
        "",
        " ",
        "\t\r\n",
        "\x00\x01\x1b[31mred",
        "日本語のブランチ",
        "émoji-🚀-branch",
        "\u202etxt.exe",
        "a" * 300,
        "-" * 50,
        "1234",
        "pr-12",
        "feature-login-abcdef0",
        "Feature/Login",
        "feature/login",
    ]


def _random_names(rng: random.Random, n: int, canary: Path) -> list[str]:
    alphabet = string.ascii_letters + string.digits + "-_/.;&|$`'\"(){}[]<>*?!~^:@#%+=, \\\n\t" + "éßøπ日本🚀"
    pieces = [f"$(touch {canary}/CANARY-r)", f"`touch {canary}/CANARY-r`", f";touch {canary}/CANARY-r", "${IFS}"]
    out: list[str] = []
    seen: set[str] = set()
    for _ in range(n * 20):
        if len(out) >= n:
            break
        k = rng.choice([1, 2, 3, 8, 20, 40, 80, 200])
        name = "".join(rng.choice(alphabet) for _ in range(k))
        if rng.random() < 0.3:
            at = rng.randrange(len(name) + 1)
            name = name[:at] + rng.choice(pieces) + name[at:]
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def _check_name(name: str, settings: settings_mod.Settings, env_extra: dict[str, str] | None = None) -> list[str]:
    problems = []
    stage = stage_from_branch(name)
    if not STAGE_RE.fullmatch(stage) or len(stage) > 24 or "--" in stage or stage.endswith("-"):
        problems.append(f"bad stage {stage!r}")
    if stage_from_branch(name) != stage:
        problems.append("not deterministic")
    try:
        plan = make_plan(settings, {"HARNESS_BRANCH": name, **(env_extra or {})})
    except HarnessError as exc:
        if "is protected" in exc.message:
            return problems  # refused on a shared target: the guard, as intended
        if name == "" and "branch" in exc.message.lower():
            return problems
        return [*problems, f"make_plan: {exc.message[:120]}"]
    if not STACK_NAME_RE.fullmatch(plan.stack_name):
        problems.append(f"bad stack name {plan.stack_name!r}")
    st = tags.StackTags(
        branch=plan.branch.branch,
        stage=plan.stage,
        commit=plan.branch.commit,
        run_id=plan.run_id,
        created_at=dt.datetime.now(dt.UTC),
        ttl_hours=24,
    )
    words = st.as_cli().split()
    if len(words) != len(st.as_dict()) or not all(_TAG_WORD.fullmatch(w) for w in words):
        problems.append(f"tag words not shell-inert: {words}")
    argv = expand_argv(
        ["deploy", "--stack-name", "{stack_name}", "--tags", "{tags}"],
        {"HARNESS_STACK_NAME": plan.stack_name, "HARNESS_STAGE": plan.stage, "HARNESS_STACK_TAGS": st.as_cli()},
    )
    if argv[2] != plan.stack_name:
        problems.append("argv expansion changed the stack name")
    return problems


def branch_names(ctx: Ctx, emu, quick: bool, notes: list[str]) -> tuple[bool, str]:  # type: ignore[no-untyped-def]
    canary = ctx.dir("c7-canary")
    names = _payloads(canary)
    names += [n for n in _random_names(ctx.rng, FUZZ, canary) if n not in names][: max(0, FUZZ - len(names))]
    repo = make_project(ctx.dir("c7-fuzzrepo"), branch="start", files={"tests/integration/test_t.py": TINY_TEST})
    cli = {s.name: None for s in settings_mod.SETTINGS}
    s_local = settings_mod.resolve(cli, {}, repo)
    s_shared = settings_mod.resolve({**cli, "target": "endpoint", "endpoint_url": emu.url}, {}, repo)
    problems: list[str] = []
    stages: dict[str, str] = {}
    collisions = []
    # HARNESS_BRANCH names the branch; its commit is the repository's HEAD, given as a CI system
    # gives it (GITHUB_SHA) instead of asking git twice per name and setting: the plan is the one
    # git would give, and the names go through git itself with the real branches below.
    head = {"GITHUB_SHA": git(repo, "rev-parse", "HEAD").stdout.strip()}
    for name in names:
        for sett in (s_local, s_shared):
            for p in _check_name(name, sett, head):
                problems.append(f"{name!r}: {p}")
        canon = canonical_branch(name)
        st = stage_from_branch(name)
        if st in stages and stages[st] != canon:
            collisions.append((stages[st], canon))
        stages[st] = canon
    # Real git branches: the same names where git allows them, detected by the harness through git.
    git_ok = 0
    git_mismatch = []
    for name in names:
        if not name or "\x00" in name or git(repo, "check-ref-format", "--branch", name, check=False).returncode != 0:
            continue
        if git(repo, "update-ref", f"refs/heads/{name}", "HEAD", check=False).returncode != 0:
            continue
        git(repo, "symbolic-ref", "HEAD", f"refs/heads/{name}")
        git_ok += 1
        try:
            plan = make_plan(s_local, {})
        except HarnessError as exc:
            git_mismatch.append(f"{name!r}: {exc.message[:100]}")
            continue
        if plan.branch.branch != name or plan.branch.source != "git" or not STAGE_RE.fullmatch(plan.stage):
            git_mismatch.append(
                f"{name!r}: detected {plan.branch.branch!r} from {plan.branch.source}, stage {plan.stage}"
            )
    # A few through real sessions: the deploy is a make recipe that expands the harness's variables in a shell.
    injected = [n for n in names[:15] if "CANARY" in n]
    chosen = injected[:1] if quick else injected[:5]
    git_chosen = [n for n in injected if "IFS" in n and "git" in n][: 1 if quick else 2]
    sessions_bad = []
    runs = [(n, "env") for n in chosen] + [(n, "git") for n in git_chosen]
    for name, how in runs:
        branch = name if how == "git" else "feature/injection-host"
        project = make_project(
            ctx.dir("c7-inject"),
            branch=branch,
            deploy=["make", "deploy"],
            files={"tests/integration/test_t.py": TINY_TEST, "Makefile": MAKEFILE.format(template=MINIMAL_TEMPLATE)},
        )
        env = endpoint_env(emu, **({"HARNESS_BRANCH": name} if how == "env" else {}))
        s = ctx.run(project, "tests/integration", "-v", env=env)
        stack = stack_for(name)
        left = leftovers(emu, stack)
        if s.returncode != 0 or left:
            sessions_bad.append(f"{name!r} via {how}: exit {s.returncode}, left {left}: {s.output.splitlines()[-3:]}")
        force_clean(emu, stack)
        ctx.log(f"  c7 injection session via {how}: {name[:50]!r}: exit {s.returncode}")
    # Files a shell would have made (git's own ref files, named after the branch, are not).
    canaries = sorted(
        {str(p) for p in ctx.base.rglob("CANARY*") if ".git" not in p.parts} | {str(p) for p in canary.iterdir()}
    )
    notes.append(
        f"branch names: {len(names)} ({len(_payloads(canary))} hand-written: shell injections, format strings, "
        f"control characters, Unicode, 300 characters, empty; the rest random with injections mixed in), each "
        f"through stage_from_branch, make_plan (local and endpoint settings), the stack tags and argv expansion: "
        f"{len(problems)} problems; {len({canonical_branch(n) for n in names})} distinct branches gave "
        f"{len(stages)} distinct stages, {len(collisions)} collisions"
    )
    notes.append(
        f"real git branches: {git_ok} of the names are valid git branch names; created and detected through git by "
        f"make_plan: {git_ok - len(git_mismatch)} matched"
    )
    notes.append(
        f"real sessions with injection branches ({len(chosen)} via HARNESS_BRANCH, {len(git_chosen)} as git "
        "branches; deploy = `make deploy` whose recipe expands $(STACK_NAME) and $(HARNESS_STACK_TAGS) in a shell): "
        f"{len(runs) - len(sessions_bad)} of {len(runs)} passed and left nothing"
    )
    notes.append(f"canary files created: {len(canaries)} {canaries if canaries else ''}".rstrip())
    for label, items in (
        ("name problems", problems),
        ("collisions", collisions),
        ("git mismatches", git_mismatch),
        ("sessions", sessions_bad),
    ):
        if items:
            notes.append(f"{label}: {items[:10]}")
    ok = not problems and not collisions and not git_mismatch and not sessions_bad and not canaries
    return ok, f"{len(names)} branch names, canary files {len(canaries)}"


def run(ctx: Ctx, runs: int) -> CaseResult:
    emu = ctx.emulator("c7-emulator")
    notes: list[str] = []
    ok1, r1 = malformed(ctx, emu, notes)
    ok2, r2 = bad_settings(ctx, ctx.quick, notes)
    ok3, r3 = deploy_commands(ctx, emu, ctx.quick, notes)
    ok4, r4 = branch_names(ctx, emu, ctx.quick, notes)
    sessions = len(ctx.registry.pids)
    return CaseResult(
        NUMBER,
        FAULT,
        sessions,
        f"{r1}; {r2}; {r3}",
        r4,
        ok1 and ok2 and ok3 and ok4,
        notes,
        data={"malformed": ok1, "settings": ok2, "deploy": ok3, "branches": ok4},
    )
