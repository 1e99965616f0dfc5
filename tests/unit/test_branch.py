"""Branch detection: override, every CI system, git (faked and real)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from harness.branch import BranchInfo, GitError, detect, run_git
from harness.errors import NamingError

SHA = "0123456789abcdef0123456789abcdef01234567"
SHA2 = "fedcba9876543210fedcba9876543210fedcba98"
CWD = Path("/nonexistent/checkout")


class FakeGit:
    """Stands in for ``run_git``: answers rev-parse from canned values, records argv."""

    def __init__(
        self,
        branch: str | None = "git-branch",
        commit: str | None = SHA2,
        *,
        error: BaseException | None = None,
    ) -> None:
        self.branch = branch
        self.commit = commit
        self.error = error
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> str:
        argv = list(argv)
        self.calls.append(argv)
        assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
        assert argv[:3] == ["git", "-C", str(CWD)]
        if self.error is not None:
            raise self.error
        rest = argv[3:]
        if rest == ["rev-parse", "--abbrev-ref", "HEAD"]:
            if self.branch is None:
                raise GitError("fatal: ambiguous argument 'HEAD'")
            return self.branch + "\n"
        if rest == ["rev-parse", "HEAD"]:
            if self.commit is None:
                raise GitError("fatal: no commit")
            return self.commit + "\n"
        if rest == ["rev-parse", "--short", "HEAD"]:
            assert self.commit is not None
            return self.commit[:7] + "\n"
        if rest == ["symbolic-ref", "--short", "HEAD"]:
            raise GitError("fatal: not a git repository")
        raise AssertionError(f"unexpected git call {argv}")


def no_git() -> FakeGit:
    return FakeGit(error=GitError("fatal: not a git repository (or any of the parent directories): .git"))


# --------------------------------------------------------------------------- CircleCI


def test_circleci_branch_and_commit() -> None:
    env = {"CIRCLECI": "true", "CIRCLE_BRANCH": "feature/x", "CIRCLE_SHA1": SHA}
    assert detect(env, CWD, run_git=no_git()) == BranchInfo("feature/x", "env CIRCLE_BRANCH", SHA, None)


def test_circleci_pr_number_from_variable() -> None:
    env = {"CIRCLE_BRANCH": "pull/17", "CIRCLE_PR_NUMBER": "17", "CIRCLE_SHA1": SHA}
    assert detect(env, CWD, run_git=no_git()).pr_number == 17


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://github.com/acme/orders/pull/123", 123),
        ("https://github.com/acme/orders/pull/123/", 123),
        ("https://bitbucket.org/acme/orders/pull-requests/5", None),
        ("not a url", None),
    ],
)
def test_circleci_pr_number_from_pull_request_url(url: str, expected: int | None) -> None:
    env = {"CIRCLE_BRANCH": "feat", "CIRCLE_PULL_REQUEST": url}
    assert detect(env, CWD, run_git=no_git()).pr_number == expected


def test_circleci_pr_number_variable_beats_url() -> None:
    env = {
        "CIRCLE_BRANCH": "feat",
        "CIRCLE_PR_NUMBER": "8",
        "CIRCLE_PULL_REQUEST": "https://github.com/acme/orders/pull/9",
    }
    assert detect(env, CWD, run_git=no_git()).pr_number == 8


def test_circleci_malformed_values_are_dropped() -> None:
    env = {"CIRCLE_BRANCH": "feat", "CIRCLE_SHA1": "$(rm -rf /)", "CIRCLE_PR_NUMBER": "12; echo"}
    info = detect(env, CWD, run_git=no_git())
    assert info.commit is None
    assert info.pr_number is None


# --------------------------------------------------------------------------- GitHub Actions


def test_github_push_uses_ref_name() -> None:
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REF_NAME": "main",
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_SHA": SHA,
        "GITHUB_HEAD_REF": "",
    }
    assert detect(env, CWD, run_git=no_git()) == BranchInfo("main", "env GITHUB_REF_NAME", SHA, None)


def test_github_pull_request_uses_head_ref_and_pr_number() -> None:
    env = {
        "GITHUB_HEAD_REF": "feature/login",
        "GITHUB_REF_NAME": "42/merge",
        "GITHUB_REF": "refs/pull/42/merge",
        "GITHUB_SHA": SHA.upper(),
    }
    info = detect(env, CWD, run_git=no_git())
    assert info == BranchInfo("feature/login", "env GITHUB_HEAD_REF", SHA, 42)


@pytest.mark.parametrize("ref", ["refs/heads/main", "refs/tags/v1", "refs/pull/x/merge", "refs/pull/4/merge/x"])
def test_github_no_pr_number_from_other_refs(ref: str) -> None:
    env = {"GITHUB_REF_NAME": "main", "GITHUB_REF": ref}
    assert detect(env, CWD, run_git=no_git()).pr_number is None


def test_github_blank_head_ref_falls_back() -> None:
    env = {"GITHUB_HEAD_REF": "   ", "GITHUB_REF_NAME": "release"}
    assert detect(env, CWD, run_git=no_git()).branch == "release"


# --------------------------------------------------------------------------- CodeBuild


def test_codebuild_webhook_head_ref_is_stripped() -> None:
    env = {
        "CODEBUILD_BUILD_ID": "b:1",
        "CODEBUILD_WEBHOOK_HEAD_REF": "refs/heads/feature/x",
        "CODEBUILD_RESOLVED_SOURCE_VERSION": SHA,
        "CODEBUILD_WEBHOOK_TRIGGER": "branch/feature/x",
    }
    info = detect(env, CWD, run_git=no_git())
    assert info == BranchInfo("feature/x", "env CODEBUILD_WEBHOOK_HEAD_REF", SHA, None)


def test_codebuild_pull_request_webhook() -> None:
    env = {
        "CODEBUILD_WEBHOOK_HEAD_REF": "refs/heads/fix",
        "CODEBUILD_SOURCE_VERSION": "pr/31",
        "CODEBUILD_WEBHOOK_TRIGGER": "pr/31",
    }
    info = detect(env, CWD, run_git=no_git())
    assert (info.branch, info.pr_number) == ("fix", 31)


def test_codebuild_source_version_branch_ref() -> None:
    env = {"CODEBUILD_SOURCE_VERSION": "refs/heads/hotfix", "CODEBUILD_RESOLVED_SOURCE_VERSION": SHA}
    info = detect(env, CWD, run_git=no_git())
    assert info == BranchInfo("hotfix", "env CODEBUILD_SOURCE_VERSION", SHA, None)


def test_codebuild_webhook_trigger_gives_pr() -> None:
    env = {"CODEBUILD_WEBHOOK_HEAD_REF": "refs/heads/fix", "CODEBUILD_WEBHOOK_TRIGGER": "pr/9"}
    assert detect(env, CWD, run_git=no_git()).pr_number == 9


def test_codebuild_pr_without_branch_takes_branch_from_git() -> None:
    env = {"CODEBUILD_SOURCE_VERSION": "pr/7", "CODEBUILD_RESOLVED_SOURCE_VERSION": SHA}
    info = detect(env, CWD, run_git=FakeGit(branch="HEAD", commit=SHA))
    assert info == BranchInfo(SHA[:7], "git (detached HEAD)", SHA, 7)


def test_codebuild_source_version_sha_is_not_a_branch() -> None:
    env = {"CODEBUILD_SOURCE_VERSION": SHA, "CODEBUILD_RESOLVED_SOURCE_VERSION": SHA}
    info = detect(env, CWD, run_git=FakeGit(branch="develop", commit=SHA))
    assert info == BranchInfo("develop", "git", SHA, None)


def test_codebuild_s3_version_id_is_not_a_commit() -> None:
    env = {"CODEBUILD_WEBHOOK_HEAD_REF": "refs/heads/x", "CODEBUILD_RESOLVED_SOURCE_VERSION": "3/L4kqtJlcpXroDTDmJ+rm"}
    assert detect(env, CWD, run_git=no_git()).commit is None


# --------------------------------------------------------------------------- GitLab


def test_gitlab_merge_request() -> None:
    env = {
        "GITLAB_CI": "true",
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feat/mr",
        "CI_COMMIT_REF_NAME": "refs/merge-requests/5/head",
        "CI_COMMIT_SHA": SHA,
        "CI_MERGE_REQUEST_IID": "5",
    }
    assert detect(env, CWD, run_git=no_git()) == BranchInfo(
        "feat/mr", "env CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", SHA, 5
    )


def test_gitlab_branch_pipeline() -> None:
    env = {"CI_COMMIT_REF_NAME": "develop", "CI_COMMIT_SHA": SHA}
    assert detect(env, CWD, run_git=no_git()) == BranchInfo("develop", "env CI_COMMIT_REF_NAME", SHA, None)


# --------------------------------------------------------------------------- precedence


def test_override_beats_ci_and_git() -> None:
    env = {
        "HARNESS_BRANCH": "mine",
        "CIRCLE_BRANCH": "circle",
        "CIRCLE_SHA1": SHA,
        "CIRCLE_PR_NUMBER": "3",
        "GITHUB_REF_NAME": "gh",
    }
    git = FakeGit()
    assert detect(env, CWD, run_git=git) == BranchInfo("mine", "env HARNESS_BRANCH", SHA, None)
    assert git.calls == []


def test_override_takes_commit_from_git_when_no_ci() -> None:
    info = detect({"HARNESS_BRANCH": "mine"}, CWD, run_git=FakeGit(branch="other", commit=SHA2))
    assert info == BranchInfo("mine", "env HARNESS_BRANCH", SHA2, None)


def test_override_works_without_git() -> None:
    info = detect({"HARNESS_BRANCH": "mine"}, CWD, run_git=no_git())
    assert info == BranchInfo("mine", "env HARNESS_BRANCH", None, None)


def test_blank_override_is_ignored() -> None:
    assert detect({"HARNESS_BRANCH": "  \n"}, CWD, run_git=FakeGit()).branch == "git-branch"


def test_ci_beats_git() -> None:
    git = FakeGit()
    assert detect({"CI_COMMIT_REF_NAME": "ci"}, CWD, run_git=git).branch == "ci"
    assert git.calls == []


def test_ci_order_circle_github_codebuild_gitlab() -> None:
    env = {
        "CIRCLE_BRANCH": "c",
        "GITHUB_REF_NAME": "g",
        "CODEBUILD_WEBHOOK_HEAD_REF": "refs/heads/b",
        "CI_COMMIT_REF_NAME": "l",
    }
    order = ["CIRCLE_BRANCH", "GITHUB_REF_NAME", "CODEBUILD_WEBHOOK_HEAD_REF", "CI_COMMIT_REF_NAME"]
    for name, expected in zip(order, ["c", "g", "b", "l"], strict=True):
        assert detect(env, CWD, run_git=no_git()).branch == expected
        env.pop(name)


def test_git_branch() -> None:
    assert detect({}, CWD, run_git=FakeGit("feature/y", SHA)) == BranchInfo("feature/y", "git", SHA, None)


def test_git_detached_head_uses_short_sha() -> None:
    info = detect({}, CWD, run_git=FakeGit("HEAD", SHA))
    assert info == BranchInfo(SHA[:7], "git (detached HEAD)", SHA, None)


@pytest.mark.parametrize(
    "error",
    [
        GitError("fatal: not a git repository"),
        FileNotFoundError("git"),
        subprocess.CalledProcessError(128, ["git"]),
        subprocess.TimeoutExpired(["git"], 10),
    ],
)
def test_no_branch_at_all_is_a_naming_error(error: BaseException) -> None:
    with pytest.raises(NamingError) as excinfo:
        detect({"CI": "true", "CIRCLE_BRANCH": ""}, CWD, run_git=FakeGit(error=error))
    assert "HARNESS_BRANCH" in (excinfo.value.hint or "")
    assert "git checkout" in (excinfo.value.hint or "")


def test_detect_reads_a_plain_mapping_not_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_BRANCH", "from-os-environ")
    assert detect({}, CWD, run_git=FakeGit("git-branch")).branch == "git-branch"


# --------------------------------------------------------------------------- real git


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return result.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "trunk")
    git(path, "commit", "-q", "--allow-empty", "-m", "one")
    git(path, "commit", "-q", "--allow-empty", "-m", "two")
    return path


def test_real_git_branch(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "feature/Real-Branch")
    sha = git(repo, "rev-parse", "HEAD")
    assert detect({}, repo) == BranchInfo("feature/Real-Branch", "git", sha, None)


def test_real_git_detached_head(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD~1")
    git(repo, "checkout", "-q", "--detach", first)
    info = detect({}, repo)
    assert info.source == "git (detached HEAD)"
    assert info.commit == first
    assert info.branch == git(repo, "rev-parse", "--short", "HEAD")
    assert first.startswith(info.branch)


def test_real_git_unborn_branch(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "fresh")
    assert detect({}, tmp_path) == BranchInfo("fresh", "git", None, None)


def test_real_git_not_a_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(NamingError, match="could not determine the branch") as excinfo:
        detect({}, plain)
    assert "HARNESS_BRANCH" in str(excinfo.value)


def test_run_git_missing_binary_is_git_error() -> None:
    with pytest.raises(GitError, match="not installed"):
        run_git(["definitely-not-a-git-binary-4b1e"])


def test_run_git_failure_carries_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    (tmp_path / "x").mkdir()
    with pytest.raises(GitError, match="not a git repository"):
        run_git(["git", "-C", str(tmp_path / "x"), "rev-parse", "HEAD"])


def test_run_git_returns_stdout(repo: Path) -> None:
    assert run_git(["git", "-C", str(repo), "rev-parse", "--abbrev-ref", "HEAD"]) == "trunk\n"


def test_run_git_keeps_every_line_of_a_multi_line_message(repo: Path) -> None:
    with pytest.raises(GitError) as excinfo:
        run_git(["git", "-C", str(repo), "ls-remote", "--heads", "--", "origin"])
    message = str(excinfo.value)
    assert "'origin' does not appear to be a git repository" in message
    assert message.endswith("and the repository exists."), message
