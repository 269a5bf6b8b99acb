"""The `/aistatus` answers as users read them: pure builders, data in, Reply out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.alerting.subscription import Subscription
from bot.catalog_file import load_catalog
from bot.chat import replies
from bot.chat.commands import USAGE, Verb
from bot.core.model import (
    Backup,
    ChannelRef,
    Incident,
    Platform,
    Signal,
    SignalState,
    Status,
    SurfaceState,
)
from bot.core.suggest import NO_BACKUPS_TEXT
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
    assert "Source: the official status page" in lines
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
    assert reply.announce == "maria muted aistatus alerts here until 03:30 UTC"
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


def test_history_of_one_surface_has_durations_uptime_and_daily_bars():
    start = datetime(2026, 9, 21, 12, 0, tzinfo=UTC)
    end = start + timedelta(hours=2, minutes=13)
    ts = [
        make_transition(
            version=2,
            status=Status.OPERATIONAL,
            prev=Status.MAJOR_OUTAGE,
            at=end,
            started_at=start,
        ),
        make_transition(status=Status.MAJOR_OUTAGE, at=start),
    ]
    reply = replies.history("api", {"api": ts}, CATALOG, 2, NOW)
    lines = reply.text.splitlines()
    assert lines[0] == "History of Claude API, last 2 days"
    assert "Uptime 95.3%" in lines  # 2 h 13 min down in 48 h: 95.38%, never rounded up
    assert "Sep 21 █████████░ 90.7%" in lines  # 2 h 13 min of 24 h
    assert "Sep 22 ██████████ 100%" in lines
    assert "Sep 21 14:13 UTC ✅ Claude API: recovered after 2 h 13 min" in lines
    assert (
        "Sep 21 12:00 UTC 🔴 Claude API: major outage started (the official status page)" in lines
    )


def test_history_without_outages_says_so():
    reply = replies.history(None, {s: [] for s in CATALOG.claude_surfaces()}, CATALOG, 7, NOW)
    assert "██████████ 100% claude.ai" in reply.text
    assert "No changes recorded in the last 7 days." in reply.text


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
