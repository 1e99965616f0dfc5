"""Run one scenario: render, act, match, save, step by step.

This is plain Python (no pytest), so it is tested directly. Each step's
templates are rendered with what earlier steps saved; a mismatch raises
``ExpectationFailed`` and an action that cannot run raises ``StepError``,
both with a message that stands on its own in a CI log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from botocore.exceptions import BotoCoreError, ClientError

from harness.errors import ExpectationFailed, HarnessError, ScenarioError
from harness.scenarios import report
from harness.scenarios.actions import Pending, StepContext, StepError, not_found_hint
from harness.scenarios.model import Scenario, Step
from harness.scenarios.paths import PathError, get_path
from harness.scenarios.report import StepResult
from harness.scenarios.runtime import StepRuntime
from harness.scenarios.steps import ACTIONS
from harness.scenarios.templating import TemplateContext, TemplateError, render
from harness.scenarios.waiting import WaitTimeout
from harness.scenarios.yamlio import line_of

_NOT_FOUND = ("ResourceNotFoundException", "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue")


def run_scenario(
    scenario: Scenario, runtime: StepRuntime, *, results: list[StepResult] | None = None
) -> list[StepResult]:
    """Run every step in order; stop at the first failure (re-raised after recording).

    ``results`` (if given) is filled as steps complete, so a caller still has
    the record when this raises.
    """
    results = [] if results is None else results
    saved: dict[str, Any] = {}
    context = TemplateContext(
        outputs=runtime.stack.outputs,
        resources=runtime.stack.resources,
        saved=saved,
        vars={},
        unique=runtime.unique,
        env=runtime.env,
        fake=runtime.fake,
        stack={"name": runtime.stack.name, "stage": runtime.stack.stage, "region": runtime.stack.region},
    )
    context.vars = _render_vars(scenario, context)
    _prepare(scenario, runtime, context)
    for step in scenario.steps:
        start = runtime.clock()
        try:
            _run_step(scenario, step, runtime, context, saved)
        except BaseException as exc:
            status = "failed" if isinstance(exc, AssertionError) else "error"
            results.append(
                StepResult(step.index, step.name, step.action, step.line, status, runtime.clock() - start, str(exc))
            )
            results += [StepResult(s.index, s.name, s.action, s.line, "not run") for s in scenario.steps[step.index :]]
            raise
        results.append(StepResult(step.index, step.name, step.action, step.line, "passed", runtime.clock() - start))
    return results


def _render_vars(scenario: Scenario, context: TemplateContext) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    for name, value in scenario.vars.items():
        try:
            rendered[name] = render(value, context)
        except TemplateError as exc:
            raise ScenarioError(
                f"scenario {scenario.name!r}: vars.{name}: {exc.message}",
                path=scenario.path,
                line=line_of(scenario.vars, name, scenario.line),
                hint=exc.hint,
            ) from None
    return rendered


def _prepare(scenario: Scenario, runtime: StepRuntime, context: TemplateContext) -> None:
    """Let actions set up what must exist before the first step (listeners), when their arguments allow.

    Arguments that need a later step's saved values, or a setup that fails, are left to
    the step itself, which then reports the problem in its own place.
    """
    for step in scenario.steps:
        prepare = ACTIONS[step.action].prepare
        if prepare is None:
            continue
        try:
            prepare(render(step.args, context), StepContext(runtime))
        except (TemplateError, HarnessError, ClientError, BotoCoreError):
            continue


def _run_step(
    scenario: Scenario, step: Step, runtime: StepRuntime, context: TemplateContext, saved: dict[str, Any]
) -> None:
    _StepRun(scenario, step, runtime).run(context, saved)


class _StepRun:
    """One step: render its inputs, act, check the expectation, save; each failure with the step's own message."""

    def __init__(self, scenario: Scenario, step: Step, runtime: StepRuntime) -> None:
        self.scenario = scenario
        self.step = step
        self.runtime = runtime
        self.action = ACTIONS[step.action]
        self.args: Any = None
        self.expected: Any = None
        self.ctx: StepContext | None = None

    def run(self, context: TemplateContext, saved: dict[str, Any]) -> None:
        self._render(context)
        ctx = self.ctx = StepContext(self.runtime, expect=self.expected, has_expect=self.step.has_expect)
        observation = self._act(ctx)
        mismatches = ctx.check(observation)
        if mismatches:
            raise self._fail(observation, mismatches)
        for save in self.step.saves:
            try:
                saved[save.name] = get_path(observation, save.path)
            except PathError as exc:
                raise self._fail(
                    observation, [], headline=f"save {save.name}: {save.text} (line {save.line}) found nothing: {exc}"
                ) from None

    def _render(self, context: TemplateContext) -> None:
        step = self.step
        try:
            self.args = render(step.args, context)
        except TemplateError as exc:
            raise self._template_error(exc, step.line) from None
        try:
            self.expected = render(step.expect, context) if step.has_expect else None
        except TemplateError as exc:
            raise self._template_error(exc, step.expect_line or step.line) from None

    def _act(self, ctx: StepContext) -> Any:
        """Run the action; its failures become ExpectationFailed (not met) or StepError (could not run)."""
        action = self.step.action
        try:
            return self.action.run(self.args, ctx)
        except WaitTimeout as exc:
            last = exc.last_error
            observation = last.observation if isinstance(last, Pending) else None
            mismatches = last.mismatches if isinstance(last, Pending) else []
            raise self._fail(
                observation,
                mismatches,
                headline=f"not met within {exc.within:g}s ({exc.attempts} attempts); last observation below",
            ) from None
        except Pending as exc:  # an action that judges by itself (expect_trace): its mismatches and what it saw
            raise self._fail(exc.observation, exc.mismatches, headline=exc.headline, appendix=exc.appendix) from None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            hint = not_found_hint(self.runtime.stack, ctx.refs) if code in _NOT_FOUND else None
            raise self._error(f"{action} failed: {exc}", hint) from None
        except BotoCoreError as exc:
            raise self._error(f"{action} failed: {exc}") from None
        except requests.RequestException as exc:
            raise self._error(
                f"{action} failed: {type(exc).__name__}: {exc}",
                "is the API reachable from here? check the stack output and the target",
            ) from None
        except StepError as exc:
            raise self._error(exc.message, exc.hint) from None
        except HarnessError:
            raise

    def _action_text(self) -> str:
        summary = self.action.summary(self.args if isinstance(self.args, Mapping) else {})
        detail = self.ctx.detail if self.ctx is not None else None
        return f"{summary} ({detail})" if detail else summary

    def _template_error(self, exc: TemplateError, line: int) -> ScenarioError:
        return ScenarioError(
            f"scenario {self.scenario.name!r}, step {self.step.index} {self.step.name!r}: {exc.message}",
            path=self.scenario.path,
            line=line,
            hint=exc.hint,
        )

    def _fail(
        self, observation: Any, mismatches: list[Any], headline: str = "", appendix: str = ""
    ) -> ExpectationFailed:
        return ExpectationFailed(
            report.expectation_message(
                scenario=self.scenario,
                step=self.step,
                action_text=self._action_text(),
                expected=self.expected,
                has_expect=self.step.has_expect,
                observation=observation,
                mismatches=mismatches,
                seed=self.runtime.seed,
                unique=self.runtime.unique,
                headline=headline,
                appendix=appendix,
            )
        )

    def _error(self, text: str, hint: str | None = None) -> StepError:
        return StepError(
            report.error_message(
                scenario=self.scenario,
                step=self.step,
                action_text=self._action_text(),
                error=text,
                seed=self.runtime.seed,
                unique=self.runtime.unique,
            ),
            hint=hint,
        )
