"""The pytest-html and Allure parts are registered only when their plugin is there and asked for."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]
pytest.importorskip("pytest_html")
pytest.importorskip("allure_pytest")

HTML, ALLURE = "branchstack-html-extras", "branchstack-allure-extras"


def registered(pytester: pytest.Pytester, *args: str) -> set[str]:
    config = pytester.parseconfigure(*args)
    try:
        return {name for name in (HTML, ALLURE) if config.pluginmanager.get_plugin(name) is not None}
    finally:
        config._ensure_unconfigure()


def test_each_part_only_when_its_report_is_asked_for(pytester: pytest.Pytester) -> None:
    assert registered(pytester) == set()
    assert registered(pytester, "--html", "r.html") == {HTML}
    assert registered(pytester, "--alluredir", "allure") == {ALLURE}
    assert registered(pytester, "--html", "r.html", "--alluredir", "allure") == {HTML, ALLURE}


def test_a_disabled_report_plugin_is_left_alone(pytester: pytest.Pytester) -> None:
    assert registered(pytester, "-p", "no:html", "-p", "no:allure_pytest") == set()


def test_a_run_without_traces_reports_no_trace(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_unit="def test_unit(): pass")
    result = pytester.runpytest("--html", "r.html", "--alluredir", "allure", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    page = (pytester.path / "r.html").read_text()
    assert "branchstack-trace" not in page and "harness-report/traces" not in page
