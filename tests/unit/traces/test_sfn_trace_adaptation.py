"""The Step Functions trace adaptation's mechanics, on fake MiniStack modules (no emulator).

The end-to-end proof on the pinned MiniStack is ``tests/e2e/test_traces_joined_e2e.py``.
"""

from __future__ import annotations

import asyncio
import re
import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.emulator import adapt, sfn_traces, trace_header
from harness.traces.collector import Collector

ROOT = "1-6b043315-23214c168721134c5ded6f95"
HEADER = f"Root={ROOT};Parent=c000000000000002;Sampled=1"
MACHINE = "arn:aws:states:us-east-1:000000000000:stateMachine:flow"

SFN = """
import contextvars, threading

_executions = {}
_state_machines = {}
seen_lambda_headers = []

def get_region():
    return "us-east-1"

def get_account_id():
    return "000000000000"

async def handle_request(method, path, headers, body, query_params):
    handlers = {
        "StartExecution": _start_execution,
        "CreateStateMachine": _create_state_machine,
        "UpdateStateMachine": _update_state_machine,
    }
    return handlers[headers["x-amz-target"]](body)

def _create_state_machine(data):
    arn = f"arn:aws:states:{get_region()}:{get_account_id()}:stateMachine:{data['name']}"
    _state_machines[arn] = {"name": data["name"], "stateMachineArn": arn}
    return arn

def _update_state_machine(data):
    return data["stateMachineArn"]

def _start_execution(data):
    exec_arn = "arn:aws:states:us-east-1:000000000000:execution:flow:" + data["name"]
    _executions[exec_arn] = {"stateMachineArn": data["stateMachineArn"], "status": "RUNNING", "fail": data.get("fail")}
    ctx = contextvars.copy_context()  # as MiniStack: the execution's thread copies the request's context
    t = threading.Thread(target=ctx.run, args=(_run_execution, exec_arn))
    t.start()
    t.join()
    return exec_arn

def _start_sync_execution(data):
    return _run_execution(data)

def _run_execution(exec_arn):
    execution = _executions[exec_arn]
    _execute_task({"Resource": "arn:aws:states:::lambda:invoke"}, {"FunctionName": "worker"}, execution, {"State": {"Name": "Check"}})
    try:
        _execute_task({"Resource": "arn:aws:states:::dynamodb:putItem"}, {"TableName": "items"}, execution, {"State": {"Name": "Store"}})
        execution["status"] = "SUCCEEDED"
    except RuntimeError:
        execution["status"] = "FAILED"

def _run_sub_machine(states, start_at, input_data, execution, ctx):
    return _execute_task(states, input_data, execution, ctx)

def _execute_task(state_def, raw_input, execution, ctx):
    return _invoke_resource(state_def["Resource"], {**raw_input, "fail": execution.get("fail")})

def _invoke_resource(resource, input_data):
    if "lambda" in resource:
        seen_lambda_headers.append(inbound.get())
    elif input_data.get("fail"):
        raise RuntimeError("ConditionalCheckFailedException")
    return {}
"""

APP = """
def _lazy_handler(module_name):
    async def _handler(method, path, headers, body, query_params):
        return await sfn.handle_request(method, path, headers, body, query_params)
    return _handler
"""

CFN = """
def _sfn_state_machine_create(logical_id, props, stack_name):
    arn = "arn:aws:states:us-east-1:000000000000:stateMachine:" + logical_id
    sfn._state_machines[arn] = {"name": logical_id, "stateMachineArn": arn}
    return arn, {}

def _sfn_state_machine_update(physical_id, old_props, new_props, stack_name, logical_id=None):
    return physical_id, {}

_RESOURCE_HANDLERS = {
    "AWS::StepFunctions::StateMachine": {
        "create": _sfn_state_machine_create, "update": _sfn_state_machine_update, "delete": None,
    },
}
"""


def module(name: str, source: str, **names: object) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(names)
    exec(textwrap.dedent(source), mod.__dict__)  # noqa: S102 - test fixtures defined as source
    return mod


