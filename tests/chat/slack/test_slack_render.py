"""Slack Block Kit rendering of alerts, command replies and the App Home (pure)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.alerting.subscription import Subscription
from bot.catalog_file import load_catalog
from bot.chat import replies
from bot.chat.slack.render import (
    ACTION_MUTE,
    ACTION_OPEN,
    ACTION_REPORT,
    COLOURS,
    HEADER_MAX,
    MESSAGE_BLOCKS_MAX,
    SECTION_MAX,
    escape,
    to_home_view,
    to_slack_announce,
    to_slack_blocks,
    to_slack_parent,
    to_slack_reply,
    to_slack_text,
    to_slack_thread_reply,
)
from bot.core.model import (
    Alert,
    AlertKind,
    Backup,
    ChannelRef,
    Platform,
    Reply,
    Section,
    Signal,
    Status,
)

STARTED = datetime(2026, 9, 22, 1, 1, tzinfo=UTC)
UPDATED = datetime(2026, 9, 22, 1, 14, tzinfo=UTC)

BACKUPS = (
    Backup(
        surface="console",
        name="Claude Console Workbench",
        url="https://platform.claude.com/workbench",
        status=Status.OPERATIONAL,
        same_model=True,
        note="Claude via the API",
    ),
    Backup(
        surface="chatgpt",
        name="ChatGPT",
        url="https://chatgpt.com",
        status=Status.OPERATIONAL,
        same_model=False,
        note="another assistant",
    ),
)

START = Alert(
    key="7g1qpkyz5gxh",
    kind=AlertKind.START,
    surfaces=("claude.ai", "api"),
    surface_names=("claude.ai", "Claude API"),
    severity=Status.PARTIAL_OUTAGE,
    title="Elevated errors for multiple models",
    incident_title="Elevated errors for multiple models",
    update_text="We are currently investigating this issue.",
    update_at=STARTED,
    started_at=STARTED,
    at=STARTED,
    duration_text="for 0 min",
    url="https://stspg.io/7g1qpkyz5gxh",
    backups=BACKUPS,
    suspected=False,
    transition_ids=("claude.ai@3", "api@5"),
)
UPDATE = dataclasses.replace(
    START,
    kind=AlertKind.UPDATE,
    severity=Status.MAJOR_OUTAGE,
    update_text="The issue has been identified and a fix is being implemented.",
    update_at=UPDATED,
    at=UPDATED,
    duration_text="for 13 min",
    backups=(),
)
RECOVERY = dataclasses.replace(
    START,
    kind=AlertKind.RECOVERY,
    severity=Status.OPERATIONAL,
    update_text=None,
    update_at=None,
    at=datetime(2026, 9, 22, 3, 14, tzinfo=UTC),
    duration_text="resolved after 2 h 13 min",
    backups=(),
)
SUSPECTED = dataclasses.replace(
    START,
    key="probe-api-1",
    kind=AlertKind.SUSPECTED,
    surfaces=("api",),
    surface_names=("Claude API",),
    title="Claude API: failing for our checks",
    incident_title=None,
    update_text=None,
    update_at=None,
    url=None,
    suspected=True,
    source=Signal.PROBE,
)


def all_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def blocks_of(kind: str, blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for b in blocks if b["type"] == kind]


def buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["action_id"]: e for b in blocks_of("actions", blocks) for e in b["elements"]}


@pytest.mark.parametrize(
    ("alert", "emoji"),
    [
        pytest.param(START, "🟠", id="start-partial"),
        pytest.param(UPDATE, "🔴", id="update-major"),
        pytest.param(RECOVERY, "✅", id="recovery"),
        pytest.param(SUSPECTED, "🟠", id="suspected"),
    ],
)
def test_the_header_shows_the_severity_emoji_and_the_title(alert: Alert, emoji: str) -> None:
    header = to_slack_blocks(alert)[0]
    assert header["type"] == "header"
    assert header["text"]["type"] == "plain_text"
    assert header["text"]["text"].startswith(emoji)
    assert alert.title in header["text"]["text"]


def test_a_start_lists_affected_surfaces_status_duration_and_quotes_the_update() -> None:
    text = all_text(to_slack_blocks(START))
    assert "claude.ai, Claude API" in text
    assert "partial outage" in text
    assert "for 0 min" in text
    assert "> We are currently investigating this issue." in text
    assert f"<!date^{int(STARTED.timestamp())}^" in text
    assert "01:01 UTC" in text  # the fallback for clients without local time


def test_a_start_lists_the_backups_that_are_up_as_links() -> None:
    text = all_text(to_slack_blocks(START))
    assert "Backups up now" in text
    assert "<https://platform.claude.com/workbench|Claude Console Workbench>" in text
    assert "<https://chatgpt.com|ChatGPT>" in text
    assert text.index("Claude Console Workbench") < text.index("ChatGPT")  # ranked order kept


def test_without_backups_it_says_no_backups_are_up() -> None:
    text = all_text(to_slack_blocks(UPDATE))
    assert "*Backups up now*\\nNo backups are up right now." in text


def test_a_recovery_drops_backups_and_the_mute_and_report_buttons() -> None:
    blocks = to_slack_blocks(RECOVERY)
    text = all_text(blocks)
    assert "Backups up now" not in text
    assert "operational again" in text
    assert set(buttons(blocks)) == {ACTION_OPEN}


def test_a_start_has_open_mute_and_report_buttons() -> None:
    got = buttons(to_slack_blocks(START))
    assert got[ACTION_OPEN]["url"] == "https://stspg.io/7g1qpkyz5gxh"
    assert got[ACTION_MUTE]["value"] == "1h"
    assert got[ACTION_MUTE]["text"]["text"] == "Mute 1h"
    assert got[ACTION_REPORT]["value"] == "claude.ai"
    assert got[ACTION_REPORT]["text"]["text"] == "I'm affected too"


def test_without_an_incident_url_there_is_no_open_button() -> None:
    assert ACTION_OPEN not in buttons(to_slack_blocks(SUSPECTED))
    assert {ACTION_MUTE, ACTION_REPORT} <= set(buttons(to_slack_blocks(SUSPECTED)))


def test_a_suspected_outage_is_labelled_suspected_with_its_source() -> None:
    blocks = to_slack_blocks(SUSPECTED)
    assert "Suspected" in blocks[0]["text"]["text"]
    context = all_text(blocks_of("context", blocks))
    assert "Suspected" in context
    assert "our probes fail; not on the official status page yet." in context
    assert "Suspected" not in all_text(blocks_of("context", to_slack_blocks(START)))


@pytest.mark.parametrize(
    ("alert", "colour"),
    [
        pytest.param(START, COLOURS[Status.PARTIAL_OUTAGE], id="partial-orange"),
        pytest.param(UPDATE, COLOURS[Status.MAJOR_OUTAGE], id="major-red"),
        pytest.param(RECOVERY, COLOURS[Status.OPERATIONAL], id="recovery-green"),
    ],
)
def test_the_parent_is_coloured_by_severity(alert: Alert, colour: str) -> None:
    message = to_slack_parent(alert)
    assert message.blocks[0]["type"] == "header"
    assert [a["color"] for a in message.attachments] == [colour]
    # Together they are exactly the parent's blocks.
    assert [*message.blocks, *message.attachments[0]["blocks"]] == to_slack_blocks(alert)


def test_every_message_has_a_plain_text_fallback() -> None:
    text = to_slack_text(START)
    assert text.startswith("🟠 Elevated errors for multiple models")
    assert "claude.ai, Claude API" in text
    assert "Backups up now: Claude Console Workbench, ChatGPT" in text
    assert "No backups are up right now" in to_slack_text(UPDATE)
    assert to_slack_parent(START).text == text
    assert to_slack_thread_reply(RECOVERY).text == to_slack_text(RECOVERY)


def test_a_thread_reply_for_an_update_shows_the_new_update_text() -> None:
    reply = to_slack_thread_reply(UPDATE)
    text = all_text(reply.kwargs())
    assert "> The issue has been identified and a fix is being implemented." in text
    assert "We are currently investigating" not in text
    assert reply.blocks[0]["type"] == "section"  # no big header in a thread
    assert ACTION_MUTE not in buttons([*reply.blocks, *reply.attachments[0]["blocks"]])


def test_a_thread_reply_for_a_recovery_says_how_long_it_lasted() -> None:
    reply = to_slack_thread_reply(RECOVERY)
    assert "Resolved after 2 h 13 min" in reply.blocks[0]["text"]["text"]
    assert reply.attachments[0]["color"] == COLOURS[Status.OPERATIONAL]


def test_a_severity_change_without_new_text_says_the_new_status() -> None:
    worse = dataclasses.replace(UPDATE, update_text=None)
    assert "now major outage" in to_slack_thread_reply(worse).blocks[0]["text"]["text"]


HOSTILE = "<!channel> pay <https://evil.example|here> & <@U123> \r\nsecond line > quoted"


def test_untrusted_text_is_escaped_so_it_cannot_ping_or_link() -> None:
    alert = dataclasses.replace(
        START,
        incident_title=HOSTILE,
        update_text=HOSTILE,
        backups=(dataclasses.replace(BACKUPS[0], name="A|B <x>", note="<!here>"),),
    )
    for payload in (to_slack_parent(alert).kwargs(), to_slack_thread_reply(alert).kwargs()):
        text = all_text(payload)
        assert "<!channel>" not in text
        assert "<!here>" not in text
        assert "<https://evil.example" not in text
        assert "<@U123>" not in text
        assert "&lt;!channel&gt; pay &lt;https://evil.example|here&gt; &amp; &lt;@U123&gt;" in text
    quoted = all_text(to_slack_blocks(alert))
    assert "> second line &gt; quoted" in quoted  # every line of the body stays in the quote
    assert "<https://platform.claude.com/workbench|A|B &lt;x&gt;>" in quoted


def test_a_link_that_is_not_http_is_shown_as_a_bare_name() -> None:
    alert = dataclasses.replace(
        START, backups=(dataclasses.replace(BACKUPS[0], url="javascript:x"),)
    )
    text = all_text(to_slack_blocks(alert))
    assert "javascript:" not in text
    assert "Claude Console Workbench" in text


def test_huge_titles_and_bodies_are_cut_to_slacks_limits() -> None:
    alert = dataclasses.replace(
        START,
        title="T" * 500,
        update_text="& " * 5000,
        backups=BACKUPS * 30,
    )
    blocks = to_slack_blocks(alert)
    assert len(blocks[0]["text"]["text"]) <= HEADER_MAX
    assert blocks[0]["text"]["text"].endswith("…")
    assert len(blocks) <= MESSAGE_BLOCKS_MAX
    for block in blocks_of("section", blocks):
        assert len(block["text"]["text"]) <= SECTION_MAX
        assert not block["text"]["text"].rstrip("…").endswith(("&", "&a", "&am", "&amp"))
    assert "…and 52 more" in all_text(blocks)


@given(
    title=st.text(max_size=400),
    body=st.text(max_size=4000),
    name=st.text(max_size=200),
)
def test_any_incident_text_renders_within_limits_and_escaped(
    title: str, body: str, name: str
) -> None:
    alert = dataclasses.replace(
        START, title=title, incident_title=title, update_text=body, surface_names=(name,)
    )
    message = to_slack_parent(alert)
    blocks = [*message.blocks, *message.attachments[0]["blocks"]]
    assert len(blocks) <= MESSAGE_BLOCKS_MAX
    assert 0 < len(blocks[0]["text"]["text"]) <= HEADER_MAX
    for block in blocks_of("section", blocks):
        text = block["text"]["text"]
        assert 0 < len(text) <= SECTION_MAX
        # Every '<' in mrkdwn is ours: a date token or a link we built.
        for part in text.split("<")[1:]:
            assert part.startswith(("!date^", "https://"))
    json.dumps(message.kwargs())


# -- command replies and App Home ------------------------------------------------------------------

STATUS = Reply(
    text="Claude API: partial outage for 12 min",
    sections=(
        Section(
            title="Claude",
            lines=("🟠 `api` Claude API: partial outage", "✅ `code` Claude Code: operational"),
        ),
        Section(title="This channel", fields=(("Subscribed", "api, code"), ("Muted", "no"))),
    ),
)


def test_a_status_reply_is_ephemeral_with_text_and_blocks() -> None:
    out = to_slack_reply(STATUS)
    assert out["response_type"] == "ephemeral"
    assert out["text"] == "Claude API: partial outage for 12 min"
    text = all_text(out["blocks"])
    assert "*Claude*" in text
    assert "🟠 `api` Claude API: partial outage" in text
    assert "*Subscribed*\\napi, code" in text


def test_a_public_reply_is_in_channel() -> None:
    assert to_slack_reply(Reply(text="hi", ephemeral=False))["response_type"] == "in_channel"


def test_a_reply_without_sections_has_no_blocks_so_slack_shows_its_text() -> None:
    assert to_slack_reply(Reply(text="Unknown surface `foo`", error=True)) == {
        "response_type": "ephemeral",
        "text": "Unknown surface `foo`",
    }


def test_a_reply_with_many_lines_stays_within_message_limits() -> None:
    reply = Reply(
        text="x", sections=tuple(Section(title=f"s{i}", lines=("y" * 2999,) * 3) for i in range(40))
    )
    blocks = to_slack_reply(reply)["blocks"]
    assert len(blocks) == MESSAGE_BLOCKS_MAX
    assert all(len(b["text"]["text"]) <= SECTION_MAX for b in blocks_of("section", blocks))


def test_the_home_view_renders_each_section_under_a_header() -> None:
    view = to_home_view(STATUS)
    assert view["type"] == "home"
    assert [b["text"]["text"] for b in blocks_of("header", view["blocks"])] == [
        "Claude",
        "This channel",
    ]
    assert len(blocks_of("divider", view["blocks"])) == 1
    assert "Claude Code: operational" in all_text(view)


def test_reply_lines_are_escaped() -> None:
    out = to_slack_reply(Reply(text="<!channel>", sections=(Section(lines=("<!here> & co",)),)))
    assert out["text"] == "&lt;!channel&gt;"
    assert "&lt;!here&gt; &amp; co" in all_text(out["blocks"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "@maria subscribed this channel", "<@U42> subscribed this channel", id="at-name"
        ),
        pytest.param(
            "maria subscribed this channel", "<@U42> subscribed this channel", id="bare-name"
        ),
        pytest.param("mariana muted alerts", "mariana muted alerts", id="not-a-prefix"),
    ],
)
def test_an_announcement_mentions_the_user(text: str, expected: str) -> None:
    assert to_slack_announce(text, user_id="U42", user_name="maria") == expected


def test_escape_replaces_only_slacks_three_characters() -> None:
    assert escape("a & b < c > d \"e\" 'f'") == "a &amp; b &lt; c &gt; d \"e\" 'f'"


def test_the_fallback_of_a_built_alert_does_not_repeat_itself() -> None:
    built = dataclasses.replace(
        START, title="claude.ai, Claude API: partial outage", incident_title=None
    )
    text = to_slack_text(built)
    assert text.count("partial outage") == 1 and text.count("Claude API") == 1
    assert START.duration_text in text


def test_reply_and_announce_times_show_in_the_readers_zone() -> None:
    now = datetime(2026, 9, 22, 1, 30, tzinfo=UTC)
    until = datetime(2026, 9, 22, 3, 30, tzinfo=UTC)
    reply = replies.muted(until, now, user_name="maria")
    local = f"<!date^{int(until.timestamp())}^{{time}}|03:30 UTC>"
    out = to_slack_reply(reply)
    assert out["blocks"][0]["text"]["text"] == f"Alerts are muted here until {local} (for 2 h)."
    assert out["text"] == "Alerts are muted here until 03:30 UTC (for 2 h)."  # notifications
    announce = to_slack_announce(reply.announce or "", user_id="U42", user_name="maria")
    assert announce == f"<@U42> muted aistatus alerts here until {local}"
    later = datetime(2026, 9, 24, 3, 30, tzinfo=UTC)  # another day: the date is shown too
    dated = all_text(to_slack_reply(replies.muted(later, now, user_name="maria")))
    assert f"<!date^{int(later.timestamp())}^{{date_short_pretty}} {{time}}|Sep 24 03:30 UTC>" in (
        dated
    )


def test_the_home_view_names_each_subscribed_channel() -> None:
    now = datetime(2026, 9, 22, 1, 30, tzinfo=UTC)
    subs = [
        Subscription(ChannelRef(Platform.SLACK, "T1", "C0001"), all_claude=True),
        Subscription(
            ChannelRef(Platform.SLACK, "T1", "C0002"),
            surfaces=frozenset({"api"}),
            min_severity=Status.MAJOR_OUTAGE,
            muted_until=datetime(2026, 9, 22, 2, 30, tzinfo=UTC),
        ),
    ]
    view = to_home_view(replies.channel_list(subs, load_catalog(None), now))
    text = all_text(view)
    assert "<#C0001>: all Claude surfaces" in text
    assert "<#C0002>: Claude API · major outages only · muted until <!date^" in text
    reply = replies.channel_list(subs, load_catalog(None), now)
    assert "#C0001: all Claude surfaces" in reply.text  # plain where no mention renders


def test_a_quoted_update_in_a_reply_is_a_block_quote_with_its_text_escaped() -> None:
    reply = Reply(
        text="x",
        sections=(Section(lines=("Latest investigating:", "> Errors on <api> & the Console")),),
    )
    [block] = to_slack_reply(reply)["blocks"]
    text = block["text"]["text"]
    assert text.splitlines()[1] == "> Errors on &lt;api&gt; &amp; the Console"  # a quote, not &gt;
    assert text.splitlines()[0] == "Latest investigating:"
