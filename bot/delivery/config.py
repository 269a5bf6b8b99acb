"""The delivery engine's numbers (`DeliveryConfig`), read by every unit. Pure: a value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.core.model import Platform
from bot.delivery.pacing import DEFAULT_POLICIES, UNLIMITED, PacingPolicy
from bot.delivery.retry import RetryPolicy


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """The engine's numbers. Seconds unless said otherwise."""

    workers: int = 32  # chat API calls in flight at once per platform (across channels)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    pacing: Mapping[Platform, PacingPolicy] = field(default_factory=lambda: DEFAULT_POLICIES)
    min_idle: float = 60.0  # an entry unacknowledged this long is reclaimed by another consumer
    call_timeout: float = 30.0  # hard bound on one chat API call: past it the call is abandoned,
    # a transient error whose outcome is unknown (the retry checks the channel first)
    stop_grace: float = 10.0  # on stop, calls in flight get this long, then are abandoned
    lease_ttl: float = 5.0  # channel and fan-out leases (renewed while held): a dead holder
    # blocks its channels this long
    beat: float = 1.0  # how often a consumer refreshes its heartbeat and looks for dead ones
    beat_ttl: float = 3.0  # a consumer whose heartbeat is this old is dead: its entries are taken
    batch: int = 200  # entries per stream read
    block: float = 10.0  # how long an idle read waits for new entries (new ones wake it at once)
    max_held: int = 5000  # entries held in memory before reading pauses
    gate_poll_max: float = 5.0  # fallback: longest a lane waits on the watcher before looking
    gate_tick: float = 0.05  # how often the gate watcher reads the waiting channels' progress
    gate_stall: float = 300.0  # waiting this long for an earlier entry: check it still exists
    wake_grid: float = 0.08  # paced turns wake on this grid: Discord at 45/s then puts at most
    # 45 x (1 + grid) = 48.6 calls in any 1 s, under its 50 (bot.delivery.pacing.on_grid)
    ack_every: float = 0.2  # finished entries are acknowledged in one batch this often ...
    ack_batch: int = 500  # ... or as soon as this many wait
    redis_retry: float = 120.0  # keep retrying a bookkeeping write this long after a send
    marker_ttl: float = 14 * 86_400.0  # fanned / queued markers
    ref_ttl: float = 30 * 86_400.0  # parent message refs

    @classmethod
    def from_settings(cls, settings: Any) -> DeliveryConfig:
        """From `bot.settings.Settings` (delivery_workers, delivery_max_attempts,
        delivery_pacing)."""
        off = settings.delivery_pacing == "off"
        return cls(
            workers=settings.delivery_workers,
            retry=RetryPolicy(max_attempts=settings.delivery_max_attempts),
            pacing={p: UNLIMITED for p in Platform} if off else DEFAULT_POLICIES,
        )


def ms(seconds: float) -> int:
    """Seconds as the whole milliseconds Redis takes (at least 1)."""
    return max(1, int(seconds * 1000))
