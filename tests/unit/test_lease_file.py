"""The embedded emulator's leases in files (harness.lease_store.FileStore): the conditional write between processes.

The lease protocol itself runs on both stores in test_lease.py; here, what only
real processes show: writers in several processes never lose an update, runs
contending for a fresh stack get exactly one deployer, a SIGKILLed holder
neither blocks the lock nor holds the stack, and the local target keeps its
leases in its emulator's scratch folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.lease import FileStore, Lease, LeaseError, read_state

# One process of a contention test: waits for the start file, then does its part and prints the result.
WORKER = """
import os, sys, time
from pathlib import Path
from harness.lease import FileStore, Lease, LeaseError

folder, go, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
store = FileStore(folder)
while not go.exists():
    time.sleep(0.005)
if mode == "count":  # read-modify-write a counter 40 times through the conditional put
    for _ in range(40):
        while True:
            got = store.get("counter")
            n, version = (int(got[0]), got[1]) if got else (0, 0)
            if store.put("counter", str(n + 1), version + 1, version, 0):
                break
    print("done")
elif mode == "acquire":  # join a fresh stack's lease, failing fast; live until told to end (a dead run drops out)
    lease = Lease(store, "app-dev", f"run-{os.getpid()}", fingerprint="f")
    try:
        print("deploy" if lease.acquire(wait=0).deploy else "share", flush=True)
    except LeaseError as exc:
        print("refused:", exc.message, flush=True)
    while not go.with_suffix(".end").exists():
        time.sleep(0.01)
elif mode == "hold":  # take the lease (deploying), then hold the folder's lock until killed
    lease = Lease(store, "app-dev", "held", fingerprint="f")
    lease.acquire(wait=0)
    with store._locked():
        print("locked", flush=True)
        time.sleep(600)
"""


def _workers(tmp_path: Path, mode: str, n: int) -> list[subprocess.Popen[str]]:
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path / "leases"), str(go), mode], stdout=subprocess.PIPE, text=True
        )
        for _ in range(n)
    ]
    time.sleep(0.3)  # every one is waiting for the start file (a slow start only makes the race milder)
    go.touch()
    return procs


def _outputs(procs: list[subprocess.Popen[str]], end: Path | None = None) -> list[str]:
    """Each process's result line; then ``end`` is made (the processes waiting for it end) and each must end well."""
    outs = []
    for p in procs:
        assert p.stdout is not None
        outs.append(p.stdout.readline().strip())
    if end is not None:
        end.touch()
    for p in procs:
        p.communicate(timeout=60)
        assert p.returncode == 0
    return outs


def test_writers_in_several_processes_never_lose_an_update(tmp_path: Path) -> None:
    assert _outputs(_workers(tmp_path, "count", 4)) == ["done"] * 4
    got = FileStore(tmp_path / "leases").get("counter")
    assert got == ("160", 160)  # every increment landed once: no two writers won the same version


def test_runs_contending_for_a_fresh_stack_get_exactly_one_deployer(tmp_path: Path) -> None:
    outs = _outputs(_workers(tmp_path, "acquire", 4), end=tmp_path / "go.end")
    assert sorted(o.split(":")[0] for o in outs) == ["deploy", "refused", "refused", "refused"], outs
    assert all("is deploying it" in o for o in outs if o.startswith("refused")), outs
    state = read_state(FileStore(tmp_path / "leases"), "app-dev")
    assert state is not None and state.phase == "deploying" and len(state.users) == 1
    assert f"run {state.owner} is deploying it" in outs[[o.split(":")[0] for o in outs].index("refused")]


def test_a_sigkilled_holder_neither_blocks_the_lock_nor_keeps_the_stack(tmp_path: Path) -> None:
    (holder,) = _workers(tmp_path, "hold", 1)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    said: list[str] = []
    lease = Lease(FileStore(tmp_path / "leases"), "app-dev", "next", fingerprint="f", out=said.append)
    lease._start_heartbeat = lambda: None  # type: ignore[method-assign]
    assert lease.acquire(wait=0).deploy is True  # the lock went with the process; so did its hold on the stack
    ended = f"process {holder.pid} on this machine has ended"
    assert said == [f"lease: dead holders dropped: held ({ended}), held (owner, deploying; {ended})"]


def test_a_live_holder_in_another_process_is_waited_for_then_named(tmp_path: Path) -> None:
    (first,) = _workers(tmp_path, "acquire", 1)
    assert _outputs([first], end=tmp_path / "go.end") == ["deploy"]  # its process has ended since: dropped
    store = FileStore(tmp_path / "leases")
    a = Lease(store, "app-dev", "a", fingerprint="f")
    a._start_heartbeat = lambda: None  # type: ignore[method-assign]
    assert a.acquire(wait=0).deploy is True
    b = Lease(store, "app-dev", "b", fingerprint="f", sleep=lambda _: None)
    with pytest.raises(LeaseError, match="run a is deploying it"):
        b.acquire(wait=0)


def test_only_stack_names_become_file_names(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "leases")
    for bad in ("../x", "a/b", "", ".lock", "x" * 200):
        with pytest.raises(ValueError, match="not a stack name"):
            store.get(bad)
    assert store.get("orders-feature-x") is None
    assert not (tmp_path / "leases").exists()  # reading makes nothing
