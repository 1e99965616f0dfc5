"""Case 10: transient faults between the session and the emulator (throttling, 503, connection resets).

A fault-injecting proxy (``reliability.proxy``, 127.0.0.1) sits in front of
a long-lived emulator; sessions use ``--target endpoint --endpoint-url
http://127.0.0.1:PROXY``, so the deploy command (awscli), the harness and the
tests all go through it. Modes:

* ``all``: a share of every SDK request (deploy included) fails;
* ``harness+tests``: the deploy (awscli) is spared, a larger share of the
  harness's and the tests' requests fails;
* ``lost responses``: the first attempt of every stack-changing CloudFormation
  call made by the harness (boto3) is processed by the emulator, then its
  response is lost (connection reset): a retry must be safe, i.e. carry the
  same ClientRequestToken;
* ``lost responses (deploy)``: the same for awscli's own calls
  (CreateChangeSet / ExecuteChangeSet), to show what the deploy command does.

The proxy counts requests, injected faults and retries (botocore's
``amz-sdk-request: attempt=N``), and records the idempotency tokens of
CreateStack / UpdateStack / DeleteStack / CreateChangeSet / ExecuteChangeSet.
"""

from __future__ import annotations

from reliability.proxy import MUTATING_CFN, FaultProxy, Policy, Req
from reliability.support import (
    DEFAULT_TEST,
    CaseResult,
    Ctx,
    force_clean,
    leftovers,
    make_project,
    stack_for,
)

NUMBER = 10
FAULT = "transient faults via a proxy: throttling (400), 503, connection resets, lost responses"
RUNS = 3
QUICK_RUNS = 1

CHURN_TEST = """
def test_churn(stack):
    ddb = stack.client("dynamodb")
    table = stack.outputs["TableName"]
    for i in range(40):
        ddb.put_item(TableName=table, Item={"pk": {"S": f"c{i}"}, "n": {"N": str(i)}})
        assert ddb.get_item(TableName=table, Key={"pk": {"S": f"c{i}"}})["Item"]["n"]["N"] == str(i)
    assert len(list(ddb.get_paginator("scan").paginate(TableName=table))) >= 1
"""


def _modes(runs: int, quick: bool) -> list[tuple[str, Policy, bool]]:
    """(label, policy, counts toward pass/fail)."""

    def lost_harness(r: Req) -> str | None:
        return "lost" if r.ua == "boto3" and r.op in MUTATING_CFN and r.attempt == 1 else None

    def lost_cli(r: Req) -> str | None:
        return "lost" if r.ua == "aws-cli" and r.op in MUTATING_CFN and r.attempt == 1 else None

    all_traffic = ("all (deploy included), 10%", Policy(rate=0.10), True)
    harness_only = (
        "harness+tests (awscli spared), 25%",
        Policy(rate=0.25, eligible=lambda r: r.ua == "boto3"),
        True,
    )
    lost = ("lost responses: harness's stack-changing CFN calls", Policy(rate=0.0, forced=lost_harness), True)
    lost_deploy = (
        "lost responses: awscli's CreateChangeSet/ExecuteChangeSet",
        Policy(rate=0.0, forced=lost_cli),
        False,
    )
    html = ("503 with an HTML body (a proxy in front), 5%", Policy(rate=0.05, kinds=("503-html",)), False)
    if quick:
        return [all_traffic, lost]
    return [all_traffic] * runs + [harness_only] * runs + [lost, lost_deploy, html]


