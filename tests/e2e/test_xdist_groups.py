"""The e2e tier's distribution: a test that shares a module's fixture is in its file's xdist group.

``make test`` runs ``--dist loadgroup``; an xdist worker appends the group to
each test's id, and the scheduler sends a group to one worker, so the shared
fixture (an emulator, a synthesized app) is set up once. No emulator here.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

GROUP = "tests/e2e/test_xdist_groups.py"


@pytest.fixture(scope="module")
def shared() -> object:
    return object()


def test_a_test_sharing_a_module_fixture_is_in_its_files_group(shared: object, request: pytest.FixtureRequest) -> None:
    mark = request.node.get_closest_marker("xdist_group")
    assert mark is not None and mark.args == (GROUP,), mark
    if hasattr(request.config, "workerinput") and getattr(request.config.option, "loadgroup", False):
        # The worker read the mark: the scheduler keeps the group on this worker.
        assert request.node.nodeid.endswith(f"@{GROUP}"), request.node.nodeid


def test_a_self_contained_test_goes_alone(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("xdist_group") is None
    assert "@" not in request.node.nodeid
