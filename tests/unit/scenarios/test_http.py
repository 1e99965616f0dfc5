"""The http step against a tiny local server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from harness.errors import ExpectationFailed, ScenarioError
from harness.scenarios.loader import load_text
from harness.scenarios.report import StepResult
from harness.scenarios.runner import run_scenario
from harness.scenarios.runtime import StepRuntime
from harness.scenarios.steps import StepError

PUBLIC = "https://abc123.execute-api.us-east-1.amazonaws.com/dev"


class Handler(BaseHTTPRequestHandler):
    """POST /orders creates; GET /orders/<id> reads; anything else echoes the request."""

    orders: dict[str, Any] = {}

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("X-Request-Id", "req-1")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/dev/orders":
            order = json.loads(self._body())
            order_id = f"{len(self.orders) + 1:032x}"
            self.orders[order_id] = {
                **order,
                "order_id": order_id,
                "status": "CREATED",
                "total_qty": sum(i["qty"] for i in order["items"]),
            }
            self._send(201, self.orders[order_id])
            return
        self._echo()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path.startswith("/dev/orders/"):
            order = self.orders.get(url.path.rsplit("/", 1)[1])
            self._send(200, order) if order else self._send(404, {"message": "not found"})
            return
        if url.path == "/dev/text":
            self._send(200, b"<html>hello</html>", "text/html")
            return
        self._echo()

    def _echo(self) -> None:
        url = urlsplit(self.path)
        self._send(
            200,
            {
                "method": self.command,
                "path": url.path,
                "query": parse_qs(url.query),
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": self._body().decode(),
            },
        )

    do_PUT = do_PATCH = do_DELETE = _echo


@pytest.fixture
def server() -> Iterator[str]:
    Handler.orders = {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # shutdown() waits for the next poll: 0.5 s by default
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def runtime(server: str, make_runtime: Any) -> StepRuntime:
    runtime = make_runtime(outputs={"ApiUrl": PUBLIC + "/"}, env={"TOKEN": "s3cret"})
    seen: list[str] = []

    def resolve(url: str) -> str:
        seen.append(url)
        return url.replace(PUBLIC, server + "/dev")

    runtime.resolve_url = resolve
    runtime.resolved = seen  # type: ignore[attr-defined]
    return runtime


def run(text: str, runtime: StepRuntime) -> list[StepResult]:
    [scenario] = load_text(text, "orders.yaml").scenarios
    return run_scenario(scenario, runtime)


ORDER_FLOW = """
vars: {sku: ABC-1}
scenarios:
  - name: create then read an order
    steps:
      - name: create
        http: {api: ApiUrl, method: POST, path: /orders, json: {customer_id: "{{ unique }}", items: [{sku: "{{ vars.sku }}", qty: 2}]}}
        expect: {status: 201, body: {status: CREATED, order_id: !re "^[0-9a-f]{32}$", total_qty: !ge 1}}
        save: {order_id: body.order_id, qty: "body.items[0].qty"}
      - name: read it back
        http: {api: ApiUrl, method: GET, path: "/orders/{{ saved.order_id }}"}
        expect: {status: 200, headers: {content-type: !re json}, body: {customer_id: "{{ unique }}", total_qty: "{{ saved.qty }}"}}
"""


def test_order_flow(runtime: StepRuntime) -> None:
    results = run(ORDER_FLOW, runtime)
    assert [(r.name, r.status) for r in results] == [("create", "passed"), ("read it back", "passed")]
    # The public URL from the stack output went through resolve_url.
    assert runtime.resolved == [PUBLIC + "/orders", PUBLIC + "/orders/" + "0" * 31 + "1"]  # type: ignore[attr-defined]


def test_headers_query_and_raw_body_are_sent(runtime: StepRuntime) -> None:
    run(
        """
scenarios:
  - name: echo
    steps:
      - http:
          api: ApiUrl
          method: PUT
          path: echo
          headers: {Authorization: "Bearer {{ env.TOKEN }}", X-Count: 3}
          query: {a: 1, tags: [x, y]}
          body: "raw text"
        expect:
          status: 200
          headers: {x-request-id: req-1, content-type: application/json}
          body:
            method: PUT
            path: /dev/echo
            query: {a: ["1"], tags: [x, y]}
            headers: {authorization: Bearer s3cret, x-count: "3"}
            body: raw text
