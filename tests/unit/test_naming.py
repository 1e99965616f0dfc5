"""Untrusted branch -> stage -> stack name: properties, examples, and a canary."""

from __future__ import annotations

import hashlib
import random
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from harness.branch import detect
from harness.errors import NamingError
from harness.naming import (
    DEFAULT_MAX_LEN,
    canonical_branch,
    is_protected,
    pr_stage,
    stack_name,
    stage_from_branch,
)
from tests.unit.examples import examples

STAGE_RE = re.compile(r"^[a-z][a-z0-9-]*$")
CFN_RE = re.compile(r"^[A-Za-z][-A-Za-z0-9]{0,127}$")
SUFFIXED_RE = re.compile(r"^[a-z][a-z0-9-]*-[0-9a-f]{7}$")
PATTERN = "{app}-{stage}"
APP = "orders"

# --------------------------------------------------------------------------- strategies

SHELL_META = ";|&$`<>(){}[]*?!~#'\"\\ \n\t"
INJECTIONS = [
    "$(touch /tmp/x)",
    "`touch /tmp/x`",
    "'; rm -rf / #",
    '"$(id)"',
    "${IFS}",
    "a && b",
    "x | y",
    "$((1+1))",
    "> /etc/passwd",
    "\\\"'",
]
UNICODE_PIECES = [
    "🚀",
    "👨‍👩‍👧",
    "🏳️‍🌈",  # emoji, ZWJ sequences
    "e\u0301",
    "\u0301",
    "a\u0308\u0323",  # combining marks
    "שלום",
    "مرحبا",
    "\u202e",
    "\u200f",  # RTL text and controls
    "ｆｅａｔｕｒｅ",
    "１２３",
    "／",  # full-width
    "ß",
    "İ",
    "ﬁ",
    "Ⅻ",
    "中文",
    "Ωμέγα",
    "\u200b",
    "\x00",
]
REALISTIC = [
    "main",
    "master",
    "develop",
    "feature-login",
    "feature/JIRA-123-login",
    "bugfix/ORD-42_fix-null",
    "release/2024.06",
    "hotfix/v1.2.3",
    "dependabot/npm_and_yarn/lodash-4.17.21",
    "user/alice/WIP",
    "renovate/boto3-1.x",
    "Feature/Login",
    "feature_login",
    "FEATURE-LOGIN",
]

realistic = st.one_of(
    st.sampled_from(REALISTIC),
    st.from_regex(
        r"(feature|bugfix|hotfix|release|chore)/[A-Z]{2,5}-[0-9]{1,5}-[a-z]{3,12}(-[a-z]{2,8}){0,3}",
        fullmatch=True,
    ),
)
tidy = st.from_regex(r"[a-z][a-z0-9]{0,8}(-[a-z0-9]{1,6}){0,3}", fullmatch=True)
small_ascii = st.text(alphabet="abcXYZ019/-_.", max_size=12)
shell_meta = st.text(alphabet=SHELL_META + "abcXYZ019/-_.", max_size=40)
injected = st.builds(lambda a, inj, b: a + inj + b, small_ascii, st.sampled_from(INJECTIONS), small_ascii)
unicode_mix = st.lists(st.one_of(st.sampled_from(UNICODE_PIECES), small_ascii), max_size=8).map("".join)
any_text = st.text(max_size=60)
long_names = st.one_of(
    st.text(min_size=250, max_size=300),
    realistic.map(lambda s: (s * 300)[:300]),
    st.integers(200, 300).map(lambda n: "a" * n),
)
leading_digits = st.from_regex(r"[0-9]{1,6}[-_/a-zA-Z0-9]{0,20}", fullmatch=True)
slashes = st.lists(st.text(alphabet="abc-XYZ.", max_size=6), max_size=6).map("/".join)
emptyish = st.sampled_from(["", " ", "-", "/", "---", "\n", "\t", "refs/heads/", "_"])
ref_prefixed = st.one_of(realistic, tidy).map(lambda s: "refs/heads/" + s)

