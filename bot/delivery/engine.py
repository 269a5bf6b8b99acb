"""The delivery engine: transitions -> fan-out -> outbox -> per-channel workers -> chat APIs, each
(alert, channel) delivered once and every channel's alerts in order. IO, kept thin: what to send
for one entry is the pure `plan_delivery`, waits come from `bot.delivery.pacing`, and what to do
after an error from `bot.delivery.retry`.

Guarantees and how they are kept:
- fan-out writes one outbox entry per (alert, channel) at most once (`fanned` marker, atomic with
  the XADD) and acknowledges a transition only after all its entries are written; one replica at
  a time fans out (a lease), so the outbox keeps transition order;
- every outbox entry carries its channel's sequence number; a worker sends entry n of a channel
  only once n-1 is done (delivered or dead), under the channel's lease, and records "done"
  atomically with the `delivered` marker and the parent message ref before it acknowledges;
- an entry is acknowledged only after the chat API accepted it; a consumer that died leaves its
  entries pending and another one XAUTOCLAIMs them after `min_idle` (live consumers heartbeat
  the entries they hold, so only a dead one's are taken); a redelivered entry whose marker is
  set is acknowledged without sending.
Within a process each channel is one lane (a task handling its entries in order); lanes run in
parallel, at most `workers` chat calls at once. A lane waiting for an earlier entry held by
another replica is woken by one gate watcher that reads all waiting channels' progress per tick.

The one window left is a call the chat API applied whose answer we never saw: a crash (kill -9)
after it, or a timeout. That message can be sent twice. A cancelled worker finishes its in-flight
call first, so a stop or cancel never causes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import partial
from typing import Any, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from redis.asyncio import Redis
from redis.exceptions import BusyLoadingError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.alerting.alert import alert_id, build_alerts, for_channel
from bot.alerting.subscription import Subscription, wants
from bot.chat.ports import ChatSender
from bot.core.catalog import Catalog
from bot.core.model import Alert, AlertKind, ChannelRef, MessageRef, Platform
from bot.delivery.pacing import DEFAULT_POLICIES, Pacer, PacingPolicy
from bot.delivery.retry import Outcome, RetryPolicy, classify
from bot.errors import DeliveryError
from bot.store import keys
from bot.store.messages import MessageStore
from bot.store.outbox import (
    BadEntry,
    Begin,
    DeliveryReport,
    FeedItem,
    OutboxEntry,
    OutboxStore,
    TransitionFeed,
)
from bot.store.outbox import deliveries_report as _report
from bot.store.subscriptions import SubscriptionStore
from bot.store.surfaces import SurfaceStore

log = logging.getLogger(__name__)

T = TypeVar("T")

# Redis being away (restart, failover, loading its AOF): wait and try again, never crash.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, ConnectionError)


# -- the pure decision ----------------------------------------------------------------------------


class Step(StrEnum):
    POST = "post"  # a new parent message
    EDIT = "edit"  # the parent, to the newest queued state of the outage
    REPLY = "reply"  # this alert under the parent


# An alert of these kinds under an existing parent is broadcast to the channel too (Slack:
# reply_broadcast): the end of an outage, or the same outage opening again.
BROADCAST_KINDS = frozenset(
    {AlertKind.RECOVERY, AlertKind.SUSPECTED_WITHDRAWN, AlertKind.START, AlertKind.SUSPECTED}
)


@dataclass(frozen=True, slots=True)
class Plan:
    """What to send for one outbox entry; `reason` travels into logs."""

    steps: tuple[Step, ...]
    broadcast: bool
    reason: str


def plan_delivery(
    kind: AlertKind, *, has_parent: bool, parent_current: bool, delivered: bool
) -> Plan:
    """The calls that deliver one alert to one channel.

    Rules, first match wins:
    1. already delivered (a redelivery after a crash) -> nothing;
    2. no parent message for the outage in the channel -> POST a new parent (an update or
       recovery for a channel without a parent becomes the parent: nothing is lost);
    3. a parent -> EDIT it to the newest queued state, unless it already shows that state
       (coalescing: several queued updates edit once), then REPLY this alert under it,
       broadcast for endings and re-openings.
    Only the last step is not idempotent (POST or REPLY): a retry repeats edits, never a post.
    """
    if delivered:
        return Plan((), False, "already delivered")
    if not has_parent:
        return Plan((Step.POST,), False, "new parent")
    steps = (Step.REPLY,) if parent_current else (Step.EDIT, Step.REPLY)
    reason = "reply, parent current" if parent_current else "edit parent, reply"
    return Plan(steps, kind in BROADCAST_KINDS, reason)


# -- configuration and metrics --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """The engine's numbers. Seconds unless said otherwise."""

    workers: int = 32  # chat API calls in flight at once per platform (across channels)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    pacing: Mapping[Platform, PacingPolicy] = field(default_factory=lambda: DEFAULT_POLICIES)
    min_idle: float = 60.0  # an entry unacknowledged this long is reclaimed by another consumer
    call_timeout: float = 30.0  # bound on one chat API call (a hung sender is a transient error)
    lease_ttl: float = 30.0  # channel and fan-out leases (renewed while held): a dead holder
    # blocks its channels this long
    batch: int = 200  # entries per stream read
    block: float = 1.0  # how long a read waits for new entries
    max_held: int = 5000  # entries held in memory before reading pauses
    gate_poll_max: float = 5.0  # fallback: longest a lane waits on the watcher before looking
    gate_tick: float = 0.05  # how often the gate watcher reads the waiting channels' progress
    gate_stall: float = 300.0  # waiting this long for an earlier entry: check it still exists
    redis_retry: float = 120.0  # keep retrying a bookkeeping write this long after a send
    marker_ttl: float = 14 * 86_400.0  # fanned / queued / delivered markers
    ref_ttl: float = 30 * 86_400.0  # parent message refs

    @classmethod
    def from_settings(cls, settings: Any) -> DeliveryConfig:
        """From `bot.settings.Settings` (delivery_workers, delivery_max_attempts)."""
        return cls(
            workers=settings.delivery_workers,
            retry=RetryPolicy(max_attempts=settings.delivery_max_attempts),
        )


