"""The Discord product end to end: the recorded 2026-09-22 incident played by a loopback status
page, polled by the real watcher, recorded in Redis, fanned out and delivered by the real delivery
engine through the real DiscordSender to a loopback Discord REST server; `aistatus run` delivering
over REST while the gateway is unreachable; and Discord's faults (429s, 500s, hangs, a deleted
channel) costing neither a lost nor a repeated message."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from discord.http import Route
from prometheus_client import CollectorRegistry

from bot.app import build_bot, services
from bot.catalog_file import load_catalog
from bot.chat import actions
from bot.chat.discord.render import COLOURS, discord_timestamp
from bot.chat.discord.sender import DiscordSender, configure_api_base, open_rest_client
from bot.core.catalog import Catalog
from bot.core.model import ChannelRef, CommandContext, Platform, Status
from bot.delivery.engine import Delivery, DeliveryConfig, DeliveryMetrics, deliveries_report
from bot.delivery.pacing import UNLIMITED
from bot.delivery.retry import RetryPolicy
from bot.ops.demo import identified_update, with_update
from bot.ops.redisproc import free_port
from bot.ops.statusserver import StatusServer
from bot.settings import load_settings
from bot.store.subscriptions import SubscriptionStore
from bot.watch.statuspage import parse_summary
from tests.conftest import ManualClock
from tests.helpers import fixture_json, make_alert
from tests.peers.chaos import Chaos
from tests.peers.discord_api import TOKEN, Call, DiscordAPI

GUILD = "1100000000000000001"
OTHER_GUILD = "1100000000000000900"
POLL = 15.0
BEFORE_INCIDENT = datetime(2026, 9, 22, 1, 0, 45, tzinfo=UTC)
OPERATIONAL = "claude/summary_all_operational.json"
INVESTIGATING = "claude/summary_incident_investigating.json"
RECOVERED = "claude/summary_recovered.json"
OPENAI_DEGRADED = "openai/summary_two_incidents_degraded.json"
AFFECTED = ("claude.ai", "Claude API", "Claude Code", "Claude Cowork", "Claude mobile apps")
NO_MENTIONS = {"parse": []}


def chan(n: int, guild: str = GUILD) -> ChannelRef:
    return ChannelRef(Platform.DISCORD, guild, f"11000000000000{n:05d}")


# -- the rig ----------------------------------------------------------------------------------


def write_override(path: Path, claude_url: str, openai_url: str) -> Path:
    """An AISTATUS_CATALOG file pointing every status page at loopback (pages never recorded
    answer 404 on the claude server: unreadable, so their surfaces stay unknown)."""
    nothing = claude_url + "/nothing"
    path.write_text(
        json.dumps(
            {
                "providers": {
                    "claude": {"statuspage": claude_url},
                    "openai": {"statuspage": openai_url},
                    "github": {"statuspage": nothing},
                    "cursor": {"statuspage": nothing},
                }
            }
        )
    )
    return path


@dataclass
class Rig:
    """The composition root's parts, wired as `aistatus run` wires them, on a manual clock."""

    redis: Any
    api: DiscordAPI
    claude: StatusServer
    openai: StatusServer
    clock: ManualClock
    catalog: Catalog
    sender: DiscordSender
    delivery: Delivery
    svc: actions.Services
    poll: Callable[[str], Awaitable[Any]]
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    async def step(self, page: Any, *, within: float = 20.0) -> None:
        """Serve `page`, poll it once (one interval later), deliver everything that follows."""
        self.claude.set_summary(page)
        report = await self.poll("claude")
        assert report.claimed and report.reading.ok
        self.clock.advance(POLL)
        await self.delivery.drain(within)

    async def command(self, where: ChannelRef, text: str) -> str:
        ctx = CommandContext(
            channel=where, user_id="1100000000000000555", user_name="Maria", now=self.clock(),
            can_manage=True,
        )  # fmt: skip
        reply = await actions.handle(text, ctx, self.svc)
        assert not reply.error, reply.text
        return reply.text

    async def subscribe(self, channels: list[ChannelRef], *, all_claude: bool = True) -> None:
        for c in channels:
            await self.svc.subscriptions.subscribe(
                c, (), all_claude=all_claude, user="1100000000000000555", now=self.clock()
            )


