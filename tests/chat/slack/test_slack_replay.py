"""The Slack product end to end: the recorded 2026-09-22 Claude incident played by a loopback
status page, polled by the real watcher, recorded in a real redis-server, fanned out and delivered
by the real delivery engine through the real SlackSender to the loopback Slack Web API; the same
as `aistatus run` in Slack HTTP mode (a process, signed slash commands); and the delivery faults
of issue 6 (429 + Retry-After, 500, hangs, a deleted channel) against the real Slack sender.
Every assertion is about Slack calls the loopback API accepted: what a channel would show."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import Bot, build_bot, services
from bot.chat import actions
from bot.chat.slack.sender import SlackSender
from bot.core.model import ChannelRef, CommandContext, Platform
from bot.delivery.engine import Delivery, DeliveryConfig, DeliveryMetrics, deliveries_report
from bot.ops.demo import identified_update, timeline, with_update
from bot.ops.redisproc import RedisProcess, free_port
from bot.ops.statusserver import StatusServer
from bot.settings import Settings
from bot.store.installations import RedisInstallationStore
from bot.store.subscriptions import SubscriptionStore
from bot.watch.scheduler import build_scheduler
from tests.conftest import ManualClock
from tests.helpers import (
    CIPHER,
    FAST,
    Output,
    catalog_for,
    command_form,
    fixture_json,
    installation,
    sign,
)
from tests.peers.chaos import Chaos
from tests.peers.slack_api import Call, SlackApi

SECRET = "4c6e1b0f9a2d8e7f5a3b1c0d9e8f7a6b"
INVESTIGATING = "We are investigating elevated errors on requests to Claude Mythos 5.1"
IDENTIFIED = "The issue has been identified and a fix is being implemented."
MONITORING = "A fix has been implemented and we are monitoring the results."
AFFECTED = ("claude.ai", "Claude API", "Claude Code", "Claude Cowork", "Claude mobile apps")
CONSOLE = "<https://platform.claude.com|Claude Console>"
FORM = "application/x-www-form-urlencoded"


# -- reading what Slack got -----------------------------------------------------------------------


def header(call: Call) -> str:
    """The headline a user sees: the parent's header block, or a reply's "what changed" line."""
    top = call.params["blocks"][0]
    return str(top["text"]["text"])


def details(call: Call) -> list[str]:
    """The mrkdwn texts of the message's details (the coloured attachment), block by block."""
    texts: list[str] = []
    for attachment in call.params.get("attachments") or []:
        for block in attachment.get("blocks", []):
            if "text" in block:
                texts.append(block["text"]["text"])
            texts += [e["text"] for e in block.get("elements", []) if e.get("type") == "mrkdwn"]
    return texts


def body(call: Call) -> str:
    return "\n".join(details(call))


def backups(call: Call) -> str | None:
    """The "Backups up now" section of a message (None when it has none: endings)."""
    return next((t for t in details(call) if t.startswith("*Backups up now")), None)


def quoted_update(call: Call) -> str:
    """The official update the message quotes (its first line)."""
    match = re.search(r"\*Latest official update\*.*\n> (.*)", body(call))
    return match.group(1) if match else ""


def what(call: Call) -> str:
    """One word for a message in a channel: start / identified / monitoring / resolved."""
    if "Resolved" in header(call):
        return "resolved"
    quoted = quoted_update(call)
    for word, text in (
        ("identified", IDENTIFIED),
        ("monitoring", MONITORING),
        ("start", INVESTIGATING),
    ):
        if quoted.startswith(text):
            return word
    return f"? {header(call)}"


def channel_calls(api: SlackApi, channel: str) -> list[tuple[str, Call]]:
    """(method, call) of every accepted chat call in `channel`, in the order Slack applied them."""
    return [
        (c.method, c)
        for c in api.accepted
        if c.method.startswith("chat.") and c.params.get("channel") == channel
    ]


# -- the replay rig -------------------------------------------------------------------------------


def monitoring_update(identified: dict[str, Any], at: datetime) -> dict[str, Any]:
    """The page with a third update (`monitoring`) on top, synthesised like the demo's."""
    return with_update(identified, at, status="monitoring", body=MONITORING, update_id="replay0mon")


