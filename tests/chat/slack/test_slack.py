"""The Slack edge against real sockets: SlackSender against the loopback Slack Web API, the Bolt
app over signed HTTP requests and over Socket Mode, App Home, and the Redis installation store."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from slack_sdk.web.async_client import AsyncWebClient

from bot.chat.ports import CommandHandler
from bot.chat.replies import INTERNAL_ERROR_TEXT
from bot.chat.slack.app import build_slack_app, run_http_mode, run_socket_mode
from bot.chat.slack.render import (
    ACTION_MUTE,
    ACTION_OPEN,
    ACTION_REPORT,
    to_home_view,
    to_slack_parent,
    to_slack_thread_reply,
)
from bot.chat.slack.sender import SlackSender, slack_error, slack_web_client
from bot.core.model import (
    Alert,
    AlertKind,
    ChannelRef,
    CommandContext,
    MessageRef,
    Platform,
    Reply,
    Section,
    Status,
)
from bot.delivery.engine import deliveries_report
from bot.errors import ConfigError, DeliveryError, ErrorKind
from bot.settings import Settings
from bot.store import keys
from bot.store.installations import RedisInstallationStore, RedisOAuthStateStore
from tests.helpers import (
    CIPHER,
    SECRET,
    TOKEN,
    TOKEN_T2,
    command_form,
    command_layer,
    delivering,
    installation,
    no_side,
    sign,
)
from tests.peers.slack_api import SlackApi

APP_TOKEN = "xapp-test-token"
CHANNEL = ChannelRef(Platform.SLACK, "T0001", "C0001")
AT = datetime(2026, 9, 22, 1, 1, tzinfo=UTC)

ALERT = Alert(
    key="7g1qpkyz5gxh",
    kind=AlertKind.START,
    surfaces=("api",),
    surface_names=("Claude API",),
    severity=Status.PARTIAL_OUTAGE,
    title="Elevated errors for multiple models",
    incident_title="Elevated errors for multiple models",
    update_text="We are currently investigating this issue.",
    update_at=AT,
    started_at=AT,
    at=AT,
    duration_text="for 0 min",
    url="https://stspg.io/7g1qpkyz5gxh",
    backups=(),
    suspected=False,
    transition_ids=("api@5",),
)
UPDATE = dataclasses.replace(ALERT, kind=AlertKind.UPDATE, update_text="A fix is being rolled out.")
RECOVERY = dataclasses.replace(
    ALERT, kind=AlertKind.RECOVERY, severity=Status.OPERATIONAL, duration_text="resolved after 1 h"
)


def settings_for(api: SlackApi, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": TOKEN,
        "slack_signing_secret": SECRET,
        "slack_api_url": api.base_url,
        "slack_mode": "http",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def sender(api: SlackApi) -> SlackSender:
    return SlackSender(slack_web_client(settings_for(api)))


# -- SlackSender -----------------------------------------------------------------------------------


async def test_post_sends_the_rendered_parent_and_returns_its_ts(
    api: SlackApi, sender: SlackSender
):
    ref = await sender.post(CHANNEL, ALERT)

    [call] = api.calls_to("chat.postMessage")
    expected = to_slack_parent(ALERT).kwargs()
    assert call.params["channel"] == "C0001"
    assert call.params["text"] == expected["text"]
    assert call.params["blocks"] == expected["blocks"]
    assert call.params["attachments"] == expected["attachments"]
    assert call.params["unfurl_links"] is False
    assert call.team == "T0001"  # sent with the bot token as a Bearer header
    assert ref == MessageRef(CHANNEL, ts=api.messages[("C0001", ref.ts)]["ts"])


async def test_edit_updates_the_parent_in_place(api: SlackApi, sender: SlackSender):
    ref = await sender.post(CHANNEL, ALERT)
    await sender.edit(ref, UPDATE)

    [call] = api.calls_to("chat.update")
    assert (call.params["channel"], call.params["ts"]) == ("C0001", ref.ts)
    assert call.params["blocks"] == to_slack_parent(UPDATE).kwargs()["blocks"]
    assert api.messages[("C0001", ref.ts)]["attachments"] == list(
        to_slack_parent(UPDATE).attachments
    )


@pytest.mark.parametrize(
    ("alert", "broadcast"),
    [
        pytest.param(UPDATE, False, id="update-in-thread"),
        pytest.param(RECOVERY, True, id="recovery-broadcast"),
    ],
)
async def test_reply_threads_under_the_parent(
    api: SlackApi, sender: SlackSender, alert: Alert, broadcast: bool
):
    parent = await sender.post(CHANNEL, ALERT)
    threaded = await sender.reply(parent, alert, broadcast=broadcast)
    again = await sender.reply(threaded, alert, broadcast=False)

    first, second = api.calls_to("chat.postMessage")[1:]
    assert first.params["thread_ts"] == parent.ts
    assert first.params["reply_broadcast"] is broadcast
    assert first.params["blocks"] == to_slack_thread_reply(alert).kwargs()["blocks"]
    assert second.params["thread_ts"] == parent.ts  # later replies reuse the thread
    assert threaded == again == MessageRef(CHANNEL, ts=parent.ts, thread=parent.ts)


async def test_notify_posts_the_rendered_text_as_it_is_with_its_key_in_the_metadata(
    api: SlackApi, sender: SlackSender
):
    """A side message's text comes rendered (to_slack_announce escapes it): sent unchanged,
    mentions intact, its key findable for a re-send."""
    await sender.notify(CHANNEL, "<@U42> subscribed this channel to api &amp; code", key="k1")
    [call] = api.calls_to("chat.postMessage")
    assert call.params["text"] == "<@U42> subscribed this channel to api &amp; code"
    assert "blocks" not in call.params
    assert call.params["metadata"] == {
        "event_type": "aistatus_side",
        "event_payload": {"delivery": "k1"},
    }


@pytest.mark.parametrize(
    "code",
    ["channel_not_found", "not_in_channel", "is_archived", "account_inactive", "token_revoked"],
)
async def test_a_channel_we_cannot_reach_is_a_permanent_failure(
    api: SlackApi, sender: SlackSender, code: str
):
    api.fail_channel("C0001", code)
    for attempt in (
        sender.post(CHANNEL, ALERT),
        sender.edit(MessageRef(CHANNEL, "1.0"), ALERT),
        sender.reply(MessageRef(CHANNEL, "1.0"), ALERT, broadcast=False),
        sender.notify(CHANNEL, "hi"),
    ):
        with pytest.raises(DeliveryError) as caught:
            await attempt
        assert caught.value.kind is ErrorKind.PERMANENT
        assert caught.value.reason == code
        assert caught.value.retry_after is None


async def test_a_sent_alert_is_found_by_its_delivery_key_and_an_unsent_one_is_not(
    api: SlackApi, sender: SlackSender
):
    assert await sender.find_sent(CHANNEL, ALERT, thread=None) is None
    ref = await sender.post(CHANNEL, ALERT)
    assert await sender.find_sent(CHANNEL, ALERT, thread=None) == ref
    assert await sender.find_sent(CHANNEL, UPDATE, thread=ref) is None


async def test_a_history_read_slack_refuses_skips_the_check_not_the_channel(
    api: SlackApi, sender: SlackSender, caplog: pytest.LogCaptureFixture
):
    """An app without the history scopes: the lost-answer check cannot read, so the alert is
    sent again (never a disabled channel), and the log says so once, with the fix."""
    api.refuse("conversations.history", "missing_scope")
    with caplog.at_level(logging.WARNING, logger="bot.chat.slack.sender"):
        for _ in range(3):
            assert await sender.find_sent(CHANNEL, ALERT, thread=None) is None
    [line] = [r.getMessage() for r in caplog.records if "cannot look" in r.getMessage()]
    assert "missing_scope" in line and "channels:history" in line
    assert len(api.calls_to("conversations.history")) == 3
    assert api.calls_to("conversations.join") == []  # joining would not help


async def test_a_public_channel_posted_to_unjoined_is_joined_to_find_a_lost_answer(
    api: SlackApi, sender: SlackSender
):
    """chat:write.public posts without membership, but Slack refuses that channel's history
    (not_in_channel): before re-sending, the bot joins it once and finds the message there."""
    api.not_joined(CHANNEL.channel)
    ref = await sender.post(CHANNEL, ALERT)  # applied; pretend its answer was lost
    assert await sender.find_sent(CHANNEL, ALERT, thread=None) == ref
    assert await sender.find_sent(CHANNEL, UPDATE, thread=ref) is None  # its thread, too
    assert len(api.calls_to("conversations.join")) == 1
    assert [c.params["channel"] for c in api.calls_to("conversations.join")] == [CHANNEL.channel]


@pytest.mark.parametrize(
    ("refusal", "fix"),
    [("missing_scope", "channels:join"), ("method_not_supported_for_channel_type", "/invite")],
)
async def test_a_channel_it_cannot_join_skips_the_check_and_says_once_how_to_fix_it(
    api: SlackApi, sender: SlackSender, caplog: pytest.LogCaptureFixture, refusal: str, fix: str
):
    """No channels:join scope (an app from an older manifest), or a channel Slack won't let it
    join: the check is skipped (the alert is sent again, the channel never disabled), the join
    is not asked again, and the log says so once, with the fix."""
    api.not_joined(CHANNEL.channel)
    api.refuse("conversations.join", refusal)
    with caplog.at_level(logging.WARNING, logger="bot.chat.slack.sender"):
        for _ in range(3):
            assert await sender.find_sent(CHANNEL, ALERT, thread=None) is None
    [line] = [r.getMessage() for r in caplog.records if "cannot look" in r.getMessage()]
    assert "not_in_channel" in line and refusal in line and fix in line
    assert len(api.calls_to("conversations.join")) == 1


async def test_editing_a_deleted_parent_says_parent_gone(api: SlackApi, sender: SlackSender):
    ref = await sender.post(CHANNEL, ALERT)
    api.delete_message("C0001", ref.ts)
    with pytest.raises(DeliveryError) as edit:
        await sender.edit(ref, UPDATE)
    with pytest.raises(DeliveryError) as reply:
        await sender.reply(ref, UPDATE, broadcast=False)
    assert (edit.value.kind, edit.value.reason) == (ErrorKind.PARENT_GONE, "message_not_found")
    assert (reply.value.kind, reply.value.reason) == (ErrorKind.PARENT_GONE, "thread_not_found")


async def test_a_429_carries_slacks_retry_after(api: SlackApi, sender: SlackSender):
    api.rate_limit("chat.postMessage", retry_after="7")
    with pytest.raises(DeliveryError) as caught:
        await sender.post(CHANNEL, ALERT)
    assert caught.value.retry_after == 7.0
    assert caught.value.kind is ErrorKind.RATE_LIMITED
    assert len(api.calls_to("chat.postMessage")) == 1  # no hidden retry: the engine decides
    await sender.post(CHANNEL, ALERT)  # and the next attempt goes through


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_server_error_is_transient(api: SlackApi, sender: SlackSender, status: int):
    api.server_error("chat.update", status=status)
    with pytest.raises(DeliveryError) as caught:
        await sender.edit(MessageRef(CHANNEL, "1.0"), ALERT)
    assert caught.value.kind is ErrorKind.TRANSIENT
    assert caught.value.retry_after is None
    assert caught.value.reason == f"HTTP {status}"


async def test_an_unreachable_slack_is_transient(api: SlackApi):
    settings = settings_for(api)
    await api.stop()
    with pytest.raises(DeliveryError) as caught:
        await SlackSender(slack_web_client(settings)).post(CHANNEL, ALERT)
    assert caught.value.kind is ErrorKind.TRANSIENT
    assert caught.value.reason.startswith("connection failed")


async def test_tokens_never_reach_the_logs(api: SlackApi, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    api.fail_channel("C0001", "invalid_auth")
    with pytest.raises(DeliveryError):
        await SlackSender(slack_web_client(settings_for(api))).post(CHANNEL, ALERT)
    assert caplog.records  # slack_sdk did log the request at DEBUG
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(
    ("status", "error", "retry_after", "expected"),
    [
        pytest.param(429, "ratelimited", "30", (None, 30.0, ErrorKind.RATE_LIMITED), id="429"),
        pytest.param(429, None, "abc", (None, 1.0, ErrorKind.RATE_LIMITED), id="429-bad-header"),
        pytest.param(
            200, "missing_scope", None, ("missing_scope", None, ErrorKind.PERMANENT),
            id="missing-scope",
        ),
        pytest.param(
            200, "invalid_auth", None, ("invalid_auth", None, ErrorKind.PERMANENT),
            id="invalid-auth",
        ),
        pytest.param(
            200, "internal_error", None, ("internal_error", None, ErrorKind.TRANSIENT),
            id="internal",
        ),
    ],
)  # fmt: skip
def test_errors_are_mapped_to_a_kind(
    status: int, error: str | None, retry_after: str | None, expected: tuple
):
    got = slack_error(status, error, retry_after)
    reason, wait, kind = expected
    assert (got.retry_after, got.kind) == (wait, kind)
    if reason:
        assert got.reason == reason


def test_a_deleted_message_is_parent_gone_only_where_the_call_says_so():
    gone = slack_error(200, "message_not_found", gone={"message_not_found"})
    assert (gone.kind, gone.reason) == (ErrorKind.PARENT_GONE, "message_not_found")
    assert slack_error(200, "message_not_found").kind is ErrorKind.TRANSIENT


# -- the Bolt app ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Recorder:
    """The command handler of these tests: records each call and answers `reply`."""

    reply: Reply = dataclasses.field(default_factory=lambda: Reply(text="All good"))
    calls: list[tuple[str, CommandContext]] = dataclasses.field(default_factory=list)
    called: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def __call__(self, text: str, ctx: CommandContext) -> Reply:
        self.calls.append((text, ctx))
        self.called.set()
        return self.reply


BOARD = Reply(
    text="Claude: all operational",
    sections=(Section(title="Claude", lines=("✅ `api` Claude API: operational",)),),
)


async def board(team_id: str) -> Reply:
    return dataclasses.replace(BOARD, text=f"board of {team_id}")


def block_action(api: SlackApi, action_id: str, value: str) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "team": {"id": "T0001", "domain": "acme"},
        "user": {"id": "U7", "username": "li", "name": "li", "team_id": "T0001"},
        "api_app_id": "A0001",
        "token": "legacy-verification-token",
        "container": {
            "type": "message_attachment",
            "message_ts": "1.000001",
            "channel_id": "C0001",
        },
        "trigger_id": "1.2.3",
        "channel": {"id": "C0001", "name": "general"},
        "message": {"type": "message", "ts": "1.000001", "text": "alert"},
        "response_url": api.response_url("btn"),
        "actions": [
            {
                "action_id": action_id,
                "block_id": "aistatus_actions",
                "type": "button",
                "value": value,
                "action_ts": "1790000000.1",
            }
        ],
    }


def home_event() -> dict[str, Any]:
    return {
        "token": "legacy-verification-token",
        "team_id": "T0001",
        "api_app_id": "A0001",
        "type": "event_callback",
        "event_id": "Ev0001",
        "event_time": 1790000000,
        "event": {
            "type": "app_home_opened",
            "user": "U42",
            "channel": "D0001",
            "tab": "home",
            "event_ts": "1.2",
        },
    }


@contextlib.asynccontextmanager
async def served(
    api: SlackApi, handler: CommandHandler, redis: aioredis.Redis
) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    """The Bolt app over HTTP mode with `handler` behind `/aistatus`, and a delivery engine on
    `redis` sending its announcements: the app's URL and a session."""
    sender = SlackSender(slack_web_client(settings_for(api)))
    async with delivering(redis, {Platform.SLACK: sender}) as side:
        app = build_slack_app(settings_for(api), handler=handler, home=board, side=side)
        server = await run_http_mode(app, "127.0.0.1", 0)
        try:
            async with aiohttp.ClientSession() as session:
                yield server.url, session
        finally:
            await server.stop()


