"""What to do after a chat API call failed: wait exactly `retry_after`, back off with full jitter,
repost a deleted parent, disable the channel, or give up. Pure: time and randomness are arguments.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from bot.errors import DeliveryError

MESSAGE_GONE = "message_gone"


class Outcome(StrEnum):
    RETRY_AFTER = "retry_after"  # the platform said how long to wait (429): wait exactly that
    BACKOFF = "backoff"  # transient (5xx, timeout, connection): exponential backoff, full jitter
    PARENT_GONE = "parent_gone"  # the parent message was deleted: forget it, post a new parent
    PERMANENT = "permanent"  # channel gone / no access / token revoked: disable, dead letter
    GIVE_UP = "give_up"  # out of attempts: dead letter with the last error


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """max_attempts: transient failures tolerated per entry (rate limits do not count: the
    platform told us when to come back). max_rate_limited: a bound on 429s per entry, so a
    platform that answers 429 forever still ends in a dead letter."""

    max_attempts: int = 8
    base: float = 0.5  # seconds: the first backoff window
    cap: float = 60.0  # seconds: no backoff window is longer
    max_rate_limited: int = 100
    max_retry_after: float = 900.0  # a Retry-After beyond this is clamped (a buggy header)


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    delay: float  # seconds to wait before the next attempt (0 unless RETRY_AFTER / BACKOFF)
    reason: str  # the error's reason, for logs and dead letters


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Full jitter (AWS architecture blog): uniform(0, min(cap, base * 2**(attempt-1)))."""
    window = min(policy.cap, policy.base * 2 ** max(0, min(attempt - 1, 62)))
    return rng.uniform(0.0, window)


def classify(
    error: DeliveryError,
    *,
    attempts: int,
    rate_limited: int,
    policy: RetryPolicy,
    rng: random.Random,
) -> Decision:
    """Decide the next step after `error`.

    attempts: transient failures of this entry so far, including this one.
    rate_limited: 429s of this entry so far, including this one when it is a 429.
    Rules, first match wins:
      1. reason `message_gone` -> PARENT_GONE (post a new parent now; not a failure of the channel);
      2. permanent -> PERMANENT;
      3. retry_after set -> RETRY_AFTER with exactly that delay (clamped to [0, max_retry_after]),
         or GIVE_UP after max_rate_limited 429s;
      4. attempts >= max_attempts -> GIVE_UP;
      5. otherwise BACKOFF with a full-jitter delay.
    """
    reason = error.reason
    if reason == MESSAGE_GONE:
        return Decision(Outcome.PARENT_GONE, 0.0, reason)
    if error.permanent:
        return Decision(Outcome.PERMANENT, 0.0, reason)
    if error.retry_after is not None:
        if rate_limited >= policy.max_rate_limited:
            return Decision(Outcome.GIVE_UP, 0.0, f"{reason} ({rate_limited} times rate limited)")
        asked = float(error.retry_after)
        if asked != asked:  # NaN from a garbage header: come back after the first backoff window
            asked = policy.base
        delay = min(max(0.0, asked), policy.max_retry_after)
        return Decision(Outcome.RETRY_AFTER, delay, reason)
    if attempts >= policy.max_attempts:
        return Decision(Outcome.GIVE_UP, 0.0, f"{reason} (after {attempts} attempts)")
    return Decision(Outcome.BACKOFF, backoff_delay(attempts, policy, rng), reason)
