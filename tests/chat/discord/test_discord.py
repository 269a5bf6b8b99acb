"""The Discord edge against a loopback Discord REST server: alerts posted, edited and threaded by
DiscordSender with each error classified, and `/aistatus` interactions driven through the real
discord.py command tree with payloads of Discord's own shape."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from discord.http import HTTPClient, Route

from bot.catalog_file import load_catalog
from bot.chat.discord.client import DiscordBot
from bot.chat.discord.commands import CommandRunner, manifest_text
from bot.chat.discord.sender import (
    DiscordSender,
    configure_api_base,
    env_proxy,
    open_rest_client,
    sweep_buckets_on_a_timer,
)
from bot.chat.replies import FORBIDDEN_TEXT
from bot.clock import utcnow
from bot.core.model import (
    AlertKind,
    ChannelRef,
    CommandContext,
    MessageRef,
    Platform,
    Reply,
    Status,
)
from bot.delivery.engine import deliveries_report
from bot.delivery.side import SideOutbox
from bot.errors import ConfigError, DeliveryError, ErrorKind
from bot.store.outbox import OutboxStore
from tests.helpers import (
    DISCORD_USER,
    MANAGE_CHANNELS,
    ROOT,
    command_layer,
    delivering,
    make_alert,
    no_side,
)
from tests.helpers import discord_callback as callback_of
from tests.helpers import discord_command as command
from tests.helpers import discord_interaction as interaction
from tests.helpers import discord_option as option
from tests.peers.chaos import Chaos
from tests.peers.discord_api import APP_ID, TOKEN, DiscordAPI
from tests.peers.forward_proxy import ForwardProxy

GUILD = "1100000000000000001"
CHANNEL = "1100000000000000002"
USER = DISCORD_USER
WHERE = ChannelRef(Platform.DISCORD, GUILD, CHANNEL)
MANIFEST = ROOT / "manifests" / "discord-commands.json"


@pytest.fixture
async def api() -> AsyncIterator[DiscordAPI]:
    server = await DiscordAPI().start()
    before = Route.BASE
    configure_api_base(server.url)
    yield server
    Route.BASE = before
    await server.close()


@pytest.fixture
async def sender(api: DiscordAPI) -> AsyncIterator[DiscordSender]:
    http = await open_rest_client(TOKEN)
    yield DiscordSender(http)
    await http.close()


# -- the sender ------------------------------------------------------------------------------------


async def test_post_sends_the_embed_and_returns_the_message_id(api, sender):
    ref = await sender.post(WHERE, make_alert())
    (message,) = api.posted(CHANNEL)
    assert ref == MessageRef(WHERE, ts=message["id"])
    assert message["embeds"][0]["title"] == "🟠 claude.ai: partial outage"
    assert [b.get("custom_id") for b in message["components"][0]["components"]] == [
        None,  # the incident link
        "aistatus:mute:1h",
        "aistatus:report:claude.ai",
    ]
    assert all(c.authorized for c in api.find("POST", f"/channels/{CHANNEL}"))


async def test_edit_changes_the_parent_in_place(api, sender):
    ref = await sender.post(WHERE, make_alert())
    recovered = make_alert(
        kind=AlertKind.RECOVERY,
        severity=Status.OPERATIONAL,
        title="Resolved: claude.ai after 5 h",
        update_text=None,
    )
    await sender.edit(ref, recovered)
    (message,) = api.posted(CHANNEL)
    assert message["id"] == ref.ts
    assert message["embeds"][0]["title"] == "✅ Resolved: claude.ai after 5 h"
    assert message["components"] == []
    assert message["edited_timestamp"] is not None


async def test_the_first_update_starts_a_thread_and_later_ones_go_into_it(api, sender):
    parent = await sender.post(WHERE, make_alert())
    first = await sender.reply(
        parent,
        make_alert(kind=AlertKind.UPDATE, title="one", transition_ids=("claude.ai@8",)),
        broadcast=False,
    )
    second = await sender.reply(
        first,
        make_alert(kind=AlertKind.UPDATE, title="two", transition_ids=("claude.ai@9",)),
        broadcast=False,
    )
    assert first == second == MessageRef(WHERE, ts=parent.ts, thread=parent.ts)
    assert api.routes() == [
        "GET /users/@me",
        f"POST /channels/{CHANNEL}/messages",
        f"POST /channels/{CHANNEL}/messages/{parent.ts}/threads",
        f"POST /channels/{parent.ts}/messages",
        f"POST /channels/{parent.ts}/messages",
    ]
    (start,) = api.find("POST", f"/channels/{CHANNEL}/messages/{parent.ts}/threads")
    assert start.json["name"] == "claude.ai — updates"
    assert start.json["auto_archive_duration"] == 1440
    assert [m["content"] for m in api.posted(parent.ts)] == ["🟠 one", "🟠 two"]


async def test_a_redelivered_first_update_reuses_the_thread_already_started(api, sender):
    parent = await sender.post(WHERE, make_alert())
    await sender.reply(parent, make_alert(kind=AlertKind.UPDATE), broadcast=False)
    again = await sender.reply(parent, make_alert(kind=AlertKind.UPDATE), broadcast=False)
    assert again.thread == parent.ts  # 160004: a thread from a message has the message's id
    assert len(api.posted(parent.ts)) == 1  # the same nonce: Discord returns the first message


@pytest.mark.parametrize(
    "code", [50024, 50013, 160005], ids=["no-threads-here", "no-thread-permission", "locked"]
)
async def test_where_threads_are_refused_updates_become_replies_to_the_parent(api, sender, code):
    parent = await sender.post(WHERE, make_alert())
    api.fail(CHANNEL, code, on="thread")
    ref = await sender.reply(
        parent, make_alert(kind=AlertKind.UPDATE, title="worse"), broadcast=False
    )
    assert ref == MessageRef(WHERE, ts=parent.ts, thread=None)
    _, reply = api.posted(CHANNEL)
    assert reply["content"] == "🟠 worse"
    assert reply["message_reference"]["message_id"] == parent.ts


async def test_a_deleted_thread_makes_the_update_a_reply_in_the_channel(api, sender):
    parent = await sender.post(WHERE, make_alert())
    threaded = await sender.reply(parent, make_alert(kind=AlertKind.UPDATE), broadcast=False)
    api.fail(threaded.thread, 10003)
    ref = await sender.reply(threaded, make_alert(kind=AlertKind.UPDATE), broadcast=False)
    assert ref.thread is None
    assert api.posted(CHANNEL)[-1]["message_reference"]["message_id"] == parent.ts


async def test_a_recovery_goes_into_the_thread_and_into_the_channel(api, sender):
    parent = await sender.post(WHERE, make_alert())
    recovery = make_alert(
        kind=AlertKind.RECOVERY,
        severity=Status.OPERATIONAL,
        title="Resolved: claude.ai after 2 h 13 min",
        update_text=None,
    )
    ref = await sender.reply(parent, recovery, broadcast=True)
    assert ref.thread == parent.ts
    assert [m["content"] for m in api.posted(parent.ts)] == [
        "✅ Resolved: claude.ai after 2 h 13 min"
    ]
    in_channel = api.posted(CHANNEL)[-1]
    assert in_channel["content"] == "✅ Resolved: claude.ai after 2 h 13 min"
    assert in_channel["message_reference"]["message_id"] == parent.ts


@pytest.mark.parametrize(
    ("code", "reason"),
    [(50001, "missing_access"), (10003, "unknown_channel"), (50013, "missing_permissions")],
    ids=["missing-access", "unknown-channel", "missing-permissions"],
)
async def test_a_channel_we_cannot_use_is_a_permanent_error(api, sender, code, reason):
    api.fail(CHANNEL, code)
    with pytest.raises(DeliveryError) as e:
        await sender.post(WHERE, make_alert())
    assert (e.value.kind, e.value.reason, e.value.retry_after) == (
        ErrorKind.PERMANENT,
        reason,
        None,
    )


async def test_editing_a_deleted_parent_says_parent_gone(api, sender):
    ref = await sender.post(WHERE, make_alert())
    api.delete_message(CHANNEL, ref.ts)
    with pytest.raises(DeliveryError) as e:
        await sender.edit(ref, make_alert())
    assert (e.value.kind, e.value.reason) == (ErrorKind.PARENT_GONE, "unknown_message")


async def test_threading_under_a_deleted_parent_says_parent_gone(api, sender):
    ref = await sender.post(WHERE, make_alert())
    api.delete_message(CHANNEL, ref.ts)
    with pytest.raises(DeliveryError) as e:
        await sender.reply(ref, make_alert(kind=AlertKind.UPDATE), broadcast=False)
    assert e.value.kind is ErrorKind.PARENT_GONE


async def test_a_server_error_is_transient(api, sender):
    api.fail(CHANNEL, 0, status=503)
    with pytest.raises(DeliveryError) as e:
        await sender.post(WHERE, make_alert())
    assert (e.value.kind, e.value.retry_after) == (ErrorKind.TRANSIENT, None)


async def test_a_post_whose_answer_is_lost_is_repeated_at_once_and_shows_once(api, sender):
    # Discord applies the post, then the connection drops before the answer (twice): the
    # sender repeats it within the call, and the nonce makes the repeats the same message.
    api.chaos = Chaos(lost=1.0)
    with pytest.raises(DeliveryError) as e:
        await sender.post(WHERE, make_alert())  # every answer lost: the call fails at last
    assert e.value.kind is ErrorKind.TRANSIENT
    assert api.faults["lost-applied"] == 3  # the first try and two repeats
    api.chaos = None
    ref = await sender.post(WHERE, make_alert())  # the delivery engine's next attempt
    (message,) = api.posted(CHANNEL)
    assert ref.ts == message["id"]


@pytest.mark.parametrize(("key", "tries"), [("", 1), ("side-1", 3)], ids=["no-key", "keyed"])
async def test_a_lost_answer_to_a_notice_is_repeated_only_when_its_nonce_makes_it_safe(
    api, sender, key, tries
):
    # Without a key a notice carries no nonce, so a repeat could show it twice: not repeated.
    api.chaos = Chaos(lost=1.0)
    with pytest.raises(DeliveryError):
        await sender.notify(WHERE, "aistatus: subscribed", key=key)
    assert api.faults["lost-applied"] == tries
    assert len(api.posted(CHANNEL)) == 1


@pytest.mark.parametrize("is_global", [False, True], ids=["route", "global"])
async def test_a_long_429_becomes_retry_after_without_a_retry_loop(api, sender, is_global):
    api.rate_limit(CHANNEL, 64.5, is_global=is_global)
    with pytest.raises(DeliveryError) as e:
        await sender.post(WHERE, make_alert())
    assert (e.value.kind, e.value.retry_after) == (ErrorKind.RATE_LIMITED, 64.5)
    assert len(api.find("POST", f"/channels/{CHANNEL}/messages")) == 1


async def test_a_short_429_is_waited_out_by_discord_py_itself(api, sender):
    api.rate_limit(CHANNEL, 0.05)
    ref = await sender.post(WHERE, make_alert())
    assert len(api.find("POST", f"/channels/{CHANNEL}/messages")) == 2
    assert [m["id"] for m in api.posted(CHANNEL)] == [ref.ts]


async def test_a_cloudflare_429_uses_the_retry_after_header(api, sender):
    api.rate_limit(CHANNEL, 3600, via=False)
    with pytest.raises(DeliveryError) as e:
        await sender.post(WHERE, make_alert())
    assert e.value.retry_after == 3600


async def test_behind_a_proxy_every_call_goes_through_it(api: DiscordAPI):
    async with ForwardProxy() as proxy:
        http = await open_rest_client(TOKEN, proxy=proxy.url)
        try:
            await DiscordSender(http).post(WHERE, make_alert())
        finally:
            await http.close()
    assert api.posted(CHANNEL)  # it arrived
    assert any(f"/channels/{CHANNEL}/messages" in url for url in proxy.asked)
    assert all(url.startswith(api.url.split("/api")[0]) for url in proxy.asked)


def test_the_proxy_comes_from_the_environment_and_no_proxy_is_honoured(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert env_proxy("https://discord.com/api/v10") == "http://proxy.internal:3128"
    assert env_proxy("https://127.0.0.1:8443/api/v10") is None  # loopback: never proxied
    monkeypatch.setenv("NO_PROXY", "localhost,.discord.com")
    assert env_proxy("https://discord.com/api/v10") is None
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.delenv("NO_PROXY")
    assert env_proxy("https://discord.com/api/v10") is None


async def test_notify_posts_plain_text_that_pings_nobody(api, sender):
    await sender.notify(WHERE, "Alerts to this channel were disabled: @everyone missing access")
    (message,) = api.posted(CHANNEL)
    assert message["content"].startswith("Alerts to this channel were disabled")
    (call,) = api.find("POST", f"/channels/{CHANNEL}/messages")
    assert call.json["allowed_mentions"] == {"parse": []}


async def test_a_rejected_token_is_a_config_error_that_never_shows_the_token(api, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError) as e:
        await open_rest_client("wrong-token-value")
    assert "DISCORD_TOKEN" in str(e.value)
    assert "wrong-token-value" not in caplog.text + str(e.value)


async def test_the_bot_token_never_reaches_the_logs(api, sender, running, caplog):
    caplog.set_level(logging.DEBUG)
    bot = await running(Handler())
    ref = await sender.post(WHERE, make_alert())
    await sender.reply(ref, make_alert(kind=AlertKind.UPDATE), broadcast=True)
    payload = command("status")
    bot._connection.parse_interaction_create(payload)
    await callback_of(api, payload)
    assert caplog.records  # discord.py did log its requests at DEBUG
    assert TOKEN not in caplog.text


# -- interactions ----------------------------------------------------------------------------------


class Handler:
    """Stands in for bot.chat.actions.handle: records what it was asked, answers with `reply`."""

    def __init__(self, reply: Reply | None = None) -> None:
        self.reply = reply or Reply(text="All Claude surfaces are operational.")
        self.seen: list[tuple[str, CommandContext]] = []
        self.release: asyncio.Event | None = None

    async def __call__(self, text: str, ctx: CommandContext) -> Reply:
        self.seen.append((text, ctx))
        if self.release is not None:
            await self.release.wait()
        return self.reply


async def start_bot(
    handler: Any, clock: Any, dev_guild: str | None = GUILD, **runner: Any
) -> DiscordBot:
    bot = DiscordBot(
        CommandRunner(handler, load_catalog(None), clock=clock, **{"side": no_side, **runner}),
        dev_guild_id=int(dev_guild) if dev_guild else None,
    )
    await bot.login(TOKEN)
    return bot


@pytest.fixture
async def running(api, clock) -> AsyncIterator[Any]:
    bots: list[DiscordBot] = []

    async def start(handler: Any, dev_guild: str | None = GUILD, **runner: Any) -> DiscordBot:
        bot = await start_bot(handler, clock, dev_guild, **runner)
        bots.append(bot)
        return bot

    yield start
    for bot in bots:
        await bot.close()


async def test_start_syncs_the_command_group_to_the_dev_guild(api, running):
    await running(Handler())
    (sync,) = api.find("PUT", "/applications/")
    assert sync.path == f"/applications/{APP_ID}/guilds/{GUILD}/commands"
    assert api.commands[0]["name"] == "aistatus"
    assert [o["name"] for o in api.commands[0]["options"]] == [
        "status",
        "subscribe",
        "unsubscribe",
        "list",
        "mute",
        "unmute",
        "report",
        "history",
        "help",
    ]


async def test_without_a_dev_guild_the_commands_are_synced_globally(api, running):
    await running(Handler(), dev_guild=None)
    (sync,) = api.find("PUT", "/applications/")
    assert sync.path == f"/applications/{APP_ID}/commands"


async def test_status_is_answered_privately(api, running, clock):
    handler = Handler()
    bot = await running(handler)
    payload = command("status", [option("surface", "api")])
    bot._connection.parse_interaction_create(payload)
    body = await callback_of(api, payload)
    assert body["type"] == 4
    assert body["data"]["content"] == "All Claude surfaces are operational."
    assert body["data"]["flags"] & 64
    ((text, ctx),) = handler.seen
    assert text == "status api"
    assert ctx == CommandContext(
        channel=WHERE, user_id=USER, user_name="Maria", now=clock(), can_manage=True
    )


def posted_in(api: DiscordAPI, channel: str = CHANNEL) -> list[Any]:
    return api.find("POST", f"/channels/{channel}/messages")


async def queued_side(redis: Any, n: int) -> None:
    """Until `n` side messages wait in the outbox (queued after the interaction's answer)."""
    async with asyncio.timeout(5):
        while len((await deliveries_report(redis)).side) < n:  # noqa: ASYNC110 (Redis)
            await asyncio.sleep(0.02)


async def test_subscribe_is_announced_in_the_channel_with_a_mention(api, running, redis, clock):
    """The answer is the interaction's (private, at once); the announcement is a channel post
    with the bot token, sent by the delivery engine from the outbox."""
    handler = Handler(
        Reply(
            text="Subscribed to Claude API, Claude Code.",
            announce="Maria subscribed this channel to api, code (partial)",
        )
    )
    bot = await running(handler, side=SideOutbox(OutboxStore(redis), clock=clock))
    payload = command(
        "subscribe",
        [
            option("surfaces", "api code"),
            option("min", "partial"),
            option("maintenance", True, kind=5),
        ],
    )
    async with delivering(redis, {Platform.DISCORD: DiscordSender(bot.http)}):
        bot._connection.parse_interaction_create(payload)
        body = await callback_of(api, payload)
        assert body["data"]["flags"] & 64  # the confirmation itself is private
        (announce,) = await api.wait_for(posted_in, within=10)
    assert announce.json["content"] == f"<@{USER}> subscribed this channel to api, code (partial)"
    assert announce.json["allowed_mentions"] == {"parse": []}  # a mention that pings no one
    assert announce.json["enforce_nonce"] is True  # a re-send is the same message
    assert api.find("POST", f"/webhooks/{APP_ID}/{payload['token']}") == []  # no followup
    assert handler.seen[0][0] == "subscribe api code --min partial --maintenance"


async def test_without_manage_channels_the_context_says_so(api, running):
    handler = Handler()
    bot = await running(handler)
    payload = command("subscribe", [option("surfaces", "api")], permissions="0")
    bot._connection.parse_interaction_create(payload)
    await callback_of(api, payload)
    ((_, ctx),) = handler.seen
    assert ctx.can_manage is False


async def test_subscribe_without_manage_channels_is_refused_privately(api, running, redis):
    svc, handler = command_layer(redis)
    bot = await running(handler)
    payload = command("subscribe", [option("surfaces", "api")], permissions="0")
    bot._connection.parse_interaction_create(payload)
    body = await callback_of(api, payload)
    assert body["data"]["embeds"][0]["description"] == FORBIDDEN_TEXT
    assert body["data"].get("content") is None  # said once
    assert body["data"]["flags"] & 64
    assert await svc.subscriptions.get(WHERE) is None


async def test_autocomplete_offers_surfaces_for_a_prefix(api, running):
    bot = await running(Handler())
    payload = command("status", [option("surface", "cl", focused=True)])
    payload["type"] = 4
    bot._connection.parse_interaction_create(payload)
    body = await callback_of(api, payload)
    assert body["type"] == 8
    choices = body["data"]["choices"]
    assert choices[0] == {"name": "claude.ai", "value": "claude.ai"}
    assert len(choices) <= 25


async def test_the_report_button_reports_privately(api, running, sender):
    handler = Handler(Reply(text="Thanks, noted: claude.ai fails for you.", ephemeral=False))
    bot = await running(handler)
    ref = await sender.post(WHERE, make_alert())
    (message,) = api.posted(CHANNEL)
    payload = interaction(
        3,
        {"custom_id": "aistatus:report:claude.ai", "component_type": 2},
        permissions="0",
        message=message,
    )
    bot._connection.parse_interaction_create(payload)
    body = await callback_of(api, payload)
    assert body["data"]["flags"] & 64
    assert handler.seen[0][0] == "report claude.ai"
    assert ref.ts == message["id"]


def press(message: dict[str, Any], custom_id: str, *, permissions: str) -> dict[str, Any]:
    """A press of one of `message`'s buttons (a component interaction)."""
    data = {"custom_id": custom_id, "component_type": 2}
    return interaction(3, data, permissions=permissions, message=message)


async def test_the_mute_button_mutes_answers_privately_and_announces_like_the_command(
    api, running, sender, redis, clock
):
    svc, handler = command_layer(redis)
    bot = await running(handler, side=SideOutbox(OutboxStore(redis), clock=clock))
    subscribed = command("subscribe", [option("surfaces", "all")])
    bot._connection.parse_interaction_create(subscribed)
    await callback_of(api, subscribed)
    await sender.post(WHERE, make_alert())
    (message,) = api.posted(CHANNEL)
    payload = press(message, "aistatus:mute:1h", permissions=MANAGE_CHANNELS)
    bot._connection.parse_interaction_create(payload)
    body = await callback_of(api, payload)
    await queued_side(redis, 2)
    async with delivering(redis, {Platform.DISCORD: sender}):
        await api.wait_for(lambda a: len(posted_in(a)) == 3, within=10)  # the alert, 2 lines

    until = clock() + timedelta(hours=1)
    assert body["data"]["flags"] & 64  # the presser is answered privately
    assert body["data"]["embeds"][0]["description"] == (
        f"Alerts are muted here until <t:{int(until.timestamp())}:t> (for 1 h)."
    )
    subscribe_line, mute_line = [m["content"] for m in api.posted(CHANNEL) if not m["embeds"]]
    assert subscribe_line.startswith(f"<@{USER}> subscribed this channel to")
    assert mute_line == (
        f"<@{USER}> muted aistatus alerts here until <t:{int(until.timestamp())}:t>"
    )  # public, in the channel, exactly what `/aistatus mute 1h` announces
    sub = await svc.subscriptions.get(WHERE)
    assert sub is not None and sub.muted_until == until


async def test_the_mute_button_without_manage_channels_is_refused_and_mutes_nothing(
    api, running, sender, redis
):
    svc, handler = command_layer(redis)
    bot = await running(handler, side=SideOutbox(OutboxStore(redis), clock=utcnow))
    subscribed = command("subscribe", [option("surfaces", "api")])
    bot._connection.parse_interaction_create(subscribed)
    await callback_of(api, subscribed)
    await queued_side(redis, 1)  # the subscribe announcement
    await sender.post(WHERE, make_alert())
    (message,) = api.posted(CHANNEL)
    payload = press(message, "aistatus:mute:1h", permissions="0")
    bot._connection.parse_interaction_create(payload)
    body = await callback_of(api, payload)

    assert body["data"]["flags"] & 64
    assert body["data"]["embeds"][0]["description"] == FORBIDDEN_TEXT
    [queued] = (await deliveries_report(redis)).side  # nothing more announced
    assert queued.side.about == f"subscribe by {USER}"
    sub = await svc.subscriptions.get(WHERE)
    assert sub is not None and sub.muted_until is None


@pytest.mark.parametrize(
    ("sub", "options", "usage"),
    [
        ("mute", [option("duration", "forever")], "/aistatus mute"),
        ("status", [option("surface", "apii")], "/aistatus status"),
    ],
    ids=["bad-duration", "unknown-surface"],
)
async def test_a_users_mistake_is_answered_privately_with_the_usage(
    api, running, redis, sub, options, usage
):
    svc, handler = command_layer(redis)
    bot = await running(handler)
    payload = command(sub, options)
    bot._connection.parse_interaction_create(payload)
    body = await callback_of(api, payload)
    *_, said = body["data"]["embeds"][0]["description"].split("\n")
    assert said.startswith(f"Usage: `{usage}")
    assert body["data"]["flags"] & 64
    assert await svc.subscriptions.get(WHERE) is None


async def test_a_slow_answer_is_deferred_then_filled_in(api, running):
    handler = Handler(Reply(text="History of api: no outages in 7 days."))
    handler.release = asyncio.Event()
    bot = await running(handler, answer_within=0.01)
    payload = command("history", [option("surface", "api"), option("days", 7, kind=4)])
    bot._connection.parse_interaction_create(payload)
    body = await callback_of(api, payload)
    assert body["type"] == 5 and body["data"]["flags"] & 64  # "thinking…", privately
    handler.release.set()
    (edit,) = await api.wait_for(
        lambda a: a.find("PATCH", f"/webhooks/{APP_ID}/{payload['token']}/messages/@original")
    )
    assert edit.json["content"] == "History of api: no outages in 7 days."
    assert handler.seen[0][0] == "history api --days 7"


# -- the manifest ----------------------------------------------------------------------------------


def test_the_checked_in_manifest_matches_the_code():
    assert MANIFEST.read_text("utf-8") == manifest_text(load_catalog(None)), (
        "manifests/discord-commands.json is stale: regenerate it with `aistatus manifests`"
    )


async def test_the_manifest_is_what_the_bot_syncs(api, running):
    await running(Handler())
    assert api.commands == json.loads(MANIFEST.read_text("utf-8"))


# -- wired to the real command layer ---------------------------------------------------------------


async def test_subscribe_through_the_real_command_layer_is_stored_and_announced(
    api, running, redis
):
    svc, handler = command_layer(redis)
    subscriptions = svc.subscriptions
    bot = await running(handler, side=SideOutbox(OutboxStore(redis), clock=utcnow))
    payload = command("subscribe", [option("surfaces", "api code"), option("min", "partial")])
    async with delivering(redis, {Platform.DISCORD: DiscordSender(bot.http)}):
        bot._connection.parse_interaction_create(payload)
        await callback_of(api, payload)
        (announce,) = await api.wait_for(posted_in, within=10)
    assert announce.json["content"].startswith(f"<@{USER}> subscribed this channel to")

    sub = await subscriptions.get(WHERE)
    assert sub is not None
    assert sub.surfaces == frozenset({"api", "code"})
    assert sub.min_severity is Status.PARTIAL_OUTAGE
    assert sub.created_by == USER


def test_the_readme_invite_asks_for_exactly_the_permissions_the_bot_needs():
    from bot.chat.discord.client import invite_permissions

    readme = (ROOT / "README.md").read_text()
    value = invite_permissions().value
    assert f"permissions={value}" in readme and f"`{value}`" in readme


async def test_a_refused_post_into_the_new_thread_falls_back_and_is_remembered(api, sender):
    parent = await sender.post(WHERE, make_alert())
    api.fail(parent.ts, 50013, on="post")  # the thread has the parent's id: Send in Threads denied
    ref = await sender.reply(
        parent, make_alert(kind=AlertKind.UPDATE, title="worse"), broadcast=False
    )
    assert ref.thread is None  # no DeliveryError: the subscription stays enabled
    assert api.posted(CHANNEL)[-1]["message_reference"]["message_id"] == parent.ts
    starts = len(api.find("POST", f"/channels/{CHANNEL}/messages/"))
    second = await sender.post(WHERE, make_alert(title="another outage"))
    await sender.reply(second, make_alert(kind=AlertKind.UPDATE), broadcast=False)
    assert len(api.find("POST", f"/channels/{CHANNEL}/messages/")) == starts  # no thread asked
    assert api.posted(CHANNEL)[-1]["message_reference"]["message_id"] == second.ts


async def test_discord_py_sweeps_its_rate_limit_buckets_on_a_timer_not_per_new_channel(
    monkeypatch,
):
    """discord.py rescans every bucket each time it makes one (quadratic in a fan-out's
    channels); the sender lets that scan run at most once per interval."""
    scans: list[int] = []
    monkeypatch.setattr(
        HTTPClient, "_try_clear_expired_ratelimits", lambda self: scans.append(len(self._buckets))
    )
    http = HTTPClient(asyncio.get_running_loop())
    sweep_buckets_on_a_timer(http, every=3600.0)
    for i in range(1000):  # 1,000 new channels' buckets
        http.get_ratelimit(f"hash:{i}")
    assert scans == []
    sweep_buckets_on_a_timer(http, every=0.0)  # installing twice keeps the first timer
    http.get_ratelimit("hash:one-more")
    assert scans == []
