"""The surface store against a real redis-server: poll-slot claims, compare-and-set commits that
record each transition exactly once across racing replicas, bounded history, restarts."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest
from redis.crc import key_slot

from bot.core.model import (
    Incident,
    Signal,
    SignalState,
    Status,
    SurfaceState,
    Transition,
)
from bot.store import keys
from bot.store.connect import connect
from bot.store.surfaces import (
    Claim,
    PageCache,
    SurfaceStore,
    Write,
    claim_keys,
    commit_args,
    commit_keys,
)
from tests.helpers import make_transition

T0 = datetime(2026, 9, 22, 0, 50, tzinfo=UTC)
PROVIDER = "claude"
SURFACES = ("claude.ai", "api", "code", "console", "cowork", "mobile")
INCIDENT = Incident(
    id="inc1",
    name="Elevated errors on Claude.ai",
    status="investigating",
    impact="major",
    components=("rwppv331jlwc",),
    update_id="upd1",
)


def state_at(surface: str, version: int, status: Status = Status.PARTIAL_OUTAGE) -> SurfaceState:
    at = T0 + timedelta(minutes=version)
    return SurfaceState(
        surface,
        status=status,
        source=Signal.OFFICIAL,
        incident=INCIDENT if status.is_outage else None,
        outage_id="inc1" if status.is_outage else None,
        started_at=T0,
        since=at,
        signals={
            "official": SignalState(raw=status, streak=2, effective=status, observed_at=at),
        },
        version=version,
    )


def write(
    surface: str, expected: int, status: Status = Status.PARTIAL_OUTAGE, provider: str = PROVIDER
) -> Write:
    """The write a poller would make after `decide` moved `surface` from `expected` on."""
    return Write(
        surface,
        expected,
        state_at(surface, expected + 1, status),
        make_transition(
            surface,
            version=expected + 1,
            status=status,
            at=T0 + timedelta(minutes=expected + 1),
            started_at=T0,
            provider=provider,
        ),
    )


async def stream_ids(store: SurfaceStore, provider: str = PROVIDER) -> list[str]:
    return [t.id for _, t in await store.read_transitions(provider, count=10_000)]


async def evalsha_calls(redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


# -- claim -----------------------------------------------------------------------------------------


async def test_the_first_claimer_gets_default_states_and_a_second_claimer_gets_none(redis):
    first, second = SurfaceStore(redis), SurfaceStore(redis)

    won = await first.claim(PROVIDER, "poll", 7, 30_000, SURFACES)
    lost = await second.claim(PROVIDER, "poll", 7, 30_000, SURFACES)

    assert won == Claim(states={s: SurfaceState(s) for s in SURFACES}, page=None)
    assert lost is None


async def test_the_next_slot_index_can_be_claimed_while_the_previous_one_is_held(redis):
    store = SurfaceStore(redis)
    assert await store.claim(PROVIDER, "poll", 7, 30_000, SURFACES) is not None
    assert await store.claim(PROVIDER, "poll", 8, 30_000, SURFACES) is not None
    assert await store.claim(PROVIDER, "probe", 8, 30_000, SURFACES) is not None
    assert await store.claim(PROVIDER, "poll", 8, 30_000, SURFACES) is None


async def test_a_claim_can_be_taken_again_once_its_ttl_has_expired(redis):
    store = SurfaceStore(redis)
    assert await store.claim(PROVIDER, "poll", 1, 50, ["api"]) is not None
    assert await store.claim(PROVIDER, "poll", 1, 50, ["api"]) is None

    async with asyncio.timeout(5):  # Redis expires the key itself; wait for that, bounded
        while True:
            if not await redis.exists(keys.slot(PROVIDER, "poll", 1)):
                break
            await asyncio.sleep(0.01)

    assert await store.claim(PROVIDER, "poll", 1, 50, ["api"]) is not None


async def test_a_claim_returns_the_committed_states_and_the_page_cache_when_asked(redis):
    store = SurfaceStore(redis)
    page = PageCache(etag='W/"abc"', last_modified="Tue, 22 Sep 2026 00:49:00 GMT", body=b'{"x":1}')
    await store.commit(PROVIDER, [write("api", 0)], page=page)

    with_page = await store.claim(PROVIDER, "poll", 1, 30_000, ["api", "code"], with_page=True)
    without_page = await store.claim(PROVIDER, "poll", 2, 30_000, ["api"])

    assert with_page is not None and without_page is not None
    assert with_page.states == {"api": state_at("api", 1), "code": SurfaceState("code")}
    assert with_page.page == page
    assert without_page.page is None


async def test_a_claim_with_page_on_a_provider_never_fetched_has_no_page(redis):
    claim = await SurfaceStore(redis).claim(PROVIDER, "poll", 1, 30_000, ["api"], with_page=True)
    assert claim is not None and claim.page is None


async def test_a_page_cache_without_validators_replaces_the_old_ones(redis):
    store = SurfaceStore(redis)
    await store.commit(PROVIDER, [], page=PageCache(etag="e1", last_modified="lm1", body=b"one"))
    await store.commit(PROVIDER, [], page=PageCache(etag=None, last_modified=None, body=b"two"))

    claim = await store.claim(PROVIDER, "poll", 1, 30_000, [], with_page=True)

    assert claim is not None
    assert claim.page == PageCache(etag=None, last_modified=None, body=b"two")


# -- commit: compare-and-set ----------------------------------------------------------------------


async def test_of_two_commits_at_the_same_version_exactly_one_is_recorded(redis):
    store = SurfaceStore(redis)
    winner = write("api", 0, Status.PARTIAL_OUTAGE)
    loser = write("api", 0, Status.MAJOR_OUTAGE)

    first = await store.commit(PROVIDER, [winner])
    second = await store.commit(PROVIDER, [loser])

    assert first == [winner.transition]
    assert second == []
    assert await store.read(PROVIDER, ["api"]) == {"api": winner.state}
    assert await store.history(PROVIDER, "api") == [winner.transition]
    assert await stream_ids(store) == ["api@1"]


async def test_a_commit_applies_the_writes_that_still_match_and_skips_the_others(redis):
    store = SurfaceStore(redis)
    await store.commit(PROVIDER, [write("api", 0)])

    recorded = await store.commit(PROVIDER, [write("api", 0), write("code", 0), write("mobile", 0)])

    assert [t.id for t in recorded] == ["code@1", "mobile@1"]
    assert await stream_ids(store) == ["api@1", "code@1", "mobile@1"]


async def test_a_state_change_without_a_transition_is_stored_but_not_recorded(redis):
    store = SurfaceStore(redis)
    quiet = Write("api", 0, state_at("api", 1, Status.OPERATIONAL), transition=None)

    assert await store.commit(PROVIDER, [quiet]) == []
    assert (await store.read(PROVIDER, ["api"]))["api"] == quiet.state
    assert await store.history(PROVIDER, "api") == []
    assert await stream_ids(store) == []


@pytest.mark.parametrize("watchers", [2, 3], ids=["two-watchers", "three-watchers"])
async def test_racing_watchers_with_their_own_clients_record_each_transition_once(
    redis_server, redis, watchers
):
    steps = 50
    clients = [connect(redis_server.url) for _ in range(watchers)]
    stores = [SurfaceStore(c) for c in clients]

    async def watch(store: SurfaceStore) -> list[Transition]:
        # Every watcher decides the same transition at every version and races to commit it.
        mine: list[Transition] = []
        for version in range(steps):
            mine += await store.commit(PROVIDER, [write("api", version)])
        return mine

    try:
        async with asyncio.timeout(20):
            results = await asyncio.gather(*(watch(s) for s in stores))
    finally:
        for c in clients:
            await c.aclose()

    expected = {f"api@{v}" for v in range(1, steps + 1)}
    won = [t.id for r in results for t in r]
    reader = SurfaceStore(redis)
    assert len(won) == steps and set(won) == expected
    assert sorted(await stream_ids(reader)) == sorted(expected)
    history = await reader.history(PROVIDER, "api", limit=1000)
    assert [t.id for t in history] == [f"api@{v}" for v in range(steps, 0, -1)]
    assert (await reader.read(PROVIDER, ["api"]))["api"].version == steps


async def test_a_commit_replayed_after_a_lost_reply_reports_its_write_once_and_records_it_once(
    redis,
):
    # redis-py retries a call whose reply was lost on a broken connection; the retry carries the
    # same token, so the script says "already applied by you" rather than "another replica won".
    store = SurfaceStore(redis)
    w = write("api", 0)
    argv = commit_args(
        PROVIDER, [w], page=None, history_length=10, stream_maxlen=100, token="tok-1"
    )
    script = redis.register_script(
        resources.files("bot.store").joinpath("lua", "commit.lua").read_text("utf-8")
    )
    first = await script(keys=commit_keys(PROVIDER, ["api"]), args=argv)
    replay = await script(keys=commit_keys(PROVIDER, ["api"]), args=argv)
    other = await script(
        keys=commit_keys(PROVIDER, ["api"]),
        args=commit_args(
            PROVIDER, [w], page=None, history_length=10, stream_maxlen=100, token="tok-2"
        ),
    )

    assert [first[0], replay[0], other[0]] == [1, 2, 0]
    assert await stream_ids(store) == ["api@1"]
    assert len(await store.history(PROVIDER, "api")) == 1


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(Write("api", 0, state_at("api", 2)), id="version-skips-one"),
        pytest.param(Write("api", 1, state_at("api", 1)), id="version-not-bumped"),
        pytest.param(Write("api", 0, state_at("code", 1)), id="state-of-another-surface"),
        pytest.param(
            Write("api", 0, state_at("api", 1), make_transition("code")),
            id="transition-of-another-surface",
        ),
        pytest.param(
            Write("api", 0, state_at("api", 1), make_transition("api", provider="openai")),
            id="transition-of-another-provider",
        ),
    ],
)
async def test_a_malformed_write_is_refused_before_anything_is_stored(redis, bad):
    store = SurfaceStore(redis)
    with pytest.raises(ValueError):
        await store.commit(PROVIDER, [bad])
    assert store.round_trips == 0
    assert await redis.dbsize() == 0


async def test_two_writes_for_one_surface_in_one_commit_are_refused(redis):
    store = SurfaceStore(redis)
    with pytest.raises(ValueError, match="one write per surface"):
        await store.commit(PROVIDER, [write("api", 0), write("api", 1)])
    assert await redis.dbsize() == 0


# -- history and stream ----------------------------------------------------------------------------


async def test_history_keeps_only_the_newest_transitions_newest_first(redis):
    store = SurfaceStore(redis, history_length=5)
    for version in range(8):
        await store.commit(PROVIDER, [write("api", version)])

    history = await store.history(PROVIDER, "api")

    assert [t.id for t in history] == ["api@8", "api@7", "api@6", "api@5", "api@4"]
    assert [t.id for t in await store.history(PROVIDER, "api", limit=2)] == ["api@8", "api@7"]
    assert history[0] == write("api", 7).transition


async def test_the_stream_can_be_read_on_from_the_last_id_seen(redis):
    store = SurfaceStore(redis)
    for version in range(3):
        await store.commit(PROVIDER, [write("api", version)])

    first = await store.read_transitions(PROVIDER, count=2)
    rest = await store.read_transitions(PROVIDER, after_id=first[-1][0])

    assert [t.id for _, t in first] == ["api@1", "api@2"]
    assert [t.id for _, t in rest] == ["api@3"]
    assert await store.read_transitions(PROVIDER, after_id=rest[-1][0]) == []


async def test_the_stream_is_trimmed_to_about_its_maximum_length(redis):
    store = SurfaceStore(redis, stream_maxlen=10)
    for version in range(300):
        await store.commit(PROVIDER, [write("api", version)])
    length = await redis.xlen(keys.transitions(PROVIDER))
    assert length < 300  # MAXLEN ~ trims whole macro nodes: approximately, never unboundedly


# -- readers ---------------------------------------------------------------------------------------


async def test_read_all_returns_every_surface_of_every_provider_in_one_round_trip(redis):
    store = SurfaceStore(redis)
    await store.commit("claude", [write("api", 0, provider="claude")])
    await store.commit("openai", [write("chatgpt", 0, Status.MAJOR_OUTAGE, provider="openai")])
    before = store.round_trips

    states = await store.read_all({"claude": ["api", "code"], "openai": ["chatgpt"]})

    assert store.round_trips - before == 1
    assert states == {
        "api": state_at("api", 1),
        "code": SurfaceState("code"),
        "chatgpt": state_at("chatgpt", 1, Status.MAJOR_OUTAGE),
    }


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b'{"surface": "api", "status": "on_fire"}', id="unknown-status"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
    ],
)
async def test_a_corrupt_stored_state_reads_as_fresh_keeping_its_version_and_is_overwritable(
    redis, caplog, blob
):
    store = SurfaceStore(redis)
    key = keys.state(PROVIDER, "api")
    await redis.hset(key, mapping={"v": 4, "s": blob})

    with caplog.at_level(logging.WARNING, logger="bot.store.surfaces"):
        states = await store.read(PROVIDER, ["api"])
        claim = await store.claim(PROVIDER, "poll", 1, 30_000, ["api"])

    assert states == {"api": SurfaceState("api", version=4)}
    assert claim is not None and claim.states == states
    assert any(key in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert [t.id for t in await store.commit(PROVIDER, [write("api", 4)])] == ["api@5"]


# -- restarts and crashes --------------------------------------------------------------------------


async def test_a_graceful_restart_keeps_every_transition_and_the_same_store_keeps_working(
    own_redis,
):
    client = connect(own_redis.url)
    store = SurfaceStore(client)
    try:
        async with asyncio.timeout(20):
            await store.commit(PROVIDER, [write(s, 0) for s in SURFACES])
            await store.commit(PROVIDER, [write("api", 1)])

            await asyncio.to_thread(own_redis.stop)  # SIGTERM: redis flushes the AOF
            await asyncio.to_thread(own_redis.start)

            # Same client, same store: it reconnects, and the scripts reload (NOSCRIPT).
            after = await store.commit(PROVIDER, [write("api", 2), write("code", 0)])
            states = await store.read(PROVIDER, SURFACES)
            history = await store.history(PROVIDER, "api")
            ids = await stream_ids(store)
            claim = await store.claim(PROVIDER, "poll", 1, 30_000, ["api"])
    finally:
        await client.aclose()

    assert [t.id for t in after] == ["api@3"]  # code@1 survived the restart: its CAS fails
    assert states["api"] == state_at("api", 3)
    assert all(states[s] == state_at(s, 1) for s in SURFACES if s != "api")
    assert [t.id for t in history] == ["api@3", "api@2", "api@1"]
    assert sorted(ids) == sorted([f"{s}@1" for s in SURFACES] + ["api@2", "api@3"])
    assert claim is not None


async def test_after_a_crash_the_same_store_reconnects_and_goes_on_from_what_survived(own_redis):
    # Trade-off: the server runs `appendfsync everysec`, so a SIGKILL may lose up to ~1 s of
    # commits that had already returned. We therefore assert nothing about what survived — only
    # that the store reconnects and that the CAS still records the next transition exactly once.
    client = connect(own_redis.url)
    store = SurfaceStore(client)
    try:
        async with asyncio.timeout(20):
            await store.commit(PROVIDER, [write("api", 0)])
            await asyncio.to_thread(own_redis.kill)
            await asyncio.to_thread(own_redis.start)

            survived = (await store.read(PROVIDER, ["api"]))["api"].version
            first = await store.commit(PROVIDER, [write("api", survived)])
            again = await store.commit(PROVIDER, [write("api", survived)])
    finally:
        await client.aclose()

    assert survived in (0, 1)
    assert [t.id for t in first] == [f"api@{survived + 1}"]
    assert again == []


# -- cluster safety and cost -----------------------------------------------------------------------


async def test_every_key_a_poll_touches_hashes_to_the_providers_one_slot(redis):
    store = SurfaceStore(redis)
    await store.claim(PROVIDER, "poll", 1, 30_000, SURFACES, with_page=True)
    await store.commit(
        PROVIDER, [write(s, 0) for s in SURFACES], page=PageCache(etag="e", body=b"{}")
    )

    stored = [k async for k in redis.scan_iter(match="*")]
    declared = claim_keys(PROVIDER, "poll", 1, SURFACES) + commit_keys(PROVIDER, SURFACES)

    assert len(stored) == 1 + 1 + 1 + 2 * len(SURFACES)  # slot, page, stream, state+history
    assert {k.decode() for k in stored} <= set(declared)
    assert len({key_slot(k.encode() if isinstance(k, str) else k) for k in declared}) == 1
    assert key_slot(keys.state("openai", "chatgpt").encode()) != key_slot(declared[0].encode())


async def test_a_claim_and_a_commit_of_six_surfaces_cost_one_round_trip_each(redis):
    store = SurfaceStore(redis)
    await store.claim(PROVIDER, "warmup", 0, 30_000, SURFACES)  # loads claim.lua once
    await store.commit(PROVIDER, [], page=PageCache(etag="e"))  # loads commit.lua once
    store.round_trips = 0
    calls = await evalsha_calls(redis)

    claim = await store.claim(PROVIDER, "poll", 1, 30_000, SURFACES, with_page=True)
    assert claim is not None
    assert store.round_trips == 1
    recorded = await store.commit(
        PROVIDER, [write(s, 0) for s in SURFACES], page=PageCache(etag="e2")
    )

    assert len(recorded) == len(SURFACES)
    assert store.round_trips == 2
    assert await evalsha_calls(redis) - calls == 2  # one script call each, nothing else


async def test_an_empty_commit_makes_no_round_trip(redis):
    store = SurfaceStore(redis)
    assert await store.commit(PROVIDER, []) == []
    assert await store.read(PROVIDER, []) == {}
    assert store.round_trips == 0
