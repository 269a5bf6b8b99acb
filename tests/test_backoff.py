"""The one backoff helper of every retry loop (bot.backoff): doubling windows, full jitter, and
the rule that logs a retry only when its error changes. Pure."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from bot.backoff import Backoff, Streak

BACKOFF = Backoff(0.5, 8.0)


def test_windows_double_up_to_the_cap():
    assert [BACKOFF.window(n) for n in (1, 2, 3, 4, 5, 9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]


def test_backoff_is_full_jitter_within_a_doubling_window_capped():
    rng = random.Random(7)
    for attempt, window in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0)]:
        delays = [BACKOFF.jittered(attempt, rng) for _ in range(300)]
        assert all(0.0 <= d <= window for d in delays)
        assert max(delays) > window * 0.9  # the whole window is used ...
        assert min(delays) < window * 0.1  # ... from zero up: full jitter, not equal jitter


def test_the_same_seed_gives_the_same_delays():
    a = [BACKOFF.jittered(n, random.Random(42)) for n in range(1, 6)]
    b = [BACKOFF.jittered(n, random.Random(42)) for n in range(1, 6)]
    assert a == b


@given(attempt=st.integers(min_value=-3, max_value=10_000), seed=st.integers())
def test_backoff_never_leaves_zero_to_cap_for_any_attempt(attempt, seed):
    assert 0.0 <= BACKOFF.jittered(attempt, random.Random(seed)) <= BACKOFF.cap
    assert BACKOFF.base <= BACKOFF.window(attempt) <= BACKOFF.cap


def test_a_persisting_error_is_logged_once_and_each_change_again():
    streak = Streak()
    logged = [streak.failed(e) for e in ["refused", "refused", "refused", "timeout", "refused"]]
    assert logged == [True, False, False, True, True]
    assert streak.failures == 5


def test_a_success_ends_the_streak_and_says_how_long_it_was():
    streak = Streak()
    assert streak.succeeded() == 0  # the first try worked
    streak.failed("refused")
    streak.failed("refused")
    assert streak.succeeded() == 2
    assert streak.failed("refused") is True  # a new streak starts by being logged
