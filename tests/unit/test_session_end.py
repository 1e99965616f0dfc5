"""The session's end: the teardown's clients, made while the trace collection waits anyway.

Against moto (no emulator): clients made ahead change no outcome; a leftover
is still reported.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness import tags
from harness.branch import BranchInfo
from harness.deployment import Deployed
from harness.lifecycle import Lifecycle
from harness.plan import Plan
from harness.settings import resolve
from harness.stackops import StackOps

STACK = "app-feature-x"
TEMPLATE = json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}})


def _made_by_thread(session: Any) -> list[tuple[str, str]]:
    """(service, thread name) of every client the session makes; fails a test if two are made at once."""
    made: list[tuple[str, str]] = []
    busy = threading.Lock()
    original = session.client

    def client(service: str, *args: Any, **kwargs: Any) -> Any:
        assert busy.acquire(blocking=False), "two clients made at once on one session"
        try:
            time.sleep(0.005)  # widen the window two threads could overlap in
            return original(service, *args, **kwargs)
        finally:
            made.append((service, threading.current_thread().name))
            busy.release()

    session.client = client
    return made


def _ops(session: Any, tmp_path: Path, lines: list[str]) -> StackOps:
    settings = resolve({"target": "endpoint", "endpoint_url": "http://127.0.0.1:9"}, {}, tmp_path)
    plan = Plan(BranchInfo("feature/x", "test"), "feature-x", STACK, "app", "run1")
    target: Any = SimpleNamespace(session=lambda: session, env=lambda: {})
    info: Any = {"endpoint_url": None, "region": "us-east-1"}
    return StackOps(settings, plan, target, info, {}, tmp_path, lines.append)


def _managed_stack(session: Any) -> tuple[str, str]:
    """A harness-tagged stack of one queue: its id and the queue's URL."""
    cfn = session.client("cloudformation")
    stack_tags = [{"Key": k, "Value": v} for k, v in {tags.MANAGED_BY: tags.MANAGER, tags.APP: "app"}.items()]
    stack_id = cfn.create_stack(StackName=STACK, TemplateBody=TEMPLATE, Tags=stack_tags)["StackId"]
    return stack_id, cfn.describe_stack_resources(StackName=STACK)["StackResources"][0]["PhysicalResourceId"]


def _deployed(
    session: Any, tmp_path: Path, lines: list[str], stack_id: str, queue: str, left: str
) -> tuple[StackOps, Lifecycle]:
    """A lifecycle past its deploy of ``stack_id``, whose read-back also lists ``left``, a queue the stack does not own."""
    ops = _ops(session, tmp_path, lines)
    life = Lifecycle(ops.settings, out=lines.append)
    life.plan, life.ops, life.deployed = ops.plan, ops, Deployed(stack_id=stack_id, created_by_us=True)
    life.info = {  # type: ignore[typeddict-item]
        "name": STACK,
        "resources": {"Queue": queue, "Extra": left},
        "resource_types": {"Queue": "AWS::SQS::Queue", "Extra": "AWS::SQS::Queue"},
        "outputs": {},
    }
    return ops, life


