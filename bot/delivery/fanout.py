"""Fan-out: committed transitions -> alerts -> one outbox entry per channel that wants each alert.
IO (the transitions feed, the stores); the choice of channels is the pure
`bot.alerting.subscription` matching.

Guarantees: one entry per (alert, channel) at most once (the `fanned` marker, atomic with the
XADD); a transition is acknowledged only after all its entries are written; one replica at a time
fans out (the fan-out lease), so the outbox keeps transition order.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime

from bot.alerting.alert import alert_id, as_start, build_alerts, for_channel
from bot.alerting.subscription import Skip, skip_reason
from bot.core.catalog import Catalog
from bot.core.model import Alert, ChannelRef, Platform
from bot.delivery.config import DeliveryConfig
from bot.delivery.lease import Leases
from bot.delivery.loop import forever, pause
from bot.ops.metrics import DeliveryMetrics
from bot.store.outbox import FeedItem, OutboxStore, TransitionFeed
from bot.store.subscriptions import SubscriptionStore
from bot.store.surfaces import SurfaceStore

log = logging.getLogger("bot.delivery")

CHUNK = 500  # channels per round trip: the event loop (and `/aistatus`) gets a turn between


class FanOut:
    """Turns every committed transition into outbox entries while this consumer holds the
    fan-out lease. `held`: whether it did at the last look (then it has taken over whatever a
    previous holder read and never acknowledged)."""

    def __init__(
        self,
        outbox: OutboxStore,
        feed: TransitionFeed,
        surfaces: SurfaceStore,
        subscriptions: SubscriptionStore,
        catalog: Catalog,
        leases: Leases,
        *,
        consumer: str,
        config: DeliveryConfig,
        clock: Callable[[], datetime],
        metrics: DeliveryMetrics,
    ) -> None:
        self._outbox = outbox
        self._feed = feed
        self._surfaces = surfaces
        self._subs = subscriptions
        self._catalog = catalog
        self._leases = leases
        self._consumer = consumer
        self._config = config
        self._clock = clock
        self._metrics = metrics
        self._provider_surfaces = {
            p: [s.id for s in catalog.surfaces_of(p)] for p in catalog.providers
        }
        self.held = False

    async def run(self, stop: asyncio.Event) -> None:
        """Fan out until `stop` is set; Redis errors and bugs pause the loop, never end it."""

        def lost(_: Exception) -> None:
            self.held = False  # after an error, take over what was read again before going on

        await forever(stop, "fan-out", lambda: self._step(stop), reset=lost)

    async def release(self) -> None:
        """Give the fan-out lease back, if held (at stop)."""
        await self._feed.close()
        if self.held:
            await self._leases.release_fanout()

    async def _step(self, stop: asyncio.Event) -> None:
        if not await self._leases.take_fanout():
            self.held = False
            await pause(stop, min(self._config.lease_ttl / 3, 1.0))
            return
        if not self.held:
            # Newly the fan-out consumer: first finish whatever a previous holder (or this one,
            # before an error) read and never acknowledged, in stream order.
            await self._feed.ensure_groups()
            await self.fan_out(await self._feed.take_over(self._consumer, count=500))
            self.held = True
        block = min(self._config.block, self._config.lease_ttl / 3)
        items = await self._feed.read(
            self._consumer, count=self._config.batch, block_ms=max(1, int(block * 1000))
        )
        await self.fan_out(items)

    async def fan_out(self, items: Sequence[FeedItem]) -> None:
        """Turn transitions into outbox entries, one commit at a time (consecutive transitions
        of one provider recorded at the same instant), then acknowledge them."""
        for group in _commits(items):
            transitions = [i.transition for i in group if i.transition is not None]
            if transitions:
                states = await self._surfaces.read_all(self._provider_surfaces)
                now = self._clock()
                try:
                    alerts = build_alerts(transitions, states, self._catalog, now=now)
                except Exception:  # a bug on odd data must not stop every later alert
                    log.exception(
                        "fan-out: cannot build alerts of %s (skipped)", [t.id for t in transitions]
                    )
                    alerts = []
                for alert in alerts:
                    await self._fan_out_alert(alert, now)
                    await self._leases.take_fanout()  # a long fan-out keeps its lease
            await self._feed.ack(group)

    async def _fan_out_alert(self, alert: Alert, now: datetime) -> None:
        aid = alert_id(alert)
        subs = await self._subs.candidates(alert.surfaces)
        items: list[tuple[Alert, str, ChannelRef]] = []
        skipped: Counter[Skip] = Counter()
        audience = frozenset(alert.audience)  # empty: everyone
        starts: dict[int, tuple[Alert, Alert]] = {}  # id -> (alert, its start): one per alert

        def start_of(mine: Alert) -> Alert:
            known = starts.get(id(mine))
            if known is None or known[0] is not mine:  # (the tuple keeps `mine`'s id its own)
                known = starts[id(mine)] = (mine, as_start(mine))
            return known[1]

        # CHUNK channels at a time: their threads in one round trip, then their decisions, so
        # the event loop (and `/aistatus`) gets a turn between chunks.
        for start in range(0, len(subs), CHUNK):
            chunk = subs[start : start + CHUNK]
            threads = await self._outbox.threads([(s.channel, alert.key) for s in chunk])
            for sub, has_parent in zip(chunk, threads, strict=True):
                # Narrow first, then ask: a claude.ai-only channel must judge "claude.ai
                # recovered" (a recovery: only with a parent), not the whole outage's "update".
                mine = for_channel(alert, sub.covers(self._catalog))
                if mine is None:  # none of the surfaces that changed is this channel's
                    skipped[Skip.NOT_COVERED] += 1
                    continue
                reason = skip_reason(
                    sub,
                    mine.surfaces,
                    mine.severity,
                    kind=mine.kind,
                    has_parent=has_parent,
                    now=now,
                    catalog=self._catalog,
                    audience=audience,
                )
                if reason is None:
                    # A channel's first message about an outage reads as a start (Truth rules).
                    items.append((mine if has_parent else start_of(mine), aid, sub.channel))
                else:
                    skipped[reason] += 1
        ordered = _interleave(items)
        written: list[str | None] = []
        for start in range(0, len(ordered), CHUNK):  # in order; each entry at most once
            written += await self._outbox.enqueue(ordered[start : start + CHUNK], now=now)
        for reason, n in skipped.items():
            self._metrics.skipped.labels(str(reason)).inc(n)
        log.info(
            "fan-out: %s %s (%s) -> %d channels (%d new entries); skipped: %s",
            alert.kind,
            alert.key,
            aid,
            len(items),
            sum(1 for w in written if w),
            ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items())) or "none",
        )


def _interleave(
    items: Sequence[tuple[Alert, str, ChannelRef]],
) -> list[tuple[Alert, str, ChannelRef]]:
    """Round-robin over (platform, workspace): workers read the outbox in order and hold a
    bounded number of entries, so one big workspace (or platform) first in line must not keep
    every other one waiting behind its rate limits."""
    groups: dict[tuple[Platform, str], list[tuple[Alert, str, ChannelRef]]] = {}
    for item in items:
        channel = item[2]
        groups.setdefault((channel.platform, channel.workspace), []).append(item)
    queues = list(groups.values())
    out: list[tuple[Alert, str, ChannelRef]] = []
    for i in range(max((len(q) for q in queues), default=0)):
        out.extend(q[i] for q in queues if i < len(q))
    return out


def _commits(items: Sequence[FeedItem]) -> list[list[FeedItem]]:
    """Consecutive transitions of one provider recorded at the same instant: one commit."""
    groups: list[list[FeedItem]] = []
    for item in items:
        if groups:
            last = groups[-1][-1]
            same = last.provider == item.provider and (
                last.transition is not None
                and item.transition is not None
                and last.transition.at == item.transition.at
            )
            if same:
                groups[-1].append(item)
                continue
        groups.append([item])
    return groups
