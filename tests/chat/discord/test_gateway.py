"""The Discord gateway under supervision, against the loopback gateway of tests/peers: a failed
first connection and an event the parser cannot read are restarted with backoff, a fatal close
code stops the bot non-zero, and /readyz and /metrics show the gateway's state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.catalog_file import load_catalog
from bot.chat.discord.client import DiscordBot, configure_gateway
from bot.chat.discord.commands import CommandRunner
from bot.chat.discord.gateway import GatewaySupervisor
from bot.chat.discord.sender import configure_api_base
from bot.core.model import CommandContext, Reply
from bot.ops.redisproc import RedisProcess, free_port
from tests.helpers import bot_env, loopback_catalog, no_side, running_bot
from tests.peers.discord_api import TOKEN, DiscordAPI


async def _answer(text: str, ctx: CommandContext) -> Reply:
    return Reply(text="ok")


@pytest.fixture
async def api() -> AsyncIterator[DiscordAPI]:
    server = await DiscordAPI().start()
    before, gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    configure_api_base(server.url)
    yield server
    Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = before, gateway
    await server.close()


@contextlib.asynccontextmanager
async def supervised(api: DiscordAPI) -> AsyncIterator[tuple[GatewaySupervisor, list[str]]]:
    client = DiscordBot(CommandRunner(_answer, load_catalog(None), side=no_side))
    client._connection.guild_ready_timeout = 0.1  # no guilds to wait for
    await client.login(TOKEN)
    await configure_gateway(client.http)
    fatal: list[str] = []
    supervisor = GatewaySupervisor(client, on_fatal=fatal.append, first_delay=0.05)
    task = asyncio.create_task(supervisor.run())
    try:
        yield supervisor, fatal
    finally:
        await client.close()
        async with asyncio.timeout(5):
            await asyncio.gather(task, return_exceptions=True)


async def _connected(supervisor: GatewaySupervisor, within: float = 10) -> None:
    async with asyncio.timeout(within):
        while not supervisor.connected:  # noqa: ASYNC110 (set by discord.py's on_ready)
            await asyncio.sleep(0.02)


async def test_a_failed_first_connection_is_retried_and_logged_once(
    api: DiscordAPI, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, "bot.chat.discord.gateway")
    api.gateway_refusals = 3
    async with supervised(api) as (supervisor, fatal):
        assert supervisor.check() == (False, "connecting")
        await _connected(supervisor)
        assert supervisor.check() == (True, "connected")
    assert api.gateway_attempts == 4 and not fatal
    lines = [r.getMessage() for r in caplog.records]
    assert len([m for m in lines if m.startswith("Discord gateway down")]) == 1, lines
    assert "Discord gateway connected again after 3 restart(s)" in lines


async def test_an_event_the_parser_cannot_read_restarts_the_session(
    api: DiscordAPI, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, "bot.chat.discord.gateway")
    api.gateway_bad_event = {"t": "CHANNEL_CREATE", "d": {}}
    async with supervised(api) as (supervisor, fatal):
        await api.wait_for(lambda a: a.gateway_ready >= 2, within=10)
        await _connected(supervisor)
    assert not fatal
    assert any(
        r.getMessage().startswith("Discord gateway failed (KeyError") for r in caplog.records
    )


@pytest.mark.parametrize("code", [4004, 4013, 4014])
async def test_a_fatal_close_code_stops_with_a_reason(api: DiscordAPI, code: int):
    api.gateway_close_code = code
    async with supervised(api) as (supervisor, fatal):
        async with asyncio.timeout(10):
            while not fatal:  # noqa: ASYNC110 (appended by the supervisor's on_fatal)
                await asyncio.sleep(0.02)
        assert supervisor.check() == (False, f"stopped: close code {code}")
    assert len(fatal) == 1 and str(code) in fatal[0]


async def test_a_running_bot_reports_its_gateway_and_exits_non_zero_on_a_reset_token(
    tmp_path: Path, redis, redis_server: RedisProcess
):
    port = free_port()
    api = await DiscordAPI().start()
    api.gateway_refusals = 1000
    env = bot_env(
        DISCORD_TOKEN=TOKEN,
        DISCORD_API_URL=api.url,
        REDIS_URL=redis_server.url,
        AISTATUS_PROBES="false",
        AISTATUS_CATALOG=loopback_catalog(tmp_path / "catalog.json", api.url),
        AISTATUS_HTTP_PORT=str(port),
        AISTATUS_DATA_DIR=str(tmp_path / "data"),
    )
    base = f"http://127.0.0.1:{port}"

    async def gauge(http: httpx.AsyncClient) -> str:
        text = (await http.get(base + "/metrics")).text
        return next(x for x in text.splitlines() if x.startswith("aistatus_chat_connected{"))

    try:
        bot = running_bot(env, tmp_path)
        async with bot as (proc, err, output), asyncio.timeout(60), httpx.AsyncClient() as http:
            await api.wait_for(lambda a: a.gateway_attempts >= 2, within=20)
            ready: Any = (await http.get(base + "/readyz")).json()
            assert ready["ok"] is False and "discord_gateway: reconnecting" in ready["detail"]
            assert await gauge(http) == 'aistatus_chat_connected{platform="discord"} 0.0'
            api.gateway_refusals = 0
            await api.wait_for(lambda a: a.gateway_ready >= 1, within=20)
            await err.wait_for("Discord gateway connected again", within=10)
            resp = await http.get(base + "/readyz")
            assert resp.status_code == 200, resp.text
            assert await gauge(http) == 'aistatus_chat_connected{platform="discord"} 1.0'
            await api.drop_sessions(4004)
            await proc.wait()
    finally:
        await api.close()
    logs = "".join(output)
    assert proc.returncode == 1, logs[-3000:]
    assert "Discord closed the gateway with code 4004" in logs
    assert "DISCORD_TOKEN was reset" in logs
    assert "Traceback" not in logs and TOKEN not in logs