def test_one_client_per_service_made_one_at_a_time_whatever_the_thread(session: Any, tmp_path: Path) -> None:
    made = _made_by_thread(session)
    ops = _ops(session, tmp_path, [])
    got: list[Any] = []
    threads = [
        threading.Thread(target=lambda: got.extend(ops.client(s) for s in ("sqs", "sns", "sqs"))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(s for s, _ in made) == ["sns", "sqs"]  # once each, never two at once (see _made_by_thread)
    assert len({id(c) for c in got}) == 2
    own = ops.client("sqs", config=ops.client("sqs").meta.config)  # a config of its own: a client of its own
    assert own is not ops.client("sqs")


def test_clients_made_ahead_are_the_teardowns_and_a_leftover_is_still_reported(session: Any, tmp_path: Path) -> None:
    """The close steps make the leak probe's clients ahead; the teardown uses them and still finds what is left."""
    stack_id, queue = _managed_stack(session)
    left = session.client("sqs").create_queue(QueueName="made-outside-the-stack")["QueueUrl"]
    made = _made_by_thread(session)
    lines: list[str] = []
    ops, life = _deployed(session, tmp_path, lines, stack_id, queue, left)

    for step in life.close_steps():
        step()
    ahead = [s for s, _ in made]
    assert "waiter_config" in ops.client("cloudformation")._cache  # the delete's waiter model, loaded ahead too
    report = life.close()

    assert report.deleted, (report, lines)
    assert report.leftovers == [f"Extra (AWS::SQS::Queue) {left}"], lines  # the queue the stack did not own
    assert ahead == ["cloudformation", "dynamodb", "resourcegroupstaggingapi", "sqs"]
    assert [s for s, _ in made] == ahead  # the teardown made none of its own
    assert life.close_steps() == []  # closed: nothing left to prepare


def test_the_tests_clients_serve_the_teardowns_probes_of_their_target_only(session: Any, tmp_path: Path) -> None:
    """Clients made ahead for the tests are adopted for the same target: the probe calls them, makes none."""
    stack_id, queue = _managed_stack(session)
    left = session.client("sqs").create_queue(QueueName="left-outside-the-stack")["QueueUrl"]
    tests_sqs = session.client("sqs")  # the tests' own client, made before the teardown's session is used
    probed: list[str] = []
    tests_sqs.meta.events.register("before-call.sqs", lambda model, **_: probed.append(model.name))
    made = _made_by_thread(session)
    lines: list[str] = []
    ops, life = _deployed(session, tmp_path, lines, stack_id, queue, left)
    elsewhere = {**ops.target_info, "endpoint_url": "http://127.0.0.1:1"}
    life.adopt_clients(elsewhere, {"sns": session.client("sns")})  # another target's: never used
    made.clear()
    life.adopt_clients(ops.target_info, {"sqs": tests_sqs})

    report = life.close()

    assert report.leftovers == [f"Extra (AWS::SQS::Queue) {left}"], lines  # still proven, with the tests' client
    assert probed.count("GetQueueAttributes") == 2  # both queues probed through it
    assert "sqs" not in [s for s, _ in made] and ops.client("sqs") is tests_sqs
    assert ops.client("sns") is not None and ("sns", threading.current_thread().name) in made  # made, not adopted


def test_the_report_files_are_written_beside_the_teardown_and_before_the_masking(
    session: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """``close(alongside=...)`` runs it on a thread while the stack is deleted, and joins it before the report
    directory's files are masked: a secret it wrote is masked too."""
    stack_id, queue = _managed_stack(session)
    lines: list[str] = []
    ops = _ops(session, tmp_path, lines)
    life = Lifecycle(ops.settings, out=lines.append)
    life.plan, life.ops, life.deployed = ops.plan, ops, Deployed(stack_id=stack_id, created_by_us=True)
    life.info = {  # type: ignore[typeddict-item]
        "name": STACK,
        "resources": {"Queue": queue},
        "resource_types": {"Queue": "AWS::SQS::Queue"},
        "outputs": {"Token": "s3cr3t-t0ken-value"},
        "sensitive_outputs": ["Token"],
    }
    deleting = threading.Event()
    original_delete = StackOps.delete
    monkeypatch.setattr(StackOps, "delete", lambda self, *a, **k: (deleting.set(), original_delete(self, *a, **k))[1])
    seen: dict[str, Any] = {}
    written = life.run_dir / "traces" / "t.json"

    def write() -> None:
        seen["thread"] = threading.current_thread().name
        seen["beside the delete"] = deleting.wait(30)  # the teardown goes on meanwhile
        time.sleep(0.3)  # still writing when the teardown ends: the masking waits for it
        written.parent.mkdir(parents=True, exist_ok=True)
        written.write_text('{"output": "s3cr3t-t0ken-value"}')

    report = life.close(alongside=write)

    assert report.deleted, lines
    assert seen == {"thread": "harness-report-files", "beside the delete": True}
    assert "s3cr3t-t0ken-value" not in written.read_text()  # written before the masking
    ran: list[bool] = []
    life.close(alongside=lambda: ran.append(True))  # closed already: it still runs (here, at once)
    assert ran == [True]


def _with_a_hidden_queue(session: Any, tmp_path: Path, lines: list[str]) -> Lifecycle:
    """A lifecycle past its deploy of a one-queue stack whose read-back also lists a queue no probe can see."""
    stack_id, queue = _managed_stack(session)
    _ops_made, life = _deployed(session, tmp_path, lines, stack_id, queue, "https://sqs.invalid/0/not-this-one")
    assert life.info is not None
    del life.info["resources"]["Extra"], life.info["resource_types"]["Extra"]
    life.info["resources"]["Hidden"] = "https://sqs.us-east-1.amazonaws.com/123456789012/never-made"
    life.info["resource_types"]["Hidden"] = "AWS::SQS::Queue"
    return life


def test_a_resource_its_probe_does_not_see_before_the_delete_is_named_as_not_proven_gone(
    session: Any, tmp_path: Path
) -> None:
    """The first look (beside the trace collection) sees the stack's queue; a resource the stack read back under
    an id no probe finds is not counted as verified gone after the delete, but named."""
    lines: list[str] = []
    life = _with_a_hidden_queue(session, tmp_path, lines)

    life.look_before_teardown()
    report = life.close()

    assert report.deleted and report.leftovers == [], lines
    assert report.checked == 1  # the queue the look saw, now gone
    [line] = [x for x in lines if "verified gone" in x]
    assert line.endswith("; not seen by their probe before the delete, so not proven gone: Hidden (AWS::SQS::Queue)")
    assert "(1 resources checked, 0 left)" in line


def test_the_first_look_asks_the_embedded_emulator_two_probes_at_a_time(
    session: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first look runs while the session asks the same emulator whether the tests' late consumers are done."""
    from harness import leaks

    asked: list[dict[str, Any]] = []
    monkeypatch.setattr(leaks, "not_seen", lambda *args, **kwargs: asked.append(kwargs) or set())
    life = _with_a_hidden_queue(session, tmp_path, [])
    for target, workers in (("endpoint", leaks.PROBE_WORKERS), ("local", leaks.FIRST_LOOK_WORKERS_LOCAL)):
        if target == "local":
            life.settings = resolve({"target": target}, {}, tmp_path)
        life._first_look = None
        life.look_before_teardown()
        assert life._first_look is not None and life._first_look() == set()
        assert asked.pop() == {"listing": target == "local", "workers": workers}
    assert leaks.FIRST_LOOK_WORKERS_LOCAL < leaks.PROBE_WORKERS


def test_without_a_first_look_every_resource_is_probed_as_before(session: Any, tmp_path: Path) -> None:
    lines: list[str] = []
    life = _with_a_hidden_queue(session, tmp_path, lines)

    report = life.close()

    assert report.checked == 2 and "not proven" not in "\n".join(lines), lines


class _FlakyListeners:
    """Listeners whose first removal fails outright (a bug, a dead connection pool), the second succeeds."""

    def __init__(self) -> None:
        self.listeners = ["one"]
        self.calls = 0

    def close(self) -> list[str]:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("connection pool closed")
        self.listeners = []
        return ["queue q: AccessDenied"]


def test_listeners_whose_removal_raised_are_removed_by_the_next_call(capsys: pytest.CaptureFixture[str]) -> None:
    """The session's end removes its listeners while its trace collection waits, and once more after it: a
    removal that raised the first time (a step of the wait, whose errors the wait skips) is tried again."""
    from harness.pytest.role import Role

    role = Role(SimpleNamespace(pluginmanager=SimpleNamespace(get_plugin=lambda name: None)))  # type: ignore[arg-type]
    flaky = _FlakyListeners()
    role._listeners = flaky
    with pytest.raises(RuntimeError):
        role.close_listeners()
    role.close_listeners()
    role.close_listeners()  # gone: nothing more to do

    assert flaky.calls == 2
    assert "branchstack: listener not removed: queue q: AccessDenied" in capsys.readouterr().out