branches = st.one_of(
    realistic,
    tidy,
    shell_meta,
    injected,
    unicode_mix,
    any_text,
    long_names,
    leading_digits,
    slashes,
    emptyish,
    ref_prefixed,
)


def _variant(branch: str, how: int) -> str:
    """A near-duplicate of ``branch`` that likely cleans to the same text."""
    return [
        branch.upper(),
        branch.lower(),
        branch + "!",
        "_" + branch,
        branch.replace("-", "_"),
        branch.replace("/", "-"),
        branch + "-",
        branch.replace("-", "--"),
        branch + "\u0301",
        branch + "🚀",
    ][how]


near_pairs = st.tuples(branches, st.integers(0, 9)).map(lambda t: (t[0], _variant(*t)))


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:7]


def assert_safe(stage: str, max_len: int = DEFAULT_MAX_LEN) -> None:
    assert STAGE_RE.match(stage), stage
    assert len(stage) <= max_len, stage
    assert "--" not in stage, stage
    assert not stage.endswith("-"), stage


# --------------------------------------------------------------------------- properties


@settings(max_examples=examples(500), deadline=None)
@given(branches)
def test_stage_and_stack_name_are_always_valid(branch: str) -> None:
    stage = stage_from_branch(branch)
    assert_safe(stage)
    name = stack_name(PATTERN, APP, stage)
    assert CFN_RE.match(name), name
    assert name == f"{APP}-{stage}"


@settings(max_examples=examples(500), deadline=None)
@given(branches, st.integers(9, 100))
def test_stage_respects_any_max_len(branch: str, max_len: int) -> None:
    assert_safe(stage_from_branch(branch, max_len), max_len)


@settings(max_examples=examples(500), deadline=None)
@given(branches)
def test_stage_is_deterministic(branch: str) -> None:
    copy = "".join(list(branch))
    assert stage_from_branch(branch) == stage_from_branch(copy) == stage_from_branch(branch)


@settings(max_examples=examples(500), deadline=None)
@given(branches)
def test_stage_is_unchanged_or_suffixed_with_the_branch_hash(branch: str) -> None:
    stage = stage_from_branch(branch)
    canonical = canonical_branch(branch)
    if stage != canonical:
        assert SUFFIXED_RE.match(stage), stage
        assert stage.endswith("-" + _digest(canonical))


@settings(max_examples=examples(500), deadline=None)
@given(branches, branches)
def test_distinct_branches_never_collide(a: str, b: str) -> None:
    assume(canonical_branch(a) != canonical_branch(b))
    assert stage_from_branch(a) != stage_from_branch(b)


@settings(max_examples=examples(500), deadline=None)
@given(near_pairs)
def test_near_duplicate_branches_never_collide(pair: tuple[str, str]) -> None:
    a, b = pair
    assume(canonical_branch(a) != canonical_branch(b))
    assert stage_from_branch(a) != stage_from_branch(b)


def _generate_names(rng: random.Random, count: int) -> set[str]:
    """``count`` distinct branch names from the same families as ``branches``."""
    pieces = list(SHELL_META) + INJECTIONS + UNICODE_PIECES + ["/", "-", "_", ".", "JIRA-", "Login"]
    words = ["feature", "bugfix", "login", "orders", "fix", "wip", "release", "api", "db", "ui"]
    names: set[str] = set()
    while len(names) < count:
        kind = rng.randrange(7)
        if kind == 0:  # realistic
            ticket = f"{rng.choice('ABCXYZ')}{rng.choice('ABCXYZ')}-{rng.randrange(10000)}"
            name = f"{rng.choice(words)}/{ticket}-" + "-".join(rng.choices(words, k=rng.randrange(1, 4)))
        elif kind == 1:  # tidy, stays unchanged
            name = "-".join(rng.choices(words, k=rng.randrange(1, 3))) + str(rng.randrange(100))
        elif kind == 2:  # metacharacters, injections, unicode
            name = "".join(rng.choices(pieces + words, k=rng.randrange(0, 8)))
        elif kind == 3:  # long
            name = "".join(rng.choices(words, k=60))[: rng.randrange(200, 301)]
        elif kind == 4:  # leading digits
            name = f"{rng.randrange(10**6)}-{rng.choice(words)}"
        elif kind == 5:  # near-duplicates of an existing name
            base = rng.choice(sorted(names)) if names else "feature-login"
            name = _variant(base, rng.randrange(10))
        else:  # punctuation-only: all clean to "b", only the hash tells them apart
            name = "".join(rng.choices(list(SHELL_META) + ["🚀", "\u0301", "-"], k=rng.randrange(0, 6)))
        names.add(name)
    return names