RigFactory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make_rig(redis, clock, tmp_path) -> AsyncIterator[RigFactory]:
    """Builds the rig: a Discord server (with `chaos` when given), the pages, the watcher (by
    `bot.app.build_bot`), the command layer (`bot.app.services`) and a Delivery."""
    closers: list[Callable[[], Awaitable[Any]]] = []
    before = Route.BASE

    async def make(chaos: Chaos | None = None, config: DeliveryConfig | None = None) -> Rig:
        api = await DiscordAPI(chaos=chaos).start()
        closers.append(api.close)
        configure_api_base(api.url)
        claude, openai = StatusServer(), StatusServer()
        await claude.start()
        await openai.start()
        closers.extend([claude.stop, openai.stop])
        claude.set_summary(fixture_json(OPERATIONAL))
        openai.set_summary(fixture_json(OPENAI_DEGRADED))
        override = write_override(tmp_path / "catalog.json", claude.url, openai.url)
        settings = load_settings(
            None, catalog_path=override, probes_enabled=False, poll_interval=POLL
        )
        catalog = load_catalog(override)
        client = httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=2.0))
        closers.append(client.aclose)
        http = await open_rest_client(TOKEN)
        closers.append(http.close)
        bot = build_bot(settings, catalog, redis, client, clock=clock)
        svc = services(bot)
        sender = DiscordSender(http)
        registry = CollectorRegistry()
        delivery = Delivery(
            redis,
            {Platform.DISCORD: sender},
            bot.store,
            svc.subscriptions,
            catalog,
            config=config or DeliveryConfig.from_settings(settings),
            clock=clock,
            metrics=DeliveryMetrics.create(registry),
            rng=random.Random(5),
        )
        rig = Rig(
            redis, api, claude, openai, clock, catalog, sender, delivery, svc,
            bot.watcher.poll_page, registry,
        )  # fmt: skip
        # The replay runs on the incident's own timeline: the next poll is at 01:01Z, when the
        # recorded incident page was captured. Before it, both pages are read once, so the
        # backups' states are known (ChatGPT and the OpenAI API are degraded on the recorded
        # OpenAI page).
        clock.now = BEFORE_INCIDENT
        assert (await rig.poll("openai")).reading.ok
        await rig.step(fixture_json(OPERATIONAL))
        return rig

    yield make
    Route.BASE = before
    for close in reversed(closers):
        await close()


def calls_of(api: DiscordAPI, channel: ChannelRef) -> list[Call]:
    """Every message call about `channel` and the thread started from its first message."""
    own = f"/channels/{channel.channel}/"
    mine = [c for c in api.calls if c.path.startswith(own)]
    parents = [c for c in mine if c.method == "POST" and c.path == own + "messages"]
    if not parents:
        return mine
    first = api.messages[channel.channel]
    parent_id = next(iter(first))
    thread = f"/channels/{parent_id}/"
    return [c for c in api.calls if c.path.startswith(own) or c.path.startswith(thread)]


def shape(calls: list[Call], channel: ChannelRef, parent: str) -> list[str]:
    """Calls as readable routes: C is the channel, P the parent message (and its thread)."""
    out = []
    for c in calls:
        path = c.path.replace(channel.channel, "C").replace(parent, "P")
        out.append(f"{c.method} {path}" + (f" -> {c.status}" if (c.status or 200) >= 300 else ""))
    return out


def embed_of(message: dict[str, Any]) -> dict[str, Any]:
    (embed,) = message["embeds"]
    return embed


def field_value(embed: dict[str, Any], name: str) -> str:
    return next(f["value"] for f in embed["fields"] if f["name"] == name)


# -- 1. the recorded incident, replayed end to end ---------------------------------------------


