"""Batched script calls (bot.store.connect.Batched) against a real redis-server: calls made
together share round trips, and each caller still gets its own reply, in order, once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.ops.redisproc import RedisProcess
from bot.store.connect import Batched, connect

# INCR a counter; answer its new value and the caller's tag.
COUNT = "local n = redis.call('INCR', KEYS[1]) return {n, ARGV[1]}"


async def connections(redis: Redis) -> int:
    return int((await redis.info("clients"))["connected_clients"])


@pytest.fixture
async def batched(redis_server: RedisProcess, redis: Redis) -> AsyncIterator[Batched]:
    """COUNT, batched, on a client of the production kind (`connect`) of its own (the server
    emptied first, by `redis`)."""
    client = connect(redis_server.url)
    yield Batched(client, client.register_script(COUNT))
    await client.aclose()


async def test_calls_made_together_share_a_connection_and_each_gets_its_own_reply_in_order(
    batched: Batched, redis: Redis
) -> None:
    before = await connections(redis)
    replies = await asyncio.gather(*(batched(["{n}:c"], [f"t{i}"]) for i in range(64)))
    # Each caller its own reply, and the calls ran in the order they were made.
    assert [(int(n), tag.decode()) for n, tag in replies] == [(i + 1, f"t{i}") for i in range(64)]
    # 64 separate script calls in flight at once open a connection each; batched, the
    # first goes alone and the other 63 as one batch after it, on the same connection.
    assert await connections(redis) - before <= 2
    assert int(await redis.get("{n}:c")) == 64


async def test_a_server_that_lost_its_scripts_gets_them_again_and_each_call_runs_once(
    batched: Batched, redis: Redis
) -> None:
    await batched(["{n}:c"], ["first"])
    await redis.script_flush()  # as after a restart without the script cache
    await asyncio.gather(*(batched(["{n}:c"], [f"t{i}"]) for i in range(10)))
    assert int(await redis.get("{n}:c")) == 11  # NOSCRIPT: refused calls ran once, later


async def test_a_cancelled_caller_stops_waiting_and_the_others_get_their_replies(
    batched: Batched, redis: Redis
) -> None:
    tasks = [asyncio.create_task(batched(["{n}:c"], [f"t{i}"])) for i in range(10)]
    await asyncio.sleep(0)  # all ten are queued
    tasks[3].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[3], asyncio.CancelledError)
    assert [d[1].decode() for i, d in enumerate(done) if i != 3] == [
        f"t{i}" for i in range(10) if i != 3
    ]
    # A cancelled waiter's call may still have run; the next caller is unaffected.
    n, tag = await batched(["{n}:c"], ["after"])
    assert tag == b"after" and int(n) == int(await redis.get("{n}:c"))


async def test_redis_away_fails_every_caller_and_the_next_call_works_once_it_is_back(
    own_redis: RedisProcess,
) -> None:
    client = connect(own_redis.url, retries=0)
    try:
        batched = Batched(client, client.register_script(COUNT))
        await batched(["{n}:c"], ["first"])
        own_redis.stop()
        failed = await asyncio.gather(
            *(batched(["{n}:c"], [f"t{i}"]) for i in range(5)), return_exceptions=True
        )
        assert all(isinstance(f, RedisConnectionError) for f in failed), failed
        own_redis.start()
        _, tag = await batched(["{n}:c"], ["back"])
        assert tag == b"back"
    finally:
        await client.aclose()


@pytest.mark.parametrize("calls", [1, 300])
async def test_more_calls_than_a_batch_holds_all_get_replies(batched: Batched, calls: int) -> None:
    replies = await asyncio.gather(*(batched(["{n}:c"], [str(i)]) for i in range(calls)))
    assert [int(n) for n, _ in replies] == list(range(1, calls + 1))  # 300: three batches
