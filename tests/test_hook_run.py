"""The status-page push end to end: `aistatus run` (a real process) with Slack on loopback and
a poll interval far too long to matter; a webhook delivery makes it poll the page at once, and
the alert reaches the Slack API within seconds, not at the next scheduled poll."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from bot.ops.hook import HOOK_PREFIX
from bot.ops.redisproc import free_port
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

HOOK_SECRET = "hook-secret-for-the-test-0123456789"
POLL_INTERVAL = 600.0  # seconds: only the hook can explain an alert inside the test


async def test_a_status_page_hook_makes_the_alert_arrive_without_waiting_for_the_poll(
    tmp_path: Path, redis, redis_server
):
    await subscribe_api(redis)
    hook_port = free_port()
    async with SlackApi(tokens={TOKEN: "T0001"}) as api, StatusServer() as claude:
        claude.set_summary(fixture_json("claude/summary_all_operational.json"))
        env = slack_run_env(
            api.base_url,
            redis_server.url,
            claude_only(tmp_path, claude.url),
            AISTATUS_POLL_INTERVAL=str(POLL_INTERVAL),
            AISTATUS_HOOK_SECRET=HOOK_SECRET,
            AISTATUS_HOOK_PORT=str(hook_port),
        )

        def alerts() -> int:
            return sum("blocks" in c.params for c in api.accepted_to("chat.postMessage", "C0001"))

        hook = f"http://127.0.0.1:{hook_port}{HOOK_PREFIX}{HOOK_SECRET}"
        delivery = {"page": {"id": "tymt9n04zgry"}, "incident": {"name": "not believed"}}
        async with aistatus_run(env, tmp_path) as bot, asyncio.timeout(60):
            await bot.err.wait_for("status-page hook listening", within=30)
            await claude.wait_for_requests(1, within=20)  # the scheduler's first poll
            claude.set_summary(fixture_json("claude/summary_incident_investigating.json"))
            async with httpx.AsyncClient() as http:
                sent = time.monotonic()
                answer = await http.post(hook, json=delivery)
                # Bounded at 10 s (the target is <= 3 s, see `python -m bench detect`); the
                # next scheduled poll is 600 s away.
                await api.wait_until(lambda: alerts() == 1, within=10)
                took = time.monotonic() - sent
                forged = await http.post(hook[:-1], json=delivery)
            _, logs = await bot.stop()
    assert answer.status_code == 202 and forged.status_code == 404
    assert took < 10, f"the hook, not the poll, brought the alert ({took:.1f} s)"
    assert bot.proc.returncode == 0, logs[-3000:]
    assert "transition api start" in logs
    assert HOOK_SECRET not in logs, "the secret is the URL's only protection: never logged"