async def test_the_recorded_incident_reaches_each_discord_channel_as_it_subscribed(make_rig):
    rig = await make_rig()
    a, b, c, d, e = chan(1), chan(2), chan(3), chan(4), chan(5, OTHER_GUILD)
    no_perm, too_many = chan(6), chan(7)
    await rig.command(a, "subscribe all")
    await rig.command(b, "subscribe api")
    await rig.command(c, "subscribe code --min major")
    await rig.command(d, "subscribe all")
    await rig.command(d, "mute 1d")
    await rig.command(e, "subscribe claude.ai code")
    await rig.command(no_perm, "subscribe all")
    await rig.command(too_many, "subscribe all")
    rig.api.fail(no_perm.channel, 50013, on="thread", times=None)
    rig.api.fail(too_many.channel, 160006, on="thread", times=None)
    rig.api.calls.clear()

    investigating = fixture_json(INVESTIGATING)
    await rig.step(investigating)
    await rig.step(investigating)  # the same page again: nothing new to say
    identified_at = rig.clock()
    identified = identified_update(investigating, identified_at)
    await rig.step(identified)
    await rig.step(identified)  # quiet poll
    await rig.step(fixture_json(RECOVERED))
    await rig.step(fixture_json(RECOVERED))  # quiet poll

    # Nothing for a subscription below its minimum, nor for a muted channel.
    assert calls_of(rig.api, c) == [] and calls_of(rig.api, d) == []

    threaded = [
        "POST /channels/C/messages",  # the incident: one parent message
        "PATCH /channels/C/messages/P",  # identified: the parent shows the current state
        "POST /channels/C/messages/P/threads",  # ... and a thread starts from it, once
        "POST /channels/P/messages",  # ... where the update goes
        "PATCH /channels/C/messages/P",  # recovered: the parent says resolved
        "POST /channels/P/messages",  # ... the thread says so
        "POST /channels/C/messages",  # ... and so does the channel
    ]
    for where in (a, b, e):
        calls = calls_of(rig.api, where)
        parent = next(iter(rig.api.messages[where.channel]))
        assert shape(calls, where, parent) == threaded, where
        recovery_post = calls[-1].json
        assert recovery_post["message_reference"]["message_id"] == parent
    for where, code in ((no_perm, 403), (too_many, 400)):
        parent = next(iter(rig.api.messages[where.channel]))
        # A missing permission is remembered for the channel: it is asked once, not per update.
        again = [] if code == 403 else [f"POST /channels/C/messages/P/threads -> {code}"]
        assert shape(calls_of(rig.api, where), where, parent) == [
            "POST /channels/C/messages",
            "PATCH /channels/C/messages/P",
            f"POST /channels/C/messages/P/threads -> {code}",
            "POST /channels/C/messages",  # the update as a reply to the parent
            "PATCH /channels/C/messages/P",
            *again,
            "POST /channels/C/messages",  # the recovery as a reply, once
        ]
        replies = rig.api.posted(where.channel)[1:]
        assert [m["message_reference"]["message_id"] for m in replies] == [parent, parent]
        assert [m["type"] for m in replies] == [19, 19]
        assert where.channel not in {t["parent_id"] for t in rig.api.threads.values()}

    # What people see. The first message, as posted (before any edit): the grouped alert.
    first = {where: _first_post(rig.api, where) for where in (a, b, e)}
    incident = investigating["incidents"][0]
    posted_at = parse_summary(
        json.dumps(investigating).encode(), provider="claude", observed_at=rig.clock()
    ).incidents[0]
    official = incident["incident_updates"][0]["body"]
    for where, names in ((a, AFFECTED), (b, ("Claude API",)), (e, ("claude.ai", "Claude Code"))):
        embed = embed_of(first[where])
        assert embed["color"] == COLOURS[Status.PARTIAL_OUTAGE]
        assert embed["title"].startswith("🟠 ")
        assert first[where]["content"] == embed["title"]
        assert field_value(embed, "Affected") == ", ".join(names)
        assert field_value(embed, "Status") == "partial outage"
        assert f"**{incident['name']}**" in embed["description"]
        assert f"> {official[:60]}" in embed["description"]
        assert embed["description"].endswith(discord_timestamp(posted_at.update_at))
        assert embed["url"] == incident["shortlink"]
    assert embed_of(first[a])["title"] == f"🟠 {', '.join(AFFECTED)}: partial outage"
    assert embed_of(first[b])["title"] == "🟠 Claude API: partial outage"
    assert embed_of(first[e])["title"] == "🟠 claude.ai, Claude Code: partial outage"
    # Backups: only what is operational now. Claude Console stayed up all along; ChatGPT and the
    # OpenAI API are degraded on their own page, so they are never offered.
    console = (
        "✅ [Claude Console](https://platform.claude.com) — "
        "Console Workbench: chat with Claude in the browser"
    )
    for where in (a, e):
        assert field_value(embed_of(first[where]), "Backups up now") == console
    assert field_value(embed_of(first[b]), "Backups up now") == (  # unknown is not down
        "No backup we could check is up right now (couldn't check: Claude on Amazon Bedrock, "
        "Claude on Google Vertex AI, Gemini)."
    )
    buttons = [x for row in first[a]["components"] for x in row["components"]]
    assert buttons[0]["url"] == incident["shortlink"]
    assert [x["custom_id"] for x in buttons[1:]] == [
        "aistatus:mute:1h",
        "aistatus:report:claude.ai",
        "aistatus:report:api",
        "aistatus:report:code",
        "aistatus:report:cowork",
        "aistatus:report:mobile",
    ]  # five buttons a row: the link, Mute and three surfaces, then the other two

    # The identified update, in the thread, quoting the new official text with its own time.
    parent = next(iter(rig.api.messages[a.channel]))
    update, resolved = rig.api.posted(parent)
    text = embed_of(update)["description"]
    assert text.startswith("**Update** — partial outage")
    assert "> The issue has been identified and a fix is being implemented." in text
    assert text.endswith(discord_timestamp(identified_at))
    assert "Claude Console" in field_value(embed_of(update), "Backups up now")
    assert embed_of(resolved)["description"].startswith("**Resolved** — operational")
    assert embed_of(resolved)["color"] == COLOURS[Status.OPERATIONAL]
    assert all(f["name"] != "Backups up now" for f in embed_of(resolved)["fields"])

    # The parent now shows the end: resolved, green, no report button, no backups.
    final = rig.api.messages[a.channel][parent]
    assert final["content"].startswith("✅ ")
    assert embed_of(final)["color"] == COLOURS[Status.OPERATIONAL]
    assert field_value(embed_of(final), "Status") == "operational"
    assert final["components"] == []
    assert final["edited_timestamp"] is not None

    # Status-page text never pings anyone: every message we sent disables mentions.
    sent = [x for x in rig.api.calls if x.method in ("POST", "PATCH") and "/threads" not in x.path]
    assert sent and all(x.json["allowed_mentions"] == NO_MENTIONS for x in sent)
    assert all(x.authorized for x in rig.api.calls)
    report = await deliveries_report(rig.redis)
    assert (report.queued, report.pending, report.dead) == (0, 0, ())