@pytest.fixture
async def http(
    api: SlackApi, redis: aioredis.Redis
) -> AsyncIterator[tuple[SlackApi, Recorder, str, aiohttp.ClientSession]]:
    recorder = Recorder()
    async with served(api, recorder, redis) as (url, session):
        yield api, recorder, url, session


async def post(
    session: aiohttp.ClientSession, url: str, body: str, headers: dict[str, str], content_type: str
) -> tuple[int, str]:
    async with (
        asyncio.timeout(3),  # Slack's budget for an answer
        session.post(
            url, data=body.encode(), headers={**headers, "Content-Type": content_type}
        ) as resp,
    ):
        return resp.status, await resp.text()


FORM = "application/x-www-form-urlencoded"


async def test_a_signed_slash_command_is_answered_ephemerally_and_announced(http):
    api, recorder, url, session = http
    recorder.reply = Reply(
        text="Subscribed this channel to api.",
        sections=(Section(lines=("api: partial outages and worse",)),),
        announce="@maria subscribed this channel to api (partial outages and worse)",
    )
    body = urlencode(command_form(api, "subscribe api --min partial"))

    status, _ = await post(session, url, body, sign(body), FORM)

    assert status == 200
    [response] = await api.wait_for("respond:cmd")
    assert response.params["response_type"] == "ephemeral"
    assert response.params["text"] == "Subscribed this channel to api."
    assert "api: partial outages and worse" in json.dumps(response.params["blocks"])
    [announce] = await api.wait_for("chat.postMessage")
    assert announce.params["channel"] == "C0001"
    assert (
        announce.params["text"]
        == "<@U42> subscribed this channel to api (partial outages and worse)"
    )
    [(text, ctx)] = recorder.calls
    assert text == "subscribe api --min partial"
    assert ctx.channel == ChannelRef(Platform.SLACK, "T0001", "C0001")
    assert (ctx.user_id, ctx.user_name, ctx.can_manage) == ("U42", "maria", True)
    assert ctx.now.tzinfo is not None


