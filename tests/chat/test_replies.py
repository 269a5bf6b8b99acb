"""The `/aistatus` answers as users read them: pure builders, data in, Reply out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.alerting.subscription import Subscription
from bot.catalog_file import load_catalog
from bot.chat import replies
from bot.chat.commands import USAGE, Verb
from bot.core.freshness import BLIND_ERROR
from bot.core.model import (
    Backup,
    ChannelRef,
    Incident,
    Platform,
    Reason,
    Signal,
    SignalState,
    Status,
    SurfaceState,
)
from bot.core.model import TransitionKind as Kind
from bot.core.suggest import NO_BACKUPS_TEXT
from bot.core.text import plain
from bot.errors import CommandError
from tests.helpers import make_transition

CATALOG = load_catalog()
NOW = datetime(2026, 9, 22, 1, 30, tzinfo=UTC)
C1 = ChannelRef(Platform.SLACK, "T1", "C1")
INCIDENT = Incident(
    id="7g1qpkyz5gxh",
    name="Elevated errors for multiple models",
    status="investigating",
    impact="major",
    url="https://stspg.io/abc",
    update_id="u1",
    update_status="investigating",
    update_body="We are investigating elevated errors & timeouts.\nMore soon.",  # as parsed
    update_at=datetime(2026, 9, 22, 1, 1, tzinfo=UTC),
)


def state(surface: str, status: Status, **kw) -> SurfaceState:
    sig = SignalState(raw=status, streak=1, effective=status, observed_at=NOW)
    return SurfaceState(surface=surface, status=status, signals={"official": sig}, **kw)


def all_up() -> dict[str, SurfaceState]:
    return {
        s: state(s, Status.OPERATIONAL, source=Signal.OFFICIAL, since=NOW - timedelta(days=2))
        for s in CATALOG.surfaces
    }


# -- board ----------------------------------------------------------------------------------------


def test_board_says_all_is_well_when_it_is():
    reply = replies.board(all_up(), CATALOG, NOW)
    assert reply.text.startswith("All Claude surfaces are operational.")
    assert "✅ claude.ai: operational" in reply.text


def test_board_lists_claude_surfaces_before_backups():
    text = replies.board(all_up(), CATALOG, NOW).text
    claude_at = [text.index(f"✅ {CATALOG.surfaces[s].name}:") for s in CATALOG.claude_surfaces()]
    backup_at = text.index("✅ ChatGPT:")
    assert max(claude_at) < text.index("Backups") < backup_at


def test_board_shows_the_outage_with_since_and_incident_title():
    states = all_up()
    states["api"] = state(
        "api",
        Status.PARTIAL_OUTAGE,
        source=Signal.OFFICIAL,
        incident=INCIDENT,
        since=datetime(2026, 9, 22, 1, 2, tzinfo=UTC),
    )
    reply = replies.board(states, CATALOG, NOW)
    assert reply.text.startswith("Claude has problems: Claude API (partial outage).")
    assert (
        "🟠 Claude API: partial outage since 01:02 UTC — Elevated errors for multiple models"
        in reply.text
    )
    assert [s.title for s in reply.sections] == [
        "Claude has problems: Claude API (partial outage).",
        "Claude",
        "Backups",
    ]


def test_board_marks_suspected_outages_and_unknown_surfaces():
    states = {"code": state("code", Status.MAJOR_OUTAGE, source=Signal.PROBE, suspected=True)}
    text = replies.board(states, CATALOG, NOW).text
    assert "🔴 Claude Code: suspected major outage" in text
    assert "❔ claude.ai: unknown (no data yet)" in text


def failing(surface: str, status: Status, *, answered: datetime, since: datetime, polls: int):
    """`surface` last known `status` (read at `answered`), its page failing `polls` polls in a
    row since `since` with HTTP 500 (what `observe_signal` keeps across unknown polls)."""
    sig = SignalState(
        raw=Status.UNKNOWN,
        streak=polls,
        effective=status,
        observed_at=answered,
        error="HTTP 500",
        failing_since=since,
    )
    return SurfaceState(
        surface=surface, status=status, source=Signal.OFFICIAL, signals={"official": sig}
    )


def test_every_board_says_when_the_status_page_last_answered():
    reply = replies.board(all_up(), CATALOG, NOW)
    assert reply.text.splitlines()[:2] == [
        "All Claude surfaces are operational.",
        "Source: the Anthropic status page, last answered 01:30 UTC",
    ]


def test_after_a_few_failed_polls_the_board_says_the_page_is_not_answering():
    live = all_up()
    answered, since = NOW - timedelta(minutes=7), NOW - timedelta(minutes=6, seconds=45)
    for sid in CATALOG.claude_surfaces():
        live[sid] = failing(sid, Status.PARTIAL_OUTAGE, answered=answered, since=since, polls=3)
    lines = replies.board(live, CATALOG, NOW).text.splitlines()
    assert lines[1] == (
        "The Anthropic status page is not answering (HTTP 500 since 01:23 UTC); "
        "last known (01:23 UTC): the states below"
    )
    detail = replies.surface_detail("claude.ai", live["claude.ai"], CATALOG, NOW, 0, None)
    assert (
        "The Anthropic status page is not answering (HTTP 500 since 01:23 UTC); "
        "last known (01:23 UTC): partial outage"
    ) in detail.text.splitlines()


def test_one_failed_poll_is_not_yet_news():
    live = all_up()
    for sid in CATALOG.claude_surfaces():
        live[sid] = failing(sid, Status.OPERATIONAL, answered=NOW, since=NOW, polls=1)
    assert "not answering" not in replies.board(live, CATALOG, NOW).text


def test_while_monitoring_is_blind_the_board_says_so_first_not_no_outage():
    live = all_up()
    blind = SignalState(Status.UNKNOWN, 2, Status.OPERATIONAL, NOW, error=BLIND_ERROR)
    for sid, spec in CATALOG.surfaces.items():
        if spec.probes:
            live[sid] = replace(live[sid], signals={**live[sid].signals, "probe": blind})
    text = replies.board(live, CATALOG, NOW).text
    assert text.startswith(
        "aistatus cannot reach the internet right now — this is not a Claude outage."
    )
    assert "No Claude surface reports an outage" not in text
    assert "All Claude surfaces are operational" not in text


# -- surface detail -------------------------------------------------------------------------------


def test_detail_names_source_since_incident_update_crowd_and_backups():
    st = state(
        "claude.ai",
        Status.PARTIAL_OUTAGE,
        source=Signal.OFFICIAL,
        incident=INCIDENT,
        since=NOW - timedelta(minutes=47),
    )
    backups = (
        Backup(
            "console",
            "Claude Console",
            "https://platform.claude.com",
            Status.OPERATIONAL,
            same_model=True,
            note="Console Workbench",
        ),
    )
    reply = replies.surface_detail("claude.ai", st, CATALOG, NOW, 3, backups)
    lines = reply.text.splitlines()
    assert lines[0] == "🟠 claude.ai: partial outage"
    assert "Source: the Anthropic status page, last answered 01:30 UTC" in lines
    assert "Since 00:43 UTC (47 min ago)" in lines
    assert (
        "Incident: Elevated errors for multiple models (investigating) https://stspg.io/abc"
        in lines
    )
    assert "Latest investigating at 01:01 UTC:" in lines
    assert "> We are investigating elevated errors & timeouts. More soon." in lines
    assert "User reports in the last 10 min: 3 people" in lines
    assert "Backups up now: Claude Console (Console Workbench) https://platform.claude.com" in lines


def test_detail_says_when_an_outage_is_only_suspected():
    st = state("api", Status.MAJOR_OUTAGE, source=Signal.CROWD, suspected=True, since=NOW)
    text = replies.surface_detail("api", st, CATALOG, NOW, 5, ()).text
    assert "🔴 Claude API: suspected major outage" in text
    assert "Source: user reports (suspected: not on the official status page yet)" in text
    assert NO_BACKUPS_TEXT in text


def test_detail_of_a_healthy_surface_has_no_backup_line():
    st = state("api", Status.OPERATIONAL, source=Signal.OFFICIAL, since=NOW - timedelta(hours=3))
    text = replies.surface_detail("api", st, CATALOG, NOW, 1, None).text
    assert "Backups" not in text and NO_BACKUPS_TEXT not in text
    assert "User reports in the last 10 min: 1 person" in text


def test_long_incident_updates_are_cut():
    inc = Incident(id="i", name="x", status="identified", impact="minor", update_body="word " * 500)
    st = state("api", Status.DEGRADED, source=Signal.OFFICIAL, incident=inc)
    quoted = next(
        line
        for line in replies.surface_detail("api", st, CATALOG, NOW, 0, None).text.splitlines()
        if line.startswith("> ")
    )
    assert len(quoted) <= replies.UPDATE_CHARS + 2 and quoted.endswith("…")


# -- subscriptions --------------------------------------------------------------------------------


def test_subscribed_announces_who_subscribed_to_what():
    sub = Subscription(
        channel=C1, surfaces=frozenset({"api", "code"}), min_severity=Status.PARTIAL_OUTAGE
    )
    reply = replies.subscribed(
        sub, CATALOG, user_name="maria", added=["api", "code"], added_all=False, changed=True
    )
    assert (
        reply.announce == "maria subscribed this channel to api, code (partial outages and worse)"
    )
    assert reply.ephemeral
    assert "Claude API, Claude Code" in reply.text


def test_subscribing_to_nothing_new_announces_nothing():
    sub = Subscription(channel=C1, all_claude=True)
    reply = replies.subscribed(
        sub, CATALOG, user_name="maria", added=[], added_all=False, changed=False
    )
    assert reply.announce is None
    assert "already gets alerts for all Claude surfaces" in reply.text


def test_unsubscribed_announces_and_says_what_is_left():
    left = Subscription(channel=C1, surfaces=frozenset({"code"}))
    reply = replies.unsubscribed(left, CATALOG, user_name="li", removed=["api"], removed_all=False)
    assert reply.announce == "li unsubscribed this channel from api"
    assert "Claude Code only" in reply.text
    gone = replies.unsubscribed(None, CATALOG, user_name="li", removed=["code"], removed_all=False)
    assert "no aistatus alerts any more" in gone.text


def test_list_shows_surfaces_severity_mute_and_pause():
    sub = Subscription(
        channel=C1,
        surfaces=frozenset({"chatgpt"}),
        all_claude=True,
        min_severity=Status.MAJOR_OUTAGE,
        maintenance=True,
        muted_until=NOW + timedelta(hours=2),
        disabled_reason="not_in_channel",
    )
    lines = replies.subscription_list(sub, CATALOG, NOW).text.splitlines()
    assert "Alerts here: all Claude surfaces, ChatGPT" in lines
    assert "Severity: major outages only" in lines
    assert "Maintenance announcements: on" in lines
    assert "Muted until 03:30 UTC (2 h left)" in lines
    assert any("not_in_channel" in line for line in lines)


def test_list_does_not_show_an_expired_mute():
    sub = Subscription(channel=C1, surfaces=frozenset({"api"}), muted_until=NOW)
    assert "Muted" not in replies.subscription_list(sub, CATALOG, NOW).text


def test_list_without_subscription_says_how_to_start():
    assert "/aistatus subscribe all" in replies.subscription_list(None, CATALOG, NOW).text


def test_mute_and_unmute_are_announced():
    reply = replies.muted(NOW + timedelta(hours=2), NOW, user_name="maria")
    assert reply.text == "Alerts are muted here until 03:30 UTC (for 2 h)."
    assert plain(reply.announce or "") == "maria muted aistatus alerts here until 03:30 UTC"
    assert replies.unmuted(user_name="maria").announce == "maria unmuted aistatus alerts here"


def test_mute_across_midnight_names_the_day():
    reply = replies.muted(NOW + timedelta(days=1), NOW, user_name="maria")
    assert "until Sep 23 01:30 UTC (for 1 d)" in reply.text


# -- reports --------------------------------------------------------------------------------------


def test_reported_thanks_with_the_tally():
    reply = replies.reported(
        "claude.ai", CATALOG, users=3, workspaces=2, recorded=True, crossed=False
    )
    assert (
        reply.text == "Thanks — 3 people from 2 workspaces reported claude.ai in the last 10 min."
    )


def test_a_repeated_report_is_not_counted_twice_and_says_so():
    reply = replies.reported("api", CATALOG, users=1, workspaces=1, recorded=False, crossed=True)
    assert reply.text.startswith("You already reported Claude API in the last 10 min — 1 person")
    assert "suspected outage" in reply.text


# -- history --------------------------------------------------------------------------------------


def api_outage() -> list:
    start = datetime(2026, 9, 21, 12, 0, tzinfo=UTC)
    end = start + timedelta(hours=2, minutes=13)
    return [
        make_transition(
            version=2,
            status=Status.OPERATIONAL,
            prev=Status.MAJOR_OUTAGE,
            at=end,
            started_at=start,
        ),
        make_transition(status=Status.MAJOR_OUTAGE, at=start),
    ]


WATCHED_LONG = {s: NOW - timedelta(days=30) for s in CATALOG.surfaces}


def test_history_of_one_surface_has_uptime_daily_bars_and_one_line_per_outage():
    reply = replies.history("api", {"api": api_outage()}, CATALOG, 2, NOW, first_seen=WATCHED_LONG)
    lines = reply.text.splitlines()
    assert lines[0] == "History of Claude API, last 2 days"
    assert "Uptime 95.3%" in lines  # 2 h 13 min down in 48 h: 95.38%, never rounded up
    assert "Sep 21 █████████░ 90.7%" in lines  # 2 h 13 min of 24 h
    assert "Sep 22 ██████████ 100%" in lines
    outages = lines[lines.index("Outages") + 1 :]
    assert outages == [
        "Sep 21 12:00 → 14:13 UTC 🔴 Elevated errors for multiple models — Claude API · 2 h 13 min"
    ]


def test_uptime_counts_only_the_time_aistatus_watched():
    since = {"api": datetime(2026, 9, 21, 10, 0, tzinfo=UTC)}  # NOW is Sep 22 01:30
    reply = replies.history("api", {"api": api_outage()}, CATALOG, 7, NOW, first_seen=since)
    lines = reply.text.splitlines()
    assert "Sep 19 ·········· no data" in lines, "a day before the bot ran is not 100 %"
    assert "Uptime 85.6%" in lines  # 2 h 13 min down of the 15 h 30 min it watched
    assert "Counts only the time aistatus watched (since Sep 21 10:00 UTC)." in lines
    never = replies.history(None, {"code": []}, CATALOG, 7, NOW)
    assert "·········· no data Claude Code" in never.text
    assert "100%" not in never.text


def test_history_groups_an_outage_and_shows_how_far_ahead_of_the_page_aistatus_was():
    t0 = datetime(2026, 9, 22, 0, 50, tzinfo=UTC)
    probe_id = "probe-claude-1"
    ts = [
        make_transition(
            "claude.ai", status=Status.MAJOR_OUTAGE, source=Signal.PROBE, suspected=True,
            outage_id=probe_id, incident=None, at=t0, started_at=t0,
        ),
        make_transition(
            "claude.ai", version=2, kind=Kind.UPDATE, reason=Reason.CONFIRMED,
            status=Status.PARTIAL_OUTAGE, prev=Status.MAJOR_OUTAGE, prev_suspected=True,
            outage_id=probe_id, at=t0 + timedelta(minutes=7), started_at=t0,
        ),
        make_transition(
            "api", status=Status.PARTIAL_OUTAGE, outage_id=probe_id,
            at=t0 + timedelta(minutes=7), started_at=t0,
        ),
    ]  # fmt: skip
    by = {"claude.ai": ts[:2], "api": ts[2:]}
    reply = replies.history(None, by, CATALOG, 1, NOW, first_seen=WATCHED_LONG)
    lines = reply.text.splitlines()
    assert lines[lines.index("Outages") + 1 :] == [
        "since 00:50 UTC 🔴 Elevated errors for multiple models — claude.ai, Claude API · "
        "ongoing, 40 min so far · aistatus saw this 7 min before the status page"
    ]


def test_history_without_outages_says_so():
    reply = replies.history(
        None, {s: [] for s in CATALOG.claude_surfaces()}, CATALOG, 7, NOW, first_seen=WATCHED_LONG
    )
    assert "██████████ 100% claude.ai" in reply.text
    assert "No outages recorded in the last 7 days." in reply.text


# -- help and errors ------------------------------------------------------------------------------


def test_help_lists_every_verb():
    text = replies.help().text
    for verb in Verb:
        assert USAGE[verb] in text


def test_help_about_one_verb_shows_only_it():
    text = replies.help(Verb.MUTE).text
    assert USAGE[Verb.MUTE] in text and USAGE[Verb.SUBSCRIBE] not in text


def test_error_is_one_line_plus_usage():
    reply = replies.error(
        CommandError(
            "Unknown surface `cladue`. Did you mean claude.ai?", usage="/aistatus status [surface]"
        )
    )
    assert reply.error and reply.ephemeral
    assert reply.text.splitlines() == [
        "Unknown surface `cladue`. Did you mean claude.ai?",
        "Usage: `/aistatus status [surface]`",
    ]


@pytest.mark.parametrize(
    "reply",
    [
        replies.forbidden(),
        replies.internal_error(),
        replies.not_subscribed("mute"),
        replies.unmuted(user_name="x"),
        replies.help(),
    ],
    ids=["forbidden", "internal", "not-subscribed", "unmuted", "help"],
)
def test_every_reply_has_plain_text(reply):
    assert reply.text.strip()
    assert "Traceback" not in reply.text
