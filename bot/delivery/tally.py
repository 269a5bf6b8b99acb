"""Acknowledgements of finished entries, in batches, and the one INFO line per alert: "start of
7g1qpkyz5gxh: 9,998 channels in 112 s, 2 retried, 0 dead", logged when the last of its entries is
delivered or dead-lettered. IO (the outbox stream and a tally hash in Redis).

An attempt records its entry done in the channel's own slot first (outbox_complete.lua: the
channel's handled seq, which alone makes a redelivery a no-op), then hands the acknowledgement
here; one script call (outbox_ack.lua) `ack_every` seconds after the first of a batch (or at once
when `ack_batch` entries wait) acknowledges every entry finished meanwhile and counts them in
their alerts' tallies: one round trip for many deliveries, not one each (paced deliveries trickle
in at ~90 a second: a 20 ms window made it one round trip per message, measured). A crash in
between loses nothing: the entries are redelivered, `begin` answers "done", and they are
acknowledged then. A stop flushes what is left before the consumer leaves; `Delivery.idle` flushes
as soon as nothing is held or in flight.

Multi-replica rule: the tally lives in Redis (written with each entry by the enqueue script,
counted by every replica's workers), so the summary is written once, by whichever replica
finishes the alert's last entry. Best effort: an entry redelivered after a crash between its
record and its count, or a retried dead letter, is not counted twice into a second line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from functools import partial

from bot.delivery.loop import REDIS_ERRORS, forever, persist
from bot.store.outbox import Entry, Finished, OutboxEntry, OutboxStore, Tally

log = logging.getLogger("bot.delivery")


class Acks:
    """Finished entries waiting for their acknowledgement (`len`: how many)."""

    def __init__(
        self,
        outbox: OutboxStore,
        *,
        every: float,
        within: float,
        clock: Callable[[], datetime],
        batch: int = 500,
    ) -> None:
        self._outbox = outbox
        self._every = every
        self._batch = batch
        self._full = asyncio.Event()  # `batch` entries wait: flush now
        self._within = within
        self._clock = clock
        self._ids: list[str] = []
        self._done: dict[str, Finished] = {}
        self._outages: dict[str, str] = {}  # alert id -> outage id (the summary's log fields)
        self._wake = asyncio.Event()

    def __len__(self) -> int:
        return len(self._ids)

    def add(
        self, entry: Entry, *, count: bool = False, retried: bool = False, dead: bool = False
    ) -> None:
        """Acknowledge `entry` with the next batch; `count`: it is finished (delivered or dead)
        and counts in its alert's tally (an entry found done elsewhere was counted there)."""
        self._ids.append(entry.id)
        if count and isinstance(entry, OutboxEntry):
            before = self._done.get(entry.alert_id, Finished())
            self._done[entry.alert_id] = before.plus(retried=retried, dead=dead)
            self._outages[entry.alert_id] = entry.alert.key
        self._wake.set()
        if len(self._ids) >= self._batch:
            self._full.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: a batch `every` seconds after the first entry of it came, or as soon as
        `batch` entries wait."""

        async def step() -> None:
            await self._wake.wait()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._every):
                    await self._full.wait()
            await self.flush()

        await forever(stop, "delivery: acknowledging", step)

    async def flush(self, *, within: float | None = None) -> None:
        """Acknowledge everything waiting (waiting Redis out for `within` seconds, by default
        the one given at construction); what could not be written stays for the next flush.
        Raises: the Redis error after `within`."""
        if not self._ids and not self._done:
            self._wake.clear()
            return
        ids, done, outages = self._ids, self._done, self._outages
        self._ids, self._done, self._outages = [], {}, {}
        self._wake.clear()
        self._full.clear()
        try:
            tallies = await persist(
                partial(self._outbox.ack, ids, done=done),
                within=self._within if within is None else within,
            )
        except BaseException:  # keep them for the next flush (or the last one, at stop)
            self._ids = ids + self._ids
            for alert_id, f in done.items():
                later = self._done.get(alert_id, Finished())
                self._done[alert_id] = Finished(
                    f.entries + later.entries, f.retried + later.retried, f.dead + later.dead
                )
            self._outages = {**outages, **self._outages}
            self._wake.set()
            raise
        now = self._clock()
        for tally in tallies:
            _summary(tally, outages.get(tally.alert_id, "?"), now)

    async def close(self) -> None:
        """The last flush, at stop (best effort: what is left is redelivered and found done)."""
        with contextlib.suppress(*REDIS_ERRORS):
            await self.flush()


def _summary(tally: Tally, outage: str, now: datetime) -> None:
    took = (now - tally.queued_at).total_seconds() if tally.queued_at else 0.0
    log.info(
        "%s: %s channels in %.0f s, %d retried, %d dead",
        tally.what,
        f"{tally.total:,}",
        max(0.0, took),
        tally.retried,
        tally.dead,
        extra={"outage_id": outage, "alert_id": tally.alert_id},
    )
