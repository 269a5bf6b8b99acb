"""Discord payloads for alerts, thread updates, replies and autocomplete (pure)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import discord.utils
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.alerting.subscription import Subscription
from bot.catalog_file import load_catalog
from bot.chat import replies
from bot.chat.discord.render import (
    COLOURS,
    EMBED_TOTAL_MAX,
    EPHEMERAL,
    button_command,
    command_text,
    embed_length,
    escape_markdown,
    fit_embed,
    parse_report_custom_id,
    surface_choices,
    thread_name,
    to_discord_announce,
    to_discord_message,
    to_discord_reply,
    to_discord_thread_update,
)
from bot.chat.slack.render import to_slack_reply
from bot.core.model import AlertKind, Backup, ChannelRef, Platform, Reply, Section, Status
from bot.core.suggest import NO_BACKUPS_TEXT
from tests.chat.test_replies import INCIDENT, NOW, state
from tests.helpers import INCIDENT_URL, UPDATED, make_alert


def embed_of(payload: dict) -> dict:
    (embed,) = payload["embeds"]
    return embed


def fields_of(payload: dict) -> dict[str, str]:
    return {f["name"]: f["value"] for f in embed_of(payload)["fields"]}


# -- alerts ----------------------------------------------------------------------------------------


def test_a_start_alert_shows_title_official_update_and_fields():
    msg = to_discord_message(make_alert())
    embed = embed_of(msg)
    assert embed["title"] == "🟠 claude.ai: partial outage"
    assert embed["url"] == INCIDENT_URL
    assert "**Elevated errors for multiple models**" in embed["description"]
    assert "> We are currently investigating this issue." in embed["description"]
    assert f"<t:{int(UPDATED.timestamp())}:t>" in embed["description"]
    assert fields_of(msg) == {
        "Affected": "claude.ai",
        "Status": "partial outage",
        "Duration": "for 11 min",
        "Backups up now": (
            "✅ [Claude Console](https://platform.claude.com) — Console Workbench: chat with "
            "Claude in the browser\n✅ [ChatGPT](https://chatgpt.com)"
        ),
    }
    assert msg["content"] == "🟠 claude.ai: partial outage"
    assert msg["allowed_mentions"] == {"parse": []}
    assert "footer" not in embed


@pytest.mark.parametrize(
    ("severity", "kind", "colour"),
    [
        (Status.DEGRADED, AlertKind.START, 0xF1C40F),
        (Status.PARTIAL_OUTAGE, AlertKind.START, 0xE67E22),
        (Status.MAJOR_OUTAGE, AlertKind.UPDATE, 0xE74C3C),
        (Status.MAINTENANCE, AlertKind.MAINTENANCE_START, 0x3498DB),
        (Status.UNKNOWN, AlertKind.UPDATE, 0x95A5A6),
        (Status.OPERATIONAL, AlertKind.RECOVERY, 0x2ECC71),
    ],
    ids=[
        "degraded-yellow",
        "partial-orange",
        "major-red",
        "maintenance-blue",
        "unknown-grey",
        "recovery-green",
    ],
)
def test_the_colour_follows_severity(severity, kind, colour):
    embed = embed_of(to_discord_message(make_alert(severity=severity, kind=kind)))
    assert embed["color"] == colour == COLOURS.get(severity, colour)


def test_the_parent_has_an_incident_link_a_mute_and_a_report_button():
    (row,) = to_discord_message(make_alert())["components"]
    assert row["type"] == 1
    link, mute, report = row["components"]
    assert link == {"type": 2, "style": 5, "label": "Open incident", "url": INCIDENT_URL}
    assert mute == {"type": 2, "style": 2, "label": "Mute 1h", "custom_id": "aistatus:mute:1h"}
    assert button_command(mute["custom_id"]) == "mute 1h"
    assert button_command(report["custom_id"]) == "report claude.ai"
    assert report == {
        "type": 2,
        "style": 2,
        "label": "I'm affected too",
        "custom_id": "aistatus:report:claude.ai",
    }
    assert parse_report_custom_id(report["custom_id"]) == "claude.ai"


def test_an_alert_for_several_surfaces_has_one_report_button_each():
    alert = make_alert(
        surfaces=("claude.ai", "api"), surface_names=("claude.ai", "Claude API"), url=None
    )
    (row,) = to_discord_message(alert)["components"]
    assert [b["custom_id"] for b in row["components"]] == [
        "aistatus:mute:1h",
        "aistatus:report:claude.ai",
        "aistatus:report:api",
    ]
    assert row["components"][2]["label"] == "I'm affected too: Claude API"


def test_a_recovery_edit_removes_the_buttons_and_the_backups():
    alert = make_alert(
        kind=AlertKind.RECOVERY,
        severity=Status.OPERATIONAL,
        title="Resolved: claude.ai after 5 h 11 min",
        duration_text="resolved after 5 h 11 min",
        update_text=None,
    )
    msg = to_discord_message(alert)
    assert msg["components"] == []
    assert "Backups up now" not in fields_of(msg)
    assert fields_of(msg)["Status"] == "operational"
    assert embed_of(msg)["title"].startswith("✅ Resolved")


def test_a_suspected_alert_is_labelled_so():
    alert = make_alert(
        kind=AlertKind.SUSPECTED, suspected=True, incident_title=None, update_text=None, url=None
    )
    msg = to_discord_message(alert)
    assert embed_of(msg)["footer"] == {
        "text": "suspected — our checks fail; not on the official status page yet"
    }
    assert fields_of(msg)["Status"] == "partial outage (suspected)"
    (row,) = msg["components"]
    # no link without url
    assert [b["label"] for b in row["components"]] == ["Mute 1h", "I'm affected too"]


def test_no_backups_says_so():
    msg = to_discord_message(make_alert(backups=()))
    assert fields_of(msg)["Backups up now"] == NO_BACKUPS_TEXT


def test_surfaces_with_different_statuses_are_listed_one_per_line():
    alert = make_alert(
        surfaces=("claude.ai", "api"),
        surface_names=("claude.ai", "Claude API"),
        statuses=(Status.MAJOR_OUTAGE, Status.DEGRADED),
        severity=Status.MAJOR_OUTAGE,
    )
    assert fields_of(to_discord_message(alert))["Status"] == (
        "claude.ai: major outage\nClaude API: degraded performance"
    )


def test_a_multiline_update_is_quoted_line_by_line():
    alert = make_alert(update_text="First line.\r\n\r\nSecond @everyone line.")
    description = embed_of(to_discord_message(alert))["description"]
    assert "> First line.\n>\n> Second @everyone line." in description
    assert to_discord_message(alert)["allowed_mentions"] == {"parse": []}  # never pings


def test_status_page_markdown_is_shown_as_written_and_links_stay_links():
    alert = make_alert(
        incident_title="**Errors** on claude_ai",
        update_text="Rate > 5% on *Opus*.\n> not a quote\nSee <https://status.example/a_b>",
    )
    embed = embed_of(to_discord_message(alert))
    assert embed["description"].startswith("**\\*\\*Errors\\*\\* on claude\\_ai**\n\n")
    assert (
        "> Rate > 5% on \\*Opus\\*.\n> \\> not a quote\n> See <https://status.example/a_b>\n"
        in (embed["description"])
    )


@given(st.text())
def test_markdown_is_escaped_as_discord_py_escapes_it(text: str):
    assert escape_markdown(text) == discord.utils.escape_markdown(text)


def test_the_thread_update_says_what_changed_with_backups():
    alert = make_alert(
        kind=AlertKind.UPDATE,
        severity=Status.MAJOR_OUTAGE,
        title="Update on claude.ai: major outage",
        duration_text="for 47 min",
        update_text="We have identified the issue.",
    )
    msg = to_discord_thread_update(alert)
    embed = embed_of(msg)
    assert msg["content"] == "🔴 Update on claude.ai: major outage"
    assert embed["description"].startswith("**Update** — major outage, for 47 min")
    assert "> We have identified the issue." in embed["description"]
    assert "Backups up now" in fields_of(msg)
    assert "components" not in msg


def test_the_thread_recovery_post_has_no_backups():
    alert = make_alert(
        kind=AlertKind.RECOVERY,
        severity=Status.OPERATIONAL,
        title="Resolved: claude.ai after 2 h 13 min",
        duration_text="resolved after 2 h 13 min",
        update_text=None,
    )
    msg = to_discord_thread_update(alert)
    assert embed_of(msg)["description"] == (
        "**Resolved** — operational, resolved after 2 h 13 min\n\n"
        "The official status page shows it resolved."  # no resolution text to quote
    )
    assert list(fields_of(msg)) == ["Duration"]
    assert embed_of(msg)["color"] == COLOURS[Status.OPERATIONAL]


def test_thread_names_fit_discords_100_characters():
    names = tuple(f"Surface number {i}" for i in range(20))
    assert len(thread_name(make_alert(surface_names=names, surfaces=names))) == 100
    assert thread_name(make_alert()) == "claude.ai — updates"


# -- limits ----------------------------------------------------------------------------------------


def test_huge_text_is_cut_to_discords_limits():
    many = tuple(
        Backup(f"b{i}", "B" * 300, f"https://example.com/{i}", Status.OPERATIONAL, False, "n" * 300)
        for i in range(40)
    )
    alert = make_alert(
        title="T" * 400, incident_title="I" * 3000, update_text="U" * 5000, backups=many
    )
    embed = embed_of(to_discord_message(alert))
    assert len(embed["title"]) == 256
    assert len(embed["description"]) <= 4096
    assert all(len(f["value"]) <= 1024 for f in embed["fields"])
    assert embed_length(embed) <= EMBED_TOTAL_MAX
    assert len(to_discord_message(alert)["content"]) <= 2000


def test_fit_embed_drops_trailing_fields_past_25():
    embed = {"title": "x", "fields": [{"name": f"f{i}", "value": "v"} for i in range(30)]}
    assert len(fit_embed(embed)["fields"]) == 25


@given(
    title=st.text(max_size=600),
    description=st.text(max_size=9000),
    fields=st.lists(st.tuples(st.text(max_size=400), st.text(max_size=2000)), max_size=40),
)
def test_any_embed_fits_after_fit_embed(title, description, fields):
    embed = {
        "title": title,
        "description": description,
        "fields": [{"name": n, "value": v} for n, v in fields],
        "footer": {"text": "f" * 3000},
    }
    out = fit_embed(embed)
    assert embed_length(out) <= EMBED_TOTAL_MAX
    assert len(out["fields"]) <= 25
    assert len(out["title"]) <= 256


# -- replies ---------------------------------------------------------------------------------------


def test_an_ephemeral_reply_has_flag_64():
    out = to_discord_reply(Reply(text="All Claude surfaces are operational."))
    assert out["content"] == "All Claude surfaces are operational."
    assert out["flags"] == EPHEMERAL


def test_a_reply_with_sections_becomes_one_embed():
    reply = Reply(
        text="Status of Claude\nclaude.ai: partial outage",
        sections=(
            Section(title="Claude", lines=("🟠 claude.ai — partial outage",)),
            Section(fields=(("Checked", "01:01 UTC"),)),
        ),
        ephemeral=False,
    )
    out = to_discord_reply(reply)
    assert "flags" not in out
    assert "content" not in out  # said once, in the embed: no first line repeated above it
    embed = embed_of(out)
    assert embed["description"] == "**Claude**\n🟠 claude.ai — partial outage"
    assert embed["fields"] == [{"name": "Checked", "value": "01:01 UTC", "inline": True}]


def test_a_command_answer_says_its_first_line_once():
    reply = replies.subscribed(
        Subscription(ChannelRef(Platform.DISCORD, "1", "2"), all_claude=True),
        load_catalog(None),
        user_name="maria",
        added=[],
        added_all=True,
        changed=True,
    )
    out = to_discord_reply(reply)
    said = json.dumps(out, ensure_ascii=False)
    assert said.count("Done. This channel now gets alerts for") == 1


def test_reply_and_announce_times_show_in_the_readers_zone():
    now = datetime(2026, 9, 22, 1, 30, tzinfo=UTC)
    until = now + timedelta(hours=2)
    reply = replies.muted(until, now, user_name="maria")
    epoch = int(until.timestamp())
    assert embed_of(to_discord_reply(reply))["description"] == (
        f"Alerts are muted here until <t:{epoch}:t> (for 2 h)."
    )
    assert reply.text == "Alerts are muted here until 03:30 UTC (for 2 h)."  # the plain fallback
    announce = to_discord_announce(reply.announce or "", user_id="42", user_name="maria")
    assert announce["content"] == f"<@42> muted aistatus alerts here until <t:{epoch}:t>"
    later = now + timedelta(days=2)  # another day: the date is shown too
    text = embed_of(to_discord_reply(replies.muted(later, now, user_name="maria")))["description"]
    assert f"<t:{int(later.timestamp())}:f>" in text


def test_the_announce_mentions_the_user_without_pinging():
    out = to_discord_announce(
        "@maria subscribed this channel to api (partial outages and worse)",
        user_id="42",
        user_name="maria",
    )
    assert out["content"] == "<@42> subscribed this channel to api (partial outages and worse)"
    assert out["allowed_mentions"] == {"parse": []}


# -- commands and autocomplete ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "flags", "text"),
    [
        (
            ("subscribe", "api code"),
            {"min": "partial", "maintenance": False},
            "subscribe api code --min partial",
        ),
        (("subscribe", "api,  code"), {"maintenance": True}, "subscribe api code --maintenance"),
        (("status", None), {}, "status"),
        (("history", "api"), {"days": 3}, "history api --days 3"),
        (("mute", "2h"), {}, "mute 2h"),
    ],
    ids=["subscribe-min", "subscribe-commas-maintenance", "bare-status", "history-days", "mute"],
)
def test_typed_options_become_the_same_text_command_as_slack(args, flags, text):
    assert command_text(*args, **flags) == text


def test_autocomplete_offers_surfaces_for_a_prefix():
    catalog = load_catalog(None)
    choices = surface_choices("cl", catalog)
    values = [c["value"] for c in choices]
    assert values[0] == "claude.ai"
    assert "bedrock-claude" in values  # "Claude on Amazon Bedrock" starts with "cl" by name
    assert {"name": "api (Claude API)", "value": "api"} in choices


def test_autocomplete_for_several_surfaces_completes_the_last_word():
    catalog = load_catalog(None)
    choices = surface_choices("api co", catalog, several=True, allow_all=True)
    assert [c["value"] for c in choices][:2] == ["api code", "api console"]
    assert all(not c["value"].startswith("api api") for c in choices)


def test_autocomplete_offers_all_first_for_subscriptions():
    choices = surface_choices("", load_catalog(None), several=True, allow_all=True)
    assert choices[0] == {"name": "all (every Claude surface)", "value": "all"}
    assert len(choices) <= 25


@given(st.text(max_size=200))
def test_report_custom_ids_from_anyone_parse_or_are_ignored(custom_id):
    surface = parse_report_custom_id(custom_id)
    assert surface is None or custom_id == f"aistatus:report:{surface}"
    text = button_command(custom_id)
    assert text is None or text in ("mute 1h", f"report {surface}")


def test_times_are_whole_epoch_seconds():
    alert = make_alert(update_at=UPDATED + timedelta(microseconds=999_999))
    assert f"<t:{int(UPDATED.timestamp())}:t>" in embed_of(to_discord_message(alert))["description"]


# -- status-page text in command replies ----------------------------------------------------------

HOSTILE_NAME = "Errors on **Opus** _now_"
HOSTILE_BODY = "Workaround: [download the fix](https://evil.example/fix) ~~or wait~~ `now`"


def hostile_detail() -> Reply:
    """`status api` while the page's incident carries markup in its name and latest update."""
    incident = replace(INCIDENT, name=HOSTILE_NAME, update_body=HOSTILE_BODY)
    st = state("api", Status.PARTIAL_OUTAGE, incident=incident, since=NOW)
    return replies.surface_detail("api", st, load_catalog(), NOW, 0, None)


def test_page_text_in_a_status_answer_is_shown_as_written_never_as_discord_markup():
    description = to_discord_reply(hostile_detail())["embeds"][0]["description"]
    # The page's masked link, bold, italics, strike and code are escaped: shown, not obeyed.
    assert r"Incident: Errors on \*\*Opus\*\* \_now\_ (investigating)" in description
    assert (
        r"> Workaround: \[download the fix](https://evil.example/fix) \~\~or wait\~\~ \`now\`"
        in description.splitlines()
    )
    # Our own markup around it still works: the title is bold, the update a block quote.
    assert description.startswith("**🟠 Claude API: partial outage**")


def test_the_same_answer_reads_the_page_text_plainly_everywhere_else():
    detail = hostile_detail()
    assert f"Incident: {HOSTILE_NAME} (investigating) {INCIDENT.url}" in detail.text.splitlines()
    assert f"> {HOSTILE_BODY}" in detail.text.splitlines()
    slack = to_slack_reply(detail)["blocks"][0]["text"]["text"]
    assert f"> {HOSTILE_BODY}" in slack.splitlines()  # Slack: nothing to escape but & < >
