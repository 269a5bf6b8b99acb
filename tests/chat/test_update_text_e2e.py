"""`<https://status.example/x>` and `error rate < 5% > baseline` in an official update, from a
loopback status page through watcher, Redis, delivery and the real senders to loopback Slack and
Discord, and out of `/aistatus status`: normalised once, escaped per platform, never dropped."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from discord.http import Route
from slack_sdk.web.async_client import AsyncWebClient

from bot.chat import actions
from bot.chat.actions import Services
from bot.chat.discord.render import to_discord_reply
from bot.chat.discord.sender import DiscordSender, configure_api_base, open_rest_client
from bot.chat.slack.render import escape, to_slack_reply
from bot.chat.slack.sender import SlackSender
from bot.core.model import ChannelRef, CommandContext, Platform, Reply
from bot.delivery.engine import Delivery
from bot.ops.demo import with_update
from bot.ops.statusserver import StatusServer
from bot.store.surfaces import SurfaceStore
from bot.watch.watcher import Watcher
from tests.conftest import ManualClock
from tests.helpers import FAST, TOKEN, Recorder, catalog_for, fixture_json, play
from tests.peers.discord_api import TOKEN as DISCORD_TOKEN
from tests.peers.discord_api import DiscordAPI
from tests.peers.slack_api import SlackApi

LINK = "<https://status.example/x>"
COMPARISON = "error rate < 5% > baseline"
BODY = f"We see an {COMPARISON} on Opus.\r\nDetails: {LINK}"
SLACK_QUOTE = (
    "> We see an error rate &lt; 5% &gt; baseline on Opus.\n"
    "> Details: &lt;https://status.example/x&gt;"
)
DISCORD_QUOTE = f"> We see an {COMPARISON} on Opus.\n> Details: {LINK}"
AT_0230 = datetime(2026, 9, 22, 2, 30, tzinfo=UTC)
SLACK = ChannelRef(Platform.SLACK, "T0001", "C0001")
DISCORD = ChannelRef(Platform.DISCORD, "1100000000000000001", "1100000000000000002")


@dataclass
class Told:
    """What each platform's API accepted, and what `/aistatus status api` answered."""

    slack: SlackApi
    discord: DiscordAPI
    status: Reply


@pytest.fixture
async def told(redis) -> AsyncIterator[Told]:
    clock = ManualClock(datetime(2026, 9, 22, 0, 50, tzinfo=UTC))
    before = Route.BASE
    investigating = fixture_json("claude/summary_incident_investigating.json")
    pages = [
        ("00:50", fixture_json("claude/summary_all_operational.json")),
        ("01:01", investigating),
        (
            "02:30",
            with_update(investigating, AT_0230, status="identified", body=BODY, update_id="u2"),
        ),
    ]
    async with (
        StatusServer() as page,
        httpx.AsyncClient(timeout=2.0) as client,
        SlackApi(tokens={TOKEN: SLACK.workspace}) as slack,
    ):
        discord = await DiscordAPI().start()
        configure_api_base(discord.url)
        rest = await open_rest_client(DISCORD_TOKEN)
        try:
            catalog = catalog_for(page.url)
            store = SurfaceStore(redis)
            watcher = Watcher(catalog, store, client, Recorder(), clock)
            svc = Services.over(redis, catalog, on_crowd=watcher.on_crowd, surfaces=store)
            for channel in (SLACK, DISCORD):
                await svc.subscriptions.subscribe(
                    channel, ["api"], all_claude=False, user="U1", now=clock()
                )
            web = AsyncWebClient(token=TOKEN, base_url=slack.base_url, timeout=2, retry_handlers=[])
            senders = {Platform.SLACK: SlackSender(web), Platform.DISCORD: DiscordSender(rest)}
            delivery = Delivery(
                redis,
                senders,
                store,
                svc.subscriptions,
                catalog,
                config=FAST,
                clock=clock,
                rng=random.Random(1),
            )
            await play(pages, page=page, watcher=watcher, delivery=delivery, clock=clock)
            ctx = CommandContext(SLACK, "U1", "maria", clock(), can_manage=True)
            status = await actions.handle("status api", ctx, svc)
            yield Told(slack, discord, status)
        finally:
            await rest.close()
            Route.BASE = before
            await discord.close()


def slack_texts(call: Any) -> str:
    """Every mrkdwn text of a Slack message's coloured details, joined."""
    return "\n".join(
        block["text"]["text"]
        for attachment in call.params.get("attachments", [])
        for block in attachment["blocks"]
        if "text" in block
    )


async def test_slack_shows_the_link_and_the_comparison_escaped(told: Told) -> None:
    edit, reply = told.slack.accepted_to("chat.update")[-1], told.slack.accepted[-1]
    assert reply.method == "chat.postMessage" and reply.params["thread_ts"]
    for call in (edit, reply):
        assert SLACK_QUOTE in slack_texts(call)
        assert "<https://status.example" not in str(call.params), "never a raw Slack link"


async def test_discord_shows_the_link_and_the_comparison_as_written(told: Told) -> None:
    edit = told.discord.find("PATCH", f"/channels/{DISCORD.channel}/messages/")[-1]
    posts = [c for c in told.discord.find("POST", "/channels/") if c.path.endswith("/messages")]
    thread_post = posts[-1]
    assert thread_post.path != f"/channels/{DISCORD.channel}/messages", "in the outage's thread"
    for call in (edit, thread_post):
        assert DISCORD_QUOTE in call.json["embeds"][0]["description"]


async def test_the_status_reply_quotes_the_update_with_its_link(told: Told) -> None:
    quoted = f"> We see an {COMPARISON} on Opus. Details: {LINK}"  # on one line
    assert quoted in told.status.text.splitlines()
    [section] = to_slack_reply(told.status)["blocks"]
    assert "> " + escape(quoted[2:]) in section["text"]["text"].splitlines()  # a block quote
    discord = to_discord_reply(told.status)
    assert quoted in discord["embeds"][0]["description"].splitlines()
