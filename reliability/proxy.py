"""A fault-injecting HTTP proxy for the emulator (threaded, 127.0.0.1 only).

Every request is forwarded to the emulator unless the proxy decides to fail
it, with one of:

* ``throttle``: 400 with the protocol's throttling error (``ThrottlingException``
  JSON for JSON protocols, ``Throttling`` XML for the query protocol, ``SlowDown``
  for S3);
* ``503``: Service Unavailable, with the protocol's error body;
* ``503-html``: a 503 with an HTML body (what a proxy or load balancer sends);
* ``html-200``: a 200 whose body is an HTML page, not the protocol's XML or JSON
  (what a captive portal or a misrouted endpoint sends; botocore cannot parse it);
* ``denied``: the protocol's AccessDenied error (403), as for a missing IAM permission;
* ``reset``: the connection is reset before the request reaches the emulator;
* ``lost``: the request reaches the emulator, then the connection is reset
  before the response is sent (the client cannot know it was processed).

The proxy records every request: who sent it (``aws-cli``, ``boto3``, health
checks), the operation, the SDK attempt number (botocore's ``amz-sdk-request:
attempt=N`` header) and invocation id, the fault injected, and, for
CloudFormation calls that change stacks, their idempotency token.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import struct
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

MUTATING_CFN = {"CreateStack", "UpdateStack", "DeleteStack", "ExecuteChangeSet", "CreateChangeSet"}
TOKEN_PARAMS = ("ClientRequestToken", "ClientToken")
_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
}


@dataclass
class Req:
    method: str
    path: str
    ua: str  # aws-cli | boto3 | health | other
    op: str
    protocol: str  # json | query | rest-json | rest-xml | plain
    attempt: int
    invocation: str
    token: str | None
    fault: str | None = None


@dataclass
class Policy:
    """Which requests get which fault."""

    rate: float = 0.1
    kinds: tuple[str, ...] = ("throttle", "503", "reset")
    #: requests that may be faulted (default: every SDK request; health checks never)
    eligible: Callable[[Req], bool] = lambda r: r.ua in ("aws-cli", "boto3")
    #: a fault forced on a request regardless of ``rate`` (None: use the rate)
    forced: Callable[[Req], str | None] = lambda r: None


@dataclass
class Stats:
    records: list[Req] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, r: Req) -> None:
        with self.lock:
            self.records.append(r)


def _ua(headers: dict[str, str]) -> str:
    ua = headers.get("user-agent", "")
    if ua.startswith("aws-cli/") or " aws-cli/" in ua:
        return "aws-cli"
    if "Boto3/" in ua or "Botocore/" in ua or "botocore/" in ua:
        return "boto3"
    if "Python-urllib" in ua:
        return "health"
    return "other"


def classify(method: str, path: str, headers: dict[str, str], body: bytes) -> Req:
    target = headers.get("x-amz-target")
    token = None
    if target:
        op, protocol = target.rsplit(".", 1)[-1], "json"
    elif headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = parse_qs(body.decode("utf-8", "replace"))
        op, protocol = (form.get("Action") or ["?"])[0], "query"
        for name in TOKEN_PARAMS:
            if form.get(name):
                token = form[name][0]
    elif path.startswith("/20") or path.startswith("/_"):
        op, protocol = f"{method} {'/'.join(path.split('/')[:3])}", "rest-json"
    else:
        op, protocol = f"{method} s3", "rest-xml"
    attempt, invocation = 1, ""
    meta = headers.get("amz-sdk-request", "")
    for part in meta.split(";"):
        k, _, v = part.strip().partition("=")
        if k == "attempt" and v.isdigit():
            attempt = int(v)
    invocation = headers.get("amz-sdk-invocation-id", "")
    return Req(method, path, _ua(headers), op, protocol, attempt, invocation, token)


def error_response(req: Req, kind: str) -> tuple[int, dict[str, str], bytes]:
    """The error a real AWS endpoint sends for ``kind`` (``throttle``, ``503``), in the request's protocol;
    ``503-html`` is a 503 with an HTML body, as a proxy or load balancer in front of it would send."""
    rid = str(uuid.uuid4())
    if kind == "html-200":
        return 200, {"Content-Type": "text/html"}, b"<html><body><h1>Welcome</h1><p>Sign in</p></body></html>"
    if kind == "denied":
        return _denied(req, rid)
    if kind == "503-html":
        return 503, {"Content-Type": "text/html"}, b"<html><body><h1>503 Service Unavailable</h1></body></html>"
    status, code, message = (
        (400, "ThrottlingException", "Rate exceeded (injected)")
        if kind == "throttle"
        else (503, "ServiceUnavailable", "Service unavailable (injected)")
    )
    if req.protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        return status, {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": rid}, body
    if req.protocol == "query":
        qcode = "Throttling" if kind == "throttle" else code
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{qcode}</Code>"
            f"<Message>{message}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>"
        ).encode()
        return status, {"Content-Type": "text/xml", "x-amzn-RequestId": rid}, body
    if req.protocol == "rest-json":
        body = json.dumps({"message": message}).encode()
        return (
            status,
            {"Content-Type": "application/json", "x-amzn-ErrorType": code, "x-amzn-RequestId": rid},
            body,
        )
    scode = "SlowDown" if kind == "throttle" else code
    body = f"<Error><Code>{scode}</Code><Message>{message}</Message></Error>".encode()
    return 503, {"Content-Type": "application/xml", "x-amz-request-id": rid}, body


def _denied(req: Req, rid: str) -> tuple[int, dict[str, str], bytes]:
    message = "User is not authorized to perform this action (injected)"
    if req.protocol == "json":
        body = json.dumps({"__type": "AccessDeniedException", "message": message}).encode()
        return 400, {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": rid}, body
    if req.protocol == "query":
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{message}</Message>"
            f"</Error><RequestId>{rid}</RequestId></ErrorResponse>"
        ).encode()
        return 403, {"Content-Type": "text/xml", "x-amzn-RequestId": rid}, body
    body = json.dumps({"message": message}).encode()
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": "AccessDeniedException", "x-amzn-RequestId": rid}
    return 403, headers, body


class FaultProxy:
    """``with FaultProxy(upstream_port, policy, rng) as proxy: ... proxy.url``."""

    def __init__(self, upstream_port: int, policy: Policy, rng: random.Random) -> None:
        self.upstream_port = upstream_port
        self.policy = policy
        self.rng = rng
        self.rng_lock = threading.Lock()
        self.stats = Stats()
        self._local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
                return

            def _any(self) -> None:
                proxy._handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _any  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    # -- one request -----------------------------------------------------
    def _decide(self, req: Req) -> str | None:
        forced = self.policy.forced(req)
        if forced:
            return forced
        if not self.policy.eligible(req):
            return None
        with self.rng_lock:
            if self.rng.random() < self.policy.rate:
                return self.rng.choice(self.policy.kinds)
        return None

    def _read_body(self, h: BaseHTTPRequestHandler) -> bytes:
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(h.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    h.rfile.readline()
                    break
                chunks.append(h.rfile.read(size))
                h.rfile.readline()
            return b"".join(chunks)
        n = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(n) if n else b""

    def _reset(self, h: BaseHTTPRequestHandler) -> None:
        h.close_connection = True
        with contextlib.suppress(OSError):
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.connection.close()

    def _upstream(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        for attempt in range(2):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=120)
                self._local.conn = conn
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                return resp.status, resp.reason, resp.getheaders(), data
            except (OSError, http.client.HTTPException):
                with contextlib.suppress(Exception):
                    conn.close()
                self._local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        body = self._read_body(h)
        headers = {k.lower(): v for k, v in h.headers.items()}
        req = classify(h.command, h.path, headers, body)
        fault = self._decide(req)
        req.fault = fault
        self.stats.add(req)
        if fault == "reset":
            self._reset(h)
            return
        if fault in ("throttle", "503", "503-html", "html-200", "denied"):
            status, extra, payload = error_response(req, fault)
            h.send_response(status)
            for k, v in extra.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(payload)
            return
        fwd = {k: v for k, v in h.headers.items() if k.lower() not in _HOP}
        fwd["Content-Length"] = str(len(body))
        try:
            status, reason, rheaders, data = self._upstream(h.command, h.path, fwd, body)
        except Exception:  # noqa: BLE001 - the emulator is unreachable: the client sees a reset
            self._reset(h)
            return
        if fault == "lost":
            self._reset(h)
            return
        h.send_response(status, reason)
        for k, v in rheaders:
            if k.lower() not in _HOP:
                h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)

    # -- figures ---------------------------------------------------------
    def summary(self) -> dict[str, object]:
        recs = list(self.stats.records)
        faults: dict[str, int] = {}
        for r in recs:
            if r.fault:
                faults[r.fault] = faults.get(r.fault, 0) + 1
        retries = sum(1 for r in recs if r.attempt > 1)
        by_ua: dict[str, list[int]] = {}
        for r in recs:
            t = by_ua.setdefault(r.ua, [0, 0, 0])
            t[0] += 1
            t[1] += bool(r.fault)
            t[2] += r.attempt > 1
        # invocations whose last attempt was faulted: the caller saw the error
        last: dict[str, Req] = {}
        for r in recs:
            if r.invocation:
                prev = last.get(r.invocation)
                if prev is None or r.attempt >= prev.attempt:
                    last[r.invocation] = r
        exhausted = [r for r in last.values() if r.fault]
        return {
            "requests": len(recs),
            "faults": faults,
            "retries": retries,
            "by_ua": by_ua,
            "exhausted": exhausted,
        }

    def mutating_cfn(self) -> list[Req]:
        return [r for r in self.stats.records if r.protocol == "query" and r.op in MUTATING_CFN]
