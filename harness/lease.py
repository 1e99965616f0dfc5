"""Who may deploy, use and tear down a branch stack: a lease per stack, shared by every run that uses it.

Two runs on the same branch (two pushes in a row, or CI shards) meet at the
same stack. The lease lets them share it safely:

* the first run **deploys** (phase ``deploying``, it is the ``owner``); others
  wait until the stack is ``ready``;
* every run **using** the stack is listed in ``users`` with an expiry it
  renews by heartbeat, so a holder that died (SIGKILL, a lost CI container)
  drops out on its own; a holder on the same machine (same host, boot and
  pid namespace: a developer's laptop, one CI container) is checked by pid
  and start time, so a dead one drops out at once instead of after the expiry;
* a run with **different deploy inputs** (another fingerprint) never deploys
  over a stack in use: it waits until the users are gone, or fails fast,
  naming who holds it;
* the **last** user to leave tears down (phase ``tearing-down``); with
  shards, only when every shard of the group has finished.

The lease is one item per stack, a JSON document under optimistic locking
(``version``): every change is a conditional put, so two runs can never both
win a transition. Where it is stored (:mod:`harness.lease_store`): a DynamoDB
table on the target, created on demand with a TTL attribute; on the harness's
own embedded emulator, files in the emulator's scratch folder.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from harness import procs
from harness.errors import LeaseError
from harness.lease_store import TABLE, DynamoStore, FileStore, Store, ensure_table, store_of

__all__ = [
    "TABLE",
    "DynamoStore",
    "FileStore",
    "Lease",
    "State",
    "Store",
    "clear_unheld",
    "ensure_table",
    "read_state",
    "store_for",
]
LEASE_SECONDS = 90.0  # a holder that stops renewing for this long is gone
HEARTBEAT_SECONDS = 20.0


@dataclass
class Decision:
    """What ``acquire`` decided this run does."""

    deploy: bool  # this run deploys (it owns the deploying phase)
    waited: float = 0.0
    note: str = ""


@dataclass
class State:
    version: int = 0
    phase: str = "free"  # free | deploying | ready | tearing-down
    owner: str | None = None
    owner_expires: float = 0.0
    owner_proc: dict[str, Any] | None = None  # procs.identity of the owner's process
    fingerprint: str | None = None
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    shards: dict[str, Any] | None = None
    kept: dict[str, Any] | None = None  # who kept the stack (--keep-stack, harness deploy); runs leave it

    @classmethod
    def load(cls, raw: str | None) -> State:
        if not raw:
            return cls()
        data = json.loads(raw)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})  # a newer writer may add keys

    def dump(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)

    def prune(
        self, now: float, alive: Callable[[Mapping[str, Any] | None], bool | None] = procs.identity_alive
    ) -> list[str]:
        """Drop users that expired or whose process is known dead; such an owner loses its phase.

        Returns who was dropped and why. ``alive`` answers None when it cannot
        tell (another machine): then only the expiry counts.
        """
        gone: list[str] = []
        for run, u in list(self.users.items()):
            why = _gone(u.get("expires", 0.0), u.get("proc"), now, alive)
            if why:
                del self.users[run]
                gone.append(f"{run} ({why})")
        owner_gone = _gone(self.owner_expires, self.owner_proc, now, alive)
        if self.phase in ("deploying", "tearing-down") and owner_gone:
            gone.append(f"{self.owner} (owner, {self.phase}; {owner_gone})")
            self.phase, self.owner = ("ready" if self.phase == "deploying" and self.users else "free"), None
            self.owner_proc = None
            if self.phase == "free":
                self.fingerprint = None
        return gone

    def held_by(self) -> str | None:
        """Who holds the stack (after ``prune``), in words; None if nobody does."""
        if self.phase in ("deploying", "tearing-down"):
            return f"run {self.owner} is {self.phase} it (lease)"
        if self.users:
            runs = ", ".join(f"{run} ({u.get('holder', '?')})" for run, u in sorted(self.users.items()))
            return f"{len(self.users)} run(s) hold its lease: {runs}"
        return None


def store_for(target: Any, dynamodb: Callable[[], Any]) -> Store:
    """Where the target's leases live: the embedded emulator's own files, else the lease table (``dynamodb()``)."""
    own = getattr(target, "lease_store", None)
    store = own() if own is not None else None
    return store if store is not None else DynamoStore(dynamodb())


def read_state(backend: Any, stack: str) -> State | None:
    """The stack's lease as stored (None: none, or no lease table at all); ``backend``: a store or a DynamoDB client."""
    got = store_of(backend).get(stack)
    return State.load(got[0]) if got else None