def _first_post(api: DiscordAPI, where: ChannelRef) -> dict[str, Any]:
    return next(
        c.json
        for c in api.calls
        if c.method == "POST" and c.path == f"/channels/{where.channel}/messages"
    )


# -- 2. `aistatus run`: alerts over REST while the gateway is unreachable -------------------------


async def test_run_delivers_over_rest_while_the_discord_gateway_is_unreachable(
    redis, redis_server, tmp_path
):
    api = await DiscordAPI().start()
    api.gateway_url = "ws://127.0.0.1:9"  # no websocket: /gateway/bot names a closed port
    where = chan(42)
    try:
        async with StatusServer() as claude:
            claude.set_summary(fixture_json(OPERATIONAL))
            override = write_override(tmp_path / "catalog.json", claude.url, claude.url)
            await SubscriptionStore(redis).subscribe(
                where, (), all_claude=True, user="1", now=datetime.now(UTC)
            )
            env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AISTATUS_"))}
            env.update(
                DISCORD_TOKEN=TOKEN,
                DISCORD_API_URL=api.url,
                REDIS_URL=redis_server.url,
                AISTATUS_CATALOG=str(override),
                AISTATUS_PROBES="false",
                AISTATUS_POLL_INTERVAL="0.5",
                AISTATUS_HTTP_PORT=str(free_port()),
                AISTATUS_DATA_DIR=str(tmp_path / "data"),
            )
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "--env-file", os.devnull, "run",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
                cwd=tmp_path,
            )  # fmt: skip
            assert proc.stdout is not None and proc.stderr is not None
            stderr = asyncio.create_task(proc.stderr.read())
            stdout = asyncio.create_task(proc.stdout.read())
            try:
                async with asyncio.timeout(40):
                    await claude.wait_for_requests(2, within=20)
                    claude.set_summary(fixture_json(INVESTIGATING))
                    parents = await api.wait_for(lambda a: a.posted(where.channel), within=20)
                    assert parents[0]["content"].startswith("🟠 ")
                    assert api.find("GET", "/gateway")  # it did try the gateway
                    claude.set_summary(fixture_json(RECOVERED))
                    await api.wait_for(lambda a: len(a.posted(where.channel)) == 2, within=20)
                    proc.send_signal(signal.SIGTERM)
                    async with asyncio.timeout(10):  # a clean stop, gateway retries and all
                        await proc.wait()
                    err = (await stderr).decode()
                    await stdout
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
    finally:
        await api.close()
    assert proc.returncode == 0, err[-3000:]
    parent, recovery = api.posted(where.channel)
    assert recovery["message_reference"]["message_id"] == parent["id"]
    assert recovery["content"].startswith("✅ ")
    assert api.messages[where.channel][parent["id"]]["content"].startswith("✅ ")
    assert "Traceback" not in err, err[-3000:]
    assert "Discord gateway unreachable (ClientConnectorError" in err  # one line, not a trace
    assert TOKEN not in err


