"""The stack lease: who deploys, who shares, who tears down; dead holders expire."""

from __future__ import annotations

import json

import boto3
import psutil
import pytest
from moto import mock_aws

from harness import procs
from harness.lease import FileStore, Lease, LeaseError, State, read_state


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def ddb(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture(params=["dynamodb", "file"])
def store(request: pytest.FixtureRequest, tmp_path):
    """Where the lease lives: the lease table (moto), or the embedded emulator's files; the protocol is the same."""
    if request.param == "file":
        return FileStore(tmp_path / "leases")
    return request.getfixturevalue("ddb")


def lease(ddb, run: str, clock: Clock, fp: str = "fp1", **kw) -> Lease:
    lz = Lease(ddb, "app-dev", run, fingerprint=fp, clock=clock, sleep=clock.sleep, lease_seconds=60, **kw)
    lz.ensure_table()
    lz._start_heartbeat = lambda: None  # type: ignore[method-assign]  # no threads in unit tests
    return lz


def test_first_run_deploys_second_shares_and_the_last_tears_down(store) -> None:
    clock = Clock()
    a, b = lease(store, "a", clock), lease(store, "b", clock)
    assert a.acquire(wait=0).deploy is True
    with pytest.raises(LeaseError, match="run a is deploying it"):
        b.acquire(wait=0)  # fail fast names the holder
    a.deployed()
    decision = b.acquire(wait=0)
    assert decision.deploy is False and "1 other run" in decision.note
    assert a.release(keep=False) is False  # b still uses it
    assert b.release(keep=False) is True  # the last one tears down
    b.torn_down()
    assert read_state(store, "app-dev") is None


def test_waiting_run_gets_the_stack_once_the_deploy_finishes(store) -> None:
    clock = Clock()
    a, b = lease(store, "a", clock), lease(store, "b", clock)
    a.acquire(wait=0)
    calls = {"n": 0}
    original = b._read

    def read_and_finish_deploy():
        calls["n"] += 1
        if calls["n"] == 3:
            a.deployed()
        return original()

    b._read = read_and_finish_deploy  # type: ignore[method-assign]
    decision = b.acquire(wait=30)
    assert decision.deploy is False and decision.waited > 0


def test_other_inputs_never_deploy_over_a_stack_in_use(store) -> None:
    clock = Clock()
    a, newer = lease(store, "a", clock, "old"), lease(store, "b", clock, "new")
    a.acquire(wait=0)
    a.deployed()
    with pytest.raises(LeaseError, match="in use with other deploy inputs by run a"):
        newer.acquire(wait=5)
    a.release(keep=True)  # kept for the developer loop, nobody uses it
    assert newer.acquire(wait=0).deploy is True


def test_a_dead_holder_expires(store) -> None:
    clock = Clock()
    dead, b = lease(store, "dead", clock), lease(store, "b", clock)
    dead.acquire(wait=0)  # deploying, then killed: never renews
    clock.now += 61
    assert b.acquire(wait=0).deploy is True


def test_renewal_keeps_a_live_holder(store) -> None:
    clock = Clock()
    a, b = lease(store, "a", clock), lease(store, "b", clock)
    a.acquire(wait=0)
    for _ in range(3):
        clock.now += 40
        a.renew()
    with pytest.raises(LeaseError):
        b.acquire(wait=0)


def test_shards_share_one_deploy_and_the_last_shard_tears_down(store) -> None:
    clock = Clock()
    s1 = lease(store, "s1", clock, shard=(1, 2), group="ci-7")
    s2 = lease(store, "s2", clock, shard=(2, 2), group="ci-7")
    assert s1.acquire(wait=0).deploy is True
    s1.deployed()
    # Shard 1 finishes before shard 2 even starts: it must not tear down.
    assert s1.release(keep=False) is False
    assert s2.acquire(wait=0).deploy is False
    assert s2.release(keep=False) is True


def test_concurrent_writers_cannot_both_win(store) -> None:
    clock = Clock()
    a, b = lease(store, "a", clock), lease(store, "b", clock)
    state_a, state_b = a._read(), b._read()
    assert a._try_join(state_a).deploy is True
    assert b._try_join(state_b).deploy is True
    assert a._write(state_a) is True
    assert b._write(state_b) is False  # the conditional put refuses the stale version


@pytest.fixture
def ended_process() -> dict[str, object]:
    """The identity a process of this machine had: this one's, with a pid no process has now."""
    pid = max(psutil.pids()) + 1
    while psutil.pid_exists(pid):
        pid += 1
    return dict(procs.identity(), pid=pid)


def test_a_holder_whose_process_ended_is_dropped_at_once(store, ended_process) -> None:
    # A developer's Ctrl-\ or SIGKILL on this machine: no 90 s wait for the expiry.
    clock = Clock()
    dead = lease(store, "dead", clock, identity=ended_process)
    b = lease(store, "b", clock, out=(said := []).append)
    assert dead.acquire(wait=0).deploy is True  # deploying, then killed
    assert b.acquire(wait=0).deploy is True  # no clock advance: dropped by its pid
    assert any("dead (owner, deploying; process" in line and "has ended" in line for line in said), said


def test_a_dead_user_of_a_ready_stack_leaves_the_last_live_run_to_tear_down(store, ended_process) -> None:
    clock = Clock()
    dead = lease(store, "dead", clock, identity=ended_process)
    dead.acquire(wait=0)
    dead.deployed()  # the stack is ready; its run is then killed in the tests
    b = lease(store, "b", clock)
    decision = b.acquire(wait=0)
    assert decision.deploy is False and decision.note == ""  # reuses the unchanged stack, alone
    assert b.release(keep=False) is True  # and, as the last user, tears it down


def test_a_live_holder_on_this_machine_is_never_dropped_before_its_expiry(store) -> None:
    clock = Clock()
    a, b = lease(store, "a", clock), lease(store, "b", clock)  # both this (live) process
    a.acquire(wait=0)
    with pytest.raises(LeaseError, match="run a is deploying it"):
        b.acquire(wait=0)


def test_a_holder_on_another_machine_is_judged_by_its_expiry_only(store, ended_process) -> None:
    clock = Clock()
    elsewhere = dict(ended_process, machine="ci-container-7|other-boot|pid:[1]")
    remote = lease(store, "remote", clock, identity=elsewhere)
    b = lease(store, "b", clock)
    remote.acquire(wait=0)
    with pytest.raises(LeaseError, match="run remote is deploying it"):
        b.acquire(wait=0)
    clock.now += 61
    assert b.acquire(wait=0).deploy is True


def test_a_reused_pid_counts_as_ended(ended_process) -> None:
    me = procs.identity()
    assert procs.identity_alive(me) is True
    assert procs.identity_alive(dict(me, started=float(me["started"]) - 100)) is False  # same pid, older process
    assert procs.identity_alive(ended_process) is False
    assert procs.identity_alive(dict(me, machine="elsewhere")) is None
    assert procs.identity_alive({"machine": me["machine"], "pid": "x"}) is None


def test_lease_items_from_older_and_newer_writers_load() -> None:
    old = {"version": 3, "phase": "ready", "owner": None, "owner_expires": 0.0, "fingerprint": "f", "users": {}}
    assert State.load(json.dumps(old)).owner_proc is None
    assert State.load(json.dumps(dict(old, some_future_field=1))).version == 3


def test_a_kept_stack_is_left_by_later_runs_until_forced(store) -> None:
    clock = Clock()
    keeper = lease(store, "keeper", clock)
    assert keeper.acquire(wait=0).deploy is True
    keeper.deployed()
    assert keeper.release(keep=True, by="harness deploy") is False
    plain = lease(store, "plain", clock)
    assert plain.acquire(wait=0).deploy is False  # same inputs: reused
    assert plain.kept_by is not None and plain.kept_by["by"] == "harness deploy"
    assert plain.kept_by["run"] == "keeper"
    assert plain.release(keep=False) is False  # a plain run leaves it as it found it
    destroy = lease(store, "destroy", clock)
    destroy.acquire(wait=0)
    assert destroy.release(keep=False, force=True) is True  # `harness destroy` removes it
    destroy.torn_down()
    again = lease(store, "again", clock)
    again.acquire(wait=0)
    assert again.kept_by is None


def test_a_failing_heartbeat_is_a_warning_said_once_and_its_recovery_too(ddb) -> None:
    """A heartbeat that fails for any reason (here: access denied) is named, not swallowed; the thread goes on."""
    import botocore.exceptions

    clock, lines = Clock(), []
    a = lease(ddb, "a", clock, out=lines.append)
    a.acquire(wait=0)
    real = a.renew
    denied = botocore.exceptions.ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "PutItem"
    )

    def failing() -> None:
        raise denied

    a.renew = failing  # type: ignore[method-assign]
    lines.clear()
    a.beat()
    a.beat()  # the same failure again: not repeated
    (warning,) = lines
    assert warning.startswith("lease: WARNING: heartbeat failed for app-dev: ")
    assert "dynamodb:PutItem" in warning and "other runs count this run as gone" in warning
    a.renew = real  # type: ignore[method-assign]
    a.beat()
    assert lines[1:] == ["lease: heartbeat for app-dev renewed again"]
    a.beat()
    assert len(lines) == 2  # a healthy heartbeat says nothing


