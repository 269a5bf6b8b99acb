"""A Redis Cluster master restarted in the middle of the recorded incident: /readyz is 503 while
its slots are down and 200 once they are back, and every channel still gets each alert once."""

from __future__ import annotations

import asyncio

from bot.ops.demo import timeline
from bot.ops.health import readiness
from bot.store import keys
from tests.chat.slack.test_slack_replay import C1, C2, QUICK, THREADED, channel_calls, replay_rig
from tests.peers.slack_api import SlackApi
from tests.redis_topologies import Cluster


async def test_a_master_restarted_mid_incident_loses_no_alert_and_duplicates_none(
    redis, redis_cluster: Cluster
):
    ready = readiness(redis, lambda: False)
    async with (
        asyncio.timeout(120),
        SlackApi(tokens={"xoxb-one": "T0001", "xoxb-two": "T0002"}) as api,
        replay_rig(redis, api, tokens=True) as rig,
    ):
        await rig.command(C1, "subscribe all")
        await rig.command(C2, "subscribe api")
        delivery = rig.delivery(QUICK)
        steps = timeline()[1:]
        for i, step in enumerate(steps):
            if i == len(steps) // 2:  # the master of the outbox's slot (and readiness key)
                node = redis_cluster.node_of(keys.readiness())
                await asyncio.to_thread(node.stop)
                assert (await ready())[0] is False
                await asyncio.to_thread(redis_cluster.start_again, node)
                while not (await ready())[0]:  # noqa: ASYNC110 (a Redis condition: no event)
                    await asyncio.sleep(0.1)
            await rig.poll_at(step.at, step.claude)
            await delivery.drain(30)
        assert await ready() == (True, "ok")
    for channel in ("C1", "C2"):
        assert [m for m, _ in channel_calls(api, channel)] == THREADED, channel
