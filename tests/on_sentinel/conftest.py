"""The recorded-incident replay re-run against a real Sentinel-managed master: `redis` and
`redis_server` here point at the session's sentinel URL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest
from redis.asyncio import Redis

from bot.store.connect import connect
from tests.redis_topologies import SentinelSet


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "on_sentinel" in item.nodeid and "own_redis" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(reason="restarts a single redis-server"))


@pytest.fixture
def redis_server(redis_sentinel: SentinelSet) -> SimpleNamespace:
    """What tests read from the single server (`.url`), here the sentinel URL."""
    return SimpleNamespace(url=redis_sentinel.url)


@pytest.fixture
async def redis(redis_sentinel: SentinelSet) -> AsyncIterator[Redis]:
    """A sentinel-managed client (bot.store.connect), the master and its replica emptied."""
    await asyncio.to_thread(redis_sentinel.flush)
    client = connect(redis_sentinel.url)
    yield client
    await client.aclose()
