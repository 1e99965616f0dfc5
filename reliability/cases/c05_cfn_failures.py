"""Case 5: CloudFormation itself fails: a create that rolls back, a delete that fails, retained resources.

* create fails (``tests/e2e/stacks/broken``: ROLLBACK_COMPLETE): the reason is
  shown, the stack deleted, nothing left;
* a ROLLBACK_COMPLETE stack left by an earlier run (made here with the
  harness's tags): the next run deletes it and deploys;
* delete fails (DELETE_FAILED: a custom resource that refuses its Delete;
  MiniStack deletes a non-empty bucket, unlike AWS, so that is checked apart):
  what the teardown reports, what the next run on the branch does;
* ``DeletionPolicy: Retain`` (table, queue, bucket): after the stack is
  deleted, the harness deletes and names them (``retained = delete``), or
  names them and leaves them (``retained = keep``), the run passing both ways.
"""

from __future__ import annotations

import datetime as dt

from harness import tags
from reliability.support import (
    BROKEN_TEMPLATE,
    MINIMAL_TEMPLATE,
    TEMPLATES,
    CaseResult,
    Ctx,
    Emulator,
    Session,
    endpoint_env,
    force_clean,
    lease_state,
    leftovers,
    make_project,
    resource_names,
    stack_for,
    tag_sweep,
    wait_until,
)

NUMBER = 5
FAULT = "CloudFormation failures: create rolls back, delete fails, DeletionPolicy Retain"
RUNS = 1
QUICK_RUNS = 1

TABLE_TEST = """
def test_table(stack):
    ddb = stack.client("dynamodb")
    ddb.put_item(TableName=stack.outputs["TableName"], Item={"pk": {"S": "x"}})
"""

BUCKET_TEST = """
def test_bucket_gets_an_object(stack):
    stack.client("s3").put_object(Bucket=stack.outputs["BucketName"], Key="left/by/test.txt", Body=b"data")
"""


def _lines(s: Session, *needles: str) -> list[str]:
    out = []
    for line in s.output.splitlines():
        if any(n in line for n in needles):
            out.append(line.strip()[:220])
    return out


