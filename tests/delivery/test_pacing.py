"""Client-side rate limits: token buckets per channel and per workspace, time injected."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.model import ChannelRef, Platform
from bot.delivery.config import DeliveryConfig
from bot.delivery.pacing import (
    DISCORD,
    SLACK,
    Pacer,
    PacingPolicy,
    Rate,
    TokenBuckets,
    on_grid,
)

A = ChannelRef(Platform.SLACK, "T1", "CA")
B = ChannelRef(Platform.SLACK, "T1", "CB")
OTHER_WORKSPACE = ChannelRef(Platform.SLACK, "T2", "CA")


def send_times(acquire, arrivals):
    """When each call goes out, for calls arriving at `arrivals`, each caller sleeping what
    `acquire` answers and asking again (the engine's loop). Calls go one after another."""
    out, now = [], 0.0
    for at in arrivals:
        now = max(now, at)
        for _ in range(1000):
            wait = acquire(now)
            if wait == 0.0:
                break
            assert wait > 0
            now += wait
        out.append(now)
    return out


def test_a_burst_goes_at_once_then_one_per_interval():
    buckets = TokenBuckets(Rate(1.0, burst=3))
    sends = send_times(lambda now: buckets.acquire("c", now), [100.0] * 6)
    assert sends == [100.0, 100.0, 100.0, 101.0, 102.0, 103.0]


def test_waiting_takes_no_slot():
    buckets = TokenBuckets(Rate(1.0, burst=1))
    assert buckets.acquire("c", 0.0) == 0.0
    assert buckets.acquire("c", 0.0) == 1.0
    assert buckets.acquire("c", 0.5) == 0.5  # asking again did not push the slot further out
    assert buckets.acquire("c", 1.0) == 0.0


def test_the_bucket_refills_with_time():
    buckets = TokenBuckets(Rate(2.0, burst=2))
    assert [buckets.acquire("c", 0.0) for _ in range(3)] == [0.0, 0.0, 0.5]
    assert buckets.acquire("c", 10.0) == 0.0
    assert buckets.acquire("c", 10.0) == 0.0


def test_a_429_blocks_the_channel_exactly_until_retry_after_without_a_burst_after():
    buckets = TokenBuckets(Rate(1.0, burst=3))
    buckets.block("c", until=107.25)
    assert buckets.acquire("c", 100.0) == pytest.approx(7.25)
    assert send_times(lambda now: buckets.acquire("c", now), [100.0] * 2) == pytest.approx(
        [107.25, 108.25]
    )


def test_a_blocked_channel_does_not_hold_up_another_channel_or_its_workspace():
    pacer = Pacer({Platform.SLACK: SLACK})
    pacer.block(A, until=130.0)
    assert pacer.acquire(A, 100.0) == pytest.approx(30.0)
    assert pacer.acquire(B, 100.0) == 0.0
    for i in range(SLACK.workspace.burst - 1):
        assert pacer.acquire(ChannelRef(Platform.SLACK, "T1", f"X{i}"), 100.0) == 0.0


def test_channels_of_one_workspace_share_its_bucket_and_other_workspaces_do_not():
    policy = PacingPolicy(channel=Rate(10.0, burst=10), workspace=Rate(1.0, burst=2))
    pacer = Pacer({Platform.SLACK: policy})
    assert [pacer.acquire(A, 0.0), pacer.acquire(B, 0.0), pacer.acquire(B, 0.0)] == [0.0, 0.0, 1.0]
    assert pacer.acquire(OTHER_WORKSPACE, 0.0) == 0.0


def test_discord_shares_one_global_bucket_across_guilds():
    pacer = Pacer({Platform.DISCORD: DISCORD})
    guilds = [ChannelRef(Platform.DISCORD, f"G{i}", f"C{i}") for i in range(51)]
    sends, now = [], 0.0
    for guild in guilds:
        for _ in range(1000):
            wait = pacer.acquire(guild, now)
            if wait == 0.0:
                break
            now += wait
        sends.append(now)
    burst = DISCORD.workspace.burst
    assert sends[:burst] == [0.0] * burst
    assert sum(1 for t in sends if t < 1.0) < 50, "under Discord's 50/s, whatever the guild"
    assert sends[-1] == pytest.approx((51 - burst) / DISCORD.workspace.per_second)


def test_slack_allows_about_one_message_per_second_per_channel():
    pacer = Pacer({Platform.SLACK: SLACK})
    sends = send_times(lambda now: pacer.acquire(A, now), [0.0] * 10)
    assert sends[-1] == pytest.approx(10 - SLACK.channel.burst)


def test_a_platform_without_limits_never_waits_but_still_honours_a_429():
    pacer = Pacer({Platform.CONSOLE: PacingPolicy(channel=None, workspace=None)})
    c = ChannelRef(Platform.CONSOLE, "local", "tty")
    assert all(pacer.acquire(c, 0.0) == 0.0 for _ in range(100))
    pacer.block(c, until=5.0)
    assert pacer.acquire(c, 1.0) == pytest.approx(4.0)


def test_prune_forgets_buckets_that_are_full_again():
    buckets = TokenBuckets(Rate(1.0, burst=2))
    for i in range(100):
        buckets.acquire(f"c{i}", 0.0)
    for _ in range(3):
        buckets.acquire("busy", 0.0)
    buckets.prune(0.5)
    assert len(buckets) == 1  # only "busy" still owes time (its bucket is full at 1.0)


@given(
    gaps=st.lists(st.floats(min_value=0.0, max_value=3.0), min_size=1, max_size=40),
    per_second=st.floats(min_value=0.2, max_value=20.0),
    burst=st.integers(min_value=1, max_value=8),
)
def test_no_window_ever_holds_more_than_burst_plus_rate_times_its_length(gaps, per_second, burst):
    buckets = TokenBuckets(Rate(per_second, burst=burst))
    arrivals, now = [], 0.0
    for gap in gaps:
        now += gap
        arrivals.append(now)
    sends = send_times(lambda t: buckets.acquire("c", t), arrivals)
    for i, start in enumerate(sends):
        for j in range(i, len(sends)):
            assert j - i + 1 <= burst + per_second * (sends[j] - start) + 1e-6


def test_channels_queued_behind_their_workspace_each_book_their_own_turn():
    """Ten channels of one workspace asking at once: each is told its own send time, once,
    at the workspace's rate (no one wakes to race for a slot another takes)."""
    pacer = Pacer({Platform.SLACK: PacingPolicy(channel=Rate(1.0, burst=3), workspace=Rate(4.0))})
    chans = [ChannelRef(Platform.SLACK, "T1", f"C{i}") for i in range(10)]
    booked = [pacer.reserve(c, 100.0) for c in chans]
    assert all(ok for _, ok in booked)
    assert [w for w, _ in booked] == pytest.approx([0.25 * i for i in range(10)])
    # Booked slots are taken: a latecomer goes after all of them.
    assert pacer.reserve(ChannelRef(Platform.SLACK, "T1", "CLATE"), 100.0) == (
        pytest.approx(2.5),
        True,
    )


def test_a_channel_held_back_by_its_own_bucket_books_nothing_in_the_workspace():
    pacer = Pacer({Platform.SLACK: SLACK})
    pacer.block(A, 130.0)  # a 429 with Retry-After 30 s
    wait, booked = pacer.reserve(A, 100.0)
    assert (wait, booked) == (pytest.approx(30.0), False)
    # The workspace's slots stay free for the others: B goes now.
    assert pacer.reserve(B, 100.0) == (0.0, True)


@given(st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=40))
def test_booked_turns_keep_the_workspace_rate(picks):
    """Whatever mix of channels books at once, the k-th turn handed out in the workspace is
    no earlier than the bucket allows: `burst` at once, then one per interval."""
    rate = Rate(4.0, burst=2)
    pacer = Pacer({Platform.SLACK: PacingPolicy(channel=Rate(1.0, burst=3), workspace=rate)})
    turns = []
    for p in picks:
        wait, booked = pacer.reserve(ChannelRef(Platform.SLACK, "T1", f"C{p}"), 0.0)
        if booked:
            turns.append(wait)
    assert turns == sorted(turns)
    for k, turn in enumerate(turns):
        assert turn >= (k - (rate.burst - 1)) / rate.per_second - 1e-9


