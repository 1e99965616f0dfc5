"""The trace-header adaptation's mechanics, on fake MiniStack modules (no emulator).

The end-to-end proof that it applies to the pinned MiniStack is
``tests/e2e/test_traces_emulator.py``.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import textwrap
import types
from collections.abc import Callable

import pytest

from harness.emulator import adapt, trace_header

HEADER = "Root=1-6b043315-23214c168721134c5ded6f95;Parent=c000000000000002;Sampled=1"

LAMBDA_SVC = """
import asyncio, contextvars, threading

def _xray_trace_id_for_invocation(config, inbound_trace_header=None):
    return inbound_trace_header or "generated"

def _run_in_thread(fn):
    # as ministack's run_reentrant: the executor thread copies the request's context
    out = []
    ctx = contextvars.copy_context()
    t = threading.Thread(target=lambda: out.append(ctx.run(fn)))
    t.start(); t.join()
    return out[0]

def _execute_function_warm(config=None):
    return _xray_trace_id_for_invocation(config or {})

def _execute_function_local(config=None):
    return _xray_trace_id_for_invocation(config or {})

def _execute_function_provided(config=None):
    return _xray_trace_id_for_invocation(config or {})

def _execute_function_provided_warm(config=None):
    return _xray_trace_id_for_invocation(config or {})

def _execute_function_proxy(config=None):
    return _xray_trace_id_for_invocation(config or {}, "explicit")

async def _invoke(name, event, headers, path_qualifier=None, query_params=None):
    return _run_in_thread(_execute_function_warm)

async def handle_request(method, path, headers, body, query_params):
    return await _invoke("f", {}, headers)
"""

APIGW_V1 = """
async def handle_execute(api_id, stage_name, method, path, headers, body, query_params):
    return lambda_svc._run_in_thread(lambda_svc._execute_function_warm)
"""

APIGW_V2 = """
async def handle_execute(api_id, stage, path, method, headers, body, query_params, raw_query_string=None):
    return lambda_svc._execute_function_local()
"""

APP = """
async def _handle_execute_api_request(api_id, headers):
    return await apigw_v1.handle_execute(api_id, "Prod", "GET", "/", headers, b"", {})
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
        lam = module("ministack.services.lambda_svc", overrides.get("lambda_svc", LAMBDA_SVC))
        v1 = module("ministack.services.apigateway_v1", overrides.get("apigateway_v1", APIGW_V1), lambda_svc=lam)
        v2 = module("ministack.services.apigateway", overrides.get("apigateway", APIGW_V2), lambda_svc=lam)
        app = module("ministack.app", overrides.get("app", APP), apigw_v1=v1)
        mods = {m.__name__: m for m in (lam, v1, v2, app)}
        for name, mod in mods.items():
            monkeypatch.setitem(sys.modules, name, mod)
        return mods

    return install


def test_invocations_use_the_inbound_header(fakes: Callable[..., Fakes]) -> None:
    mods = fakes()
    lam, v1, v2 = (mods[f"ministack.services.{n}"] for n in ("lambda_svc", "apigateway_v1", "apigateway"))
    assert asyncio.run(lam.handle_request("POST", "/", {"x-amzn-trace-id": HEADER}, b"", {})) == "generated"

    adapt.honour_inbound_trace_header()

    # Invoke: through the request entry, on the executor's thread
    assert asyncio.run(lam.handle_request("POST", "/", {"x-amzn-trace-id": HEADER}, b"", {})) == HEADER
    assert asyncio.run(lam._invoke("f", {}, headers={"X-Amzn-Trace-Id": HEADER})) == HEADER
    # no header, or one without a trace root: MiniStack's own behaviour
    assert asyncio.run(lam.handle_request("POST", "/", {}, b"", {})) == "generated"
    assert asyncio.run(lam.handle_request("POST", "/", {"x-amzn-trace-id": "Self=1-abc"}, b"", {})) == "generated"
    # an explicit header (MiniStack's chained hops) still wins
    assert lam._execute_function_proxy() == "explicit"
    # REST API (v1) integrations continue the trace; HTTP APIs (v2) do not, as on AWS
    app = mods["ministack.app"]
    assert asyncio.run(app._handle_execute_api_request("abc", {"x-amzn-trace-id": HEADER})) == HEADER
    assert asyncio.run(v2.handle_execute("abc", "$default", "/", "GET", {"x-amzn-trace-id": HEADER}, b"", {})) == (
        "generated"
    )
    assert asyncio.run(v1.handle_execute("abc", "Prod", "GET", "/", {}, b"", {})) == "generated"
    # the header does not outlive its request
    assert lam._execute_function_warm() == "generated"
    assert contextvars.copy_context().get(trace_header.INBOUND_TRACE_HEADER) is None


def test_applying_twice_wraps_once(fakes: Callable[..., Fakes]) -> None:
    mods = fakes()
    adapt.honour_inbound_trace_header()
    lam = mods["ministack.services.lambda_svc"]
    first = lam._invoke
    adapt.honour_inbound_trace_header()
    assert lam._invoke is first
    assert asyncio.run(lam.handle_request("POST", "/", {"x-amzn-trace-id": HEADER}, b"", {})) == HEADER


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"lambda_svc": LAMBDA_SVC.replace("def _xray_trace_id_for_invocation", "def _renamed")}, "is missing"),
        (
            {"lambda_svc": LAMBDA_SVC.replace("(config, inbound_trace_header=None):", "(config, header=None):")},
            r"takes \(config, header\), expected \(config, inbound_trace_header\)",
        ),
        ({"lambda_svc": LAMBDA_SVC.replace("async def _invoke", "def _invoke")}, "no longer a coroutine function"),
        (
            {"apigateway_v1": APIGW_V1.replace("stage_name, method", "stage_name, verb")},
            r"apigateway_v1.handle_execute takes",
        ),
        (
            {"lambda_svc": LAMBDA_SVC.replace("return await _invoke(", "return await other(")},
            "handle_request no longer calls _invoke by name",
        ),
        (
            {"app": "async def _handle_execute_api_request(api_id, headers):\n    return None\n"},
            "_handle_execute_api_request no longer calls handle_execute",
        ),
    ],
)
def test_a_changed_emulator_fails_loudly(fakes: Callable[..., Fakes], override: dict[str, str], message: str) -> None:
    mods = fakes(**override)
    with pytest.raises(adapt.AdaptationError, match=message):
        adapt.honour_inbound_trace_header()
    # nothing was patched half-way
    assert not getattr(mods["ministack.services.lambda_svc"].__dict__.get("_invoke"), "__harness_adapted__", False)


def test_it_is_registered() -> None:
    assert ("lambda-honours-inbound-trace-header", adapt.honour_inbound_trace_header) in adapt.ADAPTATIONS
