"""Shared test fixtures: a real redis-server on a unix socket of its own (never the machine's 6379),
a manual clock, and the real status-page fixtures shipped in the package."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.clock import ManualClock
from bot.ops.redisproc import RedisProcess
from tests.helpers import TOKEN, TOKEN_T2
from tests.peers.slack_api import SlackApi
from tests.redis_topologies import Cluster, SentinelSet


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 9, 22, 0, 50, tzinfo=UTC))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """One real redis-server for the session (unix socket + AOF in a temp dir)."""
    proc = RedisProcess(tmp_path_factory.mktemp("redis"))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
async def redis(redis_server: RedisProcess) -> AsyncIterator[aioredis.Redis]:
    """An async client to the session's redis-server, emptied before each test."""
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server of this test's own, for tests that stop, kill or restart it."""
    proc = RedisProcess(tmp_path / "redis-own")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
async def api() -> AsyncIterator[SlackApi]:
    """A recording loopback Slack Web API knowing two workspaces' bot tokens."""
    async with SlackApi(tokens={TOKEN: "T0001", TOKEN_T2: "T0002"}) as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A real 3-master Redis Cluster on loopback for the session."""
    cluster = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    """A real master + replica + sentinel on loopback for the session (tests may fail it over)."""
    sentinels = SentinelSet(tmp_path_factory.mktemp("sentinel"))
    try:
        sentinels.start()
        yield sentinels
    finally:
        sentinels.stop()