Fakes = dict[str, types.ModuleType]


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Fakes]:
    def install(**overrides: str) -> Fakes:
        sfn = module(sfn_traces.SFN, overrides.get("sfn", SFN), inbound=trace_header.INBOUND_TRACE_HEADER)
        app = module(sfn_traces.APP, overrides.get("app", APP), sfn=sfn)
        cfn = module(sfn_traces.CFN, overrides.get("cfn", CFN), sfn=sfn)
        mods = {m.__name__: m for m in (sfn, app, cfn)}
        for name, mod in mods.items():
            monkeypatch.setitem(sys.modules, name, mod)
        return mods

    return install


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> Iterator[Collector]:
    with Collector() as c:
        monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", c.address)
        yield c


def request(sfn: types.ModuleType, target: str, body: dict[str, Any], header: str | None = None) -> Any:
    headers = {"x-amz-target": target, **({"x-amzn-trace-id": header} if header else {})}
    return asyncio.run(sfn.handle_request("POST", "/", headers, body, {}))


def test_an_execution_joins_the_callers_trace(fakes: Callable[..., Fakes], daemon: Collector) -> None:
    sfn = fakes()[sfn_traces.SFN]
    sfn_traces.apply()
    request(sfn, "StartExecution", {"stateMachineArn": MACHINE, "name": "e1"}, HEADER)
    daemon.flush()

    started, done = daemon.documents(ROOT)
    assert started["in_progress"] is True and "end_time" in done and "in_progress" not in done
    assert done["id"] == started["id"] and done["parent_id"] == "c000000000000002"
    assert done["origin"] == "AWS::StepFunctions::StateMachine" and done["name"] == "flow"
    assert done["aws"]["state_machine_arn"] == MACHINE and "fault" not in done
    check, store = done["subsegments"]
    assert (check["name"], store["name"]) == ("Check", "Store")
    [invoke] = check["subsegments"]
    [put] = store["subsegments"]
    assert (invoke["name"], invoke["namespace"], invoke["aws"]) == (
        "Lambda",
        "aws",
        {"operation": "Invoke", "function_name": "worker"},
    )
    assert (put["name"], put["aws"]) == ("DynamoDB", {"operation": "PutItem", "table_name": "items"})
    # The Lambda task runs in the same trace, under its call.
    assert sfn.seen_lambda_headers == [f"Root={ROOT};Parent={invoke['id']};Sampled=1"]


def test_an_execution_an_event_rule_starts_joins_the_put_events_trace(
    fakes: Callable[..., Fakes], daemon: Collector
) -> None:
    from harness.emulator.trace_header import INBOUND_TRACE_HEADER

    sfn = fakes()[sfn_traces.SFN]
    sfn_traces.apply()
    token = INBOUND_TRACE_HEADER.set(HEADER)  # as for the PutEvents request whose rule starts it
    try:
        sfn._start_execution({"stateMachineArn": MACHINE, "name": "from-a-rule"})
    finally:
        INBOUND_TRACE_HEADER.reset(token)
    daemon.flush()
    done = daemon.documents(ROOT)[-1]
    assert done["parent_id"] == "c000000000000002" and done["origin"] == "AWS::StepFunctions::StateMachine"


def test_a_failed_task_and_execution_are_faults(fakes: Callable[..., Fakes], daemon: Collector) -> None:
    sfn = fakes()[sfn_traces.SFN]
    sfn_traces.apply()
    request(sfn, "StartExecution", {"stateMachineArn": MACHINE, "name": "e2", "fail": True}, HEADER)
    daemon.flush()
    done = daemon.documents(ROOT)[-1]
    [put] = done["subsegments"][1]["subsegments"]
    assert done["fault"] is True and put["fault"] is True
    assert "ConditionalCheckFailedException" in put["cause"]["exceptions"][0]["message"]


