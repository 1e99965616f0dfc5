"""What a user sees from the plugin, checked with pytester (no emulator)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for var in ("HARNESS_TARGET", "HARNESS_STACK", "HARNESS_REGION", "HARNESS_DEPLOY_COMMAND"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HARNESS_BRANCH", "feature-x")
    pytester.makepyprojecttoml('[tool.harness]\napp = "shop"\ndeploy-command = ["make", "deploy"]\n')
    return pytester


def test_header_shows_every_setting_with_its_source(project: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.setenv("HARNESS_REGION", "eu-west-1")
    project.makepyfile(test_a="def test_a(): pass")
    result = project.runpytest("--target", "aws")
    result.stdout.fnmatch_lines(
        [
            "branchstack settings:",
            "*target * = aws  (cli)",
            "*region * = eu-west-1  (env HARNESS_REGION)",
            "*app * = shop  (pyproject.toml)",
            "*deploy-command * = make deploy  (pyproject.toml)",
            "*keep-stack * = false  (default)",
        ]
    )
    result.assert_outcomes(passed=1)


def test_a_misspelt_setting_variable_is_warned_about_in_the_header(project: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.setenv("HARNESS_TAGRET", "aws")
    project.makepyfile(test_a="def test_a(): pass")
    result = project.runpytest("-q")
    result.stdout.fnmatch_lines(
        ["branchstack: warning: HARNESS_TAGRET is not a harness setting and is ignored; did you mean HARNESS_TARGET?"]
    )
    result.assert_outcomes(passed=1)


def test_bad_values_are_refused_with_the_choices_and_no_traceback(project: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.setenv("HARNESS_TARGET", "cloud")
    project.makepyfile(test_a="def test_a(): pass")
    result = project.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "HARNESS_TARGET" in err and "cloud" in err
    assert "local" in err and "aws" in err and "endpoint" in err
    assert "Traceback" not in err + result.stdout.str()


def test_unknown_pyproject_key_is_refused_with_a_suggestion(pytester: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.setenv("HARNESS_BRANCH", "feature-x")
    pytester.makepyprojecttoml('[tool.harness]\ndeploy_comand = ["make", "deploy"]\n')
    pytester.makepyfile(test_a="def test_a(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "deploy-command" in result.stderr.str()


def test_runs_outside_integration_paths_deploy_nothing(project: pytest.Pytester) -> None:
    project.makepyfile(test_unit="def test_unit(): pass")
    result = project.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    assert "branchstack: stage" not in result.stdout.str()


def test_stack_fixture_without_a_deploy_says_how_to_get_one(project: pytest.Pytester) -> None:
    project.makepyfile(test_needs="def test_needs(stack): pass")
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*this test needs the branch stack*", "*--stack on*"])
    assert "Traceback" not in result.stdout.str()


def test_stack_off_never_deploys_even_for_integration_paths(project: pytest.Pytester) -> None:
    project.mkdir("scenarios")
    project.makepyfile(**{"scenarios/test_s": "def test_s(): pass"})
    result = project.runpytest("--stack", "off", "scenarios")
    result.assert_outcomes(passed=1)
    assert "deploying" not in result.stdout.str()


def test_integration_path_triggers_the_lifecycle(project: pytest.Pytester, monkeypatch) -> None:
    # A protected stage on a shared target is refused before anything starts,
    # which proves the run asked for the stack without needing a target.
    monkeypatch.setenv("HARNESS_BRANCH", "main")
    project.mkdir("scenarios")
    project.makepyfile(**{"scenarios/test_s": "def test_s(): pass"})
    result = project.runpytest("--target", "endpoint", "--endpoint-url", "http://127.0.0.1:9", "scenarios")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*stage 'main'*is protected*"])
    assert "Traceback" not in result.stdout.str()


def test_signal_handlers_are_given_back_as_the_session_found_them(pytester: pytest.Pytester) -> None:
    import signal

    from harness.pytest.signals import SignalPolicy

    config = pytester.parseconfig()
    session = pytest.Session.from_config(config)
    session.exitstatus = pytest.ExitCode.OK  # as wrap_session sets it
    policy = SignalPolicy(out=print)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a backgrounded job inherits it
        sigterm_before = signal.getsignal(signal.SIGTERM)
        policy.ensure_sigint()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the watcher can interrupt the run
        policy.after_teardown(session)
        signal.raise_signal(signal.SIGTERM)  # after the teardown: only the exit code changes
        assert session.exitstatus == pytest.ExitCode.INTERRUPTED
        policy.restore()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is sigterm_before
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_a_stopped_run_ignores_the_rest_of_its_burst_until_it_exits(pytester: pytest.Pytester) -> None:
    """Python resets signals with Python handlers to SIG_DFL at shutdown: a late one would end the run by it."""
    import signal

    from harness.pytest.signals import SignalPolicy

    config = pytester.parseconfig()
    policy = SignalPolicy(out=print)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        policy.install_stop_signals(config)
        policy.received.append(signal.SIGINT)  # the run was stopped by a Ctrl-C
        policy.restore()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_only_collectors_that_import_python_wait_for_the_stack(pytester: pytest.Pytester) -> None:
    """The stack starts beside collection; what may import Python code (a test module, a conftest pytest
    has not loaded yet) waits for it, a scenario file and a plain directory do not."""
    pytester.makeconftest(  # the root conftest, loaded at start-up: collecting its directory imports nothing
        """
        import pytest
        from harness.pytest.controller import directory_imports_python, imports_python, on_the_args

        SEEN = []

        @pytest.hookimpl(tryfirst=True)
        def pytest_collectstart(collector):
            SEEN.append((collector.nodeid or ".", imports_python(collector)))

        @pytest.hookimpl(tryfirst=True)
        def pytest_collect_directory(path, parent):
            config = parent.config
            SEEN.append((path.name, on_the_args(path, config) and directory_imports_python(path, config)))

        def pytest_collection_finish(session):
            for nodeid, waits in SEEN:
                print(f"seen {nodeid} waits={waits}")
        """
    )
    pytester.makefile(
        ".yaml",
        **{"scenarios/flow": "scenarios:\n  - name: s\n    steps:\n      - http: {api: ApiUrl, path: /health}\n"},
    )
    pytester.makepyfile(**{"scenarios/test_mod": "def test_a(): pass", "plain/test_b": "def test_b(): pass"})
    (pytester.path / "nested").mkdir()
    (pytester.path / "nested" / "conftest.py").write_text("")
    (pytester.path / "nested" / "test_c.py").write_text("def test_c(): pass")
    (pytester.path / "pkg").mkdir()
    (pytester.path / "pkg" / "__init__.py").write_text("")
    (pytester.path / "pkg" / "test_d.py").write_text("def test_d(): pass")
    result = pytester.runpytest("--co", "-s", "-p", "no:cacheprovider", "--stack", "off")
    result.stdout.fnmatch_lines_random(
        [
            "seen . waits=False",
            "seen scenarios waits=False",
            "seen scenarios/flow.yaml waits=False",
            "seen scenarios/test_mod.py waits=True",
            "seen plain waits=False",
            "seen plain/test_b.py waits=True",
            "seen nested waits=True",
            "seen pkg waits=True",
        ]
    )
    # Pytest offers every directory of the root; one the arguments do not reach is never imported.
    only = pytester.runpytest("--co", "-s", "-p", "no:cacheprovider", "--stack", "off", "scenarios/flow.yaml")
    only.stdout.fnmatch_lines_random(["seen pkg waits=False", "seen nested waits=False"])