@dataclass
class Replay:
    """The in-process product: status page -> watcher -> Redis -> delivery -> SlackSender."""

    redis: aioredis.Redis
    api: SlackApi
    page: StatusServer
    bot: Bot
    clock: ManualClock
    sender: SlackSender
    subs: SubscriptionStore
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def delivery(self, config: DeliveryConfig) -> Delivery:
        return Delivery(
            self.redis,
            {Platform.SLACK: self.sender},
            self.bot.store,
            self.subs,
            self.bot.catalog,
            config=config,
            clock=self.clock,
            metrics=DeliveryMetrics.create(self.registry),
        )

    async def command(self, channel: ChannelRef, text: str) -> str:
        """`/aistatus <text>` in `channel` through the real command layer; the reply's text."""
        ctx = CommandContext(channel, "U42", "maria", self.clock(), can_manage=True)
        reply = await actions.handle(text, ctx, services(self.bot))
        assert not reply.error, reply.text
        return reply.text

    async def poll_at(self, at: datetime, summary: dict[str, Any]) -> None:
        """The page shows `summary` from `at` on; the watcher polls it (a new slot each time)."""
        assert at - self.clock() >= timedelta(seconds=self.bot.watcher.interval_of("claude"))
        self.clock.advance((at - self.clock()).total_seconds())
        self.page.set_summary(summary)
        report = await self.bot.watcher.poll_page("claude")
        assert report.claimed


@contextlib.asynccontextmanager
async def replay_rig(
    redis: aioredis.Redis, api: SlackApi, *, tokens: bool
) -> AsyncIterator[Replay]:
    """The product wired by the composition root (`build_bot`, `services`) around `api`; with
    `tokens`, the sender looks up each workspace's bot token in the installation store."""
    steps = timeline()
    clock = ManualClock(steps[0].at)
    async with StatusServer() as page, httpx.AsyncClient(timeout=5.0) as client:
        page.set_summary(steps[0].claude)
        catalog = catalog_for(page.url)
        bot = build_bot(
            Settings(_env_file=None),  # type: ignore[call-arg]
            catalog,
            redis,
            client,
            clock=clock,
        )
        if tokens:  # many workspaces: each one's bot token from the installation store
            installs = RedisInstallationStore(redis, CIPHER)
            for token, team in api.tokens.items():
                await installs.async_save(installation(team, token))
            web = AsyncWebClient(base_url=api.base_url, timeout=2, retry_handlers=[])
            sender = SlackSender(web, tokens=installs.bot_token)
        else:
            token = next(iter(api.tokens))
            web = AsyncWebClient(token=token, base_url=api.base_url, timeout=1, retry_handlers=[])
            sender = SlackSender(web)
        subs = services(bot).subscriptions
        yield Replay(redis, api, page, bot, clock, sender, subs)


# -- 1. the recorded incident, in process ---------------------------------------------------------

# Pacing as shipped (Slack's 1 message/s per channel with bursts, a workspace budget): a few
# channels with one message each per step never wait. Small block / min_idle make `drain` quick.
QUICK = DeliveryConfig(block=0.05, min_idle=1.0, gate_poll_max=0.1)

C1 = ChannelRef(Platform.SLACK, "T0001", "C1")  # subscribe all
C2 = ChannelRef(Platform.SLACK, "T0001", "C2")  # subscribe api
C3 = ChannelRef(Platform.SLACK, "T0001", "C3")  # subscribe code --min major
C4 = ChannelRef(Platform.SLACK, "T0001", "C4")  # subscribe all; mute 1d
C5 = ChannelRef(Platform.SLACK, "T0002", "C5")  # another workspace: subscribe claude.ai code


async def replay_with_midway(
    redis: aioredis.Redis, midway: Callable[[], Awaitable[None]]
) -> SlackApi:
    """The recorded timeline to C1 (subscribe all) and C2 (subscribe api), drained after each
    poll, with `midway` (a failover, a restart) awaited before the middle step; the Slack API
    that received it."""
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
            if i == len(steps) // 2:
                await midway()
            await rig.poll_at(step.at, step.claude)
            await delivery.drain(30)
    return api


