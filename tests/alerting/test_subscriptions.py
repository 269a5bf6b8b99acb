"""Channel subscriptions: the pure `skip_reason` rule, and the Redis store with its fan-out index
(real redis-server)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.alerting.subscription import Skip, Subscription, skip_reason
from bot.catalog_file import load_catalog
from bot.core.model import AlertKind, ChannelRef, Platform, Status
from bot.store import keys
from bot.store.subscriptions import ALL_CLAUDE, SubscriptionStore

CATALOG = load_catalog()
NOW = datetime(2026, 9, 22, 1, 0, tzinfo=UTC)
C1 = ChannelRef(Platform.SLACK, "T1", "C1")
C2 = ChannelRef(Platform.SLACK, "T1", "C2")
D1 = ChannelRef(Platform.DISCORD, "G1", "100")


def store_of(redis):
    return SubscriptionStore(redis, claude_surfaces=CATALOG.claude_surfaces())


# -- skip_reason (pure) ---------------------------------------------------------------------------

BASE = Subscription(channel=C1, surfaces=frozenset({"api"}), min_severity=Status.PARTIAL_OUTAGE)
K = AlertKind
S = Status


@pytest.mark.parametrize(
    ("sub", "surfaces", "severity", "kind", "has_parent", "expected"),
    [
        pytest.param(BASE, ["api"], S.PARTIAL_OUTAGE, K.START, False, None, id="start-at-min"),
        pytest.param(BASE, ["api"], S.MAJOR_OUTAGE, K.START, False, None, id="start-above-min"),
        pytest.param(
            BASE, ["api"], S.DEGRADED, K.START, False, Skip.BELOW_MIN, id="start-below-min"
        ),
        pytest.param(
            BASE, ["code"], S.MAJOR_OUTAGE, K.START, False, Skip.NOT_COVERED, id="other-surface"
        ),
        pytest.param(BASE, ["code", "api"], S.MAJOR_OUTAGE, K.START, False, None, id="overlap"),
        pytest.param(
            BASE, ["api"], S.DEGRADED, K.SUSPECTED, False, Skip.BELOW_MIN, id="suspected-below"
        ),
        pytest.param(BASE, ["api"], S.PARTIAL_OUTAGE, K.SUSPECTED, False, None, id="suspected-at"),
        pytest.param(BASE, ["api"], S.DEGRADED, K.UPDATE, True, None, id="update-in-thread"),
        pytest.param(
            BASE, ["api"], S.DEGRADED, K.UPDATE, False, Skip.BELOW_MIN, id="update-below-no-msg"
        ),
        pytest.param(BASE, ["api"], S.MAJOR_OUTAGE, K.UPDATE, False, None, id="worsened-past-min"),
        pytest.param(BASE, ["api"], S.DEGRADED, K.CONFIRMED, True, None, id="confirmed-thread"),
        pytest.param(BASE, ["api"], S.OPERATIONAL, K.RECOVERY, True, None, id="recovery-thread"),
        pytest.param(
            BASE, ["api"], S.OPERATIONAL, K.RECOVERY, False, Skip.NO_PARENT, id="recovery-no-msg"
        ),
        pytest.param(
            BASE,
            ["api"],
            S.OPERATIONAL,
            K.SUSPECTED_WITHDRAWN,
            False,
            Skip.NO_PARENT,
            id="withdrawn-no-msg",
        ),
        pytest.param(
            BASE, ["api"], S.OPERATIONAL, K.SUSPECTED_WITHDRAWN, True, None, id="withdrawn-thread"
        ),
        pytest.param(
            BASE,
            ["api"],
            S.MAINTENANCE,
            K.MAINTENANCE_START,
            False,
            Skip.NO_MAINTENANCE,
            id="maint-off",
        ),
        pytest.param(
            replace(BASE, maintenance=True),
            ["api"],
            S.MAINTENANCE,
            K.MAINTENANCE_START,
            False,
            None,
            id="maint-on-start",
        ),
        pytest.param(
            replace(BASE, maintenance=True),
            ["api"],
            S.OPERATIONAL,
            K.MAINTENANCE_END,
            False,
            Skip.NO_PARENT,
            id="maint-end-no-msg",
        ),
        pytest.param(
            replace(BASE, maintenance=True),
            ["api"],
            S.OPERATIONAL,
            K.MAINTENANCE_END,
            True,
            None,
            id="maint-end-thread",
        ),
        pytest.param(
            replace(BASE, muted_until=NOW + timedelta(minutes=1)),
            ["api"],
            S.MAJOR_OUTAGE,
            K.START,
            False,
            Skip.MUTED,
            id="muted",
        ),
        pytest.param(
            replace(BASE, muted_until=NOW + timedelta(minutes=1)),
            ["api"],
            S.OPERATIONAL,
            K.RECOVERY,
            True,
            Skip.MUTED,
            id="muted-recovery",
        ),
        pytest.param(
            replace(BASE, muted_until=NOW),
            ["api"],
            S.MAJOR_OUTAGE,
            K.START,
            False,
            None,
            id="mute-expired",
        ),
        pytest.param(
            replace(BASE, disabled_reason="channel_not_found"),
            ["api"],
            S.MAJOR_OUTAGE,
            K.START,
            False,
            Skip.DISABLED,
            id="disabled",
        ),
        pytest.param(
            Subscription(channel=C1, all_claude=True),
            ["mobile"],
            S.DEGRADED,
            K.START,
            False,
            None,
            id="all-claude-covers-mobile",
        ),
        pytest.param(
            Subscription(channel=C1, all_claude=True),
            ["chatgpt"],
            S.MAJOR_OUTAGE,
            K.START,
            False,
            Skip.NOT_COVERED,
            id="all-claude-not-chatgpt",
        ),
        pytest.param(
            Subscription(channel=C1, all_claude=True, surfaces=frozenset({"chatgpt"})),
            ["chatgpt"],
            S.MAJOR_OUTAGE,
            K.START,
            False,
            None,
            id="all-claude-plus-chatgpt",
        ),
    ],
)
def test_skip_reason_says_why_per_rule(sub, surfaces, severity, kind, has_parent, expected):
    got = skip_reason(
        sub, surfaces, severity, kind=kind, has_parent=has_parent, now=NOW, catalog=CATALOG
    )
    assert got is expected


@pytest.mark.parametrize("kind", list(AlertKind))
def test_every_alert_kind_goes_to_a_channel_with_its_outage_at_its_minimum(kind):
    sub = replace(BASE, maintenance=True)
    got = skip_reason(
        sub, ["api"], S.PARTIAL_OUTAGE, kind=kind, has_parent=True, now=NOW, catalog=CATALOG
    )
    assert got is None


@pytest.mark.parametrize(
    ("audience", "expected"),
    [
        ((), None),  # everyone
        (("slack:T1",), None),
        (("slack:T2", "discord:G1"), Skip.NOT_IN_AUDIENCE),
        (("discord:T1",), Skip.NOT_IN_AUDIENCE),  # the same id on the other platform
    ],
)
def test_a_crowd_suspicion_reaches_only_its_audience(audience, expected):
    got = skip_reason(
        BASE,
        ["api"],
        S.PARTIAL_OUTAGE,
        kind=K.SUSPECTED,
        has_parent=False,
        now=NOW,
        catalog=CATALOG,
        audience=audience,
    )
    assert got is expected


def test_a_channel_not_covered_is_not_covered_whatever_the_audience():
    got = skip_reason(
        BASE,
        ["code"],
        S.PARTIAL_OUTAGE,
        kind=K.SUSPECTED,
        has_parent=False,
        now=NOW,
        catalog=CATALOG,
        audience=("slack:T2",),
    )
    assert got is Skip.NOT_COVERED


# -- store ----------------------------------------------------------------------------------------


async def test_subscribe_then_get_round_trips(redis):
    store = store_of(redis)
    sub = await store.subscribe(
        C1,
        ["api", "code"],
        all_claude=False,
        min_severity=Status.PARTIAL_OUTAGE,
        maintenance=True,
        user="U1",
        now=NOW,
    )
    assert sub == Subscription(
        channel=C1,
        surfaces=frozenset({"api", "code"}),
        min_severity=Status.PARTIAL_OUTAGE,
        maintenance=True,
        created_by="U1",
        updated_at=NOW,
    )
    assert await store.get(C1) == sub


async def test_a_new_subscription_defaults_to_degraded_and_no_maintenance(redis):
    sub = await store_of(redis).subscribe(C1, ["api"], all_claude=False, user="U1", now=NOW)
    assert (sub.min_severity, sub.maintenance) == (Status.DEGRADED, False)


async def test_subscribing_again_changes_nothing(redis):
    store = store_of(redis)
    first = await store.subscribe(C1, ["api"], all_claude=False, user="U1", now=NOW)
    again = await store.subscribe(
        C1, ["api"], all_claude=False, user="U2", now=NOW + timedelta(hours=1)
    )
    assert again == first  # not even updated_at or created_by moved


async def test_subscribing_to_more_merges_and_flags_update(redis):
    store = store_of(redis)
    await store.subscribe(C1, ["api"], all_claude=False, maintenance=True, user="U1", now=NOW)
    later = NOW + timedelta(minutes=5)
    sub = await store.subscribe(
        C1, ["code"], all_claude=True, min_severity=Status.MAJOR_OUTAGE, user="U2", now=later
    )
    assert sub.surfaces == {"api", "code"}
    assert sub.all_claude
    assert sub.min_severity is Status.MAJOR_OUTAGE
    assert sub.maintenance  # not given: kept
    assert (sub.created_by, sub.updated_at) == ("U1", later)


async def test_subscribe_needs_something(redis):
    with pytest.raises(ValueError, match="at least one surface"):
        await store_of(redis).subscribe(C1, [], all_claude=False, user="U1", now=NOW)


async def test_unsubscribe_removes_surfaces_and_then_the_whole_subscription(redis):
    store = store_of(redis)
    await store.subscribe(C1, ["api", "code"], all_claude=True, user="U1", now=NOW)
    left = await store.unsubscribe(C1, ["api"], all_claude=False, now=NOW)
    assert left is not None and left.surfaces == {"code"} and left.all_claude
    assert C1.key.encode() not in await redis.smembers(keys.channels_of("api"))
    left = await store.unsubscribe(C1, ["code"], all_claude=True, now=NOW)
    assert left is None
    assert await store.get(C1) is None
    assert not await redis.exists(keys.subscription(C1.key))
    for index in (keys.channels_of("code"), keys.channels_of(ALL_CLAUDE), keys.all_channels()):
        assert C1.key.encode() not in await redis.smembers(index)


async def test_unsubscribe_everything_clears_the_channel(redis):
    store = store_of(redis)
    await store.subscribe(C1, ["api", "chatgpt"], all_claude=True, user="U1", now=NOW)
    assert await store.unsubscribe(C1, [], all_claude=True, everything=True, now=NOW) is None
    assert await store.candidates(["api", "chatgpt"]) == []


async def test_unsubscribe_is_idempotent(redis):
    store = store_of(redis)
    await store.subscribe(C1, ["api", "code"], all_claude=False, user="U1", now=NOW)
    first = await store.unsubscribe(C1, ["api"], all_claude=False, now=NOW + timedelta(minutes=1))
    again = await store.unsubscribe(C1, ["api"], all_claude=False, now=NOW + timedelta(minutes=2))
    assert first == again
    assert await store.unsubscribe(C2, ["api"], all_claude=False, now=NOW) is None


async def test_mute_expires_by_itself(redis):
    store = store_of(redis)
    await store.subscribe(C1, ["api"], all_claude=False, user="U1", now=NOW)
    sub = await store.mute(C1, NOW + timedelta(hours=2), now=NOW)
    assert sub is not None and sub.is_muted(NOW + timedelta(minutes=119))
    stored = await store.get(C1)
    assert stored is not None and stored.muted_until == NOW + timedelta(hours=2)
    alert = {"kind": AlertKind.START, "has_parent": False, "catalog": CATALOG}
    later = {"now": NOW + timedelta(hours=1), **alert}
    assert skip_reason(stored, ["api"], Status.MAJOR_OUTAGE, **later) is Skip.MUTED
    lapsed = {"now": NOW + timedelta(hours=2), **alert}
    assert skip_reason(stored, ["api"], Status.MAJOR_OUTAGE, **lapsed) is None
    unmuted = await store.unmute(C1, now=NOW)
    assert unmuted is not None and unmuted.muted_until is None


async def test_mute_without_a_subscription_creates_nothing(redis):
    store = store_of(redis)
    assert await store.mute(C1, NOW + timedelta(hours=1), now=NOW) is None
    assert await store.disable(C1, "channel_not_found", NOW) is None
    assert not await redis.exists(keys.subscription(C1.key))


async def test_disable_keeps_the_subscription_but_records_why(redis):
    store = store_of(redis)
    await store.subscribe(C1, ["api"], all_claude=False, user="U1", now=NOW)
    sub = await store.disable(C1, "channel_not_found", NOW)
    assert sub is not None and sub.disabled_reason == "channel_not_found"
    assert sub.surfaces == {"api"}
    (candidate,) = await store.candidates(["api"])
    alert = {"kind": AlertKind.START, "has_parent": False, "now": NOW, "catalog": CATALOG}
    assert skip_reason(candidate, ["api"], Status.MAJOR_OUTAGE, **alert) is Skip.DISABLED
    enabled = await store.enable(C1)
    assert enabled is not None and enabled.disabled_reason is None
    assert skip_reason(enabled, ["api"], Status.MAJOR_OUTAGE, **alert) is None


async def test_list_workspace_returns_only_that_workspace(redis):
    store = store_of(redis)
    await store.subscribe(C1, ["api"], all_claude=False, user="U1", now=NOW)
    await store.subscribe(C2, ["code"], all_claude=False, user="U1", now=NOW)
    await store.subscribe(
        ChannelRef(Platform.SLACK, "T2", "C9"), ["api"], all_claude=False, user="U1", now=NOW
    )
    await store.subscribe(D1, ["api"], all_claude=False, user="U1", now=NOW)
    subs = await store.list_workspace("slack", "T1")
    assert [s.channel for s in subs] == [C1, C2]
    await store.unsubscribe(C2, ["code"], all_claude=False, now=NOW)
    assert [s.channel for s in await store.list_workspace(Platform.SLACK, "T1")] == [C1]


async def test_candidates_include_all_claude_channels_only_for_claude_surfaces(redis):
    store = store_of(redis)
    await store.subscribe(C1, ["chatgpt"], all_claude=False, user="U1", now=NOW)
    await store.subscribe(C2, [], all_claude=True, user="U1", now=NOW)
    assert {s.channel for s in await store.candidates(["mobile"])} == {C2}
    assert {s.channel for s in await store.candidates(["chatgpt"])} == {C1}
    assert {s.channel for s in await store.candidates(["chatgpt", "api"])} == {C1, C2}


async def test_candidates_skip_stale_index_entries(redis):
    store = store_of(redis)
    await store.subscribe(C1, ["api"], all_claude=False, user="U1", now=NOW)
    await redis.sadd(keys.channels_of("api"), C2.key)  # e.g. a crash between index and hash
    assert [s.channel for s in await store.candidates(["api"])] == [C1]


async def test_candidates_for_ten_thousand_channels(redis):
    """Built directly with a pipeline in the stored layout; the lookup itself must be quick."""
    n = 10_000
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(n):
            ch = ChannelRef(Platform.SLACK, f"T{i % 50}", f"C{i}")
            surface = ("api", "code", "chatgpt", "*")[i % 4]
            field = {"all": "1"} if surface == "*" else {f"s:{surface}": "1"}
            pipe.hset(
                keys.subscription(ch.key),
                mapping={"ch": ch.key, "min": "degraded_performance", "maint": "0", **field},
            )
            pipe.sadd(keys.channels_of(surface), ch.key)
        await pipe.execute()
    store = store_of(redis)
    await redis.config_resetstat()
    found = await store.candidates(["api"])
    assert len(found) == n // 2  # api subscribers plus all-Claude subscribers
    assert {int(s.channel.channel[1:]) % 4 for s in found} == {0, 3}
    used = await redis.info("commandstats")
    assert not {"cmdstat_scan", "cmdstat_keys", "cmdstat_sscan"} & set(used), "an index, no scan"
    assert used["cmdstat_hgetall"]["calls"] == n // 2, "one read per candidate channel"
    assert len(await store.candidates(["chatgpt"])) == n // 4


async def test_concurrent_subscribes_and_unsubscribes_end_consistent(redis):
    store = store_of(redis)
    rng = random.Random(7)
    channels = [C1, C2, D1, ChannelRef(Platform.SLACK, "T2", "C3")]
    surfaces = ["api", "code", "claude.ai", "chatgpt"]

    async def one(i: int) -> None:
        ch = rng.choice(channels)
        picked = rng.sample(surfaces, rng.randint(1, 2))
        when = NOW + timedelta(seconds=i)
        if rng.random() < 0.5:
            await store.subscribe(ch, picked, all_claude=rng.random() < 0.2, user="U", now=when)
        else:
            await store.unsubscribe(ch, picked, all_claude=rng.random() < 0.2, now=when)

    async with asyncio.timeout(20):
        await asyncio.gather(*(one(i) for i in range(200)))

    for ch in channels:
        sub = await store.get(ch)
        if sub is None:
            continue
        # Superset check: every channel hash is reachable from every index it needs.
        assert ch.key.encode() in await redis.smembers(keys.all_channels())
        ws = keys.workspace_channels(str(ch.platform), ch.workspace)
        assert ch.key.encode() in await redis.smembers(ws)
        for s in sub.surfaces:
            assert ch.key.encode() in await redis.smembers(keys.channels_of(s))
            assert ch in {c.channel for c in await store.candidates([s])}
        if sub.all_claude:
            assert ch.key.encode() in await redis.smembers(keys.channels_of(ALL_CLAUDE))
        assert sub.surfaces or sub.all_claude  # an empty subscription is deleted, not kept


@pytest.mark.parametrize("subscribed_first", [True, False], ids=["from-subscribed", "from-empty"])
async def test_racing_subscribe_and_unsubscribe_of_one_surface_keep_the_index(
    redis, subscribed_first
):
    """The same surface on the same channel, many times over: whatever wins in the hash, the
    index never misses it."""
    store = store_of(redis)
    for round_ in range(30):
        when = NOW + timedelta(seconds=round_)
        if subscribed_first:
            await store.subscribe(C1, ["api"], all_claude=False, user="U", now=when)
        else:
            await store.unsubscribe(C1, ["api"], all_claude=False, now=when)
        steps = [
            lambda when=when: store.unsubscribe(C1, ["api"], all_claude=False, now=when),
            lambda when=when: store.subscribe(C1, ["api"], all_claude=False, user="U", now=when),
        ] * 2
        tasks = [step() for step in steps[round_ % 2 :]]
        async with asyncio.timeout(5):
            await asyncio.gather(*tasks)
        if await store.get(C1) is not None:
            assert [s.channel for s in await store.candidates(["api"])] == [C1], round_


async def test_a_corrupt_field_does_not_hide_the_subscription(redis):
    store = store_of(redis)
    await store.subscribe(C1, ["api"], all_claude=False, user="U1", now=NOW)
    await redis.hset(keys.subscription(C1.key), mapping={"min": "bogus", "mute": "not-a-date"})
    sub = await store.get(C1)
    assert sub is not None and sub.surfaces == {"api"}
    assert (sub.min_severity, sub.muted_until) == (Status.DEGRADED, None)