""",
        runtime,
    )


def test_text_body_and_absolute_url(runtime: StepRuntime, server: str) -> None:
    run(
        f"""
scenarios:
  - name: text
    steps:
      - http: {{url: "{server}/dev/text"}}
        expect: {{body: !contains hello, headers: {{content-type: !re "^text/html"}}}}
""",
        runtime,
    )


def test_failure_message_shows_everything(runtime: StepRuntime) -> None:
    text = ORDER_FLOW.replace('path: "/orders/{{ saved.order_id }}"', 'path: "/orders/nope"')
    with pytest.raises(ExpectationFailed) as info:
        run(text, runtime)
    message = str(info.value)
    assert "scenario 'create then read an order' (orders.yaml:4)" in message
    assert "step 2/2 'read it back' (line 10): http GET /orders/nope (GET http://127.0.0.1:" in message
    assert "status: expected 200, observed 404" in message
    assert 'body.customer_id: expected "t3f9a2-gw0-1a2b3c", observed nothing' in message
    assert "expected:\n    {status: 200, headers: {content-type: !re 'json'}" in message
    assert 'observed:\n    {\n      "status": 404,' in message
    assert "faker seed: 1234   unique: t3f9a2-gw0-1a2b3c" in message


def test_long_bodies_are_truncated(runtime: StepRuntime) -> None:
    Handler.orders["big"] = {"blob": "x" * 5000, "items": list(range(100))}
    with pytest.raises(ExpectationFailed) as info:
        run(
            "scenarios:\n  - name: big\n    steps:\n      - http: {api: ApiUrl, path: /orders/big}\n"
            "        expect: {status: 500}",
            runtime,
        )
    message = str(info.value)
    assert "(+4700 chars)" in message and "(+80 more items)" in message
    assert len(message) < 6000


def test_unknown_api_output(runtime: StepRuntime) -> None:
    with pytest.raises(StepError) as info:
        run("scenarios:\n  - name: s\n    steps:\n      - http: {api: ApiUlr, path: /x}", runtime)
    assert "http.api 'ApiUlr' is not an output of stack orders-test" in info.value.message
    assert "did you mean 'ApiUrl'" in (info.value.hint or "")


def test_connection_errors_are_step_errors(runtime: StepRuntime) -> None:
    with pytest.raises(StepError) as info:
        run("scenarios:\n  - name: s\n    steps:\n      - http: {url: 'http://127.0.0.1:9/x', timeout: 2}", runtime)
    assert "http failed: ConnectionError" in info.value.message


def test_save_of_a_missing_field_fails_with_the_observation(runtime: StepRuntime) -> None:
    with pytest.raises(ExpectationFailed) as info:
        run(
            "scenarios:\n  - name: s\n    steps:\n      - http: {api: ApiUrl, path: /echo}\n"
            "        save: {id: body.order_id}",
            runtime,
        )
    message = str(info.value)
    assert "save id: body.order_id (line 5) found nothing: body.order_id: no such key; body has keys:" in message
    assert '"method": "GET"' in message


def test_runtime_template_errors_name_file_and_line(runtime: StepRuntime) -> None:
    with pytest.raises(ScenarioError) as info:
        run("scenarios:\n  - name: s\n    steps:\n      - http: {api: ApiUrl, path: '/{{ env.MISSING_VAR }}'}", runtime)
    err = info.value
    assert (err.path, err.line) == ("orders.yaml", 4)
    assert "environment variable MISSING_VAR is not set" in err.message
    with pytest.raises(ScenarioError, match="outputs.Nope does not exist"):
        run("scenarios:\n  - name: s\n    steps:\n      - http: {url: '{{ outputs.Nope }}'}", runtime)


def test_vars_are_rendered_once_per_scenario(runtime: StepRuntime) -> None:
    run(
        """
scenarios:
  - name: stable fake
    vars: {email: "{{ fake.email }}", token: "{{ env.TOKEN }}"}
    steps:
      - http: {api: ApiUrl, path: /echo, headers: {x-email: "{{ vars.email }}"}}
        save: {first: body.headers.x-email}
      - http: {api: ApiUrl, path: /echo, headers: {x-email: "{{ vars.email }}", x-token: "{{ vars.token }}"}}
        expect: {body: {headers: {x-email: "{{ saved.first }}", x-token: s3cret}}}
""",
        runtime,
    )
