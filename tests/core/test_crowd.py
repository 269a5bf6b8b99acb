"""Crowd reports: one per user per window, thresholds, decay (real redis-server; pure rules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core.crowd import CrowdThresholds, count, crowd_observation
from bot.core.model import Signal, Status
from bot.store import keys
from bot.store.crowd import CrowdStore

NOW = datetime(2026, 9, 22, 1, 0, tzinfo=UTC)
T = CrowdThresholds()


def at(seconds_ago: float) -> float:
    return NOW.timestamp() - seconds_ago


# -- pure -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reports", "status"),
    [
        pytest.param([("w1", "a", at(5)), ("w2", "b", at(5))], Status.OPERATIONAL, id="2-users"),
        pytest.param(
            [("w1", "a", at(5)), ("w1", "b", at(5)), ("w2", "c", at(5))],
            Status.PARTIAL_OUTAGE,
            id="3-users-2-workspaces",
        ),
        pytest.param(
            [("w1", u, at(5)) for u in "abcd"], Status.OPERATIONAL, id="4-users-1-workspace"
        ),
        pytest.param(
            [("w1", u, at(5)) for u in "abcde"], Status.PARTIAL_OUTAGE, id="5-users-1-workspace"
        ),
        pytest.param(
            [("w1", "a", at(700)), ("w1", "b", at(5)), ("w2", "c", at(5))],
            Status.OPERATIONAL,
            id="old-report-decayed",
        ),
        pytest.param(
            [("w1", "a", at(5)), ("w1", "a", at(4)), ("w2", "a", at(5))],
            Status.OPERATIONAL,
            id="same-user-counts-once-per-workspace",
        ),
    ],
)
def test_crowd_observation_crosses_only_at_the_thresholds(reports, status):
    obs = crowd_observation("claude.ai", reports, NOW, T)
    assert (obs.surface, obs.signal, obs.status, obs.error) == (
        "claude.ai",
        Signal.CROWD,
        status,
        None,
    )
    assert obs.observed_at == NOW


def test_count_separates_people_and_workspaces():
    c = count([("w1", "a", at(1)), ("w1", "b", at(1)), ("w2", "a", at(1))], NOW, 600)
    assert (c.users, c.workspaces, c.most_in_one_workspace) == (3, 2, 2)


# -- store ----------------------------------------------------------------------------------------


async def test_a_user_counts_once_per_window(redis):
    store = CrowdStore(redis)
    first = await store.report("claude.ai", "w1", "maria", NOW)
    again = await store.report("claude.ai", "w1", "maria", NOW + timedelta(minutes=3))
    assert first.recorded and first.users == 1
    assert not again.recorded and again.users == 1
    assert len(await store.recent("claude.ai", NOW + timedelta(minutes=3))) == 1


async def test_the_same_user_counts_again_after_the_window(redis):
    store = CrowdStore(redis)
    await store.report("claude.ai", "w1", "maria", NOW)
    later = await store.report("claude.ai", "w1", "maria", NOW + timedelta(seconds=601))
    assert later.recorded and later.users == 1


async def test_reports_of_one_surface_do_not_count_for_another(redis):
    store = CrowdStore(redis)
    await store.report("claude.ai", "w1", "maria", NOW)
    other = await store.report("api", "w1", "maria", NOW)
    assert other.recorded and other.users == 1


async def test_three_people_from_two_workspaces_cross_the_threshold(redis):
    store = CrowdStore(redis)
    r1 = await store.report("claude.ai", "w1", "a", NOW)
    r2 = await store.report("claude.ai", "w1", "b", NOW + timedelta(seconds=10))
    r3 = await store.report("claude.ai", "w2", "c", NOW + timedelta(seconds=20))
    assert [r.observation.status for r in (r1, r2, r3)] == [
        Status.OPERATIONAL,
        Status.OPERATIONAL,
        Status.PARTIAL_OUTAGE,
    ]
    assert (r3.users, r3.workspaces) == (3, 2)


async def test_five_people_of_one_workspace_cross_the_threshold(redis):
    store = CrowdStore(redis)
    results = [
        await store.report("code", "w1", f"u{i}", NOW + timedelta(seconds=i)) for i in range(5)
    ]
    assert results[3].observation.status is Status.OPERATIONAL
    assert results[4].observation.status is Status.PARTIAL_OUTAGE
    assert (results[4].users, results[4].workspaces) == (5, 1)


async def test_reports_decay_after_the_window(redis):
    store = CrowdStore(redis)
    for seconds, ws, user in [(0, "w1", "a"), (300, "w1", "b"), (310, "w2", "c")]:
        crossing = await store.report("claude.ai", ws, user, NOW + timedelta(seconds=seconds))
    assert crossing.observation.status is Status.PARTIAL_OUTAGE
    # At +605 s the report made at +0 s is out of the window: b and c remain, d joins them.
    r = await store.report("claude.ai", "w1", "d", NOW + timedelta(seconds=605))
    assert (r.users, r.workspaces, r.observation.status) == (3, 2, Status.PARTIAL_OUTAGE)
    # At +1000 s only d (at +605 s) and e remain: below the threshold again.
    r = await store.report("claude.ai", "w2", "e", NOW + timedelta(seconds=1000))
    assert (r.users, r.workspaces, r.observation.status) == (2, 2, Status.OPERATIONAL)
    # The old entries are gone from the sorted set itself, not only filtered out.
    assert await redis.zcard(keys.crowd("claude.ai")) == 2


async def test_the_dedupe_and_report_keys_expire_by_themselves(redis):
    store = CrowdStore(redis)
    await store.report("claude.ai", "w1", "maria", NOW)
    user_ttl = await redis.ttl(keys.crowd_user("claude.ai", "w1", "maria"))
    set_ttl = await redis.ttl(keys.crowd("claude.ai"))
    assert 0 < user_ttl <= 600
    assert 0 < set_ttl <= 600


async def test_custom_thresholds_apply(redis):
    store = CrowdStore(redis, CrowdThresholds(window_s=60, users=1, workspaces=1))
    r = await store.report("api", "w1", "a", NOW)
    assert r.observation.status is Status.PARTIAL_OUTAGE
    assert await store.recent("api", NOW + timedelta(seconds=61)) == []
