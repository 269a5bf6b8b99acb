"""The outbox reader: outbox stream -> the entries this consumer holds. Its own pending entries
after a restart, new entries, and the entries of a dead consumer reclaimed after `min_idle`; a
heartbeat keeps held entries from looking idle, so only a dead consumer's are taken. IO.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from bot.delivery.config import DeliveryConfig
from bot.delivery.loop import REDIS_ERRORS, forever, is_no_group, pause, persist
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
        """Until `stop`: touch the entries `into` holds (waiting for their turn, or backing off)
        every quarter of `min_idle`."""
        while not stop.is_set():
            await pause(stop, self._config.min_idle / 4)
            held = into.held_ids()
            if not held:
                continue
            try:
                await self._outbox.touch(self._consumer, held)
            except REDIS_ERRORS as e:
                log.debug("delivery: heartbeat failed (will retry): %s", e)

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
