"""From the recorded 2026-09-22 incident to what each differently-subscribed channel is told:
loopback status page -> watcher -> Redis -> fan-out -> delivery -> a loopback chat server.
Subscriptions are made with the real `/aistatus` command layer."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import httpx
import pytest

from bot.chat import actions
from bot.chat.actions import Services
from bot.core.model import AlertKind, ChannelRef, CommandContext, Platform
from bot.delivery.engine import Delivery, DeliveryConfig
from bot.delivery.pacing import UNLIMITED
from bot.delivery.retry import RetryPolicy
from bot.ops.demo import identified_update
from bot.ops.statusserver import StatusServer
from bot.store.surfaces import SurfaceStore
from bot.watch.watcher import Watcher
from tests.conftest import ManualClock
from tests.helpers import Recorder, catalog_for, fixture_json, play
from tests.peers.chatserver import ChatServer, HttpChatSender

CONFIG = DeliveryConfig(
    workers=4,
    min_idle=1.0,
    block=0.05,
    gate_poll_max=0.05,
    pacing={p: UNLIMITED for p in Platform},
    retry=RetryPolicy(max_attempts=5, base=0.01, cap=0.05),
)

ALL = ChannelRef(Platform.SLACK, "T1", "C-ALL")
API = ChannelRef(Platform.SLACK, "T1", "C-API")
MAJOR_ONLY = ChannelRef(Platform.SLACK, "T1", "C-MAJOR")
MUTED = ChannelRef(Platform.SLACK, "T1", "C-MUTED")
WEB = ChannelRef(Platform.DISCORD, "G2", "C-WEB")
COMMANDS = {
    ALL: ["subscribe all"],
    API: ["subscribe api"],
    MAJOR_ONLY: ["subscribe code --min major"],
    MUTED: ["subscribe all", "mute 1d"],
    WEB: ["subscribe claude.ai, claude code"],
}


@pytest.fixture
async def replay(redis):
    """Run the recorded incident; return what the chat server was told, per channel."""
    clock = ManualClock(datetime(2026, 9, 22, 0, 50, tzinfo=UTC))
    async with StatusServer() as page, httpx.AsyncClient(timeout=2.0) as client:
        catalog = catalog_for(page.url)
        store = SurfaceStore(redis)
        watcher = Watcher(catalog, store, client, Recorder(), clock)
        svc = Services.over(redis, catalog, on_crowd=watcher.on_crowd, surfaces=store)
        subs = svc.subscriptions
        for channel, texts in COMMANDS.items():
            for text in texts:
                ctx = CommandContext(channel, "U1", "maria", clock(), can_manage=True)
                reply = await actions.handle(text, ctx, svc)
                assert not reply.error, reply.text
        server = await ChatServer().start()
        senders = {
            Platform.SLACK: HttpChatSender(server.url, timeout=5.0),
            Platform.DISCORD: HttpChatSender(server.url, platform=Platform.DISCORD, timeout=5.0),
        }
        delivery = Delivery(
            redis, senders, store, subs, catalog, config=CONFIG, clock=clock, rng=random.Random(1)
        )
        investigating = fixture_json("claude/summary_incident_investigating.json")
        at_0230 = datetime(2026, 9, 22, 2, 30, tzinfo=UTC)
        timeline = [
            ("00:50", fixture_json("claude/summary_all_operational.json")),
            ("01:01", investigating),
            ("01:16", investigating),
            ("02:30", identified_update(investigating, at_0230)),
            ("03:30", identified_update(investigating, at_0230)),
            ("06:01", fixture_json("claude/summary_recovered.json")),
        ]
        try:
            await play(timeline, page=page, watcher=watcher, delivery=delivery, clock=clock)
        finally:
            for s in senders.values():
                await s.aclose()
            await server.stop()
    return server


async def test_each_channel_is_told_once_per_change_in_order_and_only_what_it_asked_for(replay):
    said: dict[str, list[tuple[str, AlertKind]]] = {}
    for op, channel, alert in replay.alerts:
        said.setdefault(channel, []).append((op, alert.kind))
    story = [
        ("post", AlertKind.START),
        ("edit", AlertKind.UPDATE),
        ("reply", AlertKind.UPDATE),
        ("edit", AlertKind.RECOVERY),
        ("reply", AlertKind.RECOVERY),
    ]
    assert said[ALL.key] == story
    assert said[API.key] == story
    assert said[WEB.key] == story
    assert MAJOR_ONLY.key not in said, "a partial outage is below its --min major"
    assert MUTED.key not in said
    assert replay.duplicates() == []


async def test_one_grouped_alert_per_channel_with_only_its_surfaces(replay):
    starts = {ch: a for op, ch, a in replay.alerts if op == "post"}
    assert starts[ALL.key].surfaces == ("claude.ai", "api", "code", "cowork", "mobile")
    assert starts[API.key].surfaces == ("api",)
    assert starts[WEB.key].surfaces == ("claude.ai", "code")
    assert {a.key for a in starts.values()} == {"7g1qpkyz5gxh"}
    assert all(a.incident_title == "Elevated errors for multiple models" for a in starts.values())


async def test_durations_count_from_the_official_start(replay):
    alerts = [a for _, ch, a in replay.alerts if ch == ALL.key]
    start, update, recovery = alerts[0], alerts[2], alerts[4]
    assert start.started_at == datetime(2026, 9, 22, 0, 57, 26, 117000, tzinfo=UTC)
    assert start.duration_text == "for 3 min"
    assert update.duration_text == "for 1 h 32 min"
    assert update.update_text == "The issue has been identified and a fix is being implemented."
    assert recovery.duration_text == "resolved after 5 h 3 min"
    assert recovery.title.startswith("Resolved:")


async def test_backups_are_only_what_is_up_same_model_first(replay):
    starts = {ch: a for op, ch, a in replay.alerts if op == "post"}
    # The Console stayed operational through the recorded incident: the way back to Claude.
    assert [b.surface for b in starts[ALL.key].backups] == ["console"]
    assert starts[ALL.key].backups[0].same_model
    assert [b.surface for b in starts[WEB.key].backups] == ["console"]
    # The API's alternatives (Bedrock, Vertex, OpenAI, …) were never observed here: not offered.
    assert starts[API.key].backups == ()
    recoveries = [a for op, _, a in replay.alerts if a.kind is AlertKind.RECOVERY]
    assert all(a.backups == () for a in recoveries)
