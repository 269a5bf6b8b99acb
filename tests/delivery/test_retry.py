"""What the delivery engine does after a chat API error: pure decisions, seeded randomness."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.delivery.retry import Outcome, RetryPolicy, backoff_delay, classify
from bot.errors import DeliveryError

POLICY = RetryPolicy(max_attempts=5, base=0.5, cap=8.0, max_rate_limited=3)


def decide(error: DeliveryError, *, attempts: int = 1, rate_limited: int = 0, seed: int = 1):
    return classify(
        error, attempts=attempts, rate_limited=rate_limited, policy=POLICY, rng=random.Random(seed)
    )


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (DeliveryError("message_gone"), Outcome.PARENT_GONE),
        (DeliveryError("channel_not_found", permanent=True), Outcome.PERMANENT),
        (DeliveryError("rate_limited", retry_after=2.0), Outcome.RETRY_AFTER),
        (DeliveryError("http 500"), Outcome.BACKOFF),
        (DeliveryError("timeout"), Outcome.BACKOFF),
    ],
    ids=["deleted-parent", "channel-gone", "429", "5xx", "timeout"],
)
def test_each_kind_of_error_gets_its_own_outcome(error, outcome):
    assert decide(error, rate_limited=1).outcome is outcome


@pytest.mark.parametrize("asked", [0.05, 2.0, 37.5])
def test_a_429_waits_exactly_what_the_platform_asked(asked):
    d = decide(DeliveryError("rate_limited", retry_after=asked), rate_limited=1)
    assert d.delay == asked


def test_rate_limits_do_not_use_up_the_attempts():
    d = decide(DeliveryError("rate_limited", retry_after=1.0), attempts=99, rate_limited=1)
    assert d.outcome is Outcome.RETRY_AFTER


def test_a_platform_that_rate_limits_forever_ends_in_a_dead_letter():
    d = decide(DeliveryError("rate_limited", retry_after=1.0), rate_limited=3)
    assert d.outcome is Outcome.GIVE_UP
    assert "3 times rate limited" in d.reason


@pytest.mark.parametrize(
    ("asked", "delay"),
    [(-5.0, 0.0), (float("inf"), 900.0), (float("nan"), 0.5), (10_000.0, 900.0)],
    ids=["negative", "infinite", "nan", "absurd"],
)
def test_a_garbage_retry_after_is_clamped(asked, delay):
    d = decide(DeliveryError("rate_limited", retry_after=asked), rate_limited=1)
    assert d.outcome is Outcome.RETRY_AFTER
    assert d.delay == delay


def test_it_gives_up_after_max_attempts_with_the_last_error():
    d = decide(DeliveryError("http 503"), attempts=5)
    assert d.outcome is Outcome.GIVE_UP
    assert d.reason == "http 503 (after 5 attempts)"
    assert decide(DeliveryError("http 503"), attempts=4).outcome is Outcome.BACKOFF


def test_a_permanent_error_is_not_retried_even_on_the_first_attempt():
    d = decide(DeliveryError("not_in_channel", permanent=True, retry_after=3.0), attempts=1)
    assert d.outcome is Outcome.PERMANENT


def test_backoff_is_full_jitter_within_a_doubling_window_capped():
    rng = random.Random(7)
    for attempt, window in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0)]:
        delays = [backoff_delay(attempt, POLICY, rng) for _ in range(300)]
        assert all(0.0 <= d <= window for d in delays)
        assert max(delays) > window * 0.9  # the whole window is used ...
        assert min(delays) < window * 0.1  # ... from zero up: full jitter, not equal jitter


def test_the_same_seed_gives_the_same_delays():
    a = [backoff_delay(n, POLICY, random.Random(42)) for n in range(1, 6)]
    b = [backoff_delay(n, POLICY, random.Random(42)) for n in range(1, 6)]
    assert a == b


@given(attempt=st.integers(min_value=-3, max_value=10_000), seed=st.integers())
def test_backoff_never_leaves_zero_to_cap_for_any_attempt(attempt, seed):
    assert 0.0 <= backoff_delay(attempt, POLICY, random.Random(seed)) <= POLICY.cap
