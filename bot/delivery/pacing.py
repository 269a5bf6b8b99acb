"""Client-side rate limits: token buckets per channel and per workspace, modelled on the platforms'
published limits, so we rarely meet a 429 at all. Pure: time (monotonic seconds) is an argument.

Each bucket is a GCRA (generic cell rate algorithm, the token bucket written as one timestamp).
`acquire` either takes a slot (returns 0.0: go now) or takes nothing and answers how long until
one is free (sleep that long, then ask again). `reserve` books the caller's turn instead: when the
shared (workspace) bucket is what holds it back, it takes the next free slot of both buckets,
even in the future, and answers when that is (sleep that long, then go without asking again), so
channels queued behind a workspace limit wake one at a time, each at its own turn, instead of all
waking at every free slot to race for it. A 429 `block`s one channel's bucket until the
platform's Retry-After; other channels and the rest of the workspace go on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.core.model import ChannelRef, Platform


@dataclass(frozen=True, slots=True)
class Rate:
    """`per_second` sustained, up to `burst` at once after a quiet period."""

    per_second: float
    burst: int = 1

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError(f"a rate needs per_second > 0 and burst >= 1, got {self}")


@dataclass(frozen=True, slots=True)
class PacingPolicy:
    """Limits of one platform. `workspace` covers a whole Slack workspace, or (Discord) the whole
    bot: Discord's 50 requests/s limit is global per token, so every guild shares one bucket."""

    channel: Rate | None
    workspace: Rate | None
    workspace_is_global: bool = False


# Slack: chat.postMessage allows about 1 message per second per channel with short bursts, and
# workspace-wide a few hundred messages per minute (https://api.slack.com/apis/rate-limits).
# We pace 10% under each limit with small bursts: at exactly the limit, network jitter alone makes
# 429s, and every 429 costs a channel at least a whole Retry-After second (measured: bench/).
SLACK = PacingPolicy(channel=Rate(1.0, burst=3), workspace=Rate(4.5, burst=27))
# Discord: 50 requests/s global per bot; POST /channels/{id}/messages is 5 per 5 s per channel.
# Per-route buckets learned from X-RateLimit-* headers are discord.py's job, not ours.
DISCORD = PacingPolicy(
    channel=Rate(1.0, burst=5), workspace=Rate(45.0, burst=5), workspace_is_global=True
)
# Outgoing webhooks: receivers publish no limits; one POST a second per webhook, small bursts
# (an outage's start, update and recovery rarely come closer), keeps us polite to any of them.
WEBHOOK = PacingPolicy(channel=Rate(1.0, burst=5), workspace=None)
_EPSILON = 1e-9  # float dust from summing intervals is not a wait
UNLIMITED = PacingPolicy(channel=None, workspace=None)
DEFAULT_POLICIES: Mapping[Platform, PacingPolicy] = {
    Platform.SLACK: SLACK,
    Platform.DISCORD: DISCORD,
    Platform.CONSOLE: UNLIMITED,
    Platform.WEBHOOK: WEBHOOK,
}


def on_grid(now: float, wait: float, grid: float) -> float:
    """`wait` rounded up so that it ends on a multiple of `grid` (never sooner, 0.0 stays 0.0):
    channels whose turns fall within one step wake together, so their Redis calls share round
    trips and the event loop wakes once for them, not once each (measured, bench delivery: a
    Discord message paced alone, 22 ms after the last, cost ~1.4 ms of CPU; woken in groups on
    a 0.1 s grid, ~0.9 ms). A call later than booked never breaks a token bucket, but a fixed
    window (Discord's 50 calls per 1 s) can receive up to rate x grid more calls than booked
    for it: keep rate x (1 + grid) under the window's limit (DeliveryConfig.wake_grid)."""
    if wait <= 0.0 or grid <= 0.0:
        return wait
    end = math.ceil((now + wait) / grid) * grid
    return max(wait, end - now)


