"""The teardown job for a tagged deployment: release the lease, keep or destroy, then verify by tags.

::

    lease released (others still use it? leave it) -> nothing carries the tags? done
      -> keep-stack? say how to remove it
      -> the project's destroy-command (no destroy-command: the harness's deleters)
      -> every resource still carrying this app's and stage's tags is a leak, named by ARN

On AWS the tagging API is eventually consistent: a resource that still shows
is looked for again within ``leaks.SETTLE_SECONDS`` before it counts as left.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from harness import leaks
from harness.errors import HarnessError
from harness.scenarios.waiting import WaitTimeout, eventually
from harness.tagged import deleters
from harness.tagged.deployment import find_resources
from harness.tagged.discover import TaggedResource
from harness.teardown import Teardown, TeardownReport, explain_error

Finder = Callable[[], list[TaggedResource]]


def leftover_line(r: TaggedResource) -> str:
    return f"{r.arn} ({r.kind}, still tagged {r.stage or '?'})"


class TaggedTeardown(Teardown):
    """Tear down what the deploy command made (found by tags) and prove nothing carries the tags any more."""

    def run(self, report: TeardownReport) -> None:
        def finder() -> list[TaggedResource]:
            return find_resources(self.ops)

        name = self.ops.plan.stack_name
        try:
            found = finder()
        except Exception as exc:  # noqa: BLE001 - report, never mask the original failure
            report.errors.append(f"could not list the resources of {name} by tags: {explain_error(exc, self.ops)}")
            return
        kept_by_other = bool(self.lease is not None and self.lease.kept_by) and not self.force
        keep = (self.ops.settings.keep_stack or kept_by_other) and not self.force and bool(found)
        if self.lease is not None and self.lease_held and not self._release_lease(report, keep=keep):
            return
        if not found:
            if self.lease is not None:
                self.lease.torn_down()
            return
        if keep and kept_by_other and not self.ops.settings.keep_stack:
            report.kept = True
            self.ops.out(f"leaving {name} as found: kept by another run")
            return
        if keep:
            self._keep(report)
            return
        self._destroy(found, finder, report)

    def _destroy(self, found: list[TaggedResource], finder: Finder, report: TeardownReport) -> None:
        name = self.ops.plan.stack_name
        started = time.monotonic()
        if self.ops.settings.destroy_command:
            self.ops.out(f"teardown: destroying {name} ({len(found)} tagged resources) with its destroy command")
            try:
                self.ops.destroy_stage()
            except HarnessError as exc:
                report.errors.append(exc.render())
        else:  # deploy-kind auto found no stack: the harness's own deleters, the rest named
            self.ops.out(f"teardown: no destroy-command; deleting {name}'s {len(found)} tagged resources by type")
            _, failed, unknown = deleters.delete_all(self.ops.client, found)
            report.errors.extend(f"could not delete {line}" for line in failed)
            report.errors.extend(f"not deleted: {line}" for line in unknown)
        self._sweep_listeners([name], report)
        left = self._still_tagged(finder, report)
        self.seconds = time.monotonic() - started
        report.checked = len(found)
        report.leftovers.extend(leftover_line(r) for r in left)
        report.deleted = not left and not report.errors
        if report.deleted and self.lease is not None:
            self.lease.torn_down()
        if report.leftovers or report.errors:
            self.ops.out("teardown: LEFT BEHIND:\n" + "\n".join(f"  {x}" for x in [*report.errors, *report.leftovers]))
        else:
            self.ops.out(
                f"teardown: {name} destroyed in {self.seconds:.1f}s; verified gone by tags "
                f"({len(found)} resources, 0 still tagged)"
            )

    def _still_tagged(self, finder: Finder, report: TeardownReport) -> list[TaggedResource]:
        """What still carries the tags; on AWS, looked for again until it settles."""
        left: list[TaggedResource] = []

        def none_left() -> None:
            left[:] = finder()
            assert not left, f"{len(left)} still tagged"

        settle = leaks.SETTLE_SECONDS if self.ops.settings.target == "aws" else 0.0
        try:
            if settle:
                eventually(none_left, within=settle, interval=2.0, backoff=1.5, max_interval=10.0)
            else:
                none_left()
        except (WaitTimeout, AssertionError):
            pass
        except Exception as exc:  # noqa: BLE001 - the leak check itself failed: say so, do not call it clean
            report.errors.append(f"could not list the resources left by tags: {explain_error(exc, self.ops)}")
        return left
