"""The SNS/S3/EventBridge trace-header adaptation's mechanics, on fake MiniStack modules (no emulator).

The end-to-end proof on the pinned MiniStack is ``tests/e2e/test_trace_propagation_e2e.py``.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
import types
from collections.abc import Callable

import pytest

from harness.emulator import adapt, notify_traces, trace_header

HEADER = "Root=1-6b043315-23214c168721134c5ded6f95;Parent=c000000000000002;Sampled=1"

SNS = """
import contextvars, threading

async def handle_request(method, path, headers, body, query_params):
    seen = []
    ctx = contextvars.copy_context()  # as MiniStack: the delivery thread copies the request's context
    t = threading.Thread(target=ctx.run, args=(lambda: seen.append(inbound.get()),))
    t.start()
    t.join()
    return seen[0]
"""

S3 = """
async def handle_request(method, path, headers, body, query_params, signed_path=None, enforce_bucket_region=True,
                         internal=False, access_point_region=None, access_point=None):
    return inbound.get()
"""

LAMBDA = """
def _execution_record_for_config(func, config):
    record = dict(func or {})
    record["config"] = config
    return record

seen = []

def _execute_function_with_config_scope(func, event):
    seen.append(inbound.get())
"""

EVENTBRIDGE = """
import threading

async def handle_request(method, path, headers, body, query_params):
    return _dispatch_to_lambda("arn", "{}")

def _dispatch_to_lambda(arn, payload):
    # as MiniStack: a bare thread (no context copy) runs the execution record
    record = lambda_svc._execution_record_for_config({"name": "f"}, {})
    t = threading.Thread(target=lambda_svc._execute_function_with_config_scope, args=(record, {}))
    t.start()
    t.join()
    return lambda_svc.seen[-1]
"""

APP = """
def _lazy_handler(module_name):
    async def _handler(method, path, headers, body, query_params):
        return await mod.handle_request(method, path, headers, body, query_params)
    return _handler

async def _handle_s3_vhost_request(host, path, method, headers, body, query_params):
    return await s3.handle_request(method, path, headers, body, query_params)
"""


def module(name: str, source: str, **names: object) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(names)
    exec(textwrap.dedent(source), mod.__dict__)  # noqa: S102 - test fixtures defined as source
    return mod


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, types.ModuleType]]:
    def install(app: str = APP) -> dict[str, types.ModuleType]:
        sns = module("ministack.services.sns", SNS, inbound=trace_header.INBOUND_TRACE_HEADER)
        s3 = module("ministack.services.s3", S3, inbound=trace_header.INBOUND_TRACE_HEADER)
        lam = module("ministack.services.lambda_svc", LAMBDA, inbound=trace_header.INBOUND_TRACE_HEADER)
        events = module("ministack.services.eventbridge", EVENTBRIDGE, lambda_svc=lam)
        mods = {m.__name__: m for m in (sns, s3, lam, events, module("ministack.app", app, s3=s3))}
        for name, mod in mods.items():
            monkeypatch.setitem(sys.modules, name, mod)
        return mods

    return install


def test_deliveries_see_the_publishers_header(fakes: Callable[..., dict[str, types.ModuleType]]) -> None:
    mods = fakes()
    sns, s3 = mods["ministack.services.sns"], mods["ministack.services.s3"]
    assert asyncio.run(sns.handle_request("POST", "/", {"x-amzn-trace-id": HEADER}, b"", {})) is None
    notify_traces.apply()
    notify_traces.apply()  # once only
    assert asyncio.run(sns.handle_request("POST", "/", {"x-amzn-trace-id": HEADER}, b"", {})) == HEADER
    assert asyncio.run(s3.handle_request("PUT", "/b/k", {"x-amzn-trace-id": HEADER}, b"", {}, internal=True)) == HEADER
    assert asyncio.run(sns.handle_request("POST", "/", {}, b"", {})) is None
    # EventBridge: the target runs on a thread that does not copy the request's context
    events, lam = mods["ministack.services.eventbridge"], mods["ministack.services.lambda_svc"]
    assert asyncio.run(events.handle_request("POST", "/", {"x-amzn-trace-id": HEADER}, b"", {})) == HEADER
    assert asyncio.run(events.handle_request("POST", "/", {}, b"", {})) is None
    assert "_harness_trace_header" not in lam._execution_record_for_config({"name": "f"}, {})


def test_a_caller_holding_its_own_copy_fails_loudly(fakes: Callable[..., dict[str, types.ModuleType]]) -> None:
    fakes(app=APP.replace("s3.handle_request(", "s3.handle("))
    with pytest.raises(adapt.AdaptationError, match="_handle_s3_vhost_request no longer calls handle_request"):
        notify_traces.apply()
