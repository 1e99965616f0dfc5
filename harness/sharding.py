"""Shards: which share of the tests this run executes, and which sibling runs it shares a stack with."""

from __future__ import annotations

import zlib
from collections.abc import Mapping

from harness.errors import ConfigError
from harness.settings import Settings


def resolve_shard(settings: Settings, env: Mapping[str, str]) -> tuple[tuple[int, int] | None, str | None]:
    """This run's shard (i, n) and the id shared by its sibling shards, from settings or CI variables."""
    shard = settings.shard
    total = env.get("CIRCLE_NODE_TOTAL", "")
    if shard is None and total.isdigit() and int(total) > 1 and env.get("CIRCLE_NODE_INDEX", "").isdigit():
        shard = (int(env["CIRCLE_NODE_INDEX"]) + 1, int(total))
    if shard is None or shard[1] == 1:
        return None, None
    group = settings.shard_group or env.get("CIRCLE_WORKFLOW_ID")
    if not group and env.get("GITHUB_RUN_ID"):
        group = f"{env['GITHUB_RUN_ID']}-{env.get('GITHUB_RUN_ATTEMPT', '1')}"
    if not group:
        raise ConfigError(
            f"shard {shard[0]}/{shard[1]} needs the id its sibling shards share",
            hint="set --shard-group (or HARNESS_SHARD_GROUP) to the CI run's id; on CircleCI and GitHub "
            "Actions it is read from CIRCLE_WORKFLOW_ID / GITHUB_RUN_ID",
        )
    return shard, group


def in_shard(nodeid: str, shard: tuple[int, int]) -> bool:
    """Deterministic split: the same test always lands in the same shard, whatever the machine."""
    return zlib.crc32(nodeid.encode()) % shard[1] == shard[0] - 1
