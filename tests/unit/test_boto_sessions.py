"""The process's boto3 sessions read botocore's data through one loader; credentials and regions stay their own."""

from __future__ import annotations

from pathlib import Path

import boto3
import botocore.exceptions
import botocore.loaders
import botocore.session
import pytest

from harness import boto_sessions
from harness.stack import CLIENT_CONFIG, Stack, StackInfo, boto3_session


@pytest.fixture(autouse=True)
def _botocore_as_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's own loaders (the suite's conftest shares them for speed) and no loader shared yet."""
    monkeypatch.setattr(botocore.session, "create_loader", botocore.loaders.create_loader)
    monkeypatch.setattr(boto_sessions, "_loaders", {})


def test_plain_boto3_sessions_each_parse_their_own() -> None:
    """What the module is for: without it every session has a loader (and a cache) of its own."""
    assert _loader(boto3.Session()) is not _loader(boto3.Session())


def _loader(s: boto3.Session) -> object:
    return s._session.get_component("data_loader")


def _target(key: str, region: str) -> dict[str, object]:
    return {
        "kind": "local",
        "endpoint_url": "http://127.0.0.1:1",
        "region": region,
        "access_key_id": key,
        "secret_access_key": "secret-" + key,
        "session_token": None,
        "profile": None,
    }


def test_sessions_share_the_loader_and_keep_their_own_credentials_and_region() -> None:
    a = boto3_session(_target("AKIDA", "us-east-1"))  # type: ignore[arg-type]
    b = boto3_session(_target("AKIDB", "eu-west-2"))  # type: ignore[arg-type]
    assert _loader(a) is _loader(b)
    ca = a.client("dynamodb", endpoint_url="http://127.0.0.1:1", config=CLIENT_CONFIG)
    cb = b.client("dynamodb", endpoint_url="http://127.0.0.1:1", config=CLIENT_CONFIG)
    assert (ca.meta.region_name, cb.meta.region_name) == ("us-east-1", "eu-west-2")
    assert ca._request_signer._credentials.access_key == "AKIDA"
    assert cb._request_signer._credentials.access_key == "AKIDB"
    # The second client's model is the one the first parsed (the point of sharing), and complete.
    assert ca.meta.service_model.operation_names == cb.meta.service_model.operation_names
    assert "PutItem" in cb.meta.service_model.operation_names


def test_the_search_paths_do_not_grow_with_each_session() -> None:
    paths = list(_loader(boto_sessions.session(region_name="us-east-1")).search_paths)  # type: ignore[attr-defined]
    for _ in range(5):
        boto_sessions.session(region_name="us-east-1")
    assert _loader(boto_sessions.session()).search_paths == paths  # type: ignore[attr-defined]
    assert len(paths) == len(set(paths))
    assert any(Path(p).parts[-2:] == ("boto3", "data") for p in paths)  # boto3's resources still load


def test_a_session_with_its_own_data_path_keeps_its_own_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    default = boto_sessions.session(region_name="us-east-1")
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    other = boto_sessions.session(region_name="us-east-1")
    assert _loader(other) is not _loader(default)
    assert str(tmp_path) in _loader(other).search_paths  # type: ignore[attr-defined]
    assert _loader(boto_sessions.session(region_name="us-east-1")) is _loader(other)


def test_a_stack_clients_come_from_the_shared_loader() -> None:
    info: StackInfo = {
        "name": "s",
        "stage": "b",
        "branch": "b",
        "outputs": {},
        "resources": {},
        "resource_types": {},
        "tags": {},
        "target": _target("AKIDC", "us-east-1"),  # type: ignore[typeddict-item]
    }
    lifecycle_side = boto3_session(info["target"])
    stack = Stack(info)
    assert _loader(stack._session) is _loader(lifecycle_side)
    assert stack.client("sqs").meta.service_model.service_name == "sqs"


def test_resources_still_load_their_models() -> None:
    table = boto_sessions.session(region_name="us-east-1").resource("dynamodb", endpoint_url="http://127.0.0.1:1")
    assert table.meta.service_name == "dynamodb"


def test_warm_parses_the_models_so_the_runs_clients_read_no_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """harness.boto_sessions.warm (beside the emulator's boot): the lease's client is then built from memory."""
    boto_sessions.warm(("dynamodb", "cloudformation"), "us-east-1")
    s = boto3_session(_target("AKIDA", "us-east-1"))  # type: ignore[arg-type]
    read: list[str] = []
    real = botocore.loaders.JSONFileLoader.load_file
    monkeypatch.setattr(botocore.loaders.JSONFileLoader, "load_file", lambda self, p: read.append(p) or real(self, p))
    client = s.client("dynamodb", endpoint_url="http://127.0.0.1:1", config=CLIENT_CONFIG)
    assert read == [] and "PutItem" in client.meta.service_model.operation_names
    s.client("lambda", endpoint_url="http://127.0.0.1:1")  # not warmed: read from its files, as before
    assert any("lambda" in p for p in read)


def test_a_warm_that_fails_leaves_the_error_to_the_real_client() -> None:
    boto_sessions.warm(("no-such-service",), "us-east-1")  # raises nothing
    with pytest.raises(botocore.exceptions.UnknownServiceError):
        boto_sessions.session(region_name="us-east-1").client("no-such-service")
