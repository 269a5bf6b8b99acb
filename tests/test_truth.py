"""Every message true (issue 10): the real captures of status.claude.com served in sequence by a
loopback page (derived steps built here from a capture, and labelled so), the real watcher, Redis
and delivery engine, the real Slack and Discord senders against the loopback chat servers; each
test asserts what each differently-subscribed channel holds at each step."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from bot.core.model import ChannelRef, Platform
from tests.helpers import (
    API_COMPONENT,
    INVESTIGATING_PAGE,
    RECOVERED_PAGE,
    RESOLUTION,
    derived_component,
    derived_monitoring,
    fixture_json,
    resolved_incidents,
    scene,
)

S_ALL = ChannelRef(Platform.SLACK, "T0001", "C1")  # subscribe all
S_API = ChannelRef(Platform.SLACK, "T0001", "C2")  # subscribe api
S_MAJOR = ChannelRef(Platform.SLACK, "T0001", "C3")  # subscribe api --min major
D_ALL = ChannelRef(Platform.DISCORD, "1100000000000000001", "1100000000000000011")  # all
D_MAJOR = ChannelRef(Platform.DISCORD, "1100000000000000001", "1100000000000000013")  # api major
FIVE = "claude.ai, Claude API, Claude Code, Claude Cowork, Claude mobile apps"
RECOVERING = f"✅ {FIVE}: recovering — fix out, the page is monitoring"


def inv() -> dict:
    return fixture_json(INVESTIGATING_PAGE)


def rec() -> dict:
    return fixture_json(RECOVERED_PAGE)


async def subscribe_all(sc) -> None:
    await sc.command(S_ALL, "subscribe all")
    await sc.command(S_API, "subscribe api")
    await sc.command(S_MAJOR, "subscribe api --min major")
    await sc.command(D_ALL, "subscribe all")
    await sc.command(D_MAJOR, "subscribe api --min major")


# -- 2 and 4: a relapse inside one incident; the recovery's words ---------------------------------


async def test_back_up_while_monitoring_is_recovering_and_a_relapse_continues_the_thread(redis):
    async with asyncio.timeout(60), scene(redis) as sc:
        await subscribe_all(sc)
        await sc.step(inv())
        start = sc.seen(S_ALL)
        await sc.step(derived_monitoring())  # derived: monitoring, every component operational
        recovering = sc.seen(S_ALL), sc.seen(D_ALL)
        await sc.step(derived_monitoring(components="partial_outage"))  # derived: relapse
        relapse = sc.seen(S_ALL), sc.seen(D_ALL)
        await sc.step(rec())  # recorded: the incident has vanished; incidents.json is 404
        end = sc.seen(S_ALL), sc.seen(D_ALL), sc.seen(S_API)

    assert start.parents == (f"🟠 {FIVE}: partial outage",)
    slack, discord = recovering
    assert slack.parents == (RECOVERING,) and discord.parents == (RECOVERING,)
    assert slack.thread == (f"✅ *Recovering* · {FIVE} · " + slack.thread[0].split(" · ")[-1],)
    assert len(slack.visible) == len(discord.visible) == 1  # nothing broadcast
    slack, discord = relapse
    assert slack.parents == (f"🟠 Update on {FIVE}: partial outage",)
    assert len(slack.thread) == 2 and len(slack.visible) == 1
    assert discord.parents == slack.parents and len(discord.visible) == 1
    slack, discord, api_only = end
    resolved = f"✅ Resolved: {FIVE} after 4 min"  # 00:57:26 (the incident's start) to 01:01:45
    assert slack.parents == (resolved,) and discord.parents == (resolved,)
    # One visible start, one visible "Resolved" (broadcast), everything else in the one thread.
    assert slack.visible == (f"🟠 {FIVE}: partial outage", slack.thread[-1])
    assert slack.thread[-1].startswith(f"✅ *Resolved after 4 min* · {FIVE}")
    assert discord.visible == (f"🟠 {FIVE}: partial outage", resolved)
    assert api_only.parents == ("✅ Resolved: Claude API after 4 min",)
    assert len(api_only.visible) == 2


async def test_a_recovery_quotes_the_resolution_or_says_the_page_shows_it_resolved(redis):
    async with asyncio.timeout(60), scene(redis) as sc:
        await sc.command(S_API, "subscribe api")
        await sc.command(D_ALL, "subscribe api")
        await sc.step(inv())
        await sc.step(rec())  # no incidents.json: no resolution text to quote
        without = sc.slack.accepted_to("chat.update", "C2")[-1], sc.discord.posted(D_ALL.channel)
        await sc.step(inv())  # recorded again, 30 s later: the outage reopens (same thread)
        sc.clock.advance(3600)  # an hour on: a new outage, not a flap
        sc.page.set_incidents(resolved_incidents())  # derived: incidents.json with the resolution
        await sc.step(rec())
        await sc.step(inv())
        sc.clock.advance(3600)
        await sc.step(rec())
        quoted = sc.slack.accepted_to("chat.update", "C2")[-1]

    slack_text = str(without[0].params["attachments"])
    assert "The official status page shows it resolved." in slack_text
    assert "We are investigating" not in slack_text  # never an older update as if the latest
    [parent] = [m for m in without[1] if "message_reference" not in m]
    assert "The official status page shows it resolved." in parent["embeds"][0]["description"]
    assert "investigating" not in parent["embeds"][0]["description"]
    assert RESOLUTION in str(quoted.params["attachments"])


# -- 7: a channel's first message reads as a start ------------------------------------------------


async def test_a_min_major_channel_first_hears_a_start_and_grouped_headlines_name_each_severity(
    redis,
):
    api_major = derived_component(inv(), API_COMPONENT, status="major_outage")  # derived
    async with asyncio.timeout(60), scene(redis) as sc:
        await subscribe_all(sc)
        await sc.step(inv())
        assert sc.seen(S_MAJOR).calls == 0 and sc.seen(D_MAJOR).calls == 0
        await sc.step(api_major)
        major, d_major, everyone = sc.seen(S_MAJOR), sc.seen(D_MAJOR), sc.seen(S_ALL)

    assert major.visible == ("🔴 Claude API: major outage",) == d_major.visible
    assert everyone.parents == (
        "🔴 Update on claude.ai, Claude Code, Claude Cowork, Claude mobile apps: partial outage"
        " · Claude API: major outage",
    )


async def test_an_incident_first_seen_hours_old_says_ongoing_since(redis):
    late = datetime(2026, 9, 22, 3, 30, tzinfo=UTC)
    async with asyncio.timeout(60), scene(redis, at=late) as sc:
        await sc.command(S_API, "subscribe api")
        await sc.command(D_ALL, "subscribe api")
        await sc.step(inv())
        slack = sc.slack.accepted_to("chat.postMessage", "C2")[0]
        discord = sc.discord.posted(D_ALL.channel)[0]
    assert "ongoing since 00:57 UTC" in slack.params["text"]
    assert "just started" not in str(slack.params)
    fields = {f["name"]: f["value"] for f in discord["embeds"][0]["fields"]}
    assert fields["Duration"] == "ongoing since 00:57 UTC"