def clear_unheld(backend: Any, stack: str, now: float) -> str | None:
    """Remove the stack's lease unless a live run holds it; returns who holds it.

    For ``harness destroy`` and ``harness gc`` once the stack is gone: a
    stale item ("ready", nobody using it) would let the next two runs both
    join a stack that no longer exists, and both deploy it. The delete is
    conditional on the version read, so a run joining meanwhile wins.
    """
    store = store_of(backend)
    for _ in range(5):
        state = read_state(store, stack)
        if state is None:
            return None
        state.prune(now)
        who = state.held_by()
        if who is not None:
            return who
        if store.delete(stack, state.version):
            return None
    return "its lease kept changing while it was being cleared"


def _gone(
    expires: float, proc: Mapping[str, Any] | None, now: float, alive: Callable[[Mapping[str, Any] | None], bool | None]
) -> str:
    """Why a holder is gone ('' if it is not): its process ended, or it stopped renewing."""
    if proc and alive(proc) is False:
        return f"process {proc.get('pid')} on this machine has ended"
    if expires < now:
        return "lease expired"
    return ""


class Lease:
    """The lease of one stack, for one run."""

    def __init__(
        self,
        store: Any,
        stack: str,
        run_id: str,
        *,
        fingerprint: str | None,
        shard: tuple[int, int] | None = None,
        group: str | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        out: Callable[[str], None] = lambda line: None,
        lease_seconds: float = LEASE_SECONDS,
        identity: Mapping[str, Any] | None = None,
    ) -> None:
        self.store: Store = store_of(store)  # a Store, or a DynamoDB client for the lease table
        self.stack = stack
        self.run_id = run_id
        self.fingerprint = fingerprint
        self.shard = shard
        self.group = group
        self.clock = clock
        self.sleep = sleep
        self.out = out
        self.lease_seconds = lease_seconds
        self.holder = f"{socket.gethostname()} pid {os.getpid()}"
        self.identity = dict(identity) if identity is not None else procs.identity()
        self._beat: threading.Thread | None = None
        self._stop = threading.Event()
        self._failing: str | None = None  # why the last heartbeat failed (None: it did not)
        #: who kept the stack, as this run found it (None: nobody kept it)
        self.kept_by: dict[str, Any] | None = None
        self._known: str | None = None  # the item as this run last wrote it: the next change tries it unread

    # -- storage ---------------------------------------------------------
    def ensure_table(self) -> None:
        """The lease table exists (a file store needs nothing made)."""
        if isinstance(self.store, DynamoStore):
            ensure_table(self.store.ddb)

    def _read(self) -> State:
        got = self.store.get(self.stack)
        return State.load(got[0] if got else None)

    def _write(self, state: State) -> bool:
        """Conditional put on the version read; False if someone else wrote first."""
        expected = state.version
        state.version = expected + 1
        ttl = int(self.clock() + 7 * 24 * 3600)
        if not self.store.put(self.stack, state.dump(), state.version, expected, ttl):
            state.version = expected
            self._known = None
            return False
        self._known = state.dump()
        return True

    def _delete(self, state: State) -> bool:
        return self.store.delete(self.stack, state.version)

    def _me(self) -> dict[str, Any]:
        return {"holder": self.holder, "expires": self.clock() + self.lease_seconds, "proc": self.identity}

    # -- protocol --------------------------------------------------------
    def acquire(self, *, wait: float, force_deploy: bool = False) -> Decision:
        """Join the stack's users; decide whether this run deploys. Waits up to ``wait`` seconds."""
        started = self.clock()
        deadline = started + wait
        said: str | None = None
        while True:
            now = self.clock()
            state = self._read()  # no lease table yet: the first write makes it
            dropped = state.prune(now)
            if dropped:
                self.out(f"lease: dead holders dropped: {', '.join(dropped)}")
            decision = self._try_join(state, force_deploy)
            if decision is not None:
                self.kept_by = state.kept
                if self._write(state):
                    decision.waited = now - started
                    self._start_heartbeat()
                    return decision
                continue  # lost a race: read again at once
            why = self._why_waiting(state)
            if now >= deadline:
                raise LeaseError(
                    f"stack {self.stack} is held by another run: {why}",
                    hint="wait for it (raise --lease-wait), or let it finish; a dead holder expires "
                    f"within {self.lease_seconds:.0f}s",
                )
            if why != said:
                self.out(f"lease: waiting for {self.stack}: {why}")
                said = why
            self.sleep(min(1.0, max(0.05, deadline - now)))

    def _try_join(self, state: State, force_deploy: bool = False) -> Decision | None:
        """Mutate ``state`` to include this run, or return None to wait."""
        if self.shard and self.group and (state.shards or {}).get("group") != self.group and not state.users:
            # First shard of a new group: teardown waits for all of its shards.
            state.shards = {"group": self.group, "total": self.shard[1], "done": []}
        unused_ready = state.phase == "ready" and not state.users
        if state.phase == "free" or (unused_ready and (force_deploy or state.fingerprint != self.fingerprint)):
            state.phase, state.owner, state.owner_proc = "deploying", self.run_id, self.identity
            state.owner_expires = self.clock() + self.lease_seconds
            state.fingerprint = self.fingerprint
            state.users[self.run_id] = self._me()
            return Decision(deploy=True)
        if state.phase == "ready" and (state.fingerprint == self.fingerprint or self.fingerprint is None):
            state.users[self.run_id] = self._me()
            others = len(state.users) - 1
            return Decision(
                deploy=False, note=f"sharing stack {self.stack} with {others} other run(s)" if others else ""
            )
        return None

    def _why_waiting(self, state: State) -> str:
        if state.phase in ("deploying", "tearing-down"):
            return f"run {state.owner} is {state.phase} it"
        holders = ", ".join(f"run {r} ({u['holder']})" for r, u in state.users.items())
        return f"it is in use with other deploy inputs by {holders}"

    def deployed(self) -> None:
        """The deploy finished: the stack is ready for everyone."""
        self._transition(lambda s: s.owner == self.run_id, phase="ready")

    def deploy_failed(self) -> None:
        """The deploy failed: nobody may use the stack; this run tears it down."""
        self._transition(lambda s: s.owner == self.run_id, phase="tearing-down")

    def release(self, *, keep: bool, by: str | None = None, force: bool = False) -> bool:
        """Leave. True if this run must tear the stack down (it was the last user).

        ``keep`` with ``by`` marks the stack kept (by whom): later runs then use
        it and leave it, until one releases with ``force`` (``harness destroy``).
        """
        self._stop_heartbeat()
        while True:
            state = self._read()
            state.prune(self.clock())
            state.users.pop(self.run_id, None)
            if force:
                state.kept = None
            elif keep and by:
                state.kept = {"by": by, "run": self.run_id, "at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
            keep = keep or bool(state.kept)
            last = not state.users
            if state.shards and self.shard:
                done = set(state.shards.get("done", []))
                done.add(self.shard[0])
                state.shards["done"] = sorted(done)
                last = last and len(done) >= int(state.shards["total"])
            if state.phase == "tearing-down" and state.owner == self.run_id:
                last = True
            if keep or not last:
                if not state.users and keep:
                    state.phase, state.owner, state.owner_proc = "ready", None, None
                if self._write(state):
                    return False
                continue
            state.phase, state.owner, state.owner_proc = "tearing-down", self.run_id, self.identity
            state.owner_expires = self.clock() + self.lease_seconds
            if self._write(state):
                return True

    def torn_down(self) -> None:
        """The stack is gone: remove the lease item."""
        for _ in range(5):
            state = self._read()
            if state.owner != self.run_id:
                return
            if self._delete(state):
                return

    def _transition(self, allowed: Callable[[State], bool], **changes: Any) -> None:
        # First try the item as this run last wrote it, without reading it: the write is conditional on
        # its version, so it only lands if nobody changed the item since; else read and try again.
        known = State.load(self._known) if self._known else None
        for _ in range(20):
            state = known if known is not None and allowed(known) else self._read()
            known = None
            if not allowed(state):
                return
            for k, v in changes.items():
                setattr(state, k, v)
            if changes.get("phase") == "ready":
                state.owner, state.owner_proc = None, None
            else:
                state.owner_expires = self.clock() + self.lease_seconds
            if self._write(state):
                return

    # -- heartbeat -------------------------------------------------------
    def renew(self) -> None:
        for _ in range(5):
            state = self._read()
            if self.run_id not in state.users and state.owner != self.run_id:
                return
            if self.run_id in state.users:
                state.users[self.run_id] = self._me()
            if state.owner == self.run_id:
                state.owner_expires = self.clock() + self.lease_seconds
            if self._write(state):
                return

    def _start_heartbeat(self) -> None:
        if self._beat is not None:
            return

        def beat() -> None:
            while not self._stop.wait(HEARTBEAT_SECONDS):
                self.beat()

        self._beat = procs.start_thread(beat, "harness-lease-heartbeat")

    def beat(self) -> None:
        """One heartbeat: renew. A failure is a warning, said once until a beat succeeds again; never raises.

        A missed beat is retried at the next one, and the lease's expiry stays the safety net; but a
        run that cannot renew drops out of its lease after ``lease_seconds``, and another run may
        then tear the stack down under it, so the run is told why.
        """
        try:
            self.renew()
        except Exception as exc:  # noqa: BLE001 - the heartbeat thread must go on
            from harness.aws_errors import AWS_ERRORS, explain

            why = explain(exc, identity=None) if isinstance(exc, AWS_ERRORS) else f"{type(exc).__name__}: {exc}"
            if why != self._failing:
                self.out(
                    f"lease: WARNING: heartbeat failed for {self.stack}: {why}; retried every "
                    f"{HEARTBEAT_SECONDS:.0f}s (after {self.lease_seconds:.0f}s without a renewal, other runs "
                    "count this run as gone and may tear the stack down)"
                )
            self._failing = why
            return
        if self._failing is not None:
            self.out(f"lease: heartbeat for {self.stack} renewed again")
            self._failing = None

    def _stop_heartbeat(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
