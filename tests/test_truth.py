"""Every message true (issue 10): the real captures of status.claude.com served in sequence by a
loopback page (derived steps built here from a capture, and labelled so), the real watcher, Redis
and delivery engine, the real Slack and Discord senders against the loopback chat servers; each
test asserts what each differently-subscribed channel holds at each step."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from itertools import pairwise

import redis.asyncio as aioredis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from bot.core.model import ChannelRef, Platform
from bot.core.suggest import NO_BACKUPS_TEXT
from bot.delivery.engine import DeliveryConfig, deliveries_report
from tests.helpers import (
    API_COMPONENT,
    INVESTIGATING_PAGE,
    OPENAI_PAGE,
    OPERATIONAL_PAGE,
    RECOVERED_PAGE,
    RESOLUTION,
    chat_commands,
    derived_component,
    derived_monitoring,
    derived_operational,
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


# -- 1: a vanished component id -------------------------------------------------------------------


async def test_a_vanished_component_id_is_rematched_or_ends_the_outage_and_is_logged_once(
    redis, caplog
):
    caplog.set_level(logging.WARNING)
    renamed = "newapiid0001"
    async with asyncio.timeout(60), scene(redis) as sc:
        await sc.command(S_API, "subscribe api")
        await sc.command(D_ALL, "subscribe api")
        # Re-matched by the component's last known name (derived: the id changed, fact 12).
        await sc.step(inv())
        for _ in range(3):
            await sc.step(derived_component(inv(), API_COMPONENT, id=renamed))
        assert len(sc.seen(S_API).thread) == 0
        await sc.step(derived_component(rec(), API_COMPONENT, id=renamed))
        by_name = sc.seen(S_API), sc.seen(D_ALL)
        # The id gone for good (derived): the surface follows its incident; once that is gone
        # the outage ends (an hour later: a new outage, not a relapse).
        sc.clock.advance(3600)
        await sc.step(inv())
        for _ in range(3):
            await sc.step(derived_component(inv(), API_COMPONENT, id=None))
        await sc.step(derived_component(rec(), API_COMPONENT, id=None))
        ended = sc.seen(S_API)
        # incidents.json answers 404 (as on incident.io pages): not asked on every poll.
        sc.clock.advance(3600)
        await sc.step(inv())
        asked = sc.page.hits["/api/v2/incidents.json"]
        still = derived_component(rec(), API_COMPONENT, status="partial_outage")  # derived
        for _ in range(20):
            await sc.step(still)
        extra = sc.page.hits["/api/v2/incidents.json"] - asked

    slack, discord = by_name
    assert slack.parents == ("✅ Resolved: Claude API after 4 min",) == discord.parents
    assert len(slack.visible) == 2 and len(slack.thread) == 1
    assert all(p.startswith("✅ Resolved: Claude API after ") for p in ended.parents)
    assert len(ended.parents) == 1 and len(ended.visible) == 4  # the same incident id: one parent
    assert extra <= 1
    logs = [r.getMessage() for r in caplog.records]
    assert len([m for m in logs if "re-matched by name" in m]) == 1
    assert len([m for m in logs if "following its incident" in m]) == 1
    assert len([m for m in logs if "is over: the outage ends" in m]) == 1
    assert len([m for m in logs if "incidents.json answers 404" in m]) == 1


# -- 3: a flap storm -----------------------------------------------------------------------------

SHIPPED_PACING = DeliveryConfig(block=0.05, min_idle=1.0, gate_poll_max=0.1)


async def test_a_flap_storm_is_one_visible_start_and_one_visible_recovery_per_channel(redis):
    async with asyncio.timeout(90), scene(redis, config=SHIPPED_PACING) as sc:
        await subscribe_all(sc)
        for i in range(50):  # the recorded pages alternating every poll, nothing delivered yet
            await sc.step(inv() if i % 2 == 0 else rec(), drain=False)
        for _ in range(24):  # quiet for 6 min: the reopened outage settles
            await sc.step(rec(), drain=False)
        await sc.fan_out_only()  # the whole storm queued before any lane sends
        await sc.delivery.drain(30)
        backlog = (await deliveries_report(redis)).queued
        seen = {c: sc.seen(c) for c in (S_ALL, S_API, D_ALL)}

    assert backlog == 0
    for channel, s in seen.items():
        start, recovery = s.visible
        assert start.startswith("🟠 ") and "partial outage" in start, channel
        assert "Resolved" in recovery, channel
        assert len(s.parents) == 1 and s.parents[0].startswith("✅ Resolved: "), channel
        assert s.calls <= 16, (channel, s.calls)  # 50 flips coalesced (uncoalesced: 100+)
        ends = [t for t in s.thread if "Resolved" in t]
        assert len(ends) == len(set(ends)), (channel, s.thread)  # the end is said once
    assert len(seen[S_ALL].thread) <= 4


# -- 6 and 8: a suspicion withdrawn; surfaces without an official page ----------------------------


async def probe_rounds(sc, n: int) -> None:
    for _ in range(n):
        sc.clock.advance(sc.watcher.probe_interval)
        await sc.watcher.run_probe_round()
        await sc.delivery.drain(20)


async def test_a_withdrawn_suspicion_reads_as_a_withdrawal_and_no_page_is_not_promised(redis):
    async with asyncio.timeout(60), scene(redis, probes=("api", "deepl")) as sc:
        await sc.command(S_API, "subscribe api")
        await sc.command(D_ALL, "subscribe api")
        await sc.command(S_ALL, "subscribe deepl")
        await probe_rounds(sc, 1)
        sc.page.set_probe("api", status=503)
        sc.page.set_probe("deepl", status=503)
        await probe_rounds(sc, 3)
        suspected = sc.seen(S_API), sc.seen(D_ALL), sc.seen(S_ALL)
        discord_suspected = sc.discord.posted(D_ALL.channel)[0]
        sc.page.set_probe("api")
        sc.page.set_probe("deepl")
        await probe_rounds(sc, 2)
        withdrawn = sc.seen(S_API), sc.seen(D_ALL), sc.seen(S_ALL)
        discord_parent = sc.discord.posted(D_ALL.channel)[0]

    slack, discord, local = suspected
    assert slack.visible == (
        "🔴 Suspected outage: Claude API (our probes fail; not on the official status page yet)",
    )
    assert discord.visible == slack.visible
    assert discord_suspected["embeds"][0]["footer"]["text"] == (
        "suspected — our probes fail; not on the official status page yet"
    )
    [local_start] = local.visible
    assert "not on the official status page yet" not in local_start
    assert local_start.endswith("(our probes fail; it has no official status page)")
    slack, discord, local = withdrawn
    clear = "✅ All clear: Claude API working again (never on the official status page)"
    assert slack.parents == (clear,) == discord.parents
    assert slack.visible[-1].startswith("✅ *Suspected outage withdrawn* · Claude API")
    assert discord.visible[-1] == clear
    assert "footer" not in discord_parent["embeds"][0]
    assert all("Suspected:" not in t for t in (*slack.parents, *slack.thread))
    assert local.parents[0].startswith("✅ All clear: DeepL")
    assert "official status page" not in local.parents[0]


# -- 16: 429 with Retry-After ----------------------------------------------------------------------


async def test_a_page_answering_429_is_polled_again_only_after_its_retry_after(redis, caplog):
    caplog.set_level(logging.WARNING)
    async with asyncio.timeout(60), scene(redis) as sc:
        await sc.command(S_API, "subscribe api")
        sc.page.set_fault(429, headers={"Retry-After": "120"})
        before = sc.page.hits["/api/v2/summary.json"]
        for _ in range(7):  # 105 s of 15 s polls
            await sc.step()
        during = sc.page.hits["/api/v2/summary.json"] - before
        sc.page.clear_fault()
        sc.page.set_summary(inv())
        sc.clock.advance(15)
        await sc.step()  # 120 s after the 429
        after = sc.page.hits["/api/v2/summary.json"] - before
        seen = sc.seen(S_API)

    assert during == 1 and after == 2
    assert seen.visible == ("🟠 Claude API: partial outage",)  # nothing posted for the 429
    held = [r.getMessage() for r in caplog.records if "Retry-After" in r.getMessage()]
    assert len(held) == 2  # when the hold starts, and when polling resumes


# -- 5: the board says how fresh it is, through the real Slack and Discord command paths -----------


async def test_a_page_answering_500_mid_incident_is_said_with_what_was_last_known(redis):
    async with asyncio.timeout(60), scene(redis) as sc, chat_commands(sc) as chat:
        await sc.command(S_API, "subscribe api")
        await sc.step(inv())  # recorded, read at 01:01:00
        sc.page.set_fault(500)
        for _ in range(4):  # a minute of HTTP 500, from 01:01:15
            await sc.step()
        slack = await chat.slack(S_API, "status claude.ai")
        discord = await chat.discord(D_ALL, "status", surface="claude.ai")
        seen = sc.seen(S_API)

    said = (
        "The Anthropic status page is not answering (HTTP 500 since {}); "
        "last known ({}): partial outage"
    )
    failing, known = (
        datetime(2026, 9, 22, 1, 1, 15, tzinfo=UTC),
        datetime(2026, 9, 22, 1, 1, tzinfo=UTC),
    )
    assert said.format("01:01 UTC", "01:01 UTC") in slack["text"]  # the plain fallback
    [block] = slack["blocks"]
    assert said.format(slack_time(failing), slack_time(known)) in block["text"]["text"]
    assert slack["response_type"] == "ephemeral"
    [embed] = discord["embeds"]
    assert said.format(discord_time(failing), discord_time(known)) in embed["description"]
    assert discord["flags"] & 64 and discord.get("content") is None
    assert seen.visible == ("🟠 Claude API: partial outage",)  # nothing posted for the 500s


def slack_time(at: datetime) -> str:
    return f"<!date^{int(at.timestamp())}^{{time}}|{at:%H:%M} UTC>"


def discord_time(at: datetime) -> str:
    return f"<t:{int(at.timestamp())}:t>"


# -- 10: backup surfaces get backups; unknown is not down -----------------------------------------

NOT_YET = "our probes fail; not on the official status page yet"
CLAUDE_AI, CONSOLE = "rwppv331jlwc", "0qbwn08sd68x"  # their components on Claude's page


async def test_a_chatgpt_outage_offers_the_claude_surfaces_that_are_up_and_unknown_is_unchecked(
    redis,
):
    openai_down = fixture_json(OPENAI_PAGE)  # recorded: ChatGPT (Conversations) degraded
    openai_up = derived_operational(openai_down)  # derived
    claude_down = derived_component(inv(), CLAUDE_AI, status="major_outage")  # derived
    claude_down = derived_component(claude_down, CONSOLE, status="major_outage")
    async with asyncio.timeout(60), scene(redis, openai=True) as sc:
        await sc.command(S_API, "subscribe chatgpt")
        await sc.command(D_ALL, "subscribe chatgpt")
        await sc.step_openai(openai_down)  # Claude all operational
        up = sc.slack.accepted_to("chat.postMessage", "C2")[0], sc.discord.posted(D_ALL.channel)[0]
        await sc.step_openai(openai_up)
        sc.clock.advance(3600)  # an hour on: a new outage, while claude.ai and the Console are down
        await sc.step(claude_down)
        await sc.step_openai(openai_down)
        slack_down = sc.slack.accepted_to("chat.postMessage", "C2")[-1]
        discord_parent = sc.discord.posted(D_ALL.channel)[0]
        discord_down = discord_parent, sc.discord.posted(discord_parent["id"])[-1]
        seen = sc.seen(S_API), sc.seen(D_ALL)
        claude_channel = sc.seen(S_ALL)

    slack, discord = up
    assert "Backups up now: claude.ai, Claude Console." in slack.params["text"]
    assert "No backups are up right now" not in str(slack.params)
    fields = {f["name"]: f["value"] for f in discord["embeds"][0]["fields"]}
    assert fields["Backups up now"] == (
        "✅ [claude.ai](https://claude.ai) — Claude in the browser\n"
        "✅ [Claude Console](https://platform.claude.com) — Console Workbench: chat with Claude in "
        "the browser"
    )
    unchecked = (
        "No backup we could check is up right now (couldn't check: Gemini, Perplexity, "
        "GitHub Copilot)."
    )
    # The same OpenAI incident again: it reopens in its thread, broadcast as a start.
    assert seen[0].thread[-1].startswith("🟡 *Outage started* · ChatGPT")
    assert seen[1].visible[-1] == "🟡 ChatGPT: degraded performance"
    assert slack_down.params["reply_broadcast"] is True
    assert slack_down.params["text"].endswith(unchecked)
    for message in discord_down:  # the parent as edited, and the post in its thread
        fields = {f["name"]: f["value"] for f in message["embeds"][0]["fields"]}
        assert fields["Backups up now"] == unchecked
    assert claude_channel.calls == 0  # nobody subscribed it to Claude


async def test_a_channel_of_one_surface_hears_its_own_unchecked_backups_in_a_grouped_outage(redis):
    async with asyncio.timeout(60), scene(redis) as sc:
        await subscribe_all(sc)
        await sc.step(inv())  # recorded: five Claude surfaces out at once
        api_only = sc.slack.accepted_to("chat.postMessage", "C2")[0]
        everything = sc.slack.accepted_to("chat.postMessage", "C1")[0]

    # The API's own alternatives (never checked in this rig), not "none up" because the first
    # few of the whole outage's alternatives back up claude.ai.
    assert api_only.params["text"].endswith(
        "No backup we could check is up right now (couldn't check: Claude on Amazon Bedrock, "
        "Claude on Google Vertex AI, Gemini, OpenAI API)."
    )
    assert NO_BACKUPS_TEXT not in str(api_only.params)
    assert everything.params["text"].endswith("Backups up now: Claude Console.")


# -- 14: probe-then-confirm: how long before the page aistatus saw it ----------------------------


async def test_an_outage_our_probes_saw_first_says_how_long_before_the_page_everywhere(redis):
    lag = "aistatus saw this 7 min before the status page"
    count = "aistatus_official_lag_seconds_count"
    async with (
        asyncio.timeout(60),
        scene(redis, probes=("api",)) as sc,
        chat_commands(sc) as chat,
    ):
        await sc.command(S_API, "subscribe api")
        await sc.command(D_ALL, "subscribe api")
        await probe_rounds(sc, 1)
        sc.page.set_probe("api", status=503)
        await probe_rounds(sc, 3)  # suspected at 01:02:05
        suspected = sc.seen(S_API), sc.seen(D_ALL)
        before = REGISTRY.get_sample_value(count), REGISTRY.get_sample_value(f"{count[:-6]}_sum")
        sc.clock.advance(7 * 60 - 15)
        await sc.step(inv())  # the page has it at 01:09:05: confirmed
        after = REGISTRY.get_sample_value(count), REGISTRY.get_sample_value(f"{count[:-6]}_sum")
        slack_parent = sc.slack.accepted_to("chat.update", "C2")[-1]
        discord_parent = sc.discord.posted(D_ALL.channel)[0]
        confirmed = sc.seen(S_API), sc.seen(D_ALL)
        slack_history = await chat.slack(S_API, "history api")
        discord_history = await chat.discord(D_ALL, "history", surface="api")

    for seen in suspected:
        assert seen.visible == (f"🔴 Suspected outage: Claude API ({NOT_YET})",)
    confirmed_text = "🟠 Confirmed partial outage: Claude API (now on the official status page)"
    assert confirmed[0].parents == (confirmed_text,) == confirmed[1].parents
    assert len(confirmed[0].visible) == len(confirmed[1].visible) == 1  # one thread, no new start
    assert lag in str(slack_parent.params["attachments"])
    fields = {f["name"]: f["value"] for f in discord_parent["embeds"][0]["fields"]}
    assert fields["Duration"] == f"for 7 min · {lag}"
    assert (after[0] - before[0], after[1] - before[1]) == (1, 420)  # one incident, 7 min
    outage = slack_history["text"].split("\n")[-1]
    assert outage.endswith(f"— Claude API · ongoing, 7 min so far · {lag}")
    assert discord_history["embeds"][0]["description"].endswith(outage.split(" ", 3)[-1])


# -- the property: random sequences of real captures and faults ------------------------------------

STEPS = {
    "operational": lambda sc: sc.page.set_summary(fixture_json(OPERATIONAL_PAGE)),
    "investigating": lambda sc: sc.page.set_summary(inv()),
    "recovered": lambda sc: sc.page.set_summary(rec()),
    "monitoring": lambda sc: sc.page.set_summary(derived_monitoring()),  # derived
    "vanished": lambda sc: sc.page.set_summary(  # derived: the API's id gone
        derived_component(inv(), API_COMPONENT, id=None)
    ),
    "http500": lambda sc: sc.page.set_fault(500),
    "timeout": lambda sc: sc.page.set_fault(delay=2.0),
    "malformed": lambda sc: sc.page.set_fault(200, body=b'{"components": [{"id": '),
}
FAULTS = frozenset({"http500", "timeout", "malformed"})


def visible_kinds(seen) -> list[str]:
    return ["end" if ("Resolved" in v or "All clear" in v) else "start" for v in seen.visible]


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(sorted(STEPS)), min_size=1, max_size=7))
@example(steps=["vanished", "operational", "investigating"])  # found once by the property
def test_any_sequence_alternates_starts_and_ends_ends_once_readable_and_faults_post_nothing(
    redis_server, steps
):
    async def play() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        await client.flushall()
        try:
            async with asyncio.timeout(50), scene(client) as sc:
                sc.watcher.read_deadline = 0.3  # the timeout fault costs 0.3 s, not 30
                for c in (S_ALL, S_API, D_ALL):
                    await sc.command(c, "subscribe all" if c != S_API else "subscribe api")
                for name in steps:
                    sc.page.clear_fault()
                    before = {c: sc.seen(c).calls for c in (S_ALL, S_API, D_ALL)}
                    STEPS[name](sc)
                    await sc.step()
                    if name in FAULTS:  # nothing is posted while only faults occur
                        assert {c: sc.seen(c).calls for c in before} == before, name
                sc.page.clear_fault()
                sc.page.set_summary(rec())
                await sc.step()  # all operational and readable ...
                sc.clock.advance(600)  # ... and, for a reopened outage, settled
                await sc.step()
                for c in (S_ALL, S_API, D_ALL):
                    kinds = visible_kinds(sc.seen(c))
                    assert all(a != b for a, b in pairwise(kinds)), (c, kinds, steps)
                    assert not kinds or kinds[-1] == "end", (c, kinds, steps)
                states = await sc.watcher.store.read_all(sc.watcher.catalog.surfaces_by_provider())
                for sid, state in states.items():
                    assert state.outage_id is None, (sid, state, steps)
        finally:
            await client.aclose()

    asyncio.run(play())