@given(
    now=st.floats(min_value=0.0, max_value=1e6),
    wait=st.floats(min_value=0.0, max_value=100.0),
    grid=st.sampled_from([0.05, 0.1, 0.25, 1.0]),
)
def test_a_wait_on_the_grid_is_never_shorter_and_ends_on_it(now, wait, grid):
    out = on_grid(now, wait, grid)
    if wait == 0.0:
        assert out == 0.0  # go now stays go now
        return
    assert out >= wait
    assert out < wait + grid + 1e-6
    steps = (now + out) / grid
    assert abs(steps - round(steps)) < 1e-6 or out == wait


def test_channels_due_within_one_grid_step_wake_together():
    pacer = Pacer({Platform.DISCORD: DISCORD})
    chans = [ChannelRef(Platform.DISCORD, "G1", f"C{i}") for i in range(30)]
    wakes = {round(100.0 + on_grid(100.0, pacer.reserve(c, 100.0)[0], 0.1), 6) for c in chans}
    # 30 turns booked 22 ms apart (after a burst of 5) wake at 6 instants, not 26.
    assert len(wakes) <= 7


def test_discord_paced_on_the_default_grid_keeps_every_1s_window_within_50_calls():
    """3,000 channels booking one message each as a fan-out hands them on (a few at a time),
    woken on the engine's grid: Discord answers 429 to the 51st call of any 1 s of the bot (its
    global limit). Windows are closed at both ends (a group woken at the far end counts): the
    calls of one wake-up reach Discord spread over a few milliseconds, not at one instant."""
    grid = DeliveryConfig().wake_grid
    pacer = Pacer({Platform.DISCORD: DISCORD})
    rng = random.Random(7)
    now, sends = 0.0, []
    for i in range(3000):
        now += rng.choice([0.0, 0.0, 0.0, 0.001, 0.01])
        wait, _ = pacer.reserve(ChannelRef(Platform.DISCORD, f"G{i % 100}", f"C{i}"), now)
        sends.append(now + on_grid(now, wait, grid))
    sends.sort()
    j = 0
    for i, start in enumerate(sends):
        while j < len(sends) and sends[j] <= start + 1.0 + 1e-9:
            j += 1
        assert j - i <= 50, f"{j - i} calls in the 1 s from {start:.2f} s"
