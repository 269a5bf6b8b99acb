"""What to do after a chat API call failed: wait exactly `retry_after`, back off with full jitter,
repost a deleted parent, disable the channel, or give up. Pure: time and randomness are arguments.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from enum import StrEnum

from bot.backoff import Backoff
from bot.errors import DeliveryError, ErrorKind


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
    platform that answers 429 forever still ends in a dead letter. parent_reposts: deleted
    parents reposted at once before reposting backs off too."""

    max_attempts: int = 8
    base: float = 0.5  # seconds: the first backoff window
    cap: float = 60.0  # seconds: no backoff window is longer
    max_rate_limited: int = 100
    max_retry_after: float = 900.0  # a Retry-After beyond this is clamped (a buggy header)
    parent_reposts: int = 3

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.base, self.cap)


@dataclass(frozen=True, slots=True)
class Tries:
    """One entry's failed attempts so far, by kind. Only transient failures use up attempts.

    last: the reason of the latest failure; a retry is logged only when its reason changes.
    """

    transient: int = 0
    rate_limited: int = 0
    parent_gone: int = 0
    last: str | None = None

    def after(self, error: DeliveryError) -> Tries:
        """These tries with `error` counted."""
        return replace(
            self,
            transient=self.transient + (error.kind is ErrorKind.TRANSIENT),
            rate_limited=self.rate_limited + (error.kind is ErrorKind.RATE_LIMITED),
            parent_gone=self.parent_gone + (error.kind is ErrorKind.PARENT_GONE),
            last=error.reason,
        )


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    delay: float  # seconds to wait before the next attempt (0 when the next may go at once)
    reason: str  # the error's reason, for logs and dead letters


def next_step(
    error: DeliveryError, *, tries: Tries, policy: RetryPolicy, rng: random.Random
) -> Decision:
    """Decide the next step after `error`; `tries` counts it already (`Tries.after`).

    Rules, by the error's kind:
      1. PARENT_GONE -> PARENT_GONE: post a new parent now (not a failure of the channel); after
         `parent_reposts` of them for one entry, with a full-jitter delay;
      2. PERMANENT -> PERMANENT;
      3. RATE_LIMITED -> RETRY_AFTER with exactly `retry_after` (clamped to
         [0, max_retry_after]), or GIVE_UP after max_rate_limited 429s;
      4. TRANSIENT -> GIVE_UP after max_attempts, else BACKOFF with a full-jitter delay.
    """
    reason = error.reason
    if error.kind is ErrorKind.PARENT_GONE:
        over = tries.parent_gone - policy.parent_reposts  # the platform keeps saying so: back off
        delay = policy.backoff.jittered(over, rng) if over > 0 else 0.0
        return Decision(Outcome.PARENT_GONE, delay, reason)
    if error.kind is ErrorKind.PERMANENT:
        return Decision(Outcome.PERMANENT, 0.0, reason)
    if error.kind is ErrorKind.RATE_LIMITED:
        if tries.rate_limited >= policy.max_rate_limited:
            return Decision(
                Outcome.GIVE_UP, 0.0, f"{reason} ({tries.rate_limited} times rate limited)"
            )
        asked = float(error.retry_after or 0.0)
        if asked != asked:  # NaN from a garbage header: come back after the first backoff window
            asked = policy.base
        delay = min(max(0.0, asked), policy.max_retry_after)
        return Decision(Outcome.RETRY_AFTER, delay, reason)
    if tries.transient >= policy.max_attempts:
        return Decision(Outcome.GIVE_UP, 0.0, f"{reason} (after {tries.transient} attempts)")
    return Decision(Outcome.BACKOFF, policy.backoff.jittered(tries.transient, rng), reason)
