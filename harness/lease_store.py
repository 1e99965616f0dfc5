"""Where a stack's lease document lives: a DynamoDB table, or files beside the embedded emulator.

The lease (:mod:`harness.lease`) is one JSON document per stack under
optimistic locking: every change is a put conditional on the version read.
Both stores give that conditional put and delete:

* :class:`DynamoStore`: the ``harness-leases`` table on the target (created
  on the first write that finds none). Every run that can reach the target
  reaches the table: an AWS account, an external endpoint.
* :class:`FileStore`: the harness's own embedded emulator binds 127.0.0.1 and
  keeps its state in a folder on this machine, so every run that can attach to
  it runs here. Its leases are files in the emulator's scratch folder (they
  go with the emulator, as a table inside it would); an ``fcntl`` lock on the
  folder makes the check of the version and the write one step. No AWS call
  is needed: no DynamoDB client, and on a fresh emulator no table to create.

The store follows the target, not the emulator: a run that reaches a kept
embedded emulator as ``--target endpoint`` uses the table, so it does not
share a lease with the local runs on that emulator (give it its own stack).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

TABLE = "harness-leases"
#: CloudFormation stack names ([A-Za-z][-A-Za-z0-9]*, up to 128): safe as file names as they are.
_STACK_NAME = re.compile(r"^[A-Za-z][-A-Za-z0-9]{0,127}$")


class Store(Protocol):
    """One lease document per stack, with a version; writes conditional on it."""

    def get(self, stack: str) -> tuple[str, int] | None:
        """The document and its version (None: no lease for the stack)."""

    def put(self, stack: str, document: str, version: int, expected: int, ttl: int) -> bool:
        """Write ``document`` as ``version`` if the stored version is ``expected`` (0: none stored); else False."""

    def delete(self, stack: str, expected: int) -> bool:
        """Remove the stack's lease if its version is ``expected``; else False."""


def _client_error(exc: BaseException, *codes: str) -> bool:
    """Whether ``exc`` is botocore's ClientError (with one of ``codes``, if given)."""
    import botocore.exceptions

    if not isinstance(exc, botocore.exceptions.ClientError):
        return False
    return not codes or exc.response.get("Error", {}).get("Code") in codes


def ensure_table(ddb: Any) -> None:
    """Create the lease table (with its TTL attribute) if it does not exist; wait until it is usable."""
    try:
        ddb.describe_table(TableName=TABLE)
        return
    except Exception as exc:
        if not _client_error(exc, "ResourceNotFoundException"):
            raise
    try:
        ddb.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "stack", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "stack", "KeyType": "HASH"}],
            Tags=[{"Key": "harness:managed-by", "Value": "branchstack"}],
        )
    except Exception as exc:
        if not _client_error(exc, "ResourceInUseException"):
            raise
    ddb.get_waiter("table_exists").wait(TableName=TABLE, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    try:
        ddb.update_time_to_live(TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})
    except Exception as exc:
        if not _client_error(exc):
            raise  # TTL only garbage-collects; correctness never depends on it (a ClientError is let go)


class DynamoStore:
    """The lease table on the target; the table is made by the first write that finds none."""

    def __init__(self, ddb: Any) -> None:
        self.ddb = ddb

    def get(self, stack: str) -> tuple[str, int] | None:
        try:
            resp = self.ddb.get_item(TableName=TABLE, Key={"stack": {"S": stack}}, ConsistentRead=True)
        except Exception as exc:
            if _client_error(exc, "ResourceNotFoundException"):
                return None  # no table: no lease
            raise
        item = resp.get("Item")
        return (item["state"]["S"], int(item["version"]["N"])) if item else None

    def put(self, stack: str, document: str, version: int, expected: int, ttl: int) -> bool:
        item = {"stack": {"S": stack}, "state": {"S": document}, "version": {"N": str(version)}, "ttl": {"N": str(ttl)}}
        if expected == 0:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(stack)"}
        else:
            condition = {
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": {":v": {"N": str(expected)}},
            }
        for attempt in range(2):
            try:
                self.ddb.put_item(TableName=TABLE, Item=item, **condition)
                return True
            except Exception as exc:
                if _client_error(exc, "ConditionalCheckFailedException"):
                    return False
                if attempt or not _client_error(exc, "ResourceNotFoundException"):
                    raise
                ensure_table(self.ddb)  # a fresh emulator, a new account
        raise AssertionError("unreachable")

    def delete(self, stack: str, expected: int) -> bool:
        try:
            self.ddb.delete_item(
                TableName=TABLE,
                Key={"stack": {"S": stack}},
                ConditionExpression="version = :v",
                ExpressionAttributeValues={":v": {"N": str(expected)}},
            )
        except Exception as exc:
            if _client_error(exc, "ConditionalCheckFailedException", "ResourceNotFoundException"):
                return False
            raise
        return True


class FileStore:
    """The leases of one embedded emulator: ``<folder>/<stack>.json``, changed under an exclusive ``flock``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, stack: str) -> Path:
        if not _STACK_NAME.match(stack):
            raise ValueError(f"not a stack name: {stack!r}")
        return self.folder / f"{stack}.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released by the kernel if this process dies holding it
            yield
        finally:
            os.close(fd)

    def get(self, stack: str) -> tuple[str, int] | None:
        try:
            data = json.loads(self._path(stack).read_text())  # written whole by os.replace: never half a document
        except FileNotFoundError:
            return None
        return data["state"], int(data["version"])

    def put(self, stack: str, document: str, version: int, expected: int, ttl: int) -> bool:
        path = self._path(stack)
        with self._locked():
            stored = self.get(stack)
            if (stored[1] if stored else 0) != expected:
                return False
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_text(json.dumps({"state": document, "version": version, "ttl": ttl}))
            os.replace(tmp, path)
        return True

    def delete(self, stack: str, expected: int) -> bool:
        with self._locked():
            stored = self.get(stack)
            if stored is None or stored[1] != expected:
                return False
            self._path(stack).unlink()
        return True


def store_of(backend: Any) -> Store:
    """A store as given, or the lease table reached through a DynamoDB client."""
    return backend if isinstance(backend, (DynamoStore, FileStore)) else DynamoStore(backend)