async def test_a_mistake_is_answered_by_the_command_layer_with_its_message_and_usage(api, redis):
    svc, handler = command_layer(redis)
    body = urlencode(command_form(api, "subscribe cladue"))
    async with served(api, handler, redis) as (url, session):
        assert (await post(session, url, body, sign(body), FORM))[0] == 200
        [response] = await api.wait_for("respond:cmd")
    assert response.params["response_type"] == "ephemeral"
    first, *_, usage = response.params["text"].split("\n")
    assert "cladue" in first
    assert usage.startswith("Usage: `/aistatus subscribe")
    assert api.calls_to("chat.postMessage") == []
    assert await svc.subscriptions.get(ChannelRef(Platform.SLACK, "T0001", "C0001")) is None


async def test_a_failing_command_gets_the_one_apology_not_silence(api, redis, tmp_path, caplog):
    dead = aioredis.Redis(
        unix_socket_path=str(tmp_path / "no-such.sock"), retry=Retry(NoBackoff(), 0)
    )
    _, handler = command_layer(dead)
    body = urlencode(command_form(api, "status"))
    with caplog.at_level(logging.ERROR, logger="bot.chat.actions"):
        async with served(api, handler, redis) as (url, session):
            assert (await post(session, url, body, sign(body), FORM))[0] == 200
            [response] = await api.wait_for("respond:cmd")
    await dead.aclose()
    assert response.params["text"] == INTERNAL_ERROR_TEXT
    assert "Traceback" in caplog.text  # logged once, by the command layer


