"""Case 9: network exposure: every listening socket of the session's process tree is on loopback.

Real sessions on the local target (one plain, one with ``-n 2``): while they
run, every 0.25 s, the matrix lists the TCP listeners and bound UDP sockets
(``harness.procs.listening_sockets``, psutil ``net_connections`` per pid) of
the pytest process, all its descendants (xdist workers, the deploy command,
MiniStack, its Lambda runtimes) and of every process whose environment has
the emulator's ``GATEWAY_PORT``. Any address other than 127.0.0.1 / ::1 counts.
"""

from __future__ import annotations

import threading

import psutil

from harness.procs import listening_sockets
from reliability.support import TARGET_RE, CaseResult, Ctx, make_project

NUMBER = 9
FAULT = "network exposure: listening sockets of the harness and emulator process trees"
RUNS = 2
QUICK_RUNS = 1
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}

NET_TEST = """
import json
import time


def test_invoke_and_hold(stack):
    resp = stack.client("lambda").invoke(FunctionName=stack.outputs["FunctionName"], Payload=b'{"n": 1}')
    assert json.loads(resp["Payload"].read()) == {"echo": {"n": 1}}
    stack.client("dynamodb").put_item(TableName=stack.outputs["TableName"], Item={"pk": {"S": "n"}})
    time.sleep(2)


def test_second(stack):
    time.sleep(1)
"""


def _tree(pid: int, port: list[int]) -> list[int]:
    pids = []
    try:
        p = psutil.Process(pid)
        pids = [pid, *(c.pid for c in p.children(recursive=True))]
    except psutil.Error:
        return pids
    if port:
        for q in psutil.process_iter(["pid"]):
            try:
                if q.pid not in pids and q.environ().get("GATEWAY_PORT") == str(port[0]):
                    pids.append(q.pid)
            except psutil.Error:
                continue
    return pids


def _name(pid: int) -> str:
    try:
        cmd = " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return "?"
    for key, label in (
        ("harness.emulator.launch", "MiniStack"),
        ("xdist", "xdist worker"),
        ("pytest", "pytest"),
        ("aws", "deploy (aws)"),
    ):
        if key in cmd:
            return label
    return cmd[:40] or "?"


def run(ctx: Ctx, runs: int) -> CaseResult:
    variants = [[], ["-n", "2"]][: max(1, runs)]
    while len(variants) < runs:
        variants.append(variants[len(variants) % 2])
    seen: dict[tuple[str, str, int], str] = {}
    exposed: list[str] = []
    samples = 0
    pids_seen: set[int] = set()
    codes = []
    for args in variants:
        files = {"tests/integration/test_net.py": NET_TEST}
        project = make_project(ctx.dir("c9"), files=files)
        s = ctx.session(project, "tests/integration", "-v", *args)
        port: list[int] = []
        stop = threading.Event()

        def sample(s=s, port=port, stop=stop) -> None:  # type: ignore[no-untyped-def]
            nonlocal samples
            while not stop.wait(0.25):
                if not port and TARGET_RE.search(s.output):
                    port.append(s.emulators()[0][1])
                    ctx.registry.emulators.append(s.emulators()[0])
                pids = _tree(s.pid, port)
                pids_seen.update(pids)
                samples += 1
                for pid, ip, lport in listening_sockets(pids):
                    key = (_name(pid), ip, lport)
                    if key not in seen:
                        seen[key] = ip
                        if ip not in LOOPBACK:
                            exposed.append(f"{key[0]} pid {pid} on {ip}:{lport}")

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        s.finish()
        stop.set()
        t.join(5)
        codes.append(s.returncode)
        ctx.log(f"  c9 session {' '.join(args) or '(no -n)'}: exit {s.returncode}, {len(seen)} listeners so far")
    kinds: dict[str, int] = {}
    for name, _ip, _port in seen:
        kinds[name] = kinds.get(name, 0) + 1
    addresses = sorted({ip for ip in seen.values()})
    notes = [
        f"{samples} samples over {runs} sessions ({', '.join(' '.join(v) or 'no xdist' for v in variants)}), "
        f"{len(pids_seen)} distinct processes",
        f"listeners found (process kind: count): {', '.join(f'{k}: {v}' for k, v in sorted(kinds.items()))}; "
        f"addresses: {', '.join(addresses) or 'none'}",
        f"exit codes: {codes}",
    ]
    if exposed:
        notes.append(f"NOT on loopback: {exposed}")
    ok = not exposed and all(c == 0 for c in codes) and bool(seen)
    return CaseResult(
        NUMBER,
        FAULT,
        runs,
        f"listening sockets not on loopback: {len(exposed)} (of {len(seen)} seen)",
        f"{samples} samples of {len(pids_seen)} processes",
        ok,
        notes,
        data={"exposed": exposed, "seen": len(seen)},
    )