def test_five_thousand_branches_give_five_thousand_stages() -> None:
    names = _generate_names(random.Random(20240611), 5000)
    assert len(names) == 5000
    stages = {stage_from_branch(name) for name in names}
    assert len(stages) == len(names)
    for stage in stages:
        assert_safe(stage)


# --------------------------------------------------------------------------- examples


@pytest.mark.parametrize(
    "branch",
    ["main", "master", "develop", "feature-login", "release-2024-06", "a", "x1-y2", "a" * DEFAULT_MAX_LEN],
)
def test_plain_branches_are_unchanged(branch: str) -> None:
    assert stage_from_branch(branch) == branch


def test_feature_login_with_case_and_slash_gets_hash_suffix() -> None:
    stage = stage_from_branch("Feature/Login")
    assert stage == "feature-login-" + _digest("Feature/Login")
    assert stage != stage_from_branch("feature-login")
    assert stage != stage_from_branch("feature_login")


def test_known_values_are_stable_across_runs_and_versions() -> None:
    # Golden values: a change here renames (orphans) every existing branch stack.
    assert stage_from_branch("Feature/Login") == "feature-login-1ce2770"
    assert stage_from_branch("") == "b-e3b0c44"


def test_undecodable_git_output_still_hashes() -> None:
    # run_git decodes with surrogateescape; lone surrogates must not crash or collide.
    assert stage_from_branch("x\udcff") != stage_from_branch("x\udcfe")
    assert_safe(stage_from_branch("\udcff"))


def test_leading_digit_gets_b_prefix() -> None:
    stage = stage_from_branch("123-fix")
    assert stage.startswith("b123-fix-")
    assert stage != stage_from_branch("b123-fix")


@pytest.mark.parametrize("branch", ["", " ", "---", "🚀", "中文"])
def test_nothing_usable_becomes_b_plus_hash(branch: str) -> None:
    assert stage_from_branch(branch) == "b-" + _digest(branch)


def test_long_branch_is_truncated_with_hash() -> None:
    stage = stage_from_branch("a" * 300)
    assert len(stage) == DEFAULT_MAX_LEN
    assert stage == "a" * 16 + "-" + _digest("a" * 300)
    assert stage_from_branch("a" * 301) != stage


def test_truncation_strips_trailing_hyphen() -> None:
    stage = stage_from_branch("abcdefghijklmno-qrstuvwxyz-more")
    assert stage == "abcdefghijklmno-" + _digest("abcdefghijklmno-qrstuvwxyz-more")


def test_double_hyphen_is_tidied() -> None:
    stage = stage_from_branch("feature--login")
    assert stage.startswith("feature-login-")
    assert "--" not in stage


def test_injection_is_just_text() -> None:
    assert stage_from_branch("$(touch /tmp/x)") == "touch-tmp-x-" + _digest("$(touch /tmp/x)")


def test_unicode_is_transliterated() -> None:
    assert stage_from_branch("ｆｅａｔｕｒｅ").startswith("feature-")
    assert stage_from_branch("café-ünïcode").startswith("cafe-unicode-")


def test_refs_heads_prefix_is_removed() -> None:
    assert stage_from_branch("refs/heads/main") == "main"
    assert stage_from_branch("refs/remotes/origin/feature-x") == "feature-x"
    assert stage_from_branch("refs/heads/Feature/Login") == stage_from_branch("Feature/Login")


@pytest.mark.parametrize("branch", ["fix-deadbee", "pr-12", "pr-0"])
def test_reserved_shapes_are_suffixed(branch: str) -> None:
    stage = stage_from_branch(branch)
    assert stage == f"{branch}-{_digest(branch)}"