@dataclass(frozen=True, slots=True)
class DeliveryMetrics:
    """Prometheus collectors of delivery. `create(registry)` for tests; `default()` is the
    process-wide set on the global registry (created once)."""

    delivered: Counter
    retried: Counter
    dead: Counter
    latency: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> DeliveryMetrics:
        reg = registry if registry is not None else REGISTRY
        return cls(
            delivered=Counter(
                "aistatus_deliveries_total",
                "Alerts a chat API accepted, by platform and first step (post, edit, reply).",
                ["platform", "step"],
                registry=reg,
            ),
            retried=Counter(
                "aistatus_delivery_retries_total",
                "Failed chat API attempts that will be retried, by platform and outcome "
                "(retry_after, backoff, parent_gone).",
                ["platform", "outcome"],
                registry=reg,
            ),
            dead=Counter(
                "aistatus_delivery_dead_total",
                "Deliveries given up and dead-lettered, by platform and outcome.",
                ["platform", "outcome"],
                registry=reg,
            ),
            latency=Histogram(
                "aistatus_delivery_latency_seconds",
                "From fan-out (entry queued) to the chat API accepting it.",
                ["platform"],
                buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
                registry=reg,
            ),
        )

    @classmethod
    def default(cls) -> DeliveryMetrics:
        global _DEFAULT_METRICS
        if _DEFAULT_METRICS is None:
            _DEFAULT_METRICS = cls.create(REGISTRY)
        return _DEFAULT_METRICS


_DEFAULT_METRICS: DeliveryMetrics | None = None


async def deliveries_report(redis: Redis, *, dead_limit: int = 20) -> DeliveryReport:
    """Pending, retrying and dead deliveries with their last error (`aistatus deliveries`)."""
    return await _report(redis, dead_limit=dead_limit)


# -- the engine -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Next:
    """What a lane does after one look at its head entry.

    done: the entry is finished (acknowledged): take it off the lane.
    gate: the handled seq the channel must reach first (an earlier entry is elsewhere).
    busy: another consumer holds the channel's lease.
    sleep: seconds to wait before looking again (backoff, pacing), outside any worker slot.
    """

    done: bool = False
    gate: int | None = None
    busy: bool = False
    sleep: float = 0.0


_DONE = _Next(done=True)
_AGAIN = _Next()


