"""Event-driven scenarios on the emulator, and the listeners the harness attaches for them.

One emulator for the module (the ``endpoint`` target, so it outlives each
session and can be inspected after it); the stack in ``stacks/events/`` has a
bus whose rule starts a state machine, a topic, a bucket and a stream.

* a session (two xdist workers) runs YAML scenarios with every new step and a
  Python test with the ``events`` fixture: green, and afterwards no listener
  resource is left on the emulator;
* a session killed with SIGKILL leaves its listeners; ``harness gc`` lists
  them (dry run) and removes them (``--yes``);
* a session killed the same way, then ``harness destroy``: the teardown names
  the listeners the stopped process left, removes them, and deletes the stack.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import HARNESS_CLI, Emulator, Runner, clean_env, deploy_argv, no_traceback, start_emulator

from harness import procs
from harness.events import sweep
from reliability.support import make_project

pytestmark = pytest.mark.e2e

TEMPLATE = Path(__file__).parent / "stacks" / "events" / "template.yaml"
HANG_GUARD = 120.0  # seconds; never a timing assertion

SCENARIOS = """
scenarios:
  - name: events on the bus, matched by content
    steps:
      - put_events:
          bus: BusName
          entries:
            - {source: e2e.orders, detail_type: OrderAudited, detail: {order_id: "{{ unique }}", total: 7}}
            - {source: e2e.orders, detail_type: OrderAudited, detail: {order_id: "{{ unique }}-small", total: 1}}
      - expect_event:
          bus: BusName
          pattern:
            detail-type: [OrderAudited]
            detail: {order_id: [{prefix: "{{ unique }}"}], total: [{numeric: [">", 5]}]}
          count: 1
        expect: {event: {detail: {order_id: "{{ unique }}"}}}
      - expect_event: {bus: BusName, pattern: {detail: {order_id: ["{{ unique }}-none"]}}, count: 0, within: 2}

  - name: a rule starts the state machine
    steps:
      - put_events: {bus: BusName, entries: [{source: e2e.flow, detail_type: Go, detail: {order_id: "{{ unique }}"}}]}
      - expect_execution: {state_machine: FlowArn, input: {detail: {order_id: ["{{ unique }}"]}}, within: 30}
        expect: {status: SUCCEEDED, output: {order_id: "{{ unique }}", seen: true}}

  - name: an execution started and awaited
    steps:
      - start_execution: {state_machine: FlowArn, input: {detail: {order_id: "{{ unique }}"}}, wait: false}
        save: {arn: execution_arn}
      - expect_execution: {state_machine: FlowArn, execution_arn: "{{ saved.arn }}"}
        expect: {status: SUCCEEDED}

  - name: an SNS message
    steps:
      - publish: {topic: TopicArn, message: {order_id: "{{ unique }}"}, subject: Hello}
      - expect_message: {topic: TopicArn, pattern: {message: {order_id: ["{{ unique }}"]}}}
        expect: {count: 1, message: {subject: Hello}}

  - name: an S3 object and a Kinesis record
    steps:
      - put_object: {bucket: BucketName, key: "in/{{ unique }}.json", json: {order_id: "{{ unique }}"}}
      - expect_object: {bucket: BucketName, key: "in/{{ unique }}.json"}
        expect: {body: {order_id: "{{ unique }}"}, content_type: application/json}
      - put_record: {stream: StreamName, data: {order_id: "{{ unique }}"}}
        expect: {sequence_number: !re "^[0-9]+$"}
"""

PYTHON_TEST = """
import json


def test_python_events(events, stack, unique_id):
    events.listen("BusName")
    stack.client("events").put_events(Entries=[{
        "EventBusName": stack.outputs["BusName"], "Source": "e2e.py", "DetailType": "Py",
        "Detail": json.dumps({"id": unique_id}),
    }])
    [event] = events.wait_for({"source": ["e2e.py"], "detail": {"id": [unique_id]}}, bus="BusName")
    assert event["detail-type"] == "Py"
"""

HOLD_TEST = """
import time
from pathlib import Path