@pytest.fixture
async def replayed(redis) -> SlackApi:
    """The whole recorded timeline played through the product; the Slack API that received it."""
    async with (
        asyncio.timeout(30),
        SlackApi(tokens={"xoxb-one": "T0001", "xoxb-two": "T0002"}) as api,
        replay_rig(redis, api, tokens=True) as rig,
    ):
        await rig.command(C1, "subscribe all")
        await rig.command(C2, "subscribe api")
        await rig.command(C3, "subscribe code --min major")
        await rig.command(C4, "subscribe all")
        await rig.command(C4, "mute 1d")
        await rig.command(C5, "subscribe claude.ai code")
        delivery = rig.delivery(QUICK)
        for step in timeline()[1:]:
            await rig.poll_at(step.at, step.claude)
            await delivery.drain(10)
        yield api


THREADED = [
    "chat.postMessage",
    "chat.update",
    "chat.postMessage",
    "chat.update",
    "chat.postMessage",
]
NAMES = {"C1": ", ".join(AFFECTED), "C2": "Claude API", "C5": "claude.ai, Claude Code"}


def parent_ts(api: SlackApi, channel: str) -> str:
    """The ts of the channel's only top-level alert (Slack's record, not the bot's; a plain-text
    announcement is no alert)."""
    [ts] = [
        ts
        for (ch, ts), m in api.messages.items()
        if ch == channel and "thread_ts" not in m and "blocks" in m
    ]
    return ts


@pytest.mark.parametrize("channel", ["C1", "C2", "C5"], ids=["all", "api-only", "other-workspace"])
async def test_the_incident_is_one_parent_per_channel_edited_in_place_with_a_thread(
    replayed: SlackApi, channel: str
):
    calls = channel_calls(replayed, channel)
    ts = parent_ts(replayed, channel)

    assert [m for m, _ in calls] == THREADED
    post, edit, reply, final_edit, final_reply = (c for _, c in calls)
    # One alert for the whole incident, naming every subscribed affected surface at once.
    assert header(post) == f"🟠 {NAMES[channel]}: partial outage"
    assert "thread_ts" not in post.params
    assert what(post) == "start"
    # The official update: the parent shows the current state, the thread says what changed.
    assert edit.params["ts"] == ts and what(edit) == "identified"
    assert header(edit) == f"🟠 Update on {NAMES[channel]}: partial outage"
    assert reply.params["thread_ts"] == ts and reply.params["reply_broadcast"] is False
    assert header(reply).startswith(f"🟠 *Update* · {NAMES[channel]} · ")
    assert what(reply) == "identified"
    # The recovery: the parent says it is over, and the thread reply is broadcast to the channel.
    assert final_edit.params["ts"] == ts
    assert header(final_edit) == f"✅ Resolved: {NAMES[channel]} after 5 h 3 min"
    assert final_reply.params["thread_ts"] == ts and final_reply.params["reply_broadcast"] is True
    assert header(final_reply).startswith(f"✅ *Resolved after 5 h 3 min* · {NAMES[channel]} · ")
    # What the channel shows at the end: the parent in its resolved state, two thread replies.
    shown = replayed.messages[(channel, ts)]
    assert shown["blocks"][0]["text"]["text"] == header(final_edit)
    assert shown["attachments"][0]["color"] == "#2EB67D"
    thread = [m for (ch, _), m in replayed.messages.items() if ch == channel and "thread_ts" in m]
    assert len(thread) == 2


async def test_channels_below_their_minimum_or_muted_hear_nothing(replayed: SlackApi):
    chat = [c for c in replayed.calls if c.method.startswith("chat.")]
    assert {c.params["channel"] for c in chat} == {"C1", "C2", "C5"}  # not C3, not C4
    assert len(chat) == 3 * len(THREADED)  # and no call was refused or repeated
    assert len(replayed.accepted) == len(chat)
    # Each workspace's messages went out with its own bot token.
    assert {c.team for c in chat if c.params["channel"] == "C5"} == {"T0002"}
    assert {c.team for c in chat if c.params["channel"] != "C5"} == {"T0001"}


