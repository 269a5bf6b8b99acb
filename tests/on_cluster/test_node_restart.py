"""A Redis Cluster master restarted in the middle of the recorded incident: /readyz is 503 while
its slots are down and 200 once they are back, and every channel still gets each alert once."""

from __future__ import annotations

import asyncio

from bot.ops.health import readiness
from bot.store import keys
from tests.chat.slack.test_slack_replay import THREADED, channel_calls, replay_with_midway
from tests.redis_topologies import Cluster


async def test_a_master_restarted_mid_incident_loses_no_alert_and_duplicates_none(
    redis, redis_cluster: Cluster
):
    ready = readiness(redis, lambda: False)
    seen: list[bool] = []

    async def restart() -> None:  # the master of the outbox's slot (and of the readiness key)
        node = redis_cluster.node_of(keys.readiness())
        await asyncio.to_thread(node.stop)
        seen.append((await ready())[0])
        await asyncio.to_thread(redis_cluster.start_again, node)
        while not (await ready())[0]:  # noqa: ASYNC110 (a Redis condition; bounded by the replay)
            await asyncio.sleep(0.1)
        seen.append(True)

    api = await replay_with_midway(redis, restart)
    assert seen == [False, True]  # 503 while its slots were down, 200 after
    assert await ready() == (True, "ok")
    for channel in ("C1", "C2"):
        assert [m for m, _ in channel_calls(api, channel)] == THREADED, channel
