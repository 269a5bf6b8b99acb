"""The outbox reader: outbox stream -> the entries this consumer holds. Its own pending entries
after a restart, new entries, and the entries of consumers whose heartbeat is gone (stopped or
dead), taken over within seconds; a stalled consumer's are reclaimed after `min_idle`. IO.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from bot.delivery.config import DeliveryConfig, ms
from bot.delivery.lease import holder
from bot.delivery.loop import REDIS_ERRORS, forever, is_no_group, pause, persist
from bot.store import keys
from bot.store.outbox import BadEntry, Entry, OutboxStore

log = logging.getLogger("bot.delivery")


class Holder(Protocol):
    """Where read entries go (bot.delivery.lane.Lanes); `room` is set while it takes more."""

    room: asyncio.Event

    def hold(self, entries: Sequence[Entry]) -> None: ...

    def held_ids(self) -> list[str]: ...


class OutboxReader:
    """Reads the `workers` group for `consumer` and hands entries on; reading pauses while the
    holder has no room. Entries naming no readable channel are dead-lettered here: they belong
    to no lane."""

    def __init__(
        self,
        outbox: OutboxStore,
        *,
        consumer: str,
        config: DeliveryConfig,
        clock: Callable[[], datetime],
    ) -> None:
        self._outbox = outbox
        self._consumer = consumer
        self._config = config
        self._clock = clock
        self._started = False  # the group exists and this consumer's own pending entries are in
        self._cursor = "0-0"  # where the reclaim scan goes on
        self._next_reclaim = 0.0  # loop time of the next reclaim scan from the start

    async def run(self, stop: asyncio.Event, into: Holder) -> None:
        """Read into `into` until `stop` is set; Redis errors and bugs pause, never end it."""

        def regroup(error: Exception) -> None:
            if is_no_group(error):  # the stream was deleted under us: create the group again
                self._started = False

        await forever(stop, "delivery: reading", lambda: self._step(into), reset=regroup)

    async def heartbeat(self, stop: asyncio.Event, into: Holder) -> None:
        """Until `stop`, every `beat`: refresh this consumer's heartbeat and take over the
        entries of consumers without one; every quarter of `min_idle`, touch the entries `into`
        holds (waiting for their turn, or backing off) so they never look idle."""
        config = self._config
        loop = asyncio.get_running_loop()
        next_touch = loop.time() + config.min_idle / 4
        while not stop.is_set():
            try:
                await self._outbox.beat(self._consumer, ms(config.beat_ttl))
                if self._started and into.room.is_set():
                    await self._take_over(into)
                if loop.time() >= next_touch:  # (listing 5,000 held ids costs ~1 ms)
                    held = into.held_ids()
                    if held:
                        await self._outbox.touch(self._consumer, held)
                    next_touch = loop.time() + config.min_idle / 4
            except REDIS_ERRORS as e:
                log.debug("delivery: heartbeat failed (will retry): %s", e)
            await pause(stop, config.beat)

    async def beat(self) -> None:
        """Refresh this consumer's heartbeat once (best effort: the heartbeat loop goes on)."""
        with contextlib.suppress(*REDIS_ERRORS):
            await self._outbox.beat(self._consumer, ms(self._config.beat_ttl))

    async def leave(self) -> None:
        """Drop this consumer's heartbeat (at stop, once nothing is in flight): the others take
        over its unsent entries at once instead of after `min_idle`."""
        with contextlib.suppress(*REDIS_ERRORS):
            await self._outbox.leave(self._consumer)

    async def _take_over(self, into: Holder) -> None:
        """Every entry of each consumer without a heartbeat, batch after batch while `into` has
        room (one batch a beat held a stopped replica's thousands of entries for seconds)."""
        config = self._config
        for dead in await self._outbox.orphans(self._consumer):
            taken = 0
            for _ in range(config.max_held // config.batch + 1):  # bounded by what `into` holds
                if not into.room.is_set():
                    break
                entries = await self._outbox.take_over(dead, self._consumer, count=config.batch)
                if not entries:
                    break
                taken += len(entries)
                # A dead holder's channel leases would hold its channels until they lapse.
                lanes = {keys.channel_lease(e.channel.key) for e in entries if e.channel}
                await self._outbox.break_leases(sorted(lanes), holder(dead))
                await self._hand_on(into, entries)
            if taken:
                log.info(
                    "delivery: took over %d entries of %s (its heartbeat is gone)", taken, dead
                )

    async def _step(self, into: Holder) -> None:
        config = self._config
        if not self._started:
            await self._outbox.ensure_group()
            await self._hand_on(into, await self._outbox.own_pending(self._consumer, count=10_000))
            self._started = True
        if not into.room.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(config.block):
                    await into.room.wait()
            return
        now = asyncio.get_running_loop().time()
        if now >= self._next_reclaim:
            self._cursor, claimed = await self._outbox.reclaim(
                self._consumer,
                min_idle_ms=max(1, int(config.min_idle * 1000)),
                start=self._cursor,
                count=config.batch,
            )
            await self._hand_on(into, claimed)
            if self._cursor == "0-0":
                self._next_reclaim = now + config.min_idle / 2
        block = min(config.block, config.min_idle / 2)
        entries = await self._outbox.read(
            self._consumer, count=config.batch, block_ms=max(1, int(block * 1000))
        )
        await self._hand_on(into, entries)

    async def _hand_on(self, into: Holder, entries: Sequence[Entry]) -> None:
        placed = [e for e in entries if e.channel is not None and e.seq is not None]
        into.hold(placed)
        for entry in entries:
            if entry.channel is None or entry.seq is None:
                await self._bury(entry)

    async def _bury(self, entry: Entry) -> None:
        """An entry naming no readable channel: dead letter, acknowledge."""
        error = entry.error if isinstance(entry, BadEntry) else "no channel"
        log.error("delivery: dead-lettering undecodable outbox entry %s: %s", entry.id, error)
        within = self._config.redis_retry
        now = self._clock()
        await persist(
            lambda: self._outbox.dead_letter(entry, error=error, attempts=0, now=now),
            within=within,
        )
        await persist(lambda: self._outbox.ack([entry.id]), within=within)