async def test_a_user_reads_the_official_update_and_the_backups_that_are_up(replayed: SlackApi):
    c1 = [c for _, c in channel_calls(replayed, "C1")]
    c2 = [c for _, c in channel_calls(replayed, "C2")]
    post = c1[0]

    assert "*Incident:* Elevated errors for multiple models" in body(post)
    assert quoted_update(post).startswith(INVESTIGATING)
    for name in AFFECTED:
        assert f"• *{name}* — 🟠 partial outage" in body(post)
    [button] = [e for e in post.params["attachments"][0]["blocks"][-1]["elements"] if "url" in e]
    assert button["url"] == "https://stspg.io/90s4l9yywzbk"
    # Claude Console stayed operational all along: the one backup that is up, never a surface
    # that is itself out (claude.ai for C5, or the unwatched, unknown Bedrock / Vertex routes).
    console = f"*Backups up now*\n• {CONSOLE} — Console Workbench: chat with Claude in the browser"
    for call in [*c1[:3], *[c for _, c in channel_calls(replayed, "C5")][:3]]:
        assert backups(call) == console
    # The API's alternatives are not watched here: none is known up, and unknown is not down.
    unchecked = (
        "No backup we could check is up right now (couldn't check: Claude on Amazon Bedrock, "
        "Claude on Google Vertex AI, Gemini, OpenAI API)."
    )
    for call in c2[:3]:
        assert backups(call) == f"*Backups up now*\n{unchecked}"
    for call in [*c1[3:], *c2[3:]]:  # a recovery has nothing left to route around
        assert backups(call) is None
    # The text fallback (notifications, screen readers) on every call says the same.
    for call in c1[:3]:
        assert call.params["text"].startswith(header(c1[1] if call is not post else post))
        assert call.params["text"].endswith(". Backups up now: Claude Console.")
    for call in c2[:3]:
        assert call.params["text"].endswith(f". {unchecked}")
    for call in [*c1[3:], *c2[3:]]:
        text = call.params["text"]
        assert text.startswith("✅ Resolved:") and text.endswith(" after 5 h 3 min")
        assert text.count("after 5 h 3 min") == 1, "said once"
    every = [c for c in replayed.calls if c.method.startswith("chat.")]
    assert all(c.params["text"].strip() and "<" not in c.params["text"] for c in every)


# -- 3. issue 6: faults from Slack, against the real SlackSender ----------------------------------

# Pacing off (UNLIMITED): 200 channels of one workspace would otherwise wait on Slack's workspace
# budget for minutes; the 429s here come from Slack itself. A hung call ends at the web client's
# 1 s timeout (a transient error); the engine's own bound stays above it.
UNDER_FIRE = replace(FAST, workers=32, call_timeout=5.0)


def full_outage() -> list[tuple[datetime, dict[str, Any]]]:
    """Start, two official updates, recovery: the recorded pages plus two synthesised updates."""
    investigating = fixture_json("claude/summary_incident_investigating.json")
    t0 = datetime.fromisoformat("2026-09-22T01:01:00+00:00")
    identified = identified_update(investigating, t0 + timedelta(minutes=89))
    return [
        (t0, investigating),
        (t0 + timedelta(minutes=89), identified),
        (t0 + timedelta(minutes=149), monitoring_update(identified, t0 + timedelta(minutes=149))),
        (t0 + timedelta(minutes=300), fixture_json("claude/summary_recovered.json")),
    ]


def slack_channels(n: int) -> list[ChannelRef]:
    return [ChannelRef(Platform.SLACK, "T0001", f"C{i:05d}") for i in range(n)]


SUBSCRIBER = "U42"


async def subscribe_api(rig: Replay, channels: Iterable[ChannelRef]) -> None:
    for c in channels:
        await rig.subs.subscribe(c, ["api"], all_claude=False, user=SUBSCRIBER, now=rig.clock())