def _broken(ctx: Ctx, emu: Emulator, notes: list[str]) -> tuple[bool, int]:
    branch = "feature/cfn-broken"
    stack = stack_for(branch)
    project = make_project(
        ctx.dir("c5-broken"), branch=branch, template=BROKEN_TEMPLATE, files={"tests/integration/test_t.py": TABLE_TEST}
    )
    s = ctx.run(project, "tests/integration", "-v", env=endpoint_env(emu))
    left = leftovers(emu, stack)
    reason = _lines(s, "CREATE_FAILED")
    ok = s.returncode != 0 and bool(reason) and not left and s.no_traceback()
    notes.append(
        f"create fails (ROLLBACK_COMPLETE): exit {s.returncode}; reason shown: {reason[:1]}; "
        f"teardown: {_lines(s, 'teardown:')}; left in the emulator: {left or 'nothing'}"
    )
    # A ROLLBACK_COMPLETE stack from an earlier (killed) run, carrying the harness's tags.
    cfn = emu.client("cloudformation")
    stags = tags.StackTags(
        branch=branch,
        stage=stack.split("-", 1)[1],
        commit=None,
        run_id="deadbeef0000",
        created_at=dt.datetime.now(dt.UTC),
        ttl_hours=24,
    )
    cfn.create_stack(StackName=stack, TemplateBody=BROKEN_TEMPLATE.read_text(), Tags=stags.as_cfn())
    wait_until(lambda: cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"].endswith("COMPLETE"), 30, 0.3)
    status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    project2 = make_project(ctx.dir("c5-rollback"), branch=branch, template=MINIMAL_TEMPLATE)
    s2 = ctx.run(project2, "tests/integration", "-v", env=endpoint_env(emu))
    said = _lines(s2, "ROLLBACK_COMPLETE")
    left2 = leftovers(emu, stack)
    ok2 = s2.returncode == 0 and bool(said) and not left2
    notes.append(
        f"a {status} stack left by an earlier run: the next run said {said[:1]}, exit {s2.returncode}, "
        f"left {left2 or 'nothing'}"
    )
    force_clean(emu, stack)
    return ok and ok2, 2


def _delete_failed(ctx: Ctx, emu: Emulator, notes: list[str]) -> tuple[bool, int]:
    branch = "feature/cfn-delete-fails"
    stack = stack_for(branch)
    project = make_project(
        ctx.dir("c5-delfail"),
        branch=branch,
        template=TEMPLATES / "delete_fails.yaml",
        files={"tests/integration/test_t.py": TABLE_TEST},
    )
    s = ctx.run(project, "tests/integration", "-v", env=endpoint_env(emu))
    left = leftovers(emu, stack)
    lease = lease_state(emu, stack)
    report = _lines(s, "was not deleted", "DELETE_FAILED", "LEFT BEHIND", "left things behind", "  stack ", "hint:")
    named = any(f"stack {stack}" in line for line in s.output.splitlines())
    reason = any("refuses to be deleted" in line for line in s.output.splitlines())
    custom_reported = any("Undeletable" in line for line in s.output.splitlines())
    notes.append(
        f"delete fails (custom resource refuses its Delete): exit {s.returncode}; the teardown printed: {report[:6]}; "
        f"stack named as left: {named}; CloudFormation's reason shown: {reason}; the failed resource "
        f"(Custom::Undeletable) named: {custom_reported}; in the emulator now: {left}; lease item: "
        f"{lease.get('phase') if lease else 'none'}"
    )
    s2 = ctx.run(project, "tests/integration", "-v", env=endpoint_env(emu))
    notes.append(
        f"the next run on that branch (stack DELETE_FAILED): exit {s2.returncode}; it printed: "
        f"{_lines(s2, 'deploying', 'failed', 'was not deleted', 'reusing', 'LEFT BEHIND', 'An error occurred')[:5]}"
    )
    swept = tag_sweep(emu)
    notes.append(f"removed afterwards by this script's sweep (delete with RetainResources): {swept}")
    force_clean(emu, stack)
    ok = s.returncode != 0 and named and reason
    return ok, 2


def _bucket(ctx: Ctx, emu: Emulator, notes: list[str]) -> tuple[bool, int]:
    branch = "feature/cfn-bucket"
    stack = stack_for(branch)
    project = make_project(
        ctx.dir("c5-bucket"),
        branch=branch,
        template=TEMPLATES / "bucket.yaml",
        files={"tests/integration/test_b.py": BUCKET_TEST},
    )
    s = ctx.run(project, "tests/integration", "-v", env=endpoint_env(emu))
    left = leftovers(emu, stack)
    notes.append(
        f"non-empty S3 bucket: exit {s.returncode}; teardown: {_lines(s, 'teardown:')[-1:]}; left: {left or 'nothing'} "
        "(MiniStack deletes a non-empty bucket; AWS fails with BucketNotEmpty and the stack goes DELETE_FAILED, "
        "the path checked with the custom resource above)"
    )
    force_clean(emu, stack)
    return s.returncode == 0 and not left, 1


def _retained_in(emu: Emulator, stack: str) -> list[str]:
    names = resource_names(emu)
    return [n for kind in ("tables", "queues", "buckets") for n in names[kind] if stack in n or stack.lower() in n]


def _block(s: Session, header: str) -> list[str]:
    """The resource lines the teardown printed under ``header`` (``  Logical (AWS::Type) physical``)."""
    lines, inside = [], False
    for line in s.output.splitlines():
        if header in line:
            inside = True
        elif inside and "(AWS::" in line:
            lines.append(line.strip())
        elif inside:
            inside = False
    return lines


def _retain(ctx: Ctx, emu: Emulator, notes: list[str]) -> tuple[bool, int, str]:
    """Retained by the template: deleted by the harness and named (default), or named and left (keep)."""
    branch = "feature/cfn-retain"
    stack = stack_for(branch)
    project = make_project(
        ctx.dir("c5-retain"),
        branch=branch,
        template=TEMPLATES / "retain.yaml",
        files={"tests/integration/test_t.py": TABLE_TEST},
    )
    s = ctx.run(project, "tests/integration", "-v", env=endpoint_env(emu))
    deleted = _block(s, "retained by the template, deleted by the harness")
    left = _retained_in(emu, stack)
    notes.append(
        f"DeletionPolicy Retain, retained = delete: exit {s.returncode}; named as deleted by the harness: "
        f"{len(deleted)} ({', '.join(d.split('branchstack:')[-1].strip().split(' (')[0] for d in deleted)}); left in the emulator: {len(left)}"
    )
    s2 = ctx.run(project, "tests/integration", "-v", env=endpoint_env(emu, HARNESS_RETAINED="keep"))
    kept = _retained_in(emu, stack)
    named = _block(s2, "retained by the template, left in place")
    notes.append(
        f"retained = keep: exit {s2.returncode}; named as left in place: {len(named)}; in the emulator afterwards: "
        f"{len(kept)}"
    )
    for kind, delete in (("tables", "dynamodb"), ("queues", "sqs"), ("buckets", "s3")):
        for n in resource_names(emu)[kind]:
            if stack in n or stack.lower() in n:
                c = emu.client(delete)
                try:
                    if kind == "tables":
                        c.delete_table(TableName=n)
                    elif kind == "queues":
                        c.delete_queue(QueueUrl=n)
                    else:
                        c.delete_bucket(Bucket=n)
                except Exception:  # noqa: BLE001, S110 - best effort cleanup of the case's emulator
                    pass
    ok = s.returncode == 0 and len(deleted) == 3 and not left
    ok = ok and s2.returncode == 0 and len(named) == 3 and len(kept) == 3
    fig = f"deleted by the harness and named {len(deleted)} of 3, left {len(left)}; keep: named {len(named)}, left {len(kept)}"
    return ok, 2, fig


def run(ctx: Ctx, runs: int) -> CaseResult:
    emu = ctx.emulator("c5-emulator")
    notes: list[str] = []
    sessions = 0
    ok_all = True
    parts = []
    for _ in range(max(1, runs)):
        ok1, n1 = _broken(ctx, emu, notes)
        ok2, n2 = _delete_failed(ctx, emu, notes)
        ok3, n3 = _bucket(ctx, emu, notes)
        ok4, n4, fig = _retain(ctx, emu, notes)
        sessions += n1 + n2 + n3 + n4
        ok_all = ok_all and ok1 and ok2 and ok3 and ok4
        parts = [
            f"rollback: {'clean' if ok1 else 'NOT clean'}",
            f"DELETE_FAILED: {'reported' if ok2 else 'NOT reported'}",
            f"non-empty bucket: {'deleted (emulator)' if ok3 else 'left'}",
            f"Retain: {fig}",
        ]
        ctx.log(f"  c5: {'; '.join(parts)}")
    return CaseResult(NUMBER, FAULT, sessions, "; ".join(parts[:3]), parts[3], ok_all, notes)
