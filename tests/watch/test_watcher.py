"""The watcher end to end: a loopback status server serving the real payloads, a real
redis-server, the real store scripts. Asserts what was recorded (the Redis stream) and published."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import httpx
import pytest

from bot.catalog_file import load_catalog
from bot.core.model import Reason, Signal, Status, Transition, TransitionKind
from bot.core.transitions import Policy
from bot.ops.statusserver import StatusServer
from bot.store.connect import connect
from bot.store.surfaces import SurfaceStore
from bot.watch.statuspage import INCIDENTS_PATH
from bot.watch.watcher import Watcher
from tests.conftest import ManualClock
from tests.helpers import RESOLUTION, Recorder, catalog_for, fixture_json, resolved_incidents


def watcher_for(catalog, redis, client, clock, sink=None, **kw) -> Watcher:
    return Watcher(
        catalog=catalog,
        store=SurfaceStore(redis),
        client=client,
        sink=sink or Recorder(),
        clock=clock,
        **kw,
    )


@pytest.fixture
async def page():
    async with StatusServer() as server:
        server.set_summary(fixture_json("claude/summary_all_operational.json"))
        yield server


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=httpx.Timeout(2.0, connect=1.0)) as c:
        yield c


async def recorded(redis) -> list[Transition]:
    return [t for _, t in await SurfaceStore(redis).read_transitions("claude", count=10_000)]


async def test_the_recorded_incident_timeline_gives_exactly_the_expected_transitions(
    page, redis, client, clock: ManualClock
):
    sink = Recorder()
    w = watcher_for(catalog_for(page.url), redis, client, clock, sink)
    timeline = [
        "claude/summary_all_operational.json",
        "claude/summary_incident_investigating.json",
        "claude/summary_incident_investigating.json",
        "claude/summary_recovered.json",
        "claude/summary_recovered.json",
    ]
    for name in timeline:
        page.set_summary(fixture_json(name))
        report = await w.poll_page("claude")
        assert report.claimed
        clock.advance(15)
    got = [(t.surface, t.kind, t.reason) for t in await recorded(redis)]
    affected = ["api", "claude.ai", "code", "cowork", "mobile"]
    assert sorted(got) == sorted(
        [(s, TransitionKind.START, Reason.STARTED) for s in affected]
        + [(s, TransitionKind.RECOVERY, Reason.RECOVERED) for s in affected]
    )
    assert [t.id for t in sink.published] == [t.id for t in await recorded(redis)]


async def test_a_recovery_quotes_the_resolution_of_the_incident_that_vanished(
    page, redis, client, clock
):
    w = watcher_for(catalog_for(page.url), redis, client, clock)
    page.set_summary(fixture_json("claude/summary_incident_investigating.json"))
    await w.poll_page("claude")
    clock.advance(15)
    page.set_summary(fixture_json("claude/summary_recovered.json"))
    page.set_incidents(resolved_incidents())

    report = await w.poll_page("claude")

    assert {t.kind for t in report.transitions} == {TransitionKind.RECOVERY}
    assert {t.incident.update_body for t in report.transitions if t.incident} == {RESOLUTION}
    assert page.hits[INCIDENTS_PATH] == 1


async def test_a_poll_costs_two_redis_round_trips_and_an_unchanged_page_is_a_304(
    page, redis, client, clock
):
    w = watcher_for(catalog_for(page.url), redis, client, clock)
    await w.poll_page("claude")
    clock.advance(15)
    before = w.store.round_trips
    report = await w.poll_page("claude")
    assert w.store.round_trips - before == 2
    assert report.not_modified and page.conditional_hits == 1
    assert {st.status for st in report.states.values()} == {Status.OPERATIONAL}


async def test_an_unchanged_page_rewrites_no_state_yet_every_read_sees_the_latest_poll(
    page, redis, client, clock
):
    """Write only what changed: polls of an unchanged page leave every surface's stored state
    (its version) alone; the board, the fan-out and the next poll still read the official
    signal as observed at the latest poll, and a change on the page is written at once."""
    w = watcher_for(catalog_for(page.url), redis, client, clock)
    await w.poll_page("claude")
    clock.advance(15)
    await w.poll_page("claude")  # the streak reaches its threshold: from here, nothing moves
    surfaces = [s.id for s in w.catalog.surfaces_of("claude") if s.official]
    store = SurfaceStore(redis)
    versions = {s: st.version for s, st in (await store.read("claude", surfaces)).items()}
    for _ in range(3):
        clock.advance(15)
        await w.poll_page("claude")
    states = await store.read("claude", surfaces)
    assert {s: st.version for s, st in states.items()} == versions
    assert {st.signals[Signal.OFFICIAL.value].observed_at for st in states.values()} == {clock()}
    page.set_summary(fixture_json("claude/summary_incident_investigating.json"))
    clock.advance(15)
    await w.poll_page("claude")
    after = await store.read("claude", surfaces)
    assert after["api"].version > versions["api"] and after["api"].status.is_outage


@pytest.mark.parametrize("replicas", [2, 3])
async def test_concurrent_watchers_record_each_transition_once(
    page, redis_server, client, clock, replicas
):
    clients = [connect(redis_server.url) for _ in range(replicas)]
    await clients[0].flushall()
    sinks = [Recorder() for _ in range(replicas)]
    watchers = [
        watcher_for(catalog_for(page.url), c, client, clock, s)
        for c, s in zip(clients, sinks, strict=True)
    ]
    for name in [
        "claude/summary_all_operational.json",
        "claude/summary_incident_investigating.json",
        "claude/summary_recovered.json",
    ]:
        page.set_summary(fixture_json(name))
        reports = await asyncio.gather(*(w.poll_page("claude") for w in watchers))
        assert sum(r.claimed for r in reports) == 1, "one replica polls per slot"
        clock.advance(15)
    stream = await recorded(clients[0])
    published = [t for s in sinks for t in s.published]
    assert len(stream) == 10
    assert sorted(t.id for t in published) == sorted(t.id for t in stream)
    assert len({t.id for t in published}) == len(published)
    for c in clients:
        await c.aclose()


async def test_a_429_met_by_one_replica_holds_every_replica_for_its_retry_after(
    page, redis, client, clock: ManualClock
):
    one, two = (watcher_for(catalog_for(page.url), redis, client, clock) for _ in range(2))
    page.set_fault(429, headers={"Retry-After": "120"})
    assert (await one.poll_page("claude")).claimed  # the page says: not before 120 s
    page.clear_fault()
    asked = page.hits["/api/v2/summary.json"]
    for replica in [two, one, two, one, two, one, two]:  # 105 s of 15 s slots
        clock.advance(15)
        assert not (await replica.poll_page("claude")).claimed
    assert page.hits["/api/v2/summary.json"] == asked  # no replica asked the page again
    clock.advance(15)
    assert (await two.poll_page("claude")).claimed  # 120 s on: whichever replica is next
    assert page.hits["/api/v2/summary.json"] == asked + 1


async def test_watchers_racing_without_the_slot_claim_still_record_each_transition_once(
    page, redis_server, client, clock
):
    """Slots claimed by different ticks (clock skew between replicas) race on the CAS alone."""
    clients = [connect(redis_server.url) for _ in range(3)]
    await clients[0].flushall()
    clocks = [ManualClock(clock.now + timedelta(seconds=15 * i)) for i in range(3)]
    watchers = [
        watcher_for(catalog_for(page.url), c, client, k)
        for c, k in zip(clients, clocks, strict=True)
    ]
    for name in [
        "claude/summary_all_operational.json",
        "claude/summary_incident_investigating.json",
        "claude/summary_recovered.json",
    ]:
        page.set_summary(fixture_json(name))
        await asyncio.gather(*(w.poll_page("claude") for w in watchers))
        for k in clocks:
            k.advance(60)
    stream = await recorded(clients[0])
    assert sorted((t.surface, t.kind) for t in stream) == sorted(
        [(s, k) for s in ["api", "claude.ai", "code", "cowork", "mobile"]
         for k in (TransitionKind.START, TransitionKind.RECOVERY)]
    )  # fmt: skip
    for c in clients:
        await c.aclose()


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 503, "body": b"<html><h1>503 Service Unavailable</h1></html>"},
        {"status": 200, "body": b"<html>maintenance page</html>", "content_type": "text/html"},
        {"status": 200, "body": b'{"components": [{"id": "rwppv331jlwc", "sta'},
        {"status": 200, "size": 5_000_000},
        {"delay": 3.0},
    ],
    ids=["http-503", "html-200", "truncated", "huge", "slow"],
)
async def test_a_misbehaving_page_makes_surfaces_unknown_and_records_nothing(
    page, redis, clock, fault, caplog
):
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.5, connect=0.5)) as client:
        w = watcher_for(catalog_for(page.url), redis, client, clock, max_response_bytes=1_000_000)
        await w.poll_page("claude")
        page.set_summary(fixture_json("claude/summary_incident_investigating.json"))
        clock.advance(15)
        await w.poll_page("claude")
        clock.advance(15)
        page.set_fault(**fault)
        async with asyncio.timeout(10):
            report = await w.poll_page("claude")
    assert report.reading is not None and not report.reading.ok and report.reading.error
    assert {st.status for sid, st in report.states.items() if sid != "console"} == {
        Status.PARTIAL_OUTAGE
    }, "what we knew stays: unknown neither opens nor closes"
    assert len(await recorded(redis)) == 5
    assert any("status page" in r.message for r in caplog.records)


async def test_redis_restarted_mid_run_loses_no_transition_and_the_watcher_reconnects(
    page, own_redis, client, clock
):
    redis = connect(own_redis.url)
    w = watcher_for(catalog_for(page.url), redis, client, clock)
    await w.poll_page("claude")
    page.set_summary(fixture_json("claude/summary_incident_investigating.json"))
    clock.advance(15)
    await w.poll_page("claude")
    await asyncio.to_thread(own_redis.stop)
    await asyncio.to_thread(own_redis.start)
    page.set_summary(fixture_json("claude/summary_recovered.json"))
    clock.advance(15)
    report = await w.poll_page("claude")
    assert report.claimed and len(report.transitions) == 5
    kinds = [t.kind for t in await recorded(redis)]
    assert kinds.count(TransitionKind.START) == 5 and kinds.count(TransitionKind.RECOVERY) == 5
    await redis.aclose()


async def test_probes_open_a_suspected_outage_after_three_failures(page, redis, client, clock):
    page.set_probe("api", status=200)
    spec = [{"url": f"{page.url}/probe/api", "expect": [200]}]
    w = watcher_for(
        catalog_for(page.url, probes={"api": spec}),
        redis,
        client,
        clock,
        policy=Policy.with_probe_thresholds(3, 2),
        probe_interval=60,
    )
    await w.poll_page("claude")
    assert await w.run_probe_round() == []
    page.set_probe("api", status=503)
    got = []
    for _ in range(3):
        clock.advance(60)
        got.append(await w.run_probe_round())
    assert [len(g) for g in got] == [0, 0, 1]
    start = got[2][0]
    assert start.surface == "api" and start.suspected and start.source is Signal.PROBE


async def test_when_every_probe_and_canary_fails_monitoring_is_blind_not_down(
    page, redis, client, clock, caplog
):
    closed = f"http://127.0.0.1:{_closed_port()}"
    probes = {
        "api": [{"url": f"{closed}/v1/models", "expect": [200, 401]}],
        "gemini": [{"url": f"{closed}/", "expect": [200]}],
    }
    w = watcher_for(
        catalog_for(page.url, probes=probes, canaries=[f"{closed}/canary"]),
        redis,
        client,
        clock,
        probe_interval=60,
    )
    await w.poll_page("claude")
    for _ in range(5):
        clock.advance(60)
        assert await w.run_probe_round() == []
    assert w.blind
    assert any("monitoring is blind" in r.message for r in caplog.records)
    states = await w.store.read("google", ["gemini"])
    assert states["gemini"].status is not Status.MAJOR_OUTAGE


async def test_a_crowd_observation_flows_through_the_same_transition_path(
    page, redis, client, clock
):
    from bot.core.model import Observation

    w = watcher_for(catalog_for(page.url), redis, client, clock)
    await w.poll_page("claude")
    obs = Observation("code", Signal.CROWD, Status.PARTIAL_OUTAGE, clock())
    await w.on_crowd(obs)
    [t] = await recorded(redis)
    assert t.surface == "code" and t.suspected and t.source is Signal.CROWD


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_shipped_catalog_loads():
    assert "api" in load_catalog().surfaces


async def test_a_crowd_suspicion_with_no_poll_to_end_it_is_withdrawn_once_reports_age(
    page, redis, client, clock
):
    from bot.core.model import Observation

    w = watcher_for(catalog_for(page.url), redis, client, clock)
    await w.on_crowd(Observation("gemini", Signal.CROWD, Status.PARTIAL_OUTAGE, clock()))
    clock.advance(5 * 60)
    assert await w.reassess() == [], "still inside the reports' window"
    clock.advance(6 * 60)
    [withdrawn] = await w.reassess()
    assert (withdrawn.surface, withdrawn.reason) == ("gemini", Reason.WITHDRAWN)
    assert await w.reassess() == [], "once"


async def test_reassessing_a_suspicion_that_still_holds_writes_nothing(page, redis, client, clock):
    from bot.core.model import Observation

    w = watcher_for(catalog_for(page.url), redis, client, clock)
    await w.on_crowd(Observation("gemini", Signal.CROWD, Status.PARTIAL_OUTAGE, clock()))
    before = (await w.store.read("google", ["gemini"]))["gemini"].version
    clock.advance(60)
    assert await w.reassess() == []
    assert (await w.store.read("google", ["gemini"]))["gemini"].version == before


async def test_an_unreadable_page_is_logged_when_it_starts_once_after_30_min_and_when_it_ends(
    page, redis, client, clock, caplog
):
    w = watcher_for(catalog_for(page.url), redis, client, clock)
    caplog.set_level(logging.INFO, logger="bot.watch.watcher")
    page.set_fault(status=500)
    for _ in range(130):  # 32.5 min of polls every 15 s, each one failing
        await w.poll_page("claude")
        clock.advance(15)
    page.clear_fault()
    await w.poll_page("claude")
    lines = [r.getMessage() for r in caplog.records if "status page unreadable" in r.getMessage()]
    assert len(lines) == 3, lines
    assert "still, after 30 min" in lines[1] and "no more, after 32 min" in lines[2]
    assert all(r.provider == "claude" for r in caplog.records if "unreadable" in r.getMessage())