def assert_thread(api: SlackApi, channel: str, expected: Sequence[str]) -> None:
    """The channel shows exactly these messages, once each, in order: a parent, then replies in
    its thread; every accepted edit was of that parent."""
    posts = api.accepted_to("chat.postMessage", channel)
    assert [what(c) for c in posts] == list(expected), channel
    if not posts:
        return
    ts = parent_ts(api, channel)
    assert "thread_ts" not in posts[0].params
    assert [c.params["thread_ts"] for c in posts[1:]] == [ts] * (len(posts) - 1)
    assert {c.params["ts"] for c in api.accepted_to("chat.update", channel)} <= {ts}


async def test_429s_500s_and_hangs_from_slack_still_deliver_every_alert_once_in_order(redis):
    chaos = Chaos(
        rate_limited=0.2,
        server_error=0.1,
        hang=0.05,
        retry_after=0.05,
        seed=7,
        methods=frozenset({"chat.postMessage", "chat.update"}),
    )
    async with (
        asyncio.timeout(90),
        SlackApi(tokens={"xoxb-test": "T0001"}, chaos=chaos) as api,
        replay_rig(redis, api, tokens=False) as rig,
    ):
        channels = slack_channels(200)
        await subscribe_api(rig, channels)
        delivery = rig.delivery(UNDER_FIRE)
        for at, summary in full_outage():
            await rig.poll_at(at, summary)
            await delivery.drain(60)
            assert (await deliveries_report(redis)).queued == 0  # drained means delivered
        report = await deliveries_report(redis)

    for c in channels:
        assert_thread(api, c.channel, ["start", "identified", "monitoring", "resolved"])
        edits = api.accepted_to("chat.update", c.channel)
        assert [what(e) for e in edits] == ["identified", "monitoring", "resolved"], c.channel
        assert api.accepted_to("chat.postMessage", c.channel)[-1].params["reply_broadcast"]
        shown = api.messages[(c.channel, parent_ts(api, c.channel))]
        assert shown["blocks"][0]["text"]["text"] == "✅ Resolved: Claude API after 5 h 3 min"
    assert api.faults["429"] > 200 and api.faults["500"] > 100 and api.faults["hang"] > 40
    retries = "aistatus_delivery_retries_total"
    assert rig.registry.get_sample_value(retries, {"platform": "slack", "outcome": "retry_after"})
    assert rig.registry.get_sample_value(retries, {"platform": "slack", "outcome": "backoff"})
    assert report.dead == () and report.queued == 0


async def test_a_deleted_slack_channel_is_disabled_mid_incident_and_the_others_carry_on(redis):
    async with (
        asyncio.timeout(30),
        SlackApi(tokens={"xoxb-test": "T0001"}) as api,
        replay_rig(redis, api, tokens=False) as rig,
    ):
        channels = slack_channels(5)
        gone = channels[2]
        await subscribe_api(rig, channels)
        delivery = rig.delivery(QUICK)
        start, *rest = full_outage()
        await rig.poll_at(*start)
        await delivery.drain(10)
        api.fail_channel(gone.channel, "channel_not_found")  # deleted after the alert went out
        since = len(api.calls)
        for at, summary in rest:
            await rig.poll_at(at, summary)
            await delivery.drain(10)
        sub = await rig.subs.get(gone)
        others = [await rig.subs.get(c) for c in channels if c != gone]
        report = await deliveries_report(redis)

    for c in channels:
        if c != gone:
            assert_thread(api, c.channel, ["start", "identified", "monitoring", "resolved"])
    assert_thread(api, gone.channel, ["start"])
    tried = [c for c in api.calls[since:] if c.params.get("channel") == gone.channel]
    assert len(tried) == 1  # one refusal, then nothing more is tried there
    assert sub is not None and sub.disabled_reason == "channel_not_found"
    assert all(s is not None and s.disabled_reason is None for s in others)
    assert {d.channel for d in report.dead} == {gone.key}
    assert {d.error for d in report.dead} == {"channel_not_found"}
    # Whoever subscribed it is told once, in the app's Messages tab, with a link to the channel.
    [told] = [c for c in api.accepted_to("chat.postMessage") if c.params["channel"] == SUBSCRIBER]
    assert (
        f"<#{gone.channel}>" in told.params["text"] and "channel_not_found" in told.params["text"]
    )


