"""`aistatus run` as an operator runs it: a real process with its own private redis-server,
watching loopback status pages, printing to the console when no chat platform is configured (and
only then), serving /healthz and /metrics, and stopping cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx

from bot.ops.redisproc import free_port
from bot.ops.statusserver import StatusServer
from tests.helpers import (
    TOKEN,
    aistatus_run,
    claude_only,
    fixture_json,
    slack_run_env,
    subscribe_api,
    without_platforms,
)
from tests.peers.slack_api import SlackApi


async def test_run_watches_prints_transitions_serves_health_and_stops_its_redis(tmp_path: Path):
    port = free_port()
    async with StatusServer() as claude:
        claude.set_summary(fixture_json("claude/summary_all_operational.json"))
        env = without_platforms(os.environ)
        env.update(
            AISTATUS_CATALOG=str(claude_only(tmp_path, claude.url)),
            AISTATUS_PROBES="false",
            AISTATUS_POLL_INTERVAL="0.5",
            AISTATUS_DATA_DIR=str(tmp_path / "data"),
            AISTATUS_HTTP_PORT=str(port),
        )
        async with aistatus_run(env, tmp_path) as bot, asyncio.timeout(30):
            await claude.wait_for_requests(2, within=20)
            claude.set_summary(fixture_json("claude/summary_incident_investigating.json"))
            await bot.out.wait_for("alert (start)", within=10)
            async with httpx.AsyncClient() as http:
                health = await http.get(f"http://127.0.0.1:{port}/healthz")
                ready = await http.get(f"http://127.0.0.1:{port}/readyz")
                metrics = await http.get(f"http://127.0.0.1:{port}/metrics")
            printed, logs = await bot.stop()
    assert bot.proc.returncode == 0, logs[-2000:]
    assert health.status_code == 200 and ready.status_code == 200
    assert 'aistatus_transitions_total{kind="start",surface="api"} 1.0' in metrics.text
    assert "START" in printed and "Claude API" in printed and "Elevated errors" in printed
    assert not (tmp_path / "data" / "redis" / "redis.sock").exists(), "its redis-server stopped"
    assert (tmp_path / "data" / "redis" / "appendonlydir").exists(), "with an AOF kept on disk"
    assert "Traceback" not in logs


async def test_run_with_slack_alerts_the_channel_and_prints_no_alert(
    tmp_path: Path, redis, redis_server
):
    await subscribe_api(redis)
    async with SlackApi(tokens={TOKEN: "T0001"}) as api, StatusServer() as claude:
        claude.set_summary(fixture_json("claude/summary_all_operational.json"))
        env = slack_run_env(api.base_url, redis_server.url, claude_only(tmp_path, claude.url))

        def alerts() -> int:
            return sum("blocks" in c.params for c in api.accepted_to("chat.postMessage", "C0001"))

        async with aistatus_run(env, tmp_path) as bot, asyncio.timeout(60):
            await bot.err.wait_for("Slack: HTTP mode on", within=30)
            await claude.wait_for_requests(2, within=20)
            claude.set_summary(fixture_json("claude/summary_incident_investigating.json"))
            await api.wait_until(lambda: alerts() == 1, within=15)
            # A later poll's alert: by then the poll that recorded the start has long finished.
            claude.set_summary(fixture_json("claude/summary_recovered.json"))
            await api.wait_until(lambda: alerts() == 2, within=15)
            printed, logs = await bot.stop()
    assert bot.proc.returncode == 0, logs[-3000:]
    assert "transition api start" in logs and "transition api recovery" in logs
    assert printed == "", "with a chat platform the console sink is off: nothing on stdout"


async def test_run_without_a_redis_server_says_how_to_get_one(tmp_path: Path):
    env = {**os.environ, "AISTATUS_REDIS_SERVER": "no-such-redis-server-binary"}
    env.pop("REDIS_URL", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
    )  # fmt: skip
    async with asyncio.timeout(30):
        _, err = await proc.communicate()
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert "apt-get install -y redis-server" in lines[0] and "REDIS_URL" in lines[0]


async def test_run_with_an_unreachable_redis_url_names_the_setting(tmp_path: Path):
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
    )  # fmt: skip
    async with asyncio.timeout(60):
        _, err = await proc.communicate()
    assert proc.returncode == 2
    assert "REDIS_URL" in err.decode() and "Traceback" not in err.decode()


async def test_run_with_discord_unreachable_says_so_in_one_line(tmp_path: Path, redis_server):
    env = {
        **os.environ,
        "REDIS_URL": redis_server.url,
        "DISCORD_TOKEN": "not-a-real-token",
        "DISCORD_API_URL": f"http://127.0.0.1:{free_port()}/api/v10",
        "AISTATUS_PROBES": "false",
        "AISTATUS_HTTP_PORT": "0",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--env-file", os.devnull, "run",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
    )  # fmt: skip
    async with asyncio.timeout(60):
        _, err = await proc.communicate()
    text = err.decode()
    assert proc.returncode == 2, text[-2000:]
    assert "cannot reach Discord at DISCORD_API_URL" in text.splitlines()[-1]
    assert "Traceback" not in text and "not-a-real-token" not in text