def run(ctx: Ctx, runs: int) -> CaseResult:
    emu = ctx.emulator("c10-emulator")
    branch = "feature/transient"
    stack = stack_for(branch)
    project = make_project(
        ctx.dir("c10"),
        branch=branch,
        files={"tests/integration/test_it.py": DEFAULT_TEST, "tests/integration/test_churn.py": CHURN_TEST},
    )
    notes: list[str] = []
    counted_fail: list[str] = []
    totals = {"requests": 0, "faults": 0, "retries": 0, "exhausted": 0}
    tokens: list[str] = []
    sessions = 0
    modes = _modes(runs, ctx.quick)
    counted = sum(1 for m in modes if m[2])
    for label, policy, counts in modes:
        with FaultProxy(emu.port, policy, ctx.rng) as proxy:
            s = ctx.run(
                project,
                "tests/integration",
                "-v",
                env={"HARNESS_TARGET": "endpoint", "HARNESS_ENDPOINT_URL": proxy.url},
            )
            sessions += 1
            summ = proxy.summary()
            muts = proxy.mutating_cfn()
        left = leftovers(emu, stack)
        force_clean(emu, stack)
        faults: dict[str, int] = summ["faults"]  # type: ignore[assignment]
        exhausted: list[Req] = summ["exhausted"]  # type: ignore[assignment]
        by_ua: dict[str, list[int]] = summ["by_ua"]  # type: ignore[assignment]
        passed = s.returncode == 0 and not left
        if counts:
            totals["requests"] += int(summ["requests"])  # type: ignore[arg-type]
            totals["faults"] += sum(faults.values())
            totals["retries"] += int(summ["retries"])  # type: ignore[arg-type]
            totals["exhausted"] += len(exhausted)
            if not passed:
                counted_fail.append(label)
        # Idempotency tokens of the stack-changing CloudFormation calls.
        groups: dict[str, list[Req]] = {}
        for r in muts:
            groups.setdefault(r.invocation or id(r).__str__(), []).append(r)
        tok = []
        for rs in groups.values():
            first = rs[0]
            retried = len(rs) > 1
            same = len({r.token for r in rs}) == 1
            tok.append(
                f"{first.ua} {first.op}: token {'yes' if first.token else 'NO'}"
                + (
                    f", retried x{len(rs) - 1}"
                    + ((" with the same token" if same else " with a DIFFERENT token") if first.token else "")
                    if retried
                    else ""
                )
            )
        tokens.extend(tok)
        tail = [x.strip()[:160] for x in s.output.splitlines() if "failed" in x.lower() or "error" in x.lower()][-3:]
        ctx.log(
            f"  c10 {label}: exit {s.returncode}, {summ['requests']} requests, faults {faults}, retries "
            f"{summ['retries']}, unrecovered {len(exhausted)}, left {len(left)}"
        )
        notes.append(
            ("" if counts else "(informational) ")
            + f"{label}: exit {s.returncode}{' (PASS)' if passed else ''}; {summ['requests']} requests "
            f"({', '.join(f'{k} {v[0]} ({v[1]} faulted, {v[2]} retries)' for k, v in sorted(by_ua.items()))}); "
            f"faults injected {faults or 0}; retries seen {summ['retries']}; requests whose last attempt failed "
            f"{len(exhausted)} {[f'{r.ua} {r.op}' for r in exhausted][:5] if exhausted else ''}; stack calls: "
            f"{sorted(set(tok))}; left {left or 'nothing'}" + (f"; last error lines: {tail}" if not passed else "")
        )
    harness_tokens = [t for t in tokens if t.startswith("boto3")]
    missing = [t for t in harness_tokens if "token NO" in t or "DIFFERENT" in t]
    cli_tokens = sorted({t for t in tokens if t.startswith("aws-cli")})
    notes.append(
        f"idempotency: the harness's stack-changing calls carry a ClientRequestToken in "
        f"{len(harness_tokens) - len(missing)} of {len(harness_tokens)} (retries reuse it); awscli's own calls: "
        f"{cli_tokens}"
    )
    ok = not counted_fail and not missing
    return CaseResult(
        NUMBER,
        FAULT,
        sessions,
        f"suite passed under faults in {counted - len(counted_fail)} of {counted} sessions; harness CFN calls with a token "
        f"{len(harness_tokens) - len(missing)}/{len(harness_tokens)}",
        f"{totals['faults']} faults injected in {totals['requests']} requests, {totals['retries']} retries, "
        f"{totals['exhausted']} unrecovered",
        ok,
        notes,
        data={"failed": counted_fail, "missing_tokens": missing},
    )
