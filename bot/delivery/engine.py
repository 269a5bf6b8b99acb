"""The delivery engine: the composition of the delivery units, in pipeline order (fan-out ->
outbox -> lanes -> attempt -> sender), and their lifecycle. IO; each unit is a module of
`bot.delivery`, and what to send, when to retry and how fast to go are pure (plan, retry, pacing).

Guarantees and where they are kept:
- fan-out (fanout.py) writes one outbox entry per (alert, channel) at most once and acknowledges
  a transition only after all its entries are written; one replica at a time fans out;
- every entry carries its channel's sequence number; an attempt (attempt.py) sends entry n of a
  channel only once n-1 is done (delivered or dead), under the channel's lease (lease.py), and
  records "done" atomically with the parent message ref before it acknowledges; a lane waiting
  for an earlier entry held by another replica is woken by the channel gate (gate.py);
- an entry is acknowledged only after the chat API accepted it and it is recorded done (in
  batches, bot.delivery.tally: a crash before the batch only redelivers entries found done);
  every consumer refreshes a heartbeat key each `beat`; a consumer whose heartbeat is gone
  (stopped: it drops it once its calls are done; dead: it expires after `beat_ttl`) has its
  pending entries taken over by the outbox reader (reader.py) of another at once and the leases
  it held broken (lease.py); a stalled one's entries after `min_idle`; a redelivered entry whose
  channel is past it is acknowledged without sending.
Within a process each channel is one lane (lane.py), a task handling its entries in order; lanes
run in parallel, at most `workers` chat calls at once per platform.

A call the chat API may have applied whose answer we never saw (kill -9, a lost answer, a call
past the hard `call_timeout`, abandoned) leaves the channel's `sending` marker: the next attempt
checks the channel before sending again (Slack: the delivery key in the message's metadata;
Discord: the nonce). A stop gives calls in flight `stop_grace`, then abandons them.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from bot.chat.ports import ChatSender
from bot.core.catalog import Catalog
from bot.core.model import Platform
from bot.delivery.attempt import Attempt
from bot.delivery.config import DeliveryConfig, ms
from bot.delivery.failure import FailureHandler
from bot.delivery.fanout import FanOut
from bot.delivery.gate import ChannelGate
from bot.delivery.lane import Lanes
from bot.delivery.lease import Leases
from bot.delivery.loop import REDIS_ERRORS, InFlight
from bot.delivery.pacing import Pacer
from bot.delivery.reader import OutboxReader
from bot.delivery.tally import Acks
from bot.ops.metrics import DeliveryMetrics
from bot.store.messages import MessageStore
from bot.store.outbox import OutboxStore, TransitionFeed, deliveries_report
from bot.store.subscriptions import SubscriptionStore
from bot.store.surfaces import SurfaceStore

__all__ = ["Delivery", "DeliveryConfig", "DeliveryMetrics", "deliveries_report"]


class Delivery:
    """Fan-out and workers of one process. Run any number of them (replicas, or several in one
    process) against one Redis: they share the work and never send an (alert, channel) twice.

    senders: one ChatSender per platform. surfaces/subscriptions: the stores of those names.
    clock: wall time for `now` (subscriptions, dead letters, latency); waits use the event loop.
    consumer: this consumer's name in both groups (unique per process; a restart may reuse it).
    """

    def __init__(
        self,
        redis: Redis,
        senders: Mapping[Platform, ChatSender],
        surfaces: SurfaceStore,
        subscriptions: SubscriptionStore,
        catalog: Catalog,
        *,
        config: DeliveryConfig | None = None,
        clock: Callable[[], datetime],
        consumer: str | None = None,
        metrics: DeliveryMetrics | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = cfg = config or DeliveryConfig()
        self.consumer = consumer or f"delivery-{uuid.uuid4().hex[:12]}"
        metrics = metrics or DeliveryMetrics.default()
        senders = dict(senders)
        self._outbox = outbox = OutboxStore(
            redis, marker_ttl_ms=ms(cfg.marker_ttl), ref_ttl_ms=ms(cfg.ref_ttl)
        )
        self._feed = TransitionFeed(redis, list(catalog.providers))
        leases = Leases.of(outbox, self.consumer, cfg.lease_ttl)
        pacer = Pacer(cfg.pacing)
        self._inflight = InFlight()
        self._acks = acks = Acks(
            outbox, every=cfg.ack_every, within=cfg.redis_retry, clock=clock, batch=cfg.ack_batch
        )

        # The pipeline, upstream first (Alertmanager's notify.go MultiStage): each unit has one
        # job and hands its output on; `run` starts the loops.
        self.fanout = FanOut(  # transitions -> one outbox entry per channel that wants each alert
            outbox, self._feed, surfaces, subscriptions, catalog, leases,
            consumer=self.consumer, config=cfg, clock=clock, metrics=metrics,
        )  # fmt: skip
        self.reader = OutboxReader(  # outbox -> the entries this consumer holds
            outbox, consumer=self.consumer, config=cfg, clock=clock
        )
        self.gate = ChannelGate(outbox, config=cfg)  # lanes wait for entries held elsewhere
        self.lanes = Lanes(  # held entries -> one lane per channel, in sequence order
            gate=self.gate,
            worker=Attempt(  # a lane's head entry -> the sender's chat API calls
                senders, outbox, leases, pacer, self._inflight, acks,
                failure=FailureHandler(  # a failed attempt -> wait, repost, or dead letter
                    outbox, MessageStore(redis, ttl_ms=ms(cfg.ref_ttl)), subscriptions,
                    senders, leases, pacer, acks,
                    config=cfg, metrics=metrics, clock=clock, rng=rng or random.Random(),
                ),
                config=cfg, metrics=metrics, clock=clock,
            ),
            config=cfg,
        )  # fmt: skip

    @classmethod
    def on(
        cls,
        redis: Redis,
        senders: Mapping[Platform, ChatSender],
        catalog: Catalog,
        **options: Any,
    ) -> Delivery:
        """A Delivery with stores of its own on `redis` (surfaces; subscriptions knowing the
        catalog's Claude surfaces); `options` as for the constructor (clock is required)."""
        subscriptions = SubscriptionStore(redis, claude_surfaces=catalog.claude_surfaces())
        return cls(redis, senders, SurfaceStore(redis), subscriptions, catalog, **options)

    async def run(self, stop: asyncio.Event) -> None:
        """Fan out and deliver until `stop` is set. Cancelling it is a crash as far as Redis is
        concerned (nothing more is acknowledged), except that chat calls already in flight
        finish and are recorded, so they are not repeated."""
        name = self.consumer
        # A heartbeat before any lease is taken: a lease holder without one counts as dead.
        await self.reader.beat()
        # The loops run until `halt`, set on the way out however `run` ends: a loop whose
        # cancellation is lost in a library call (seen in redis-py's cluster client: a
        # cancelled outbox reader kept reading, and its lanes kept sending) still ends at its
        # next look at the event.
        halt = asyncio.Event()
        loops = [
            asyncio.create_task(self.fanout.run(halt), name=f"{name}:fanout"),
            asyncio.create_task(self.reader.run(halt, into=self.lanes), name=f"{name}:read"),
            asyncio.create_task(self.gate.run(halt), name=f"{name}:gate"),
            asyncio.create_task(self.reader.heartbeat(halt, self.lanes), name=f"{name}:beat"),
            asyncio.create_task(self._acks.run(halt), name=f"{name}:ack"),
        ]
        try:
            await stop.wait()
        finally:
            halt.set()
            for t in loops:
                t.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self.lanes.stop()
            await self._inflight.finish(self.config.stop_grace)
            await self._acks.close()  # what is finished is acknowledged before we leave
            await self.fanout.release()
            await self.reader.leave()  # what is still ours is taken over by others at once

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 (the brief's API)
        """Run until every transition is fanned out and the outbox is empty (tests, demos).
        Raises: TimeoutError when that does not happen within `timeout` seconds."""
        stop = asyncio.Event()
        task = asyncio.create_task(self.run(stop))
        try:
            async with asyncio.timeout(timeout):
                # A Redis condition, shared with other consumers: no event to wait on.
                while not await self.idle():  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
        finally:
            stop.set()
            await task

    async def idle(self) -> bool:
        """Nothing left anywhere: no unread or unacknowledged transition, an empty outbox, and
        nothing held by this consumer."""
        if len(self.lanes) or len(self._inflight):
            return False
        if len(self._acks):  # the work is done: acknowledge now, not at the end of the window
            try:
                await self._acks.flush(within=0.0)  # one try: idle() answers, never waits
            except REDIS_ERRORS:
                return False
        try:
            # Upstream first: fan-out writes a transition's entries before acknowledging it, so
            # once the feed is caught up the outbox read next holds all of them. (Outbox first
            # could read it empty, then see the feed caught up after a fan-out in between.)
            if not await self._feed.caught_up() or await self._outbox.backlog():
                return False
        except REDIS_ERRORS:
            return False
        return not (len(self.lanes) or len(self._inflight) or len(self._acks))
