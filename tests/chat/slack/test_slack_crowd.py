"""Crowd reports over signed Slack requests against a running multi-workspace bot: three people
of one workspace tell only that workspace's channels; when people of three workspaces report,
every subscribed channel hears of it, the ones that did not report included."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from urllib.parse import urlencode

import aiohttp

from bot.ops.redisproc import RedisProcess, free_port
from bot.ops.statusserver import StatusServer
from bot.store.installations import RedisInstallationStore
from tests.helpers import (
    CIPHER,
    ENCRYPTION_KEY,
    SECRET,
    bot_env,
    command_form,
    fixture_json,
    installation,
    loopback_catalog,
    no_side,
    running_bot,
    sign,
)
from tests.peers.slack_api import SlackApi

FORM = "application/x-www-form-urlencoded"
TEAMS = {f"T{i}": f"xoxb-team-{i}" for i in range(1, 5)}  # T4 never reports


def channel_of(team: str) -> str:
    return f"C{team[1:]}"


async def test_crowd_suspicion_reaches_only_reporting_teams_until_it_spreads(
    tmp_path: Path, redis, redis_server: RedisProcess
):
    for team, token in TEAMS.items():
        await RedisInstallationStore(redis, CIPHER).async_save(installation(team, token))
    slack_port = free_port()
    async with (
        SlackApi(tokens={t: team for team, t in TEAMS.items()}) as api,
        StatusServer() as claude,
        aiohttp.ClientSession() as session,
    ):
        claude.set_summary(fixture_json("claude/summary_all_operational.json"))
        env = bot_env(
            SLACK_CLIENT_ID="111.222",
            SLACK_CLIENT_SECRET="client-secret",
            SLACK_SIGNING_SECRET=SECRET,
            AISTATUS_ENCRYPTION_KEY=ENCRYPTION_KEY,
            AISTATUS_SLACK_MODE="http",
            AISTATUS_SLACK_PORT=str(slack_port),
            AISTATUS_SLACK_REDIRECT_URI=f"http://127.0.0.1:{slack_port}/slack/oauth_redirect",
            SLACK_API_URL=api.base_url,
            REDIS_URL=redis_server.url,
            AISTATUS_CATALOG=loopback_catalog(tmp_path / "catalog.json", claude.url),
            AISTATUS_PROBES="false",
            AISTATUS_POLL_INTERVAL="0.5",
            AISTATUS_HTTP_PORT=str(free_port()),
            AISTATUS_DATA_DIR=str(tmp_path / "data"),
        )
        url = f"http://127.0.0.1:{slack_port}/slack/events"
        sent = 0

        async def slash(team: str, user: str, text: str) -> None:
            nonlocal sent
            form = {**command_form(api, text, team=team), "user_id": user}
            form["channel_id"] = channel_of(team)
            body = urlencode(form)
            headers = {**sign(body, secret=SECRET), "Content-Type": FORM}
            async with asyncio.timeout(3), session.post(url, data=body, headers=headers) as r:
                assert r.status == 200, await r.text()
            sent += 1
            await api.wait_for("respond:cmd", count=sent, within=10)

        def alerts(team: str) -> list[dict]:
            return [
                c.params
                for c in api.accepted_to("chat.postMessage", channel_of(team))
                if "blocks" in c.params
            ]

        async with running_bot(env, tmp_path) as (proc, err, logs), asyncio.timeout(90):
            await err.wait_for("Slack: HTTP mode on", within=30)
            for team in TEAMS:
                await slash(team, "UADMIN", "subscribe all")
            for user in ("U1", "U2", "U3"):
                await slash("T1", user, "report claude.ai")
            await api.wait_until(lambda: bool(alerts("T1")), within=15)
            await err.wait_for("-> 1 channels", within=10)  # the fan-out chose T1 only
            assert not any(alerts(t) for t in ("T2", "T3", "T4"))
            for team in ("T2", "T3"):
                for user in ("U1", "U2"):
                    await slash(team, user, "report claude.ai")
            await api.wait_until(lambda: all(alerts(t) for t in ("T2", "T3", "T4")), within=15)
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
    text = "".join(logs)
    assert proc.returncode == 0, text[-3000:]
    assert "Traceback" not in text, text[text.find("Traceback") - 500 :][:3000]
    first_t1 = alerts("T1")[0]
    assert "thread_ts" not in first_t1
    for team in ("T2", "T3", "T4"):  # each hears of it first as a start: a parent, no thread
        assert "thread_ts" not in alerts(team)[0]


async def test_in_single_workspace_mode_a_foreign_team_id_is_the_installed_workspace():
    from bot.chat.slack.app import build_slack_app, run_http_mode
    from bot.core.model import CommandContext, Reply
    from bot.settings import Settings
    from tests.helpers import TOKEN

    seen: list[CommandContext] = []

    async def handler(text: str, ctx: CommandContext) -> Reply:
        seen.append(ctx)
        return Reply(text="ok")

    async with SlackApi(tokens={TOKEN: "T0001"}) as api, aiohttp.ClientSession() as session:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            slack_bot_token=TOKEN,
            slack_signing_secret=SECRET,
            slack_api_url=api.base_url,
            slack_mode="http",
        )
        app = build_slack_app(settings, handler=handler, home=handler, side=no_side)  # type: ignore[arg-type]
        server = await run_http_mode(app, "127.0.0.1", 0)
        try:
            body = urlencode(command_form(api, "report claude.ai", team="TFOREIGN"))
            headers = {**sign(body, secret=SECRET), "Content-Type": FORM}
            async with asyncio.timeout(3), session.post(server.url, data=body, headers=headers):
                pass
            await api.wait_for("respond:cmd", within=5)
        finally:
            await server.stop()
    assert [c.channel.workspace for c in seen] == ["T0001"]