async def test_an_announcement_the_channel_refuses_is_a_dead_letter_after_the_answer(http, redis):
    """The user's answer is immediate; the announcement goes through the outbox, and a channel
    the bot is not in dead-letters it where `aistatus deliveries` shows it."""
    api, recorder, url, session = http
    api.fail_channel("C0001", "not_in_channel")
    recorder.reply = Reply(text="Subscribed.", announce="maria subscribed this channel to api")
    body = urlencode(command_form(api, "subscribe api"))
    assert (await post(session, url, body, sign(body), FORM))[0] == 200
    [answer] = await api.wait_for("respond:cmd")
    assert answer.params["text"] == "Subscribed."
    async with asyncio.timeout(10):
        while not (report := await deliveries_report(redis)).dead:  # noqa: ASYNC110 (Redis)
            await asyncio.sleep(0.02)
    [dead] = report.dead
    assert (dead.channel, dead.kind, dead.error) == (
        "slack:T0001:C0001",
        "announce",
        "not_in_channel",
    )
    assert dead.what == 'announcement (subscribe by U42): "<@U42> subscribed this channel to api"'
    assert api.accepted_to("chat.postMessage") == []


def forged(body: str) -> dict[str, str]:
    headers = sign(body)
    headers["X-Slack-Signature"] = "v0=" + "0" * 64
    return headers


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(forged, id="forged-signature"),
        pytest.param(lambda body: sign(body, secret="not-the-secret"), id="wrong-secret"),
        pytest.param(
            lambda body: sign(body, timestamp=int(time.time()) - 6 * 60), id="stale-6-min"
        ),
        pytest.param(lambda body: {}, id="unsigned"),
        pytest.param(lambda body: sign(body + "&text=unsubscribe"), id="tampered-body"),
    ],
)
async def test_unverified_requests_get_401_and_change_nothing(http, headers):
    api, recorder, url, session = http
    command = urlencode(command_form(api, "unsubscribe"))
    click = urlencode({"payload": json.dumps(block_action(api, ACTION_MUTE, "1h"))})
    event = json.dumps(home_event())
    for body, content_type in ((command, FORM), (click, FORM), (event, "application/json")):
        status, _ = await post(session, url, body, headers(body), content_type)
        assert status == 401
    assert recorder.calls == []
    assert api.calls == []  # nothing answered, posted or published


