"""The store, watcher, delivery and Slack suites re-run against a real 3-master Redis Cluster:
`redis` and `redis_server` here point at the session's cluster (tests that restart their own
redis-server are left to the single-server run)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest
from redis.asyncio import Redis

from bot.store.connect import connect
from tests.redis_topologies import Cluster

# Tests that measure one server (INFO commandstats round trips): what they prove is about the
# single server. (The killed-worker tests' child connects with bot.store.connect: they run here.)
SINGLE_ONLY = (
    "cost_one_round_trip",
    "ten_thousand_channels",
    "round_trips",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "on_cluster" not in item.nodeid:
            continue
        if "own_redis" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(reason="restarts a single redis-server"))
        elif any(n in item.nodeid for n in SINGLE_ONLY):
            item.add_marker(pytest.mark.skip(reason="counts one server's commands"))


@pytest.fixture
def redis_server(redis_cluster: Cluster) -> SimpleNamespace:
    """What tests read from the single server (`.url`), here the cluster's URL."""
    return SimpleNamespace(url=redis_cluster.url)


@pytest.fixture
async def redis(redis_cluster: Cluster) -> AsyncIterator[Redis]:
    """A cluster client (bot.store.connect), every master emptied before each test."""
    client = connect(redis_cluster.url)
    await client.flushall()
    yield client
    await client.aclose()
