"""The probe fast path end to end: loopback probe targets, a real redis-server, the injected
clock. A failing surface is re-checked every few seconds until it reaches the failure threshold
or passes; the canary guard is re-checked on the same path; N replicas re-check once."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from bot.core.model import Reason, Signal, TransitionKind
from bot.core.transitions import Policy
from bot.ops.redisproc import free_port
from bot.ops.statusserver import StatusServer
from bot.store.connect import connect
from bot.store.surfaces import SurfaceStore
from bot.watch.watcher import Watcher
from tests.helpers import Recorder, catalog_for, fixture_json

BASE = 20.0
FAST = 5.0
API = "/probe/api"
GEMINI = "/probe/gemini"


@pytest.fixture
async def target():
    async with StatusServer() as server:
        server.set_summary(fixture_json("claude/summary_all_operational.json"))
        server.set_probe("api", status=200)
        server.set_probe("gemini", status=200)
        server.set_probe("canary", status=204)
        yield server


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=httpx.Timeout(2.0, connect=1.0)) as c:
        yield c


def watcher(target: StatusServer, redis, client, clock, *, api_url=None, canary=None) -> Watcher:
    probes = {
        "api": [{"url": api_url or f"{target.url}{API}", "expect": [200]}],
        "gemini": [{"url": f"{target.url}{GEMINI}", "expect": [200]}],
    }
    canaries = [canary or f"{target.url}/probe/canary"]
    return Watcher(
        catalog=catalog_for(target.url, probes=probes, canaries=canaries),
        store=SurfaceStore(redis),
        client=client,
        sink=Recorder(),
        clock=clock,
        policy=Policy.with_probe_thresholds(3, 2),
        probe_interval=BASE,
        recheck_interval=FAST,
    )


async def test_a_failing_surface_is_suspected_after_two_fast_rechecks(target, redis, client, clock):
    w = watcher(target, redis, client, clock)
    assert await w.run_probe_round() == []
    target.set_probe("api", status=503)
    clock.advance(BASE)
    assert await w.run_probe_round() == [], "failure 1 of 3: the base round"
    clock.advance(FAST)
    assert await w.recheck_probes() == [], "failure 2 of 3: the first re-check"
    clock.advance(FAST)
    [start] = await w.recheck_probes()
    assert (start.surface, start.kind, start.suspected) == ("api", TransitionKind.START, True)
    assert start.source is Signal.PROBE and start.at == clock()
    assert target.hits[API] == 4 and target.hits[GEMINI] == 2, "only the failing one re-checked"
    clock.advance(FAST)
    trips = w.store.round_trips
    assert await w.recheck_probes() == []
    assert target.hits[API] == 4, "at the threshold the fast path stops: the base interval again"
    assert w.store.round_trips == trips, "nothing settling: no request and no Redis round trip"


async def test_a_single_blip_does_not_alert_and_ends_the_rechecks(target, redis, client, clock):
    w = watcher(target, redis, client, clock)
    await w.run_probe_round()
    target.set_probe("api", status=503)
    clock.advance(BASE)
    await w.run_probe_round()
    target.set_probe("api", status=200)
    clock.advance(FAST)
    assert await w.recheck_probes() == []
    clock.advance(FAST)
    assert await w.recheck_probes() == []
    assert target.hits[API] == 3, "the passing re-check ended the fast path"
    assert await SurfaceStore(redis).read_transitions("claude") == []


async def test_recovery_is_confirmed_on_the_fast_path_too(target, redis, client, clock):
    w = watcher(target, redis, client, clock)
    await w.run_probe_round()
    target.set_probe("api", status=503)
    clock.advance(BASE)
    await w.run_probe_round()
    for _ in range(2):
        clock.advance(FAST)
        await w.recheck_probes()
    target.set_probe("api", status=200)
    clock.advance(BASE)
    assert await w.run_probe_round() == [], "success 1 of 2"
    clock.advance(FAST)
    [end] = await w.recheck_probes()
    assert (end.kind, end.reason) == (TransitionKind.RECOVERY, Reason.WITHDRAWN)


@pytest.mark.parametrize(
    ("canary_up", "alerts"),
    [pytest.param(True, 1, id="canaries-answer-outage"), pytest.param(False, 0, id="blind")],
)
async def test_the_canary_guard_is_rechecked_on_the_fast_path(
    target, redis, client, clock, caplog, canary_up, alerts
):
    """The API's front door stops answering at all (refused); the other probe still answers in
    the base round, so only the fast path can tell our network from their outage."""
    closed = f"http://127.0.0.1:{free_port()}"
    canary = None if canary_up else f"{closed}/canary"
    w = watcher(target, redis, client, clock, api_url=f"{closed}/v1/models", canary=canary)
    await w.run_probe_round()
    assert not w.blind
    recorded = []
    for _ in range(3):
        clock.advance(FAST)
        recorded += await w.recheck_probes()
    assert len(recorded) == alerts
    assert w.blind is not canary_up
    if not canary_up:
        assert sum("monitoring is blind" in r.message for r in caplog.records) == 1, "once"
        state = (await w.store.read("claude", ["api"]))["api"]
        assert state.signals[Signal.PROBE.value].error == "monitoring blind"


async def test_replicas_recheck_a_failing_surface_once(target, redis_server, client, clock):
    clients = [connect(redis_server.url) for _ in range(3)]
    await clients[0].flushall()
    watchers = [watcher(target, c, client, clock) for c in clients]
    target.set_probe("api", status=503)
    results = await asyncio.gather(*(w.run_probe_round() for w in watchers))
    assert results == [[], [], []] and target.hits[API] == 1, "one replica claimed the round"
    for w in watchers:  # every replica saw it fail (e.g. it polled the round before)
        w._settling.add("api")
    recorded = []
    for _ in range(2):
        clock.advance(FAST)
        for got in await asyncio.gather(*(w.recheck_probes() for w in watchers)):
            recorded += got
    assert target.hits[API] == 3, "one re-check per slot across three replicas"
    assert [t.kind for t in recorded] == [TransitionKind.START]
    for c in clients:
        await c.aclose()
