"""The private redis-server that `aistatus run` owns."""

from __future__ import annotations

import redis.asyncio as aioredis

from bot.ops.redisproc import RedisProcess


async def test_it_keeps_data_across_a_restart_through_the_aof(tmp_path):
    proc = RedisProcess(tmp_path / "data")
    proc.start()
    client = aioredis.Redis.from_url(proc.url)
    await client.set("k", "v")
    await client.aclose()
    proc.stop()
    assert not proc.running
    proc.start()
    client = aioredis.Redis.from_url(proc.url)
    assert await client.get("k") == b"v"
    await client.aclose()
    proc.stop()


async def test_the_shared_fixture_is_a_real_server(redis):
    info = await redis.info("server")
    assert info["redis_version"]
    await redis.set("x", 1)
    assert await redis.incr("x") == 2
