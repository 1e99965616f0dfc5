"""The stack lease: who deploys, who shares, who tears down; dead holders expire."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from harness.lease import Lease, LeaseError


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


def lease(ddb, run: str, clock: Clock, fp: str = "fp1", **kw) -> Lease:
    lz = Lease(ddb, "app-dev", run, fingerprint=fp, clock=clock, sleep=clock.sleep, lease_seconds=60, **kw)
    lz.ensure_table()
    lz._start_heartbeat = lambda: None  # type: ignore[method-assign]  # no threads in unit tests
    return lz


def test_first_run_deploys_second_shares_and_the_last_tears_down(ddb) -> None:
    clock = Clock()
    a, b = lease(ddb, "a", clock), lease(ddb, "b", clock)
    assert a.acquire(wait=0).deploy is True
    with pytest.raises(LeaseError, match="run a is deploying it"):
        b.acquire(wait=0)  # fail fast names the holder
    a.deployed()
    decision = b.acquire(wait=0)
    assert decision.deploy is False and "1 other run" in decision.note
    assert a.release(keep=False) is False  # b still uses it
    assert b.release(keep=False) is True  # the last one tears down
    b.torn_down()
    assert "Item" not in ddb.get_item(TableName="harness-leases", Key={"stack": {"S": "app-dev"}})


def test_waiting_run_gets_the_stack_once_the_deploy_finishes(ddb) -> None:
    clock = Clock()
    a, b = lease(ddb, "a", clock), lease(ddb, "b", clock)
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


def test_other_inputs_never_deploy_over_a_stack_in_use(ddb) -> None:
    clock = Clock()
    a, newer = lease(ddb, "a", clock, "old"), lease(ddb, "b", clock, "new")
    a.acquire(wait=0)
    a.deployed()
    with pytest.raises(LeaseError, match="in use with other deploy inputs by run a"):
        newer.acquire(wait=5)
    a.release(keep=True)  # kept for the developer loop, nobody uses it
    assert newer.acquire(wait=0).deploy is True


def test_a_dead_holder_expires(ddb) -> None:
    clock = Clock()
    dead, b = lease(ddb, "dead", clock), lease(ddb, "b", clock)
    dead.acquire(wait=0)  # deploying, then killed: never renews
    clock.now += 61
    assert b.acquire(wait=0).deploy is True


def test_renewal_keeps_a_live_holder(ddb) -> None:
    clock = Clock()
    a, b = lease(ddb, "a", clock), lease(ddb, "b", clock)
    a.acquire(wait=0)
    for _ in range(3):
        clock.now += 40
        a.renew()
    with pytest.raises(LeaseError):
        b.acquire(wait=0)


def test_shards_share_one_deploy_and_the_last_shard_tears_down(ddb) -> None:
    clock = Clock()
    s1 = lease(ddb, "s1", clock, shard=(1, 2), group="ci-7")
    s2 = lease(ddb, "s2", clock, shard=(2, 2), group="ci-7")
    assert s1.acquire(wait=0).deploy is True
    s1.deployed()
    # Shard 1 finishes before shard 2 even starts: it must not tear down.
    assert s1.release(keep=False) is False
    assert s2.acquire(wait=0).deploy is False
    assert s2.release(keep=False) is True


def test_concurrent_writers_cannot_both_win(ddb) -> None:
    clock = Clock()
    a, b = lease(ddb, "a", clock), lease(ddb, "b", clock)
    state_a, state_b = a._read(), b._read()
    assert a._try_join(state_a).deploy is True
    assert b._try_join(state_b).deploy is True
    assert a._write(state_a) is True
    assert b._write(state_b) is False  # the conditional put refuses the stale version
