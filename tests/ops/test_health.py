"""The operators' endpoints over real HTTP on loopback, with `aistatus run`'s readiness check
against a real redis-server that the test stops."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client import CollectorRegistry

from bot.ops.health import build_health_app, readiness, start_health_server
from bot.ops.redisproc import RedisProcess, free_port
from bot.store.connect import connect


@dataclass
class Health:
    """The health app of `aistatus run` on loopback; `blind` is what the watcher says."""

    url: str
    blind: bool = False


@pytest.fixture
async def health(own_redis: RedisProcess) -> AsyncIterator[Health]:
    """Ready while `own_redis` answers."""
    redis = connect(own_redis.url, retries=1)
    port = free_port()
    served = Health(f"http://127.0.0.1:{port}")
    app = build_health_app(readiness(redis, lambda: served.blind), registry=CollectorRegistry())
    runner = await start_health_server(app, "127.0.0.1", port)
    try:
        yield served
    finally:
        await runner.cleanup()
        await redis.aclose()


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10.0) as http, asyncio.timeout(15):
        return await http.get(url)


async def test_readyz_is_200_while_redis_answers(health):
    ready = await get(health.url + "/readyz")
    assert ready.status_code == 200 and ready.json() == {"ok": True, "detail": "ok"}


async def test_readyz_is_503_once_redis_cannot_be_reached(health, own_redis):
    assert (await get(health.url + "/readyz")).status_code == 200
    await asyncio.to_thread(own_redis.stop)

    ready = await get(health.url + "/readyz")

    assert ready.status_code == 503
    assert ready.json()["ok"] is False and ready.json()["detail"].startswith("redis: ")
    assert (await get(health.url + "/healthz")).status_code == 200, "alive, just not ready"


async def test_readyz_stays_ready_but_says_so_while_monitoring_is_blind(health):
    health.blind = True
    ready = await get(health.url + "/readyz")
    assert ready.status_code == 200 and ready.json() == {"ok": True, "detail": "monitoring blind"}