def test_branch_cannot_impersonate_a_suffixed_stage() -> None:
    victim = stage_from_branch("Feature/Login")
    assert stage_from_branch(victim) != victim


def test_branch_cannot_impersonate_a_pr_stage() -> None:
    assert stage_from_branch("pr-12") != pr_stage(12)


@pytest.mark.parametrize("max_len", [0, 5, 8])
def test_max_len_too_small_is_a_naming_error(max_len: int) -> None:
    with pytest.raises(NamingError, match="too short"):
        stage_from_branch("main", max_len)


def test_max_len_minimum_works() -> None:
    assert stage_from_branch("Feature", 9) == "f-" + _digest("Feature")
    assert stage_from_branch("feature", 9) == "feature"


# --------------------------------------------------------------------------- pr_stage


def test_pr_stage() -> None:
    assert pr_stage(42) == "pr-42"
    assert STAGE_RE.match(pr_stage(0))


@pytest.mark.parametrize("number", [-1, True, 1.5, "3"])
def test_pr_stage_rejects_non_numbers(number: object) -> None:
    with pytest.raises(NamingError):
        pr_stage(number)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- stack_name


def test_stack_name_formats_pattern() -> None:
    assert stack_name("{app}-{stage}", "orders", "main") == "orders-main"
    assert stack_name("{stage}-{app}-api", "orders", "main") == "main-orders-api"
    assert stack_name("Orders", "orders", "main") == "Orders"


@pytest.mark.parametrize(
    "pattern, fragment",
    [
        ("{app}-{branch}", "unsupported field {branch}"),
        ("{app.__class__}", "unsupported field"),
        ("{0}", "unsupported field {0}"),
        ("{app!r}", "unsupported field {app!r}"),
        ("{stage:>30}", "unsupported field {stage:>30}"),
        ("{app", "not a valid format string"),
        ("{app}}", "not a valid format string"),
    ],
)
def test_stack_name_rejects_bad_patterns(pattern: str, fragment: str) -> None:
    with pytest.raises(NamingError, match=re.escape(fragment)) as excinfo:
        stack_name(pattern, "orders", "main")
    assert "{app}" in (excinfo.value.hint or "")


@pytest.mark.parametrize(
    "pattern, app, stage, fragment",
    [
        ("{app}-{stage}", "my_app", "main", "contains '_'"),
        ("{app}-{stage}", "1orders", "main", "starts with '1'"),
        ("{app}-{stage}", "-orders", "main", "starts with '-'"),
        ("{app}-{stage}", "orders", "x" * 200, "characters long"),
        ("{app}_{stage}", "orders", "main", "contains '_'"),
        ("{{{app}}}", "orders", "main", "contains '{}'"),
        ("{app}", "", "main", "it is empty"),
        ("{app}-{stage}", "ördérs", "main", "contains"),
    ],
)
def test_stack_name_rejects_invalid_results(pattern: str, app: str, stage: str, fragment: str) -> None:
    with pytest.raises(NamingError, match=re.escape(fragment)) as excinfo:
        stack_name(pattern, app, stage)
    assert excinfo.value.hint


def test_stack_name_rejects_trailing_newline() -> None:
    with pytest.raises(NamingError):
        stack_name("{app}-{stage}", "orders", "main\n")


def test_stack_name_length_limit_is_128() -> None:
    assert stack_name("{app}", "a" * 128, "s") == "a" * 128
    with pytest.raises(NamingError):
        stack_name("{app}", "a" * 129, "s")


# --------------------------------------------------------------------------- is_protected


def test_is_protected() -> None:
    protected = ["main", "Prod", "refs/heads/staging"]
    assert is_protected("main", protected)
    assert is_protected("prod", protected)
    assert is_protected("staging", protected)
    assert is_protected(stage_from_branch("Prod"), protected)
    assert not is_protected("feature-x", protected)
    assert not is_protected("main", [])
    assert not is_protected(stage_from_branch("Main"), ["main"])