def test_no_trace_without_a_header_unless_the_machine_traces(fakes: Callable[..., Fakes], daemon: Collector) -> None:
    sfn = fakes()[sfn_traces.SFN]
    sfn_traces.apply()
    request(sfn, "StartExecution", {"stateMachineArn": MACHINE, "name": "e3"})
    request(sfn, "StartExecution", {"stateMachineArn": MACHINE, "name": "e4"}, HEADER.replace("Sampled=1", "Sampled=0"))
    daemon.flush()
    assert daemon.trace_ids() == [] and sfn.seen_lambda_headers == [None, None]

    arn = request(sfn, "CreateStateMachine", {"name": "traced", "tracingConfiguration": {"enabled": True}})
    request(sfn, "StartExecution", {"stateMachineArn": arn, "name": "e5"})
    daemon.flush()
    [root] = daemon.trace_ids()
    assert root != ROOT and "parent_id" not in daemon.documents(root)[-1]  # a trace of its own
    request(sfn, "UpdateStateMachine", {"stateMachineArn": arn, "tracingConfiguration": {"enabled": False}})
    assert sfn._state_machines[arn]["tracingConfiguration"] == {"enabled": False}


def test_cloudformation_machines_keep_their_tracing_configuration(fakes: Callable[..., Fakes]) -> None:
    mods = fakes()
    sfn_traces.apply()
    handlers = mods[sfn_traces.CFN]._RESOURCE_HANDLERS[sfn_traces.STATE_MACHINE]
    arn, _ = handlers["create"]("Flow", {"TracingConfiguration": {"Enabled": True}}, "stack")
    assert mods[sfn_traces.SFN]._state_machines[arn]["tracingConfiguration"] == {"enabled": True}
    handlers["update"](arn, {}, {}, "stack", "Flow")
    assert mods[sfn_traces.SFN]._state_machines[arn]["tracingConfiguration"] == {"enabled": False}


def test_applying_twice_wraps_once(fakes: Callable[..., Fakes]) -> None:
    sfn = fakes()[sfn_traces.SFN]
    sfn_traces.apply()
    first = sfn._run_execution
    sfn_traces.apply()
    assert sfn._run_execution is first


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"sfn": SFN.replace("def _invoke_resource(resource, input_data)", "def _invoke_resource(resource, data)")},
            "_invoke_resource takes (resource, data)",
        ),
        ({"app": APP.replace("sfn.handle_request(", "sfn.handle(")}, "_lazy_handler no longer calls handle_request"),
        (
            {"sfn": SFN.replace("return _run_execution(data)", "return None")},
            "_start_sync_execution no longer calls _run_execution",
        ),
        (
            {"cfn": CFN.replace('"update": _sfn_state_machine_update, ', "")},
            "update handler of AWS::StepFunctions::StateMachine is no longer",
        ),
    ],
)
def test_a_changed_emulator_fails_loudly(fakes: Callable[..., Fakes], override: dict[str, str], message: str) -> None:
    fakes(**override)
    with pytest.raises(adapt.AdaptationError, match=re.escape(message)):
        sfn_traces.apply()


@pytest.mark.parametrize(
    ("resource", "params", "expected"),
    [
        ("arn:aws:states:::lambda:invoke", {"FunctionName": "f"}, ("Lambda", "Invoke", {"function_name": "f"})),
        ("arn:aws:lambda:us-east-1:1:function:f", {}, ("Lambda", "Invoke", {"function_name": "f"})),
        (
            "arn:aws:states:::sqs:sendMessage",
            {"QueueUrl": "http://q"},
            ("SQS", "SendMessage", {"queue_url": "http://q"}),
        ),
        ("arn:aws:states:::sns:publish", {"TopicArn": "arn:t"}, ("SNS", "Publish", {"topic_arn": "arn:t"})),
        ("arn:aws:states:::aws-sdk:dynamodb:getItem", {"TableName": "t"}, ("DynamoDB", "GetItem", {"table_name": "t"})),
        ("arn:aws:states:::events:putEvents.waitForTaskToken", {}, ("EventBridge", "PutEvents", {})),
    ],
)
def test_task_calls_are_named_as_the_sdks_name_them(resource: str, params: dict[str, Any], expected: Any) -> None:
    assert sfn_traces.task_call(resource, params) == expected