# -- 3. Discord's faults: nothing lost, nothing repeated ---------------------------------------

CHAOTIC = DeliveryConfig(
    workers=32,
    min_idle=5.0,
    call_timeout=1.5,  # a hung call is given up after this; hung calls are never applied
    lease_ttl=5.0,
    block=0.05,
    gate_poll_max=0.1,
    pacing={p: UNLIMITED for p in Platform},
    retry=RetryPolicy(max_attempts=20, base=0.01, cap=0.05),
)


async def test_429s_500s_and_hangs_from_discord_still_deliver_each_alert_once_in_order(
    make_rig,
):
    chaos = Chaos(
        rate_limited=0.2, server_error=0.1, hang=0.05, retry_after=0.05, seed=11, global_share=0.25
    )
    rig = await make_rig(chaos=chaos, config=CHAOTIC)
    channels = [chan(100 + i) for i in range(100)]
    await rig.subscribe(channels)
    rig.api.calls.clear()

    investigating = fixture_json(INVESTIGATING)
    await rig.step(investigating, within=60)
    identified = identified_update(investigating, rig.clock())
    await rig.step(identified, within=60)
    monitoring = with_update(
        identified,
        rig.clock(),
        status="monitoring",
        body="A fix has been implemented.",
        update_id="replay0monitor",
    )
    await rig.step(monitoring, within=60)
    await rig.step(fixture_json(RECOVERED), within=60)

    faults = rig.api.faults
    assert faults["429"] > 20 and faults["429-global"] > 5, faults
    assert faults["500"] > 20 and faults["hang"] > 5, faults
    wrong = {}
    for where in channels:
        in_channel = rig.api.posted(where.channel)
        parent = in_channel[0]["id"] if in_channel else None
        thread = rig.api.posted(parent) if parent else []
        said = [_said(m) for m in in_channel] + ["|"] + [_said(m) for m in thread]
        # In the channel: the one parent (edited to resolved) and the recovery; in its thread:
        # the two updates and the recovery.
        if said != ["resolved", "resolved", "|", "update", "update", "resolved"]:
            wrong[where.channel] = said
        elif [m["message_reference"]["message_id"] for m in in_channel[1:]] != [parent]:
            wrong[where.channel] = ["recovery not a reply to the parent"]
        elif not rig.api.messages[where.channel][parent]["content"].startswith("✅ "):
            wrong[where.channel] = ["parent not resolved"]
        texts = [embed_of(m)["description"] for m in thread]
        if len(texts) == 3 and not (
            "identified" in texts[0] and "A fix has been implemented." in texts[1]
        ):
            wrong[where.channel] = ["updates out of order", *texts]
    assert not wrong, f"{len(wrong)} channels wrong: {list(wrong.items())[:3]}"
    report = await deliveries_report(rig.redis)
    assert (report.queued, report.pending, report.dead) == (0, 0, ())