@pytest.mark.parametrize(
    ("action_id", "value", "command"),
    [
        pytest.param(ACTION_MUTE, "1h", "mute 1h", id="mute"),
        pytest.param(ACTION_REPORT, "claude.ai", "report claude.ai", id="report"),
        pytest.param(ACTION_REPORT, "api --min major", None, id="report-with-injected-flags"),
    ],
)
async def test_a_button_click_runs_the_command_for_the_clicking_user(
    http, action_id, value, command
):
    api, recorder, url, session = http
    recorder.reply = Reply(text="Muted this channel for 1 h.", ephemeral=False)
    body = urlencode({"payload": json.dumps(block_action(api, action_id, value))})

    assert (await post(session, url, body, sign(body), FORM))[0] == 200

    if command is None:
        await api.wait_for("auth.test")
        assert recorder.calls == []
        return
    [response] = await api.wait_for("respond:btn")
    assert (
        response.params["response_type"] == "ephemeral"
    )  # a click is answered to the clicker only
    assert response.params["replace_original"] is False  # the alert stays as it is
    assert response.params["text"] == "Muted this channel for 1 h."
    [(text, ctx)] = recorder.calls
    assert text == command
    assert (ctx.channel, ctx.user_id, ctx.user_name) == (CHANNEL, "U7", "li")


