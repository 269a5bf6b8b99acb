"""Backoff for every retry loop in bot/: waits that double up to a cap (full jitter when given
randomness), and the rule for logging retries (Alertmanager's retry_stage.go). Pure: randomness is
an argument, and nothing here sleeps or reads a clock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits that double from `base` up to `cap` seconds: base, 2 base, 4 base, ..., cap."""

    base: float
    cap: float

    def window(self, attempt: int) -> float:
        """The wait after failure number `attempt` (1: the first failure)."""
        return min(self.cap, self.base * 2 ** max(0, min(attempt - 1, 62)))

    def jittered(self, attempt: int, rng: random.Random) -> float:
        """Full jitter (AWS architecture blog): uniform(0, window(attempt)), so retries of many
        callers that failed together spread out instead of arriving together again."""
        return rng.uniform(0.0, self.window(attempt))


@dataclass(slots=True)
class Streak:
    """The consecutive failures of one retry loop. A persisting problem is logged when it starts
    and when its error changes, never once per attempt; its end is logged once.

    failures: consecutive failures so far; last: the previous failure's error (None after a
    success), compared with the next one.
    """

    failures: int = 0
    last: str | None = None

    def failed(self, error: str) -> bool:
        """Count a failure. True when it should be logged: its error differs from the previous
        attempt's."""
        self.failures += 1
        changed = error != self.last
        self.last = error
        return changed

    def succeeded(self) -> int:
        """End the streak. Returns the failures before this success (0: the first try worked)."""
        failures = self.failures
        self.failures, self.last = 0, None
        return failures