class CountingDdb:
    """The DynamoDB client, counting the calls a lease makes."""

    def __init__(self, ddb) -> None:
        self.ddb = ddb
        self.calls: list[str] = []

    def __getattr__(self, name: str):
        attr = getattr(self.ddb, name)
        if callable(attr) and not name.startswith("get_waiter"):

            def counted(*args, **kwargs):
                self.calls.append(name)
                return attr(*args, **kwargs)

            return counted
        return attr


def test_the_first_acquire_makes_the_lease_table(ddb) -> None:
    clock = Clock()
    a = Lease(ddb, "app-dev", "a", fingerprint="fp1", clock=clock, sleep=clock.sleep, lease_seconds=60)
    a._start_heartbeat = lambda: None  # type: ignore[method-assign]
    assert a.acquire(wait=0).deploy is True  # no ensure_table first: the missing table is made on the way
    assert "harness-leases" in ddb.list_tables()["TableNames"]
    b = lease(ddb, "b", clock)
    with pytest.raises(LeaseError, match="run a is deploying it"):
        b.acquire(wait=0)


def test_after_the_deploy_the_lease_is_marked_ready_without_reading_it_again(ddb) -> None:
    clock = Clock()
    counting = CountingDdb(ddb)
    a = lease(counting, "a", clock)
    a.acquire(wait=0)
    counting.calls.clear()
    a.deployed()
    assert counting.calls == ["put_item"]  # conditional on the version this run wrote
    state = State.load(ddb.get_item(TableName="harness-leases", Key={"stack": {"S": "app-dev"}})["Item"]["state"]["S"])
    assert state.phase == "ready" and state.owner is None and set(state.users) == {"a"}


def test_a_change_by_another_run_meanwhile_is_read_and_kept(store) -> None:
    clock = Clock()
    a, b = lease(store, "a", clock), lease(store, "b", clock)
    a.acquire(wait=0)
    b_state = b._read()  # another run changes the item while a deploys (here: a user joins by hand)
    b_state.users["b"] = b._me()
    assert b._write(b_state)
    a.deployed()  # a's unread write fails on the version; it reads and keeps b
    state = a._read()
    assert state.phase == "ready" and set(state.users) == {"a", "b"}