async def test_the_open_incident_button_is_only_acknowledged(http):
    api, recorder, url, session = http
    body = urlencode({"payload": json.dumps(block_action(api, ACTION_OPEN, ""))})
    assert (await post(session, url, body, sign(body), FORM))[0] == 200
    assert recorder.calls == []
    assert api.calls_to("respond:btn") == []


async def test_opening_app_home_publishes_the_board(http):
    api, _, url, session = http
    body = json.dumps(home_event())
    assert (await post(session, url, body, sign(body), "application/json"))[0] == 200
    [publish] = await api.wait_for("views.publish")
    assert publish.params["user_id"] == "U42"
    assert publish.params["view"] == to_home_view(await board("T0001"))
    assert publish.params["view"]["type"] == "home"


def test_http_mode_without_a_signing_secret_is_refused(api: SlackApi):
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        build_slack_app(
            settings_for(api, slack_signing_secret=None),
            handler=Recorder(),
            home=board,
            side=no_side,
        )


def test_no_token_and_no_installation_store_is_refused(api: SlackApi):
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN"):
        build_slack_app(
            settings_for(api, slack_bot_token=None), handler=Recorder(), home=board, side=no_side
        )


# -- Socket Mode -----------------------------------------------------------------------------------


async def test_socket_mode_runs_a_command_and_acknowledges_the_envelope(api: SlackApi):
    recorder = Recorder(reply=Reply(text="Claude API: operational"))
    app = build_slack_app(
        settings_for(api, slack_mode="socket", slack_signing_secret=None),
        handler=recorder,
        home=board,
        side=no_side,
    )
    socket = await run_socket_mode(app, APP_TOKEN)
    try:
        ack = await api.send_envelope("slash_commands", command_form(api, "status api"))
        assert "envelope_id" in ack
        [response] = await api.wait_for("respond:cmd")
        assert response.params["text"] == "Claude API: operational"
        assert recorder.calls[0][0] == "status api"

        await api.send_envelope("events_api", home_event())
        [publish] = await api.wait_for("views.publish")
        assert publish.params["view"]["blocks"]
    finally:
        await socket.stop()
    [opened] = api.calls_to("apps.connections.open")
    assert opened.team is None  # the app-level token, not a bot token


async def test_socket_mode_with_a_refused_app_token_is_a_config_error(api: SlackApi):
    app = build_slack_app(
        settings_for(api, slack_mode="socket", slack_signing_secret=None),
        handler=Recorder(),
        home=board,
        side=no_side,
    )
    with pytest.raises(ConfigError, match="SLACK_APP_TOKEN"):
        await run_socket_mode(app, "xapp-revoked")