# -- 2. `aistatus run` in Slack HTTP mode, as a process --------------------------------------------


async def slash(session: aiohttp.ClientSession, url: str, api: SlackApi, text: str) -> None:
    """`/aistatus <text>` as Slack sends it: a form POST signed with the signing secret (v0
    HMAC-SHA256 of `v0:<timestamp>:<body>`), acknowledged within Slack's 3 s."""
    body = urlencode(command_form(api, text))
    headers = {**sign(body, secret=SECRET), "Content-Type": FORM}
    async with asyncio.timeout(3), session.post(url, data=body.encode(), headers=headers) as resp:
        assert resp.status == 200, await resp.text()


def alerts(api: SlackApi, channel: str = "C0001") -> list[Call]:
    """Accepted alert messages (they have blocks; the announcement is plain text)."""
    return [c for c in api.accepted_to("chat.postMessage", channel) if "blocks" in c.params]


async def test_aistatus_run_answers_signed_commands_and_alerts_the_subscribed_channel(
    tmp_path: Path, redis, redis_server: RedisProcess
):
    slack_port, health_port = free_port(), free_port()
    async with (
        SlackApi(tokens={"xoxb-test": "T0001"}) as api,
        StatusServer() as claude,
        aiohttp.ClientSession() as session,
    ):
        claude.set_summary(fixture_json("claude/summary_all_operational.json"))
        catalog = tmp_path / "catalog.yaml"
        elsewhere = claude.url + "/nothing"  # every other page on loopback too (it answers 404)
        pages = {
            "claude": claude.url,
            "openai": elsewhere,
            "github": elsewhere,
            "cursor": elsewhere,
        }
        catalog.write_text(
            json.dumps({"providers": {p: {"statuspage": u} for p, u in pages.items()}})
        )
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "DISCORD_", "AISTATUS_", "ANTHROPIC_", "REDIS_"))
        }
        env.update(
            SLACK_BOT_TOKEN="xoxb-test",
            SLACK_SIGNING_SECRET=SECRET,
            AISTATUS_SLACK_MODE="http",
            AISTATUS_SLACK_PORT=str(slack_port),
            SLACK_API_URL=api.base_url,  # slack_sdk's form: ends in /api/
            REDIS_URL=redis_server.url,
            AISTATUS_CATALOG=str(catalog),
            AISTATUS_PROBES="false",
            AISTATUS_POLL_INTERVAL="0.5",
            AISTATUS_HTTP_PORT=str(health_port),
            AISTATUS_DATA_DIR=str(tmp_path / "data"),
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--env-file", os.devnull, "run",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
        )  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        out, err = Output(proc.stdout), Output(proc.stderr)
        url = f"http://127.0.0.1:{slack_port}/slack/events"
        try:
            async with asyncio.timeout(60):
                await err.wait_for("Slack: HTTP mode on", within=30)

                await slash(session, url, api, "subscribe all")
                [reply] = await api.wait_for("respond:cmd", within=10)
                await api.wait_until(lambda: bool(api.accepted_to("chat.postMessage")), within=10)
                [announce] = api.accepted_to("chat.postMessage")

                claude.set_summary(fixture_json("claude/summary_incident_investigating.json"))
                await api.wait_until(lambda: bool(alerts(api)), within=15)

                await slash(session, url, api, "status api")
                status = (await api.wait_for("respond:cmd", count=2, within=10))[1]

                claude.set_summary(fixture_json("claude/summary_recovered.json"))
                await api.wait_until(lambda: len(alerts(api)) >= 2, within=15)
                await api.wait_until(lambda: len(api.accepted_to("chat.update")) >= 1, within=10)
                proc.send_signal(signal.SIGTERM)
                await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            logs = await err.close()
            await out.close()

    assert proc.returncode == 0, logs[-3000:]
    assert "Traceback" not in logs, logs[logs.find("Traceback") - 1500 :][:5000]
    assert "xoxb-test" not in logs
    # The command: an ephemeral answer to the user, an announcement for the channel.
    assert reply.params["response_type"] == "ephemeral"
    assert reply.params["text"].startswith("Done. This channel now gets alerts for all Claude")
    assert announce.params["text"].startswith("<@U42> ")
    assert "blocks" not in announce.params
    # The alert: one parent, then the recovery broadcast in its thread; the parent resolved.
    parent, recovery = alerts(api)
    assert "thread_ts" not in parent.params
    assert parent.params["blocks"][0]["text"]["text"] == f"🟠 {', '.join(AFFECTED)}: partial outage"
    ts = parent_ts(api, "C0001")
    assert recovery.params["thread_ts"] == ts and recovery.params["reply_broadcast"] is True
    assert header(recovery).startswith("✅ *Resolved")
    [edit] = api.accepted_to("chat.update")
    assert edit.params["ts"] == ts and header(edit).startswith(f"✅ Resolved: {AFFECTED[0]}")
    # `status api` is answered from the state in Redis (its speed: `python -m bench commands`).
    assert status.params["response_type"] == "ephemeral"
    assert status.params["text"].startswith("🟠 Claude API: partial outage")
    assert "Elevated errors for multiple models" in json.dumps(status.params["blocks"])