@dataclass(eq=False)
class _Lane:
    """One channel's entries held by this consumer, ordered by sequence number, handled one at a
    time by one task. `shows` remembers which alert each parent message shows (coalescing)."""

    channel: ChannelRef
    heap: list[tuple[int, str, OutboxEntry | BadEntry]] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    shows: dict[str, str] = field(default_factory=dict)
    gone: str | None = None  # the channel is gone (permanent error): dead-letter the rest
    attempts: dict[str, int] = field(default_factory=dict)
    rate_limited: dict[str, int] = field(default_factory=dict)
    parent_gone: dict[str, int] = field(default_factory=dict)

    def push(self, seq: int, entry: OutboxEntry | BadEntry) -> None:
        heapq.heappush(self.heap, (seq, entry.id, entry))
        self.ids.add(entry.id)
        self.wake.set()

    def remove(self, entry_id: str) -> None:
        self.heap = [item for item in self.heap if item[1] != entry_id]
        heapq.heapify(self.heap)
        self.ids.discard(entry_id)
        self.attempts.pop(entry_id, None)
        self.rate_limited.pop(entry_id, None)
        self.parent_gone.pop(entry_id, None)


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
        self.config = config or DeliveryConfig()
        self.consumer = consumer or f"delivery-{uuid.uuid4().hex[:12]}"
        self._redis = redis
        self._senders = dict(senders)
        self._surfaces = surfaces
        self._subs = subscriptions
        self._catalog = catalog
        self._clock = clock
        self._metrics = metrics or DeliveryMetrics.default()
        self._rng = rng or random.Random()
        self._store = OutboxStore(
            redis,
            marker_ttl_ms=_ms(self.config.marker_ttl),
            ref_ttl_ms=_ms(self.config.ref_ttl),
        )
        self._messages = MessageStore(redis, ttl_ms=_ms(self.config.ref_ttl))
        self._feed = TransitionFeed(redis, list(catalog.providers))
        self._provider_surfaces = {
            p: [s.id for s in catalog.surfaces_of(p)] for p in catalog.providers
        }
        self._pacer = Pacer(self.config.pacing)
        # Calls in flight, per platform: discord.py waits out short 429s inside a call, and a
        # Discord backlog holding every slot would starve Slack (measured: bench delivery).
        self._slots = {p: asyncio.Semaphore(self.config.workers) for p in Platform}
        self._lanes: dict[str, _Lane] = {}
        self._held = 0
        self._room = asyncio.Event()  # set while fewer than max_held entries are held
        self._room.set()
        self._inflight: set[asyncio.Task[Any]] = set()
        self._waiting: dict[str, tuple[_Lane, int]] = {}  # channel -> (lane, seq it waits for)
        self._token = f"{self.consumer}:{uuid.uuid4().hex[:8]}"
        self._fanout_held = False
        self._lease_ms = _ms(self.config.lease_ttl)

    # -- lifecycle --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Fan out and deliver until `stop` is set. Cancelling it is a crash as far as Redis is
        concerned (nothing more is acknowledged), except that chat calls already in flight
        finish and are recorded, so they are not repeated."""
        loops = [
            asyncio.create_task(self._fanout_loop(stop), name=f"{self.consumer}:fanout"),
            asyncio.create_task(self._read_loop(stop), name=f"{self.consumer}:read"),
            asyncio.create_task(self._gate_loop(stop), name=f"{self.consumer}:gate"),
            asyncio.create_task(self._heartbeat_loop(stop), name=f"{self.consumer}:heartbeat"),
        ]
        try:
            await stop.wait()
        finally:
            for t in loops:
                t.cancel()
            for lane in list(self._lanes.values()):
                if lane.task is not None:
                    lane.task.cancel()
            tasks = [*loops, *(lane.task for lane in self._lanes.values() if lane.task)]
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._inflight:
                await asyncio.wait(set(self._inflight), timeout=self.config.call_timeout * 3)
            self._lanes.clear()
            self._waiting.clear()
            self._held = 0
            self._room.set()
            with contextlib.suppress(*REDIS_DOWN, ResponseError):
                if self._fanout_held:
                    await self._store.release_lease(keys.fanout_lease(), self._token)

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
        if self._held or self._inflight:
            return False
        try:
            # Upstream first: fan-out writes a transition's entries before acknowledging it, so
            # once the feed is caught up the outbox read next holds all of them. (Outbox first
            # could read it empty, then see the feed caught up after a fan-out in between.)
            for provider in self._feed.providers:
                if not await self._caught_up(keys.transitions(provider), "fanout"):
                    return False
            if await self._store.backlog():
                return False
        except (*REDIS_DOWN, ResponseError):
            return False
        return not (self._held or self._inflight)

    async def _caught_up(self, stream: str, group: str) -> bool:
        if not await self._redis.exists(stream):
            return True
        info = await self._redis.xinfo_stream(stream)
        last = _text(info.get("last-generated-id", b"0-0"))
        for g in await self._redis.xinfo_groups(stream):
            if _text(g.get("name", b"")) == group:
                return (
                    int(g.get("pending", 0)) == 0
                    and _text(g.get("last-delivered-id", b"0-0")) == last
                )
        return int(info.get("length", 0)) == 0

    # -- fan-out ----------------------------------------------------------------------------------

    async def _fanout_loop(self, stop: asyncio.Event) -> None:
        pause = 0.05
        while not stop.is_set():
            try:
                if not await self._store.take_lease(
                    keys.fanout_lease(), self._token, self._lease_ms
                ):
                    self._fanout_held = False
                    await _wait(stop, min(self.config.lease_ttl / 3, 1.0))
                    continue
                if not self._fanout_held:
                    # Newly the fan-out consumer: first finish whatever a previous holder (or
                    # this one, before an error) read and never acknowledged, in stream order.
                    await self._feed.ensure_groups()
                    await self._fan_out(await self._feed.take_over(self.consumer, count=500))
                    self._fanout_held = True
                items = await self._feed.read(
                    self.consumer,
                    count=self.config.batch,
                    block_ms=max(1, int(min(self.config.block, self.config.lease_ttl / 3) * 1000)),
                )
                await self._fan_out(items)
                pause = 0.05
            except asyncio.CancelledError:
                raise
            except ResponseError as e:
                self._fanout_held = False
                if "NOGROUP" not in str(e):
                    log.warning("fan-out: redis error (will retry): %s", e)
                await _wait(stop, pause)
                pause = min(pause * 2, 2.0)
            except REDIS_DOWN as e:
                self._fanout_held = False
                log.warning("fan-out: redis unavailable (will retry in %.2fs): %s", pause, e)
                await _wait(stop, pause)
                pause = min(pause * 2, 2.0)
            except Exception:  # a bug: log it and keep the loop alive
                self._fanout_held = False
                log.exception("fan-out: unexpected error (will retry in %.2fs)", pause)
                await _wait(stop, pause)
                pause = min(pause * 2, 30.0)

    async def _fan_out(self, items: Sequence[FeedItem]) -> None:
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
                    await self._store.take_lease(keys.fanout_lease(), self._token, self._lease_ms)
            await self._feed.ack(group)

    async def _fan_out_alert(self, alert: Alert, now: datetime) -> None:
        aid = alert_id(alert)
        subs = await self._subs.candidates(alert.surfaces)
        threads = await self._store.threads([(s.channel, alert.key) for s in subs])
        items: list[tuple[Alert, str, ChannelRef]] = []
        for sub, has_parent in zip(subs, threads, strict=True):
            if alert.audience and f"{sub.channel.platform}:{sub.channel.workspace}" not in set(
                alert.audience
            ):
                continue  # a crowd suspicion scoped to the workspaces that reported it
            # Narrow first, then ask: a claude.ai-only channel must judge "claude.ai recovered"
            # (a recovery: only with a parent), not the whole outage's "update".
            mine = for_channel(alert, sub.covers(self._catalog))
            if mine is not None and wants(
                sub,
                mine.surfaces,
                mine.severity,
                kind=mine.kind,
                has_parent=has_parent,
                now=now,
                catalog=self._catalog,
            ):
                items.append((mine, aid, sub.channel))
        written = await self._store.enqueue(_interleave(items), now=now)
        log.info(
            "fan-out: %s %s (%s) -> %d channels (%d new entries)",
            alert.kind,
            alert.key,
            aid,
            len(items),
            sum(1 for w in written if w),
        )

    # -- workers: reading and dispatching ---------------------------------------------------------

    async def _read_loop(self, stop: asyncio.Event) -> None:
        pause = 0.05
        started = False
        cursor = "0-0"
        loop = asyncio.get_running_loop()
        next_reclaim = 0.0
        min_idle_ms = max(1, int(self.config.min_idle * 1000))
        while not stop.is_set():
            try:
                if not started:
                    await self._store.ensure_group()
                    self._dispatch(await self._store.own_pending(self.consumer, count=10_000))
                    started = True
                if not self._room.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.config.block):
                            await self._room.wait()
                    continue
                if loop.time() >= next_reclaim:
                    cursor, claimed = await self._store.reclaim(
                        self.consumer,
                        min_idle_ms=min_idle_ms,
                        start=cursor,
                        count=self.config.batch,
                    )
                    self._dispatch(claimed)
                    if cursor == "0-0":
                        next_reclaim = loop.time() + self.config.min_idle / 2
                entries = await self._store.read(
                    self.consumer,
                    count=self.config.batch,
                    block_ms=max(1, int(min(self.config.block, self.config.min_idle / 2) * 1000)),
                )
                self._dispatch(entries)
                pause = 0.05
            except asyncio.CancelledError:
                raise
            except ResponseError as e:
                if "NOGROUP" in str(e):
                    started = False
                else:
                    log.warning("delivery: redis error while reading (will retry): %s", e)
                await _wait(stop, pause)
                pause = min(pause * 2, 2.0)
            except REDIS_DOWN as e:
                log.warning("delivery: redis unavailable (will retry in %.2fs): %s", pause, e)
                await _wait(stop, pause)
                pause = min(pause * 2, 2.0)
            except Exception:  # a bug: log it and keep the loop alive
                log.exception("delivery: unexpected error while reading (will retry)")
                await _wait(stop, pause)
                pause = min(pause * 2, 30.0)

    async def _gate_loop(self, stop: asyncio.Event) -> None:
        """Wake lanes whose channel's earlier entry got done elsewhere: one pipelined read of
        the waiting channels' progress per tick, instead of every lane polling."""
        while not stop.is_set():
            await _wait(stop, self.config.gate_tick)
            waiting = list(self._waiting.values())
            if not waiting:
                continue
            try:
                handled = await self._store.handled_seqs([lane.channel for lane, _ in waiting])
            except (*REDIS_DOWN, ResponseError):
                continue
            for (lane, needed), seq in zip(waiting, handled, strict=True):
                if seq >= needed:
                    lane.wake.set()

    async def _heartbeat_loop(self, stop: asyncio.Event) -> None:
        """Keep the entries this consumer holds (waiting for their turn, or backing off) from
        looking idle, so other consumers reclaim only the entries of a consumer that died."""
        while not stop.is_set():
            await _wait(stop, self.config.min_idle / 4)
            self._pacer.prune(asyncio.get_running_loop().time())
            held = [entry_id for lane in list(self._lanes.values()) for entry_id in lane.ids]
            if not held:
                continue
            try:
                await self._store.touch(self.consumer, held)
            except (*REDIS_DOWN, ResponseError) as e:
                log.debug("delivery: heartbeat failed (will retry): %s", e)

    def _dispatch(self, entries: Sequence[OutboxEntry | BadEntry]) -> None:
        for entry in entries:
            channel = entry.channel
            seq = entry.seq
            if channel is None or seq is None:
                self._spawn_inflight(self._bury_orphan(entry))
                continue
            lane = self._lanes.get(channel.key)
            if lane is None:
                lane = self._lanes[channel.key] = _Lane(channel)
            if entry.id in lane.ids:
                continue
            lane.push(seq, entry)
            self._held += 1
            if lane.task is None or lane.task.done():
                lane.task = asyncio.create_task(self._lane_loop(lane), name=f"lane:{channel.key}")
        if self._held >= self.config.max_held:
            self._room.clear()

    def _spawn_inflight(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return task

    async def _bury_orphan(self, entry: OutboxEntry | BadEntry) -> None:
        """An entry naming no readable channel: dead letter, acknowledge."""
        error = entry.error if isinstance(entry, BadEntry) else "no channel"
        log.error("delivery: dead-lettering undecodable outbox entry %s: %s", entry.id, error)
        await self._persist(
            lambda: self._store.dead_letter(entry, error=error, attempts=0, now=self._clock())
        )
        await self._persist(lambda: self._store.ack([entry.id]))

    # -- workers: one channel ---------------------------------------------------------------------

    async def _lane_loop(self, lane: _Lane) -> None:
        backoff = 0.1  # after redis errors and busy leases; reset by progress
        gate_wait = 0.1
        gate_since: float | None = None
        loop = asyncio.get_running_loop()
        while lane.heap:
            seq, entry_id, entry = lane.heap[0]
            lane.wake.clear()
            try:
                async with self._slots[lane.channel.platform]:
                    step = await self._handle(lane, seq, entry)
            except asyncio.CancelledError:
                raise
            except REDIS_DOWN as e:
                log.warning(
                    "delivery: redis unavailable for %s (will retry): %s", lane.channel.key, e
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            except Exception:  # a bug must not kill the lane: log, pause, retry
                log.exception(
                    "delivery: unexpected error on %s entry %s", lane.channel.key, entry_id
                )
                await asyncio.sleep(1.0)
                continue
            if step.done:
                lane.remove(entry_id)
                self._held -= 1
                if self._held < self.config.max_held:
                    self._room.set()
                backoff, gate_wait, gate_since = 0.1, 0.1, None
                continue
            if step.sleep > 0:
                await asyncio.sleep(step.sleep)
                continue
            if step.busy:
                await self._wait_wake(lane, backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            if step.gate is None:
                continue
            # An earlier entry of this channel is not done yet (held by another consumer, or
            # pending under a dead one until it is reclaimed): wait for it, or for it to arrive.
            now = loop.time()
            gate_since = gate_since if gate_since is not None else now
            if now - gate_since >= self.config.gate_stall and not await self._store_earlier(
                lane.channel, seq
            ):
                log.warning(
                    "delivery: %s waited %.0fs for entries before #%d that no longer exist; "
                    "going on",
                    lane.channel.key,
                    now - gate_since,
                    seq,
                )
                await self._persist(
                    partial(self._store.complete, lane.channel, seq - 1, alert_id=None)
                )
                continue
            # The gate watcher wakes the lane as soon as the channel moves on (one pipelined
            # read for all waiting lanes); the timeout is only a fallback.
            self._waiting[lane.channel.key] = (lane, seq - 1)
            try:
                await self._wait_wake(lane, gate_wait)
            finally:
                self._waiting.pop(lane.channel.key, None)
            gate_wait = min(gate_wait * 2, self.config.gate_poll_max)
        if self._lanes.get(lane.channel.key) is lane and not lane.heap:
            del self._lanes[lane.channel.key]

    @staticmethod
    async def _wait_wake(lane: _Lane, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await lane.wake.wait()

    async def _store_earlier(self, channel: ChannelRef, seq: int) -> bool:
        """Is any entry of `channel` numbered below `seq` still in the outbox?"""
        start = "-"
        for _ in range(1000):
            batch = await self._redis.xrange(keys.outbox(), min=start, max="+", count=500)
            if not batch:
                return False
            for _, raw in batch:
                f = {_text(k): _text(v) for k, v in raw.items()}
                if f.get("c") == channel.key and f.get("n", "").isdigit() and int(f["n"]) < seq:
                    return True
            start = "(" + _text(batch[-1][0])
        return True

    async def _handle(self, lane: _Lane, seq: int, entry: OutboxEntry | BadEntry) -> _Next:
        """One look at the lane's head, inside a worker slot."""
        channel = lane.channel
        begin = await self._store.begin(entry, seq, self._token, self._lease_ms)
        if begin.verdict == "done":  # done elsewhere (another consumer, or before a crash)
            await self._store.ack([entry.id])
            return _DONE
        if begin.verdict == "wait":
            return _Next(gate=begin.handled)
        if begin.verdict != "go":  # busy: another consumer is sending to this channel
            return _Next(busy=True)
        # From here this consumer holds the channel's lease: give it back on every way out.
        try:
            if isinstance(entry, BadEntry):
                await self._give_up(lane, entry, seq, entry.error, Outcome.GIVE_UP)
                return _DONE
            if lane.gone is not None:
                reason = f"channel disabled: {lane.gone}"
                await self._give_up(lane, entry, seq, reason, Outcome.PERMANENT)
                return _DONE
            sender = self._senders.get(channel.platform)
            if sender is None:
                reason = f"no sender for {channel.platform}"
                await self._give_up(lane, entry, seq, reason, Outcome.GIVE_UP)
                return _DONE
            wait = self._pacer.acquire(channel, asyncio.get_running_loop().time())
            if wait > 0:  # rate limited (our buckets or a 429): wait without the lease
                await self._release(channel)
                return _Next(sleep=wait)
        except BaseException:
            await asyncio.shield(self._release(channel))
            raise
        # Shielded: a cancelled worker still finishes (and records) a call already made.
        task = self._spawn_inflight(self._attempt(lane, entry, sender, begin))
        error = await asyncio.shield(task)
        if error is None:
            return _DONE
        return await self._after_error(lane, entry, seq, error)

    async def _attempt(
        self, lane: _Lane, entry: OutboxEntry, sender: ChatSender, begin: Begin
    ) -> DeliveryError | None:
        """Holding the channel's lease: send, record (releasing the lease), acknowledge.
        Returns the chat error (nothing recorded, the lease still held) or None (done)."""
        channel = entry.channel
        key = entry.alert.key
        newest = self._newest(lane, entry)
        parent = begin.parent
        plan = plan_delivery(
            entry.alert.kind,
            has_parent=parent is not None,
            parent_current=parent is not None and lane.shows.get(key) == newest.alert_id,
            delivered=begin.delivered,
        )
        renewer = asyncio.create_task(self._renew(channel))  # a slow call keeps the lease
        try:
            ref, first = await self._send(lane, entry, sender, plan, parent, newest)
        except DeliveryError as e:
            return e
        except Exception as e:  # a sender bug: log it, retry like a transient error
            log.exception("delivery: sender %s failed unexpectedly", type(sender).__name__)
            return DeliveryError(f"sender error: {type(e).__name__}")
        finally:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)
        await self._persist(
            partial(
                self._store.complete,
                channel,
                entry.seq,
                alert_id=entry.alert_id,
                outage=key,
                ref=ref,
                lease_token=self._token,
            )
        )
        await self._persist(partial(self._store.ack, [entry.id]))
        platform = str(channel.platform)
        if first is not None:
            self._metrics.delivered.labels(platform, str(first)).inc()
            if entry.queued_at is not None:
                latency = (self._clock() - entry.queued_at).total_seconds()
                self._metrics.latency.labels(platform).observe(max(0.0, latency))
        log.info(
            "delivered %s %s to %s (%s)", entry.alert.kind, entry.alert_id, channel.key, plan.reason
        )
        return None

    async def _renew(self, channel: ChannelRef) -> None:
        lease = keys.channel_lease(channel.key)
        while True:
            await asyncio.sleep(self.config.lease_ttl / 3)
            with contextlib.suppress(*REDIS_DOWN, ResponseError):
                await self._store.take_lease(lease, self._token, self._lease_ms)

    async def _release(self, channel: ChannelRef) -> None:
        with contextlib.suppress(*REDIS_DOWN, ResponseError):
            await self._store.release_lease(keys.channel_lease(channel.key), self._token)

    async def _send(
        self,
        lane: _Lane,
        entry: OutboxEntry,
        sender: ChatSender,
        plan: Plan,
        parent: MessageRef | None,
        newest: OutboxEntry,
    ) -> tuple[MessageRef | None, Step | None]:
        """Make the plan's calls. Returns (the parent ref to store, or None to keep it; the
        first step made). Raises: DeliveryError from the sender (a hung call: "timeout")."""
        key = entry.alert.key
        ref: MessageRef | None = None
        for step in plan.steps:
            if step is Step.POST:
                ref = await self._call(sender.post(entry.channel, entry.alert))
                lane.shows[key] = entry.alert_id
            elif step is Step.EDIT:
                assert parent is not None
                await self._call(sender.edit(parent, newest.alert))
                lane.shows[key] = newest.alert_id
            else:
                assert parent is not None
                threaded = await self._call(
                    sender.reply(parent, entry.alert, broadcast=plan.broadcast)
                )
                if threaded != parent and threaded.channel == parent.channel:
                    ref = threaded
        return ref, plan.steps[0] if plan.steps else None

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self.config.call_timeout):
                return await call
        except TimeoutError:
            raise DeliveryError("timeout") from None

    def _newest(self, lane: _Lane, entry: OutboxEntry) -> OutboxEntry:
        """The latest queued entry of the same outage in this lane (coalescing the edit)."""
        newest = entry
        for seq, _, other in lane.heap:
            if (
                isinstance(other, OutboxEntry)
                and other.alert.key == entry.alert.key
                and seq > newest.seq
            ):
                newest = other
        return newest

    async def _after_error(
        self, lane: _Lane, entry: OutboxEntry, seq: int, error: DeliveryError
    ) -> _Next:
        """Decide (bot.delivery.retry) and record what follows a failed attempt; the lease is still
        held on entry and given back here."""
        platform = str(entry.channel.platform)
        eid = entry.id
        rate_limited = lane.rate_limited.get(eid, 0) + (1 if error.retry_after is not None else 0)
        transient = not error.permanent and error.retry_after is None
        attempts = lane.attempts.get(eid, 0) + (
            1 if transient and error.reason != "message_gone" else 0
        )
        lane.rate_limited[eid] = rate_limited
        lane.attempts[eid] = attempts
        decision = classify(
            error,
            attempts=attempts,
            rate_limited=rate_limited,
            policy=self.config.retry,
            rng=self._rng,
        )
        if decision.outcome in (Outcome.PERMANENT, Outcome.GIVE_UP):
            await self._give_up(lane, entry, seq, decision.reason, decision.outcome)
            return _DONE
        await self._release(entry.channel)
        if decision.outcome is Outcome.PARENT_GONE:
            gone = lane.parent_gone[eid] = lane.parent_gone.get(eid, 0) + 1
            log.info(
                "delivery: parent of %s in %s was deleted; posting a new one",
                entry.alert.key,
                entry.channel.key,
            )
            await self._messages.drop(entry.channel, entry.alert.key)
            lane.shows.pop(entry.alert.key, None)
            self._metrics.retried.labels(platform, str(decision.outcome)).inc()
            if gone > 3:  # the platform keeps saying so for a fresh parent: back off
                return _Next(sleep=self._rng.uniform(0, self.config.retry.base * gone))
            return _AGAIN
        self._metrics.retried.labels(platform, str(decision.outcome)).inc()
        await self._persist(
            lambda: self._store.note_retry(
                eid, entry.channel, entry.alert_id, attempts, decision.reason
            )
        )
        loop = asyncio.get_running_loop()
        if decision.outcome is Outcome.RETRY_AFTER:
            # Only this channel waits, exactly as long as asked; the pacer holds it.
            self._pacer.block(entry.channel, loop.time() + decision.delay)
            log.info(
                "delivery: %s rate limited, retrying after %.2fs", entry.channel.key, decision.delay
            )
            return _AGAIN
        log.info(
            "delivery: %s failed (%s), attempt %d, retrying in %.2fs",
            entry.channel.key,
            decision.reason,
            attempts,
            decision.delay,
        )
        return _Next(sleep=decision.delay)

    async def _give_up(
        self,
        lane: _Lane,
        entry: OutboxEntry | BadEntry,
        seq: int,
        reason: str,
        outcome: Outcome,
    ) -> None:
        """Dead-letter the entry (disabling the channel on a permanent error), move the
        channel's order past it, acknowledge."""
        channel = lane.channel
        now = self._clock()
        attempts = lane.attempts.get(entry.id, 0)
        if outcome is Outcome.PERMANENT and lane.gone is None:
            lane.gone = reason
            log.warning(
                "delivery: %s refused permanently (%s): disabling its subscription",
                channel.key,
                reason,
            )
            before = await self._persist(lambda: self._subs.get(channel))
            await self._persist(lambda: self._subs.disable(channel, reason, now))
            if before is not None and before.disabled_reason is None:  # not on a redelivery
                await self._tell_subscriber(before, reason)
        else:
            log.warning("delivery: giving up on %s to %s: %s", entry.id, channel.key, reason)
        await self._persist(
            lambda: self._store.dead_letter(entry, error=reason, attempts=attempts, now=now)
        )
        await self._persist(
            partial(self._store.complete, channel, seq, alert_id=None, lease_token=self._token)
        )
        await self._persist(lambda: self._store.ack([entry.id]))
        self._metrics.dead.labels(str(channel.platform), str(outcome)).inc()

    async def _tell_subscriber(self, sub: Subscription, reason: str) -> None:
        """Where possible, tell whoever subscribed the channel that its alerts stopped, and why.
        Best effort and never retried: a dead token cannot send a direct message either."""
        sender = self._senders.get(sub.channel.platform)
        if sender is None or not sub.created_by or reason in TOKEN_DEAD:
            return
        text = (
            f"aistatus stopped posting alerts to <#{sub.channel.channel}>: the chat platform "
            f"answered `{reason}`. Add the bot to that channel again, or run `/aistatus "
            "subscribe` in a channel it can post to."
        )
        try:
            async with asyncio.timeout(self.config.call_timeout):
                await sender.notify_user(sub.channel.workspace, sub.created_by, text)
        except (DeliveryError, TimeoutError) as e:
            log.info("delivery: could not tell the subscriber of %s: %s", sub.channel.key, e)

    async def _persist(self, write: Callable[[], Awaitable[T]]) -> T:
        """Run a bookkeeping write, retrying while Redis is away (for `redis_retry` seconds):
        after a chat API accepted a message, giving up here would send it again."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.redis_retry
        pause = 0.05
        while True:
            try:
                return await write()
            except REDIS_DOWN:
                if loop.time() >= deadline:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)


# Reasons that mean our token itself is dead: no direct message can go out with it either.
TOKEN_DEAD = frozenset(
    {
        "token_revoked",
        "account_inactive",
        "invalid_auth",
        "not_authed",
        "not_installed",
        "unauthorized",
    }
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


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
