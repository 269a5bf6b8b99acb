"""What the delivery engine does after a chat API error: pure decisions, seeded randomness."""

from __future__ import annotations

import random

import pytest

from bot.delivery.retry import Outcome, RetryPolicy, Tries, next_step
from bot.errors import DeliveryError, ErrorKind

POLICY = RetryPolicy(max_attempts=5, base=0.5, cap=8.0, max_rate_limited=3, parent_reposts=2)


def limited(seconds: float) -> DeliveryError:
    return DeliveryError("rate_limited", ErrorKind.RATE_LIMITED, retry_after=seconds)


def decide(error: DeliveryError, *, tries: Tries | None = None, seed: int = 1):
    counted = (tries or Tries()).after(error)
    return next_step(error, tries=counted, policy=POLICY, rng=random.Random(seed))


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (DeliveryError("message_not_found", ErrorKind.PARENT_GONE), Outcome.PARENT_GONE),
        (DeliveryError("channel_not_found", ErrorKind.PERMANENT), Outcome.PERMANENT),
        (limited(2.0), Outcome.RETRY_AFTER),
        (DeliveryError("http 500"), Outcome.BACKOFF),
        (DeliveryError("timeout", ErrorKind.TRANSIENT), Outcome.BACKOFF),
    ],
    ids=["deleted-parent", "channel-gone", "429", "5xx", "timeout"],
)
def test_each_kind_of_error_gets_its_own_outcome(error, outcome):
    assert decide(error).outcome is outcome


@pytest.mark.parametrize("asked", [0.05, 2.0, 37.5])
def test_a_429_waits_exactly_what_the_platform_asked(asked):
    assert decide(limited(asked)).delay == asked


def test_rate_limits_do_not_use_up_the_attempts():
    d = decide(limited(1.0), tries=Tries(transient=99))
    assert d.outcome is Outcome.RETRY_AFTER


def test_a_platform_that_rate_limits_forever_ends_in_a_dead_letter():
    d = decide(limited(1.0), tries=Tries(rate_limited=2))
    assert d.outcome is Outcome.GIVE_UP
    assert "3 times rate limited" in d.reason


@pytest.mark.parametrize(
    ("asked", "delay"),
    [(-5.0, 0.0), (float("inf"), 900.0), (float("nan"), 0.5), (10_000.0, 900.0)],
    ids=["negative", "infinite", "nan", "absurd"],
)
def test_a_garbage_retry_after_is_clamped(asked, delay):
    d = decide(limited(asked))
    assert d.outcome is Outcome.RETRY_AFTER
    assert d.delay == delay


def test_it_gives_up_after_max_attempts_with_the_last_error():
    d = decide(DeliveryError("http 503"), tries=Tries(transient=4))
    assert d.outcome is Outcome.GIVE_UP
    assert d.reason == "http 503 (after 5 attempts)"
    assert decide(DeliveryError("http 503"), tries=Tries(transient=3)).outcome is Outcome.BACKOFF


def test_a_permanent_error_is_not_retried_even_on_the_first_attempt():
    d = decide(DeliveryError("not_in_channel", ErrorKind.PERMANENT))
    assert (d.outcome, d.delay) == (Outcome.PERMANENT, 0.0)


def test_a_deleted_parent_is_reposted_at_once_then_with_backoff():
    gone = DeliveryError("message_not_found", ErrorKind.PARENT_GONE)
    assert [decide(gone, tries=Tries(parent_gone=n)).delay for n in (0, 1)] == [0.0, 0.0]
    later = decide(gone, tries=Tries(parent_gone=2))
    assert later.outcome is Outcome.PARENT_GONE and 0.0 < later.delay <= POLICY.base


def test_transient_failures_back_off_within_the_policy_window():
    for n in range(6):
        d = decide(DeliveryError("http 500"), tries=Tries(transient=min(n, 3)))
        assert 0.0 <= d.delay <= POLICY.backoff.window(min(n, 3) + 1)


def test_only_transient_failures_count_as_attempts():
    tries = Tries()
    for error in (
        limited(1.0),
        DeliveryError("message_not_found", ErrorKind.PARENT_GONE),
        DeliveryError("http 500"),
    ):
        tries = tries.after(error)
    assert tries == Tries(transient=1, rate_limited=1, parent_gone=1, last="http 500")


def test_retry_after_belongs_to_rate_limited_errors_only():
    with pytest.raises(ValueError):
        DeliveryError("not_in_channel", ErrorKind.PERMANENT, retry_after=3.0)
    with pytest.raises(ValueError):
        DeliveryError("ratelimited", ErrorKind.RATE_LIMITED)