# -- a minimum severity is about the channel's own surfaces ---------------------------------------


def with_component(summary: dict[str, Any], component_id: str, status: str) -> dict[str, Any]:
    """The page with one component's status changed (the incident's copy too)."""
    page = copy.deepcopy(summary)
    for c in [*page["components"], *page["incidents"][0]["components"]]:
        if c["id"] == component_id:
            c["status"] = status
    return page


async def test_a_minimum_severity_counts_only_the_surfaces_the_channel_watches(redis):
    api_major = with_component(
        fixture_json("claude/summary_incident_investigating.json"), "k8w3r06qmzrp", "major_outage"
    )
    code_major = ChannelRef(Platform.SLACK, "T0001", "C3")
    api_major_only = ChannelRef(Platform.SLACK, "T0001", "C6")
    async with (
        asyncio.timeout(30),
        SlackApi(tokens={"xoxb-test": "T0001"}) as api,
        replay_rig(redis, api, tokens=False) as rig,
    ):
        await rig.command(code_major, "subscribe code --min major")
        await rig.command(api_major_only, "subscribe api --min major")
        delivery = rig.delivery(QUICK)
        (start_at, _), *_, (end_at, recovered) = full_outage()
        await rig.poll_at(start_at, api_major)  # the API fully down, Claude Code partly
        await delivery.drain(10)
        await rig.poll_at(end_at, recovered)
        await delivery.drain(10)

    # Claude Code was only partly out: a channel that asked for major outages of Code hears
    # nothing, even though the same incident took the API fully down.
    assert api.accepted_to("chat.postMessage", "C3") == []
    [start, end] = api.accepted_to("chat.postMessage", "C6")
    assert header(start) == "🔴 Claude API: major outage"
    assert end.params["reply_broadcast"] is True


async def test_stopping_while_a_poll_is_in_flight_is_not_an_error(redis, caplog):
    """What `aistatus run` does on SIGTERM: the scheduler shuts down with a poll half done."""
    caplog.set_level(logging.INFO)
    async with StatusServer() as page, httpx.AsyncClient(timeout=30.0) as client:
        page.set_summary(fixture_json("claude/summary_all_operational.json"))
        page.set_fault(delay=30.0)  # the page takes its time: the poll is in flight
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
        bot = build_bot(settings, catalog_for(page.url), redis, client)
        scheduler = build_scheduler(bot.watcher, probes=False)
        scheduler.start()
        try:
            await page.wait_for_requests(1, within=5)
        finally:
            scheduler.shutdown(wait=False)
        async with asyncio.timeout(5):  # until the cancelled run has ended, one way or the other
            while not any(  # noqa: ASYNC110
                s in caplog.text for s in ("stopped while running", "raised an exception")
            ):
                await asyncio.sleep(0.01)

    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