def test_hold(events):
    events.listen("BusName")
    events.listen_topic("TopicArn")
    Path({mark!r}).write_text("listening")
    time.sleep(300)
"""


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emulator = start_emulator(tmp_path_factory.mktemp("events-emulator"))
    try:
        yield emulator
    finally:
        procs.stop_tree(emulator.pid)


def project(root: Path, emu: Emulator, files: dict[str, str]) -> Path:
    return make_project(
        root,
        files=files,
        deploy=deploy_argv(TEMPLATE),
        extra_toml=f'target = "endpoint"\nendpoint-url = "{emu.url}"\n',
        app="events",
    )


def listeners_on(emu: Emulator) -> list[str]:
    """Every listener resource on the emulator that still exists."""
    return sorted(f.arn for f in sweep.find(emu.client) if sweep.alive(emu.client, f))


def test_event_scenarios_pass_and_leave_no_listener(tmp_path: Path, run: Runner, emu: Emulator) -> None:
    root = project(
        tmp_path / "app",
        emu,
        {"tests/integration/scenarios/events.yaml": SCENARIOS, "tests/integration/test_events.py": PYTHON_TEST},
    )
    result = run(root, "-n", "2", "-q")
    no_traceback(result.output)
    assert result.returncode == 0, result.output[-4000:]
    assert "6 passed" in result.output, result.output[-4000:]
    assert "listener not removed" not in result.output and "LEFT BEHIND" not in result.output
    assert listeners_on(emu) == []
    assert not [u for u in emu.client("sqs").list_queues().get("QueueUrls", []) if "-listen-" in u]


def killed_session(root: Path, mark: Path) -> None:
    """Run pytest until its test has made its listeners, then SIGKILL the whole session."""
    proc = subprocess.Popen(  # noqa: S603 - argv list
        [*Runner().pytest_argv("-q", "-s")],
        cwd=root,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + HANG_GUARD
    try:
        while not mark.exists():
            assert proc.poll() is None, "the session ended before its test made its listeners"
            assert time.monotonic() < deadline, f"hang guard: no listeners within {HANG_GUARD:.0f}s"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def test_gc_removes_the_listeners_of_a_killed_session(tmp_path: Path, run: Runner, emu: Emulator) -> None:
    mark = tmp_path / "listening"
    root = project(tmp_path / "app", emu, {"tests/integration/test_hold.py": HOLD_TEST.format(mark=str(mark))})
    killed_session(root, mark)
    left = listeners_on(emu)
    assert len([a for a in left if ":sqs:" in a]) == 2, left  # the bus's queue and the topic's

    dry = run(root, argv=[HARNESS_CLI, "gc"])
    assert dry.returncode == 0, dry.output
    assert "listener resource(s) no session uses would be removed:" in dry.output, dry.output
    assert all(arn in dry.output for arn in left), dry.output
    assert listeners_on(emu) == left  # a dry run touches nothing

    gc = run(root, argv=[HARNESS_CLI, "gc", "--yes"])
    assert gc.returncode == 0, gc.output
    assert "listener resource(s) no session uses (removed):" in gc.output, gc.output
    assert listeners_on(emu) == []
    subscriptions = emu.client("sns").list_subscriptions()["Subscriptions"]
    assert [s for s in subscriptions if "-listen-" in s["Endpoint"]] == []
    run(root, argv=[HARNESS_CLI, "destroy"])


def test_teardown_names_and_removes_what_a_killed_session_left(tmp_path: Path, run: Runner, emu: Emulator) -> None:
    mark = tmp_path / "listening"
    root = project(tmp_path / "app", emu, {"tests/integration/test_hold.py": HOLD_TEST.format(mark=str(mark))})
    killed_session(root, mark)
    assert listeners_on(emu)

    destroyed = run(root, argv=[HARNESS_CLI, "destroy"])
    no_traceback(destroyed.output)
    assert destroyed.returncode == 0, destroyed.output
    line = next(x for x in destroyed.output.splitlines() if "listener resource(s) a stopped process left" in x)
    assert line.endswith("; removed") and line.count("listener SQS queue") == 2, line
    assert "LEFT BEHIND" not in destroyed.output
    assert listeners_on(emu) == []
