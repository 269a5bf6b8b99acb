"""Sentinel failover followed without a restart: a `SENTINEL FAILOVER` in the middle of the
recorded incident loses no alert and duplicates none; /readyz tells a replica from the master."""

from __future__ import annotations

import asyncio

from bot.ops.health import readiness
from bot.store.connect import connect
from tests.chat.slack.test_slack_replay import THREADED, channel_calls, replay_with_midway
from tests.redis_topologies import SentinelSet


async def test_a_failover_mid_incident_loses_no_alert_and_duplicates_none(
    redis, redis_sentinel: SentinelSet
):
    async def failover() -> None:
        await asyncio.to_thread(redis_sentinel.failover)

    api = await replay_with_midway(redis, failover)
    for channel in ("C1", "C2"):
        assert [m for m, _ in channel_calls(api, channel)] == THREADED, channel


async def test_readyz_is_503_on_a_read_only_replica_and_200_on_the_master(
    redis_sentinel: SentinelSet,
):
    await asyncio.to_thread(redis_sentinel.wait_settled)  # after a failover: the old master demoted
    replica = connect(f"redis://127.0.0.1:{redis_sentinel.replica_port()}/0", retries=1)
    master = connect(redis_sentinel.url)
    try:
        ok, detail = await readiness(replica, lambda: False)()
        assert (ok, detail) == (False, "redis: ReadOnlyError")
        assert await readiness(master, lambda: False)() == (True, "ok")
    finally:
        await replica.aclose()
        await master.aclose()
