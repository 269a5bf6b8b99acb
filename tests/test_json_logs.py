"""AISTATUS_LOG_FORMAT=json: every line a real `aistatus run` writes to stderr is one JSON
object, and the lines about a transition carry its surface, provider and outage id."""

from __future__ import annotations

import json

from bot.ops.statusserver import StatusServer
from tests.helpers import (
    TOKEN,
    aistatus_run,
    claude_only,
    fixture_json,
    slack_run_env,
    subscribe_api,
)
from tests.peers.slack_api import SlackApi


async def test_a_json_run_writes_one_object_per_line_with_its_context(
    tmp_path, redis, redis_server
):
    await subscribe_api(redis)
    async with SlackApi(tokens={TOKEN: "T0001"}) as api, StatusServer() as claude:
        claude.set_summary(fixture_json("claude/summary_incident_investigating.json"))
        env = slack_run_env(
            api.base_url,
            redis_server.url,
            claude_only(tmp_path, claude.url),
            AISTATUS_LOG_FORMAT="json",
            AISTATUS_LOG_LEVEL="debug",
        )
        async with aistatus_run(env, tmp_path) as bot:
            await bot.err.wait_for("transition api start", within=30)
            _, err = await bot.stop()
    records = [json.loads(line) for line in err.splitlines()]  # every line parses
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    starts = [r for r in records if r["message"].startswith("transition api start")]
    assert starts and starts[0]["surface"] == "api" and starts[0]["provider"] == "claude"
    assert starts[0]["outage_id"] and starts[0]["outage_id"] in starts[0]["message"]
    assert bot.proc.returncode == 0