@dataclass(slots=True)
class TokenBuckets:
    """Buckets of one rate, one per key. `_tat[key]` is the GCRA theoretical arrival time: the
    bucket is full again at `_tat - tolerance`; a key whose time has passed is simply forgotten."""

    rate: Rate
    _tat: dict[str, float] = field(default_factory=dict)

    @property
    def _interval(self) -> float:
        return 1.0 / self.rate.per_second

    @property
    def _tolerance(self) -> float:
        return (self.rate.burst - 1) * self._interval

    def wait(self, key: str, now: float) -> float:
        """Seconds until `key` has a free slot (0.0: now). Takes nothing."""
        wait = self._tat.get(key, now) - self._tolerance - now
        return wait if wait > _EPSILON else 0.0

    def take(self, key: str, now: float) -> None:
        """Use one slot of `key` at `now` (after `wait` said 0.0, or a booked future time that
        `wait` said was free by then)."""
        self._tat[key] = max(self._tat.get(key, now), now) + self._interval

    def acquire(self, key: str, now: float) -> float:
        """Take a slot of `key` and return 0.0, or take nothing and return the seconds until
        one is free."""
        wait = self.wait(key, now)
        if wait == 0.0:
            self.take(key, now)
        return wait

    def block(self, key: str, until: float) -> None:
        """No slot for `key` before `until` (a 429's Retry-After), and no burst right after it."""
        self._tat[key] = max(self._tat.get(key, until), until + self._tolerance)

    def prune(self, now: float) -> None:
        """Forget buckets that are full again (bounded memory with many channels)."""
        for key in [k for k, tat in self._tat.items() if tat - self._tolerance <= now]:
            del self._tat[key]

    def __len__(self) -> int:
        return len(self._tat)


class Pacer:
    """Per-channel and per-workspace buckets for every platform."""

    def __init__(self, policies: Mapping[Platform, PacingPolicy] = DEFAULT_POLICIES) -> None:
        self._policies = dict(policies)
        self._channels: dict[Platform, TokenBuckets] = {}
        self._workspaces: dict[Platform, TokenBuckets] = {}
        for platform, policy in self._policies.items():
            if policy.channel is not None:
                self._channels[platform] = TokenBuckets(policy.channel)
            if policy.workspace is not None:
                self._workspaces[platform] = TokenBuckets(policy.workspace)

    def _workspace_key(self, channel: ChannelRef) -> str:
        policy = self._policies.get(channel.platform)
        if policy is not None and policy.workspace_is_global:
            return str(channel.platform)
        return f"{channel.platform}:{channel.workspace}"

    def acquire(self, channel: ChannelRef, now: float) -> float:
        """Take one API call in `channel` from both its channel and workspace buckets and return
        0.0 (go now), or take nothing and return the seconds until both have room (sleep, then
        ask again). Taking nothing while waiting is what keeps a blocked channel from holding
        workspace slots the other channels could use."""
        own = self._channels.get(channel.platform)
        shared = self._workspaces.get(channel.platform)
        wkey = self._workspace_key(channel)
        wait = max(
            own.wait(channel.key, now) if own is not None else 0.0,
            shared.wait(wkey, now) if shared is not None else 0.0,
        )
        if wait == 0.0:
            if own is not None:
                own.take(channel.key, now)
            if shared is not None:
                shared.take(wkey, now)
        return wait

    def reserve(self, channel: ChannelRef, now: float) -> tuple[float, bool]:
        """Book one API call in `channel`. Returns (seconds from `now`, booked):
        - (0.0, True): a slot of both buckets is taken, go now (what `acquire` does);
        - (d, True): the workspace bucket is the later of the two: its next free slot, `d`
          seconds away, is taken in both buckets; sleep `d`, then go without asking again;
        - (d, False): the channel's own bucket is later (a 429 blocks it, or it just sent):
          nothing is taken (a blocked channel must not hold the workspace's slots); ask again
          in `d` seconds.
        """
        own = self._channels.get(channel.platform)
        shared = self._workspaces.get(channel.platform)
        wkey = self._workspace_key(channel)
        own_wait = own.wait(channel.key, now) if own is not None else 0.0
        shared_wait = shared.wait(wkey, now) if shared is not None else 0.0
        if own_wait > shared_wait:
            return own_wait, False
        at = now + shared_wait
        if own is not None:
            own.take(channel.key, at)
        if shared is not None:
            shared.take(wkey, at)
        return shared_wait, True

    def block(self, channel: ChannelRef, until: float) -> None:
        """The platform answered 429 for `channel`: nothing more there before `until`. Only this
        channel waits; the rest of the pool goes on."""
        buckets = self._channels.get(channel.platform)
        if buckets is None:
            buckets = self._channels[channel.platform] = TokenBuckets(Rate(1000.0, burst=1000))
        buckets.block(channel.key, until)

    def prune(self, now: float) -> None:
        """Forget full buckets."""
        for buckets in (*self._channels.values(), *self._workspaces.values()):
            buckets.prune(now)