async def test_a_recovery_whose_channel_post_failed_is_retried_without_a_second_thread_post(
    make_rig,
):
    rig = await make_rig()
    where = chan(300)
    await rig.subscribe([where])
    investigating = fixture_json(INVESTIGATING)
    await rig.step(investigating)
    await rig.step(identified_update(investigating, rig.clock()))
    parent = next(iter(rig.api.messages[where.channel]))
    # The recovery goes into the thread, then into the channel; that second call fails once.
    rig.api.fail(where.channel, 0, status=503, on="post")
    await rig.step(fixture_json(RECOVERED))

    assert [_said(m) for m in rig.api.posted(parent)] == ["update", "resolved"]  # shown once
    into_thread = rig.api.find("POST", f"/channels/{parent}/messages")
    assert len(into_thread) == 3  # the update, the recovery, the recovery again on the retry
    assert into_thread[1].json["nonce"] == into_thread[2].json["nonce"]
    assert [_said(m) for m in rig.api.posted(where.channel)] == ["resolved", "resolved"]
    assert rig.api.find("POST", f"/channels/{where.channel}/messages")[-2].status == 503


async def test_a_call_given_up_during_a_global_rate_limit_does_not_stall_every_channel():
    api = await DiscordAPI().start()
    before = Route.BASE
    configure_api_base(api.url)
    http = await open_rest_client(TOKEN)
    sender = DiscordSender(http)
    limited, other = chan(400), chan(401)
    api.rate_limit(limited.channel, 5.0, is_global=True)  # short enough for discord.py to wait
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):  # the delivery engine's call timeout, say
                await sender.post(limited, make_alert())
        async with asyncio.timeout(3):  # well before the 5 s the cancelled call waited for
            await sender.post(other, make_alert())
    finally:
        await http.close()
        Route.BASE = before
        await api.close()
    assert len(api.posted(other.channel)) == 1


def _said(message: dict[str, Any]) -> str:
    """What one message shows now: the alert it carries (a parent shows its latest edit)."""
    text = embed_of(message).get("description", "")
    if message["content"].startswith("✅ "):
        return "resolved"
    if text.startswith("**Update**"):
        return "update"
    return "start"


async def test_a_channel_deleted_mid_incident_is_disabled_and_the_others_carry_on(make_rig):
    rig = await make_rig()
    channels = [chan(200 + i) for i in range(5)]
    gone = channels[2]
    await rig.subscribe(channels)
    investigating = fixture_json(INVESTIGATING)
    await rig.step(investigating)
    rig.api.fail(gone.channel, 10003, times=None)  # the channel was deleted
    since = len(rig.api.calls)
    await rig.step(identified_update(investigating, rig.clock()))
    await rig.step(fixture_json(RECOVERED))

    sub = await rig.svc.subscriptions.get(gone)
    assert sub is not None and sub.disabled_reason == "unknown_channel"
    to_gone = [c for c in rig.api.calls[since:] if f"/channels/{gone.channel}/" in c.path]
    assert [(c.method, c.status) for c in to_gone] == [("PATCH", 404)]  # asked once, then left
    assert len(rig.api.posted(gone.channel)) == 1
    for where in (c for c in channels if c != gone):
        in_channel = rig.api.posted(where.channel)  # the parent (now resolved), the recovery
        assert [_said(m) for m in in_channel] == ["resolved", "resolved"]
        assert [_said(m) for m in rig.api.posted(in_channel[0]["id"])] == ["update", "resolved"]
        assert (await rig.svc.subscriptions.get(where)).disabled_reason is None
    report = await deliveries_report(rig.redis)
    assert {d.channel for d in report.dead} == {gone.key}
    assert {d.error for d in report.dead} == {"unknown_channel"}
    # Whoever subscribed it is told once, in a DM, with a link to the channel.
    dm = rig.api.dms["1100000000000000555"]
    [told] = rig.api.posted(dm)
    assert f"<#{gone.channel}>" in told["content"] and "unknown_channel" in told["content"]
