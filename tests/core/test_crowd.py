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
    ("reports", "status", "audience"),
    [
        pytest.param(
            [("w1", "a", at(5)), ("w2", "b", at(5))], Status.OPERATIONAL, (), id="2-users"
        ),
        pytest.param(
            [("w1", "a", at(5)), ("w1", "b", at(5)), ("w2", "c", at(5))],
            Status.OPERATIONAL,
            (),
            id="3-users-2-workspaces-reach-nobody",
        ),
        pytest.param(
            [("w1", u, at(5)) for u in "abc"],
            Status.PARTIAL_OUTAGE,
            ("w1",),
            id="3-users-1-workspace-tell-only-it",
        ),
        pytest.param(
            [("w1", u, at(5)) for u in "abcdefghij"],
            Status.PARTIAL_OUTAGE,
            ("w1",),
            id="10-users-1-workspace-still-only-it",
        ),
        pytest.param(
            [*[("w1", u, at(5)) for u in "abcdef"], ("w2", "x", at(5)), ("w3", "y", at(5))],
            Status.PARTIAL_OUTAGE,
            ("w1",),
            id="one-big-workspace-and-two-helpers-count-4",
        ),
        pytest.param(
            [(w, u, at(5)) for w in ("w1", "w2", "w3") for u in "ab"],
            Status.PARTIAL_OUTAGE,
            (),
            id="2-users-in-each-of-3-workspaces-tell-everyone",
        ),
        pytest.param(
            [*[(w, u, at(5)) for w in ("w1", "w2", "w3") for u in "ab"][1:], ("w1", "a", at(700))],
            Status.OPERATIONAL,
            (),
            id="old-report-decayed",
        ),
        pytest.param(
            [("w1", "a", at(5)), ("w1", "a", at(4)), ("w2", "a", at(5))],
            Status.OPERATIONAL,
            (),
            id="same-user-counts-once-per-workspace",
        ),
    ],
)
def test_crowd_observation_crosses_only_at_the_thresholds(reports, status, audience):
    obs = crowd_observation("claude.ai", reports, NOW, T)
    assert (obs.surface, obs.signal, obs.status, obs.error, obs.audience) == (
        "claude.ai",
        Signal.CROWD,
        status,
        None,
        audience,
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


async def test_two_people_from_each_of_three_workspaces_cross_the_threshold(redis):
    store = CrowdStore(redis)
    people = [(w, u) for w in ("w1", "w2", "w3") for u in "ab"]
    results = [
        await store.report("claude.ai", w, u, NOW + timedelta(seconds=i))
        for i, (w, u) in enumerate(people)
    ]
    assert [r.observation.status for r in results] == [Status.OPERATIONAL] * 5 + [
        Status.PARTIAL_OUTAGE
    ]
    assert (results[-1].users, results[-1].workspaces) == (6, 3)


async def test_no_number_of_people_in_one_workspace_reaches_another(redis):
    store = CrowdStore(redis)
    results = [
        await store.report("code", "w1", f"u{i}", NOW + timedelta(seconds=i)) for i in range(15)
    ]
    assert [r.observation.status for r in results[:3]] == [Status.OPERATIONAL] * 2 + [
        Status.PARTIAL_OUTAGE
    ]
    assert all(r.observation.audience == ("w1",) for r in results[2:])


async def test_a_user_and_a_workspace_have_a_report_budget_across_surfaces(redis):
    store = CrowdStore(redis)
    surfaces = ["claude.ai", "api", "code", "console", "mobile"]
    mine = [(await store.report(s, "w1", "maria", NOW)).recorded for s in surfaces]
    assert mine == [True, True, True, False, False]
    others = [
        (await store.report(s, "w1", f"bot{i}", NOW)).recorded
        for i in range(10)
        for s in surfaces[:2]
    ]
    assert others.count(True) == 20 - 5  # the workspace budget counts attempts: maria made 5
    assert (await store.report("api", "w2", "maria", NOW)).recorded  # other workspaces unaffected
    later = NOW + timedelta(seconds=601)
    assert (await store.report("mobile", "w1", "maria", later)).recorded  # a new window


async def test_reports_decay_after_the_window(redis):
    store = CrowdStore(redis, CrowdThresholds(users=3, workspaces=1, users_one_workspace=5))
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