# -- multi-workspace: installations in Redis -------------------------------------------------------


async def test_an_installation_round_trips_through_redis(redis):
    store = RedisInstallationStore(redis, CIPHER)
    await store.async_save(installation("T0002", TOKEN_T2))

    bot = await store.async_find_bot(enterprise_id=None, team_id="T0002")
    found = await store.async_find_installation(enterprise_id=None, team_id="T0002")
    assert bot is not None and found is not None
    assert (bot.bot_token, bot.bot_user_id, bot.bot_scopes) == (
        TOKEN_T2,
        "UT0002BOT",
        ["commands", "chat:write", "chat:write.public"],
    )
    assert found.to_dict() == installation("T0002", TOKEN_T2).to_dict()
    assert await store.bot_token("T0002") == TOKEN_T2
    assert await store.bot_token("T9999") is None

    await store.async_delete_all(enterprise_id=None, team_id="T0002")
    assert await store.bot_token("T0002") is None
    assert await store.async_find_installation(enterprise_id=None, team_id="T0002") is None


async def test_a_corrupt_stored_installation_reads_as_not_installed(redis):
    await redis.hset(
        keys.installation("T0003"), mapping={"bot": "{not json", "installation": "[1]"}
    )
    store = RedisInstallationStore(redis, CIPHER)
    assert await store.bot_token("T0003") is None
    assert await store.async_find_installation(enterprise_id=None, team_id="T0003") is None


async def test_an_oauth_state_is_consumed_exactly_once(redis):
    states = RedisOAuthStateStore(redis)
    state = await states.async_issue()
    assert await states.async_consume(state) is True
    assert await states.async_consume(state) is False
    assert await states.async_consume("never-issued") is False


async def test_the_sender_uses_each_workspaces_own_token(redis, api: SlackApi):
    store = RedisInstallationStore(redis, CIPHER)
    await store.async_save(installation("T0002", TOKEN_T2))
    client = AsyncWebClient(base_url=api.base_url, retry_handlers=[])  # no token of its own
    sender = SlackSender(client, tokens=store.bot_token)

    await sender.post(ChannelRef(Platform.SLACK, "T0002", "C0002"), ALERT)
    [call] = api.calls_to("chat.postMessage")
    assert call.team == "T0002"

    with pytest.raises(DeliveryError) as caught:
        await sender.post(ChannelRef(Platform.SLACK, "T0404", "C0404"), ALERT)
    assert caught.value.kind is ErrorKind.PERMANENT
    assert caught.value.reason == "not_installed"


async def test_a_redis_outage_during_token_lookup_is_transient(own_redis, api: SlackApi):
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(own_redis.url)
    sender = SlackSender(
        AsyncWebClient(base_url=api.base_url, retry_handlers=[]),
        tokens=RedisInstallationStore(client, CIPHER).bot_token,
    )
    own_redis.stop()
    try:
        with pytest.raises(DeliveryError) as caught:
            await sender.post(ChannelRef(Platform.SLACK, "T0002", "C0002"), ALERT)
    finally:
        await client.aclose()
    assert caught.value.kind is ErrorKind.TRANSIENT  # the channel keeps its subscription
    assert api.calls == []


async def test_commands_from_an_installed_workspace_are_authorized_from_redis(redis, api: SlackApi):
    store = RedisInstallationStore(redis, CIPHER)
    await store.async_save(installation("T0002", TOKEN_T2))
    recorder = Recorder(reply=Reply(text="ok", announce="maria subscribed"))
    client = AsyncWebClient(base_url=api.base_url, retry_handlers=[])
    sender = SlackSender(client, tokens=store.bot_token)
    async with delivering(redis, {Platform.SLACK: sender}) as side:
        app = build_slack_app(
            settings_for(api, slack_bot_token=None),
            handler=recorder,
            home=board,
            installation_store=store,
            side=side,
        )
        server = await run_http_mode(app, "127.0.0.1", 0)
        try:
            async with aiohttp.ClientSession() as session:
                body = urlencode(command_form(api, "subscribe api", team="T0002"))
                assert (await post(session, server.url, body, sign(body), FORM))[0] == 200
                [announce] = await api.wait_for("chat.postMessage", within=10)
                assert announce.team == "T0002"  # posted with that workspace's token

                stranger = urlencode(command_form(api, "subscribe api", team="T0404"))
                await post(session, server.url, stranger, sign(stranger), FORM)
        finally:
            await server.stop()
    assert [ctx.channel.workspace for _, ctx in recorder.calls] == ["T0002"]


