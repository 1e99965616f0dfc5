"""The SDK's own data shared by the warm runtime's forked runtimes (``harness/emulator/_sdk_data.py``).

``share`` patches botocore's loader classes, as it does in the warm runtime;
here each test puts them back (monkeypatch), so the rest of this process
loads as botocore ships.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from types import ModuleType

import boto3
import botocore.session
import pytest
from botocore import loaders
from botocore.config import Config

SDK_DATA = Path(__file__).resolve().parents[2] / "harness" / "emulator" / "_sdk_data.py"
BOTO3_DATA = os.path.join(os.path.dirname(boto3.__file__), "data")
FOLDERS = [loaders.Loader.BUILTIN_DATA_PATH, BOTO3_DATA]
TYPES = ("service-2", "resources-1", "paginators-1", "waiters-2", "endpoint-rule-set-1")


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_harness_sdk_data", SDK_DATA)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def shared(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The module; ``share(FOLDERS)`` patches as in the warm runtime, botocore's own methods back after the test."""
    # tests/conftest.py gives every session of this process one loader; a runtime's sessions have their own
    monkeypatch.setattr(botocore.session, "create_loader", loaders.create_loader)
    monkeypatch.setattr(loaders.JSONFileLoader, "load_file", loaders.JSONFileLoader.load_file)
    monkeypatch.setattr(loaders.Loader, "list_available_services", loaders.Loader.list_available_services)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.delenv("AWS_DATA_PATH", raising=False)
    return _module()


class OwnFileLoader(loaders.JSONFileLoader):
    """A file loader of a type of its own: the loader lists and loads as botocore ships (no sharing)."""


def test_a_boto3_session_lists_every_type_as_botocore_does_without_walking_again(
    shared: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared.share(FOLDERS)
    loader = boto3.session.Session(region_name="us-east-1")._loader
    own = loaders.Loader(include_default_search_paths=False, extra_search_paths=list(loader.search_paths))
    own.file_loader = OwnFileLoader()
    expected = {type_name: own.list_available_services(type_name) for type_name in TYPES}

    def no_walk(path: str) -> list[str]:
        raise AssertionError(f"listed {path} again")

    monkeypatch.setattr(os, "listdir", no_walk)
    for type_name in TYPES:
        assert loader.list_available_services(type_name) == expected[type_name], type_name
    assert "dynamodb" in expected["resources-1"]
    assert "lambda" not in expected["resources-1"]
    assert len(expected["service-2"]) > 300


def test_a_loader_searching_another_folder_lists_and_loads_as_botocore_does(shared: ModuleType, tmp_path: Path) -> None:
    model = tmp_path / "mysvc" / "2024-01-01"
    model.mkdir(parents=True)
    (model / "service-2.json").write_text(
        json.dumps({"version": "2.0", "metadata": {}, "operations": {}, "shapes": {}})
    )
    shared.share(FOLDERS)
    loader = loaders.create_loader(str(tmp_path))
    assert "mysvc" in loader.list_available_services("service-2")
    assert "dynamodb" in loader.list_available_services("service-2")
    assert loader.load_service_model("mysvc", "service-2")["version"] == "2.0"


CLIENTS = [
    ("us-east-1", Config(retries={"mode": "legacy", "max_attempts": 7})),
    ("eu-west-1", Config(retries={"mode": "standard"})),
    ("us-gov-west-1", Config(retries={"mode": "adaptive"}, use_fips_endpoint=True)),
    ("cn-north-1", Config(connect_timeout=1)),
    ("us-east-1", Config(use_dualstack_endpoint=True)),
    ("us-west-2", Config(use_fips_endpoint=True, use_dualstack_endpoint=True)),
]
SERVICES = ("dynamodb", "s3", "sts", "xray")


def _resolved(session: botocore.session.Session) -> list[tuple[str, str, str]]:
    """Where each client of ``CLIENTS`` x ``SERVICES`` goes, and its retry settings, as ``session`` builds them."""
    found = []
    for region, config in CLIENTS:
        for service in SERVICES:
            client = session.create_client(service, region_name=region, config=config)
            retries = client.meta.config.retries or {}
            found.append((service, client.meta.endpoint_url, f"{client.meta.partition} {sorted(retries.items())}"))
    return found


def test_every_session_gets_one_parse_of_the_global_data_and_builds_the_clients_botocore_builds(
    shared: ModuleType,
) -> None:
    expected = _resolved(botocore.session.get_session())  # botocore as it ships: each session parses its own
    shared.share(FOLDERS)
    sessions = [botocore.session.get_session() for _ in range(2)]
    for session in sessions:  # each after the others have used (and so filled in) the same parsed data
        assert _resolved(session) == expected
    for name in shared.GLOBAL_DATA:
        data = [s.get_component("data_loader").load_data(name) for s in sessions]
        assert all(d is data[0] for d in data), f"{name}: one parse for every session"
    assert boto3.session.Session(botocore_session=sessions[0]).resource("dynamodb", region_name="eu-west-1")


def test_service_models_are_never_shared(shared: ModuleType) -> None:
    shared.share(FOLDERS)
    one = botocore.session.get_session().get_service_data("dynamodb")
    two = botocore.session.get_session().get_service_data("dynamodb")
    assert one is not two
    assert one == two