@settings(max_examples=examples(500), deadline=None)
@given(branches)
def test_a_branch_listed_as_protected_maps_to_a_protected_stage(branch: str) -> None:
    assert is_protected(stage_from_branch(branch), [branch])


# --------------------------------------------------------------------------- nothing is executed


def _git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=check,
        stdin=subprocess.DEVNULL,
    )


def _payloads(canary: Path) -> list[str]:
    c = str(canary)
    return [
        f"feat/$(touch${{IFS}}{c})",
        f"feat/`touch${{IFS}}{c}`",
        f"x;touch${{IFS}}{c}",
        f"x&&touch${{IFS}}{c}",
        f"x|touch${{IFS}}{c}",
        f"x>{c}",
        f"'$(touch${{IFS}}{c})'",
        f'"`touch${{IFS}}{c}`"',
        f"$(touch${{IFS}}{c})-Feature",
        f"$(touch {c})",  # has a space: git refuses it, the env path still sees it
        f"`touch {c}`",
    ]


def _check_refname(repo: Path, name: str) -> bool:
    return _git(repo, "check-ref-format", "--branch", name, check=False).returncode == 0


@pytest.fixture
def canary_repo(tmp_path: Path) -> tuple[Path, Path]:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "trunk")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "init")
    return repo, tmp_path / "CANARY"


def test_payloads_are_live(tmp_path: Path) -> None:
    """Control: these payloads do create the canary when a shell interprets them."""
    canary = tmp_path / "LIVE"
    fired = 0
    for payload in _payloads(canary):
        canary.unlink(missing_ok=True)
        subprocess.run(["sh", "-c", payload], cwd=tmp_path, capture_output=True, check=False)
        fired += canary.exists()
    assert fired >= len(_payloads(canary)) - 2


def _pipeline(env: dict[str, str], repo: Path) -> str:
    info = detect(env, repo)
    return stack_name(PATTERN, APP, stage_from_branch(info.branch))


def test_nothing_is_executed_from_env(canary_repo: tuple[Path, Path]) -> None:
    repo, canary = canary_repo
    for payload in _payloads(canary):
        for var in ["HARNESS_BRANCH", "CIRCLE_BRANCH", "GITHUB_HEAD_REF", "CI_COMMIT_REF_NAME"]:
            name = _pipeline({var: payload}, repo)
            assert CFN_RE.match(name)
        env = {"CODEBUILD_WEBHOOK_HEAD_REF": "refs/heads/" + payload}
        assert CFN_RE.match(_pipeline(env, repo))
        assert not canary.exists(), payload


def test_nothing_is_executed_from_git_branches(canary_repo: tuple[Path, Path]) -> None:
    repo, canary = canary_repo
    accepted = 0
    for payload in _payloads(canary):
        if not _check_refname(repo, payload):
            continue
        _git(repo, "checkout", "-q", "-B", payload)
        info = detect({}, repo)
        assert info.branch == payload
        assert info.source == "git"
        assert CFN_RE.match(stack_name(PATTERN, APP, stage_from_branch(info.branch)))
        assert not canary.exists(), payload
        accepted += 1
    assert accepted >= 5, "git refused most payloads; the test no longer exercises git"


def test_nothing_is_executed_from_generated_git_branches(canary_repo: tuple[Path, Path]) -> None:
    repo, canary = canary_repo
    payloads = _payloads(canary)

    @settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(small_ascii, st.sampled_from(payloads), small_ascii)
    def run(prefix: str, payload: str, suffix: str) -> None:
        name = prefix + payload + suffix
        assert CFN_RE.match(_pipeline({"HARNESS_BRANCH": name}, repo))
        # A valid name can still clash with an existing ref (``feat`` vs ``feat/x``): skip those.
        if _check_refname(repo, name) and _git(repo, "checkout", "-q", "-B", name, check=False).returncode == 0:
            info = detect({}, repo)
            assert info.branch == name
            assert CFN_RE.match(stack_name(PATTERN, APP, stage_from_branch(info.branch)))
        assert not canary.exists(), name

    run()