async def test_client_id_and_secret_turn_on_the_oauth_install_flow(redis, api: SlackApi):
    store = RedisInstallationStore(redis, CIPHER)
    settings = settings_for(
        api, slack_bot_token=None, slack_client_id="111.222", slack_client_secret="shh"
    )
    with pytest.raises(ConfigError, match="installation store"):
        build_slack_app(settings, handler=Recorder(), home=board, side=no_side)
    app = build_slack_app(
        settings,
        handler=Recorder(),
        home=board,
        installation_store=store,
        state_store=RedisOAuthStateStore(redis),
        side=no_side,
    )
    assert app.oauth_flow is not None
    assert app.installation_store is store
    server = await run_http_mode(app, "127.0.0.1", 0)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"http://127.0.0.1:{server.port}/slack/install", allow_redirects=False
            ) as resp,
        ):
            page = await resp.text()
    finally:
        await server.stop()
    assert resp.status == 200
    assert "client_id=111.222" in page
    assert (
        "scope=channels:history,channels:join,chat:write,chat:write.public,commands,"
        "groups:history&amp;" in page
    )
    assert await redis.keys(keys.oauth_state("*"))  # the state lives in Redis


# -- wired to the real command layer ---------------------------------------------------------------


async def test_subscribe_list_and_mute_through_the_real_command_layer(redis, api: SlackApi):
    from bot.catalog_file import load_catalog
    from bot.chat.actions import Services, handle

    catalog = load_catalog(None)

    async def on_crowd(observation: Any) -> None:
        return None

    svc = Services.over(redis, catalog, on_crowd=on_crowd)
    subscriptions = svc.subscriptions

    async def handler(text: str, ctx: CommandContext) -> Reply:
        return await handle(text, ctx, svc)

    async with served(api, handler, redis) as (url, session):
        for text in ("subscribe api --min partial", "list"):
            body = urlencode(command_form(api, text))
            assert (await post(session, url, body, sign(body), FORM))[0] == 200
        done, listed = await api.wait_for("respond:cmd", count=2)
        click = urlencode({"payload": json.dumps(block_action(api, ACTION_MUTE, "1h"))})
        assert (await post(session, url, click, sign(click), FORM))[0] == 200
        [muted] = await api.wait_for("respond:btn")
        await api.wait_for("chat.postMessage", count=2, within=10)

    assert done.params["response_type"] == "ephemeral"
    assert "Claude API" in done.params["text"] or "api" in done.params["text"]
    announce, announce_mute = api.calls_to("chat.postMessage")
    assert announce.params["text"].startswith("<@U42> subscribed this channel to")
    # The Mute button announces in the channel, exactly as `/aistatus mute` does.
    assert announce_mute.params["text"].startswith("<@U7> muted aistatus alerts here until")
    assert "Alerts here:" in json.dumps(listed.params["blocks"])
    assert "mute" in muted.params["text"].lower()
    sub = await subscriptions.get(CHANNEL)
    assert sub is not None
    assert "api" in sub.surfaces
    assert sub.muted_until is not None  # the button muted the channel it was clicked in


async def test_app_home_names_each_subscribed_channel_of_the_workspace(redis, api: SlackApi):
    from bot.app import home_provider

    svc, handler = command_layer(redis)
    for channel, text in (("C0001", "subscribe all"), ("C0002", "subscribe api --min major")):
        ctx = CommandContext(ChannelRef(Platform.SLACK, "T0001", channel), "U42", "maria", AT)
        assert not (await handler(text, ctx)).error
    app = build_slack_app(settings_for(api), handler=handler, home=home_provider(svc), side=no_side)
    server = await run_http_mode(app, "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as session:
            body = json.dumps(home_event())
            assert (await post(session, server.url, body, sign(body), "application/json"))[0] == 200
            [publish] = await api.wait_for("views.publish")
    finally:
        await server.stop()
    shown = json.dumps(publish.params["view"], ensure_ascii=False)
    assert "<#C0001>: all Claude surfaces" in shown
    assert "<#C0002>: Claude API · major outages only" in shown
