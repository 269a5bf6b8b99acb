"""`/aistatus` end to end: text in, Reply out, against a real redis-server and the real stores."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.catalog_file import load_catalog
from bot.chat import actions
from bot.chat.actions import Services, handle
from bot.chat.replies import FORBIDDEN_TEXT, INTERNAL_ERROR_TEXT
from bot.core.model import (
    ChannelRef,
    CommandContext,
    Incident,
    Observation,
    Platform,
    Signal,
    Status,
    SurfaceState,
)
from bot.core.text import plain
from bot.store.subscriptions import SubscriptionStore
from bot.store.surfaces import Write
from tests.helpers import make_transition

CATALOG = load_catalog()
NOW = datetime(2026, 9, 22, 1, 30, tzinfo=UTC)
CHANNEL = ChannelRef(Platform.SLACK, "T1", "C1")
INCIDENT = Incident(
    id="7g1qpkyz5gxh",
    name="Elevated errors for multiple models",
    status="investigating",
    impact="major",
    update_id="u1",
    update_status="investigating",
    update_body="We are investigating elevated errors.",
    update_at=datetime(2026, 9, 22, 1, 1, tzinfo=UTC),
)


class Recorder:
    """Records the crowd observations handed to the watcher."""

    def __init__(self) -> None:
        self.seen: list[Observation] = []
        self.fail = False

    async def __call__(self, obs: Observation) -> None:
        if self.fail:
            raise RuntimeError("watcher is down")
        self.seen.append(obs)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def svc(redis, recorder) -> Services:
    return Services.over(redis, CATALOG, on_crowd=recorder)


def ctx(user: str = "U1", name: str = "maria", *, can_manage: bool = True, **kw) -> CommandContext:
    return CommandContext(
        channel=kw.pop("channel", CHANNEL),
        user_id=user,
        user_name=name,
        now=kw.pop("now", NOW),
        can_manage=can_manage,
    )


async def seed(svc: Services, surface: str, status: Status, **kw) -> None:
    """Write a committed state (and optionally its transition) through the real SurfaceStore."""
    provider = CATALOG.surfaces[surface].provider
    transition = kw.pop("transition", None)
    current = (await svc.surfaces.read(provider, [surface]))[surface]
    new = SurfaceState(surface=surface, status=status, version=current.version + 1, **kw)
    await svc.surfaces.commit(provider, [Write(surface, current.version, new, transition)])


# -- status ---------------------------------------------------------------------------------------


async def test_status_shows_the_board_from_redis(svc):
    for s in CATALOG.surfaces:
        await seed(svc, s, Status.OPERATIONAL, source=Signal.OFFICIAL, since=NOW)
    await seed(
        svc,
        "claude.ai",
        Status.PARTIAL_OUTAGE,
        source=Signal.OFFICIAL,
        incident=INCIDENT,
        since=datetime(2026, 9, 22, 1, 2, tzinfo=UTC),
    )
    before = svc.surfaces.round_trips
    reply = await handle("", ctx(), svc)
    assert svc.surfaces.round_trips - before == 1
    assert reply.ephemeral and not reply.error
    assert reply.text.startswith("Claude has problems: claude.ai (partial outage).")
    assert (
        "🟠 claude.ai: partial outage since 01:02 UTC — Elevated errors for multiple models"
        in reply.text
    )
    assert "✅ ChatGPT: operational" in reply.text


async def test_status_of_one_surface_has_detail_crowd_and_backups(svc):
    await seed(svc, "console", Status.OPERATIONAL, source=Signal.OFFICIAL, since=NOW)
    await seed(
        svc,
        "claude.ai",
        Status.MAJOR_OUTAGE,
        source=Signal.PROBE,
        suspected=True,
        since=NOW - timedelta(minutes=12),
    )
    await handle("report claude.ai", ctx("U7"), svc)
    reply = await handle("status claude.ai", ctx(), svc)
    lines = reply.text.splitlines()
    assert lines[0] == "🔴 claude.ai: suspected major outage"
    assert "Source: our own probes (suspected: not on the official status page yet)" in lines
    assert "Since 01:18 UTC (12 min ago)" in lines
    assert "User reports in the last 10 min: 1 person" in lines
    backups = next(line for line in lines if line.startswith("Backups up now: "))
    assert backups.startswith("Backups up now: Claude Console")


async def test_status_of_a_never_seen_surface_is_unknown(svc):
    reply = await handle("status api", ctx(), svc)
    assert reply.text.splitlines()[0] == "❔ Claude API: unknown (no data yet)"


# -- subscribe / unsubscribe / list ---------------------------------------------------------------


async def test_subscribe_confirms_announces_and_feeds_fan_out(svc):
    reply = await handle("subscribe api code --min partial", ctx(), svc)
    assert not reply.error and reply.ephemeral
    assert (
        reply.announce == "maria subscribed this channel to api, code (partial outages and worse)"
    )
    (sub,) = await svc.subscriptions.candidates(["api"])
    assert sub.channel == CHANNEL and sub.min_severity is Status.PARTIAL_OUTAGE
    assert sub.created_by == "U1"


async def test_subscribing_twice_announces_once(svc):
    await handle("subscribe all", ctx(), svc)
    again = await handle("subscribe all", ctx(now=NOW + timedelta(minutes=1)), svc)
    assert again.announce is None
    assert "Nothing changed" in again.text


async def test_list_shows_what_the_channel_gets(svc):
    assert "/aistatus subscribe all" in (await handle("list", ctx(), svc)).text
    await handle("subscribe all --maintenance", ctx(), svc)
    await handle("subscribe chatgpt", ctx(), svc)
    text = (await handle("list", ctx(), svc)).text
    assert "Alerts here: all Claude surfaces, ChatGPT" in text
    assert "Maintenance announcements: on" in text  # kept: the second subscribe did not say


async def test_unsubscribe_announces_and_unsubscribe_all_stops_everything(svc):
    await handle("subscribe api code", ctx(), svc)
    reply = await handle("unsubscribe api", ctx("U2", "li"), svc)
    assert reply.announce == "li unsubscribed this channel from api"
    assert "Claude Code only" in reply.text
    reply = await handle("unsubscribe all", ctx("U2", "li"), svc)
    assert reply.announce == "li unsubscribed this channel from code"
    assert await svc.subscriptions.get(CHANNEL) is None


async def test_unsubscribing_from_something_not_subscribed_changes_nothing(svc):
    await handle("subscribe code", ctx(), svc)
    reply = await handle("unsubscribe api", ctx(), svc)
    assert reply.announce is None and "Nothing changed" in reply.text


async def test_subscribe_resumes_a_channel_that_was_disabled(svc):
    await handle("subscribe api", ctx(), svc)
    await svc.subscriptions.disable(CHANNEL, "not_in_channel", NOW)
    await handle("subscribe api", ctx(), svc)
    sub = await svc.subscriptions.get(CHANNEL)
    assert sub is not None and sub.disabled_reason is None


@pytest.mark.parametrize(
    "text", ["subscribe api", "unsubscribe api", "mute 2h", "unmute"], ids=str.split
)
async def test_changes_need_the_manage_permission(svc, text):
    await handle("subscribe code", ctx(), svc)
    before = await svc.subscriptions.get(CHANNEL)
    reply = await handle(text, ctx("U9", "guest", can_manage=False), svc)
    assert reply.text == FORBIDDEN_TEXT and reply.error and reply.announce is None
    assert await svc.subscriptions.get(CHANNEL) == before


async def test_reading_needs_no_permission(svc):
    for text in ("status", "list", "history", "help", "report api"):
        reply = await handle(text, ctx("U9", "guest", can_manage=False), svc)
        assert not reply.error, text


# -- mute -----------------------------------------------------------------------------------------


async def test_mute_then_unmute(svc):
    await handle("subscribe all", ctx(), svc)
    reply = await handle("mute 2h", ctx(), svc)
    assert plain(reply.announce or "") == "maria muted aistatus alerts here until 03:30 UTC"
    sub = await svc.subscriptions.get(CHANNEL)
    assert sub is not None and sub.muted_until == NOW + timedelta(hours=2)
    assert "Muted until 03:30 UTC" in (await handle("list", ctx(), svc)).text
    reply = await handle("unmute", ctx(), svc)
    assert reply.announce == "maria unmuted aistatus alerts here"
    sub = await svc.subscriptions.get(CHANNEL)
    assert sub is not None and sub.muted_until is None


async def test_mute_without_a_subscription_says_so(svc):
    reply = await handle("mute 30m", ctx(), svc)
    assert "nothing to mute" in reply.text and reply.announce is None
    assert await svc.subscriptions.get(CHANNEL) is None


# -- report ---------------------------------------------------------------------------------------


async def test_reports_reach_the_watcher_and_cross_the_threshold(svc, recorder):
    people = [(f"U{i}", ws) for ws in ("T1", "T2", "T3") for i in (1, 2)]
    for i, (user, ws) in enumerate(people):
        channel = ChannelRef(Platform.SLACK, ws, "C1")
        reply = await handle(
            "report claude.ai", ctx(user, channel=channel, now=NOW + timedelta(seconds=i)), svc
        )
    assert reply.text.startswith(
        "Thanks — 6 people from 3 workspaces reported claude.ai in the last 10 min."
    )
    assert [o.status for o in recorder.seen] == [Status.OPERATIONAL] * 5 + [Status.PARTIAL_OUTAGE]
    assert all(o.signal is Signal.CROWD and o.surface == "claude.ai" for o in recorder.seen)


async def test_a_repeated_report_is_not_fed_twice(svc, recorder):
    await handle("report api", ctx(), svc)
    reply = await handle("report api", ctx(now=NOW + timedelta(minutes=1)), svc)
    assert reply.text.startswith("You already reported Claude API")
    assert len(recorder.seen) == 1


async def test_same_ids_on_slack_and_discord_are_different_people(svc):
    await handle("report api", ctx("42", channel=ChannelRef(Platform.SLACK, "1", "C")), svc)
    reply = await handle(
        "report api", ctx("42", channel=ChannelRef(Platform.DISCORD, "1", "C")), svc
    )
    assert "2 people from 2 workspaces" in reply.text


async def test_a_failing_watcher_does_not_lose_the_report(svc, recorder, caplog):
    recorder.fail = True
    with caplog.at_level(logging.ERROR, logger="bot.chat.actions"):
        reply = await handle("report code", ctx(), svc)
    assert reply.text.startswith("Thanks — 1 person")
    assert "watcher is down" in caplog.text
    assert len(await svc.crowd.recent("code", NOW)) == 1


# -- history and help -----------------------------------------------------------------------------


async def test_history_shows_recorded_outages_with_uptime(svc):
    start = NOW - timedelta(hours=5)
    end = start + timedelta(minutes=47)
    t1 = make_transition("code", status=Status.MAJOR_OUTAGE, at=start)
    t2 = make_transition(
        "code",
        version=2,
        status=Status.OPERATIONAL,
        prev=Status.MAJOR_OUTAGE,
        at=end,
        started_at=start,
    )
    watched = NOW - timedelta(days=30)  # the bot has watched for a month
    for s in ("claude.ai", "code"):
        await seed(svc, s, Status.OPERATIONAL, first_seen=watched)
    await seed(svc, "code", Status.MAJOR_OUTAGE, transition=t1, since=start, first_seen=watched)
    await seed(svc, "code", Status.OPERATIONAL, transition=t2, since=end, first_seen=watched)
    reply = await handle("history code --days 1", ctx(), svc)
    lines = reply.text.splitlines()
    assert lines[0] == "History of Claude Code, last day"
    assert "Uptime 96.7%" in lines  # 47 min of 24 h
    assert (
        "Sep 21 20:30 → 21:17 UTC 🔴 Elevated errors for multiple models — Claude Code · 47 min"
        in lines
    )
    overview = await handle("history", ctx(), svc)
    assert "99.5% Claude Code" in overview.text  # 47 min of 7 days
    assert "100% claude.ai" in overview.text
    assert "no data Claude API" in overview.text, "never watched: no figure, not 100 %"


async def test_help_lists_the_verbs(svc):
    reply = await handle("help", ctx(), svc)
    assert "/aistatus subscribe" in reply.text and "/aistatus report" in reply.text


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "usage"),
    [
        ("subscribe cladue", "/aistatus subscribe"),
        ("mute forever", "/aistatus mute"),
        ("subscribe api --min sometimes", "/aistatus subscribe"),
        ("frobnicate", "/aistatus"),
    ],
    ids=["unknown-surface", "bad-duration", "bad-flag", "unknown-verb"],
)
async def test_bad_input_gets_one_line_and_the_usage(svc, text, usage):
    reply = await handle(text, ctx(), svc)
    assert reply.error and reply.ephemeral and reply.announce is None
    first, *rest = reply.text.splitlines()
    assert first and rest and rest[-1].startswith(f"Usage: `{usage}")
    assert await svc.subscriptions.get(CHANNEL) is None


async def test_an_internal_failure_is_logged_not_shown(svc, caplog, tmp_path):
    dead = aioredis.Redis(
        unix_socket_path=str(tmp_path / "no-such.sock"), retry=Retry(NoBackoff(), 0)
    )
    broken = replace(svc, subscriptions=SubscriptionStore(dead))
    with caplog.at_level(logging.ERROR, logger="bot.chat.actions"):
        reply = await handle("list", ctx(), broken)
    await dead.aclose()
    assert reply.text == INTERNAL_ERROR_TEXT and reply.error
    assert "Traceback" in caplog.text and "Traceback" not in reply.text


async def test_run_takes_a_parsed_command(svc):
    from bot.chat.commands import Command, Verb

    reply = await actions.run(Command(Verb.SUBSCRIBE, all_surfaces=True), ctx(), svc)
    assert (
        reply.announce
        == "maria subscribed this channel to all Claude surfaces (degraded performance and worse)"
    )
