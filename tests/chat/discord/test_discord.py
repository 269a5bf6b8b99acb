"""The Discord edge against a loopback Discord REST server: alerts posted, edited and threaded by
DiscordSender with each error classified, and `/aistatus` interactions driven through the real
discord.py command tree with payloads of Discord's own shape."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from discord.http import Route

from bot.catalog_file import load_catalog
from bot.chat.discord.client import DiscordBot
from bot.chat.discord.commands import CommandRunner, manifest_text
from bot.chat.discord.sender import DiscordSender, configure_api_base, open_rest_client
from bot.chat.replies import FORBIDDEN_TEXT
from bot.core.model import (
    AlertKind,
    ChannelRef,
    CommandContext,
    MessageRef,
    Platform,
    Reply,
    Status,
)
from bot.errors import ConfigError, DeliveryError, ErrorKind
from tests.helpers import ROOT, command_layer, make_alert
from tests.peers.chaos import Chaos
from tests.peers.discord_api import APP_ID, TOKEN, DiscordAPI

GUILD = "1100000000000000001"
CHANNEL = "1100000000000000002"
USER = "1100000000000000003"
MANAGE_CHANNELS = str(1 << 4)
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
    assert message["components"][0]["components"][1]["custom_id"] == "aistatus:report:claude.ai"
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


async def test_a_lost_answer_to_a_plain_notice_is_not_repeated(api, sender):
    api.chaos = Chaos(lost=1.0)  # a notice carries no nonce: a repeat could show it twice
    with pytest.raises(DeliveryError):
        await sender.notify(WHERE, "aistatus: subscribed")
    assert api.faults["lost-applied"] == 1
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

_ids = itertools.count(1_250_000_000_000_000_000)


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
        CommandRunner(handler, load_catalog(None), clock=clock, **runner),
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


def interaction(
    kind: int,
    data: dict[str, Any],
    *,
    permissions: str = MANAGE_CHANNELS,
    message: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An INTERACTION_CREATE payload as Discord sends it from a guild text channel."""
    user = {
        "id": USER,
        "username": "maria",
        "discriminator": "0",
        "global_name": "Maria",
        "avatar": None,
        "public_flags": 0,
    }
    payload: dict[str, Any] = {
        "id": str(next(_ids)),
        "application_id": APP_ID,
        "type": kind,
        "token": f"interaction-token-{next(_ids)}",
        "version": 1,
        "guild_id": GUILD,
        "channel_id": CHANNEL,
        "channel": {
            "id": CHANNEL,
            "type": 0,
            "guild_id": GUILD,
            "name": "ops",
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
            "topic": None,
            "last_message_id": None,
            "permissions": permissions,
        },
        "member": {
            "user": user,
            "roles": [],
            "joined_at": "2025-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
            "avatar": None,
            "premium_since": None,
            "permissions": permissions,
            "communication_disabled_until": None,
        },
        "app_permissions": "562949953421311",
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": GUILD},
        "context": 0,
        "attachment_size_limit": 10485760,
        "data": data,
    }
    if message is not None:
        payload["message"] = message
    return payload


def command(sub: str, options: list[dict[str, Any]] | None = None, **kw: Any) -> dict[str, Any]:
    data = {
        "id": "1300000000000000009",
        "name": "aistatus",
        "type": 1,
        "guild_id": GUILD,
        "options": [{"name": sub, "type": 1, "options": options or []}],
    }
    return interaction(2, data, **kw)


def option(name: str, value: Any, kind: int = 3, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "value": value, **extra}


async def callback_of(api: DiscordAPI, payload: dict[str, Any]) -> dict[str, Any]:
    path = f"/interactions/{payload['id']}/{payload['token']}/callback"
    (call,) = await api.wait_for(lambda a: a.find("POST", path))
    return call.json


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


async def test_subscribe_is_announced_in_the_channel_with_a_mention(api, running):
    handler = Handler(
        Reply(
            text="Subscribed to Claude API, Claude Code.",
            announce="Maria subscribed this channel to api, code (partial)",
        )
    )
    bot = await running(handler)
    payload = command(
        "subscribe",
        [
            option("surfaces", "api code"),
            option("min", "partial"),
            option("maintenance", True, kind=5),
        ],
    )
    bot._connection.parse_interaction_create(payload)
    body = await callback_of(api, payload)
    assert body["data"]["flags"] & 64  # the confirmation itself is private
    (followup,) = await api.wait_for(
        lambda a: a.find("POST", f"/webhooks/{APP_ID}/{payload['token']}")
    )
    assert (
        followup.json["content"] == "<@" + USER + "> subscribed this channel to api, code (partial)"
    )
    assert not followup.json.get("flags", 0) & 64  # the announcement is public
    assert followup.json["allowed_mentions"] == {"parse": []}
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
    assert body["data"]["content"] == FORBIDDEN_TEXT
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
    bot = await running(handler)
    payload = command("subscribe", [option("surfaces", "api code"), option("min", "partial")])
    bot._connection.parse_interaction_create(payload)
    await callback_of(api, payload)
    (followup,) = await api.wait_for(
        lambda a: a.find("POST", f"/webhooks/{APP_ID}/{payload['token']}")
    )
    assert followup.json["content"].startswith(f"<@{USER}> subscribed this channel to")

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
