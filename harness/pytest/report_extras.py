"""Each test's trace in the report tools a team already publishes: pytest-html and Allure.

Neither is a dependency. :func:`register` adds a part only when its plugin is
installed and asked for in this run (pytest-html: ``--html``; allure-pytest:
``--alluredir``), and only when the run has traces:

* pytest-html: per test, its trace id and a link to its waterfall in the
  harness's trace report (``<report-dir>/traces/index.html#<trace id>``,
  relative to the HTML report); for a failed test, the failed spans of its
  trace;
* Allure: the same link (``allure.dynamic.link``, relative to the results
  folder, so it holds when the report is generated beside it) and the trace
  so far as a JSON attachment.

They are added to the ``call`` phase's report (``setup`` when that failed),
in the process that ran the test; an xdist worker sends them back with its
report, and learns where the trace report is from the controller.
"""

from __future__ import annotations

import html
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.pytest.role import WORKERINPUT, role_of

#: How many failed spans a report names (the trace report has them all).
MAX_SPANS = 5
_INDEX_KEY = WORKERINPUT + "_trace_index"


def register(config: pytest.Config) -> None:
    """Add the parts whose report tool is installed and asked for."""
    if _wanted(config, "html", "htmlpath"):
        config.pluginmanager.register(HtmlExtras(config), "branchstack-html-extras")
    if _wanted(config, "allure_pytest", "allure_report_dir"):
        config.pluginmanager.register(AllureExtras(config), "branchstack-allure-extras")


def _wanted(config: pytest.Config, module: str, option: str) -> bool:
    if importlib.util.find_spec(module) is None:
        return False
    try:
        return bool(config.getoption(option))
    except ValueError:  # the plugin is installed but disabled (-p no:...)
        return False


class _Extras:
    """What both parts share: the test's trace, and where the trace report is."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        received = getattr(config, "workerinput", {})
        self._index: str | None = received.get(_INDEX_KEY)

    def index(self) -> Path | None:
        """The trace report's page (``<report-dir>/traces/index.html``)."""
        if self._index is not None:
            return Path(self._index)
        settings = getattr(role_of(self.config), "settings", None)
        if settings is None:
            return None
        from harness.traces.html import FILE_NAME

        return (settings.root / settings.report_dir / "traces" / FILE_NAME).resolve()

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        index = self.index()
        if index is not None:
            node.workerinput[_INDEX_KEY] = str(index)

    def link_from(self, folder: Path, trace_id: str) -> str | None:
        from harness.traces.html import trace_link

        index = self.index()
        if index is None:
            return None
        return os.path.relpath(index.parent, folder.resolve()) + "/" + trace_link(trace_id)

    def trace_of(self, item: pytest.Item, *, within: float | None) -> Any:
        """The test's trace so far, fetched without counting as its calls; None without traces."""
        role = role_of(item.config)
        ctx = role.trace_contexts.get(item.nodeid) if role is not None else None
        if role is None or ctx is None or role.tracing is None:
            return None
        from harness.traces.propagation import untraced

        with untraced():
            return role.tracing.test_trace(ctx).fetch(within=within)

    @staticmethod
    def trace_id(item: pytest.Item) -> str | None:
        role = role_of(item.config)
        ctx = role.trace_contexts.get(item.nodeid) if role is not None else None
        return ctx.trace_id if ctx is not None else None

    @staticmethod
    def reported(report: pytest.TestReport) -> bool:
        """The phase whose report carries the extras: the call, or a setup that failed."""
        return report.when == "call" or (report.when == "setup" and not report.passed)


def failed_spans(trace: Any) -> list[str]:
    return [s.describe() for s in trace.failed_spans()[:MAX_SPANS]] if trace is not None else []


class HtmlExtras(_Extras):
    """pytest-html: the trace id, the link to its waterfall, a failed test's failed spans."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
        report = yield
        trace_id = self.trace_id(item)
        if trace_id is None or not self.reported(report):
            return report
        from pytest_html import extras

        added = [extras.html(self._summary(item, report, trace_id))]
        link = self.link_from(Path(str(self.config.getoption("htmlpath"))).parent, trace_id)
        if link is not None:
            added.append(extras.url(link, name=f"trace {trace_id}"))
        report.extras = [*getattr(report, "extras", []), *added]
        return report

    def _summary(self, item: pytest.Item, report: pytest.TestReport, trace_id: str) -> str:
        text = f'<div class="branchstack-trace">trace <code>{html.escape(trace_id)}</code>'
        if report.failed:
            try:
                spans = failed_spans(self.trace_of(item, within=None))
            except Exception as exc:  # noqa: BLE001 - a report extra never fails the test's report
                spans = [f"(the trace could not be read: {exc})"]
            text += ": " + (
                "failed spans<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in spans) + "</ul>"
                if spans
                else "no failed span in its trace"
            )
        return text + "</div>"


class AllureExtras(_Extras):
    """Allure: a link to the test's waterfall and its trace as a JSON attachment."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
        report = yield
        trace_id = self.trace_id(item)
        if trace_id is None or not self.reported(report):
            return report
        import allure

        link = self.link_from(Path(str(self.config.getoption("allure_report_dir"))), trace_id)
        if link is not None:
            allure.dynamic.link(link, name=f"trace {trace_id}")
        try:
            trace = self.trace_of(item, within=None if report.failed else 0.0)
        except Exception:  # noqa: BLE001 - the link still leads to the trace report
            trace = None
        if trace is not None:
            from harness.traces import jsonfile

            body = jsonfile.dumps(trace.to_json(), default=str)
            allure.attach(body, name=f"trace {trace_id}", attachment_type=allure.attachment_type.JSON)
        return report
