"""Lanes: the entries this consumer holds, one lane per channel, each worked by one task in
sequence order; lanes run in parallel, at most `workers` chat calls at once per platform. IO
(tasks and waits); what one look at a lane's head does is the `Worker`'s (bot.delivery.attempt).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.backoff import Backoff, Streak
from bot.core.model import ChannelRef, Platform
from bot.delivery.config import DeliveryConfig
from bot.delivery.loop import failure_pause, recovered
from bot.delivery.retry import Tries
from bot.store.outbox import Entry, OutboxEntry

BUSY_BACKOFF = Backoff(0.1, 2.0)  # another consumer holds the channel's lease: look again


@dataclass(frozen=True, slots=True)
class Next:
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


DONE = Next(done=True)
AGAIN = Next()


@dataclass(eq=False)
class Lane:
    """One channel's entries held by this consumer, ordered by sequence number, handled one at a
    time by one task.

    shows: which alert each parent message shows (coalescing: several queued updates edit once).
    ended: the outages whose parent message shows their end (a settled flap's end adds nothing).
    gone: set when the channel refused permanently: the rest of its entries are dead-lettered.
    tries: the failed attempts of each entry (bot.delivery.retry.Tries), dropped when it is done.
    gate_since / gate_looks: since when, and how many times, the head has waited for an earlier
    entry held elsewhere (bot.delivery.gate); reset by progress.
    booked: the pacer has booked a slot for the lane's next call (bot.delivery.pacing
    `Pacer.reserve`); the call that uses it clears it.
    """

    channel: ChannelRef
    heap: list[tuple[int, str, Entry]] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    shows: dict[str, str] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)
    gone: str | None = None
    tries: dict[str, Tries] = field(default_factory=dict)
    gate_since: float | None = None
    gate_looks: int = 0
    booked: bool = False

    def show(self, key: str, alert_id: str, *, ends: bool) -> None:
        """The parent of outage `key` now shows alert `alert_id` (an ending when `ends`)."""
        self.shows[key] = alert_id
        if ends:
            self.ended.add(key)
        else:
            self.ended.discard(key)

    def forget(self, key: str) -> None:
        """The parent of outage `key` is gone: nothing is known to be shown."""
        self.shows.pop(key, None)
        self.ended.discard(key)

    def push(self, seq: int, entry: Entry) -> None:
        heapq.heappush(self.heap, (seq, entry.id, entry))
        self.ids.add(entry.id)
        self.wake.set()

    def remove(self, entry_id: str) -> None:
        self.heap = [item for item in self.heap if item[1] != entry_id]
        heapq.heapify(self.heap)
        self.ids.discard(entry_id)
        self.tries.pop(entry_id, None)
        self.gate_since = None
        self.gate_looks = 0

    def newest(self, entry: OutboxEntry) -> OutboxEntry:
        """The latest queued entry of the same outage in this lane (coalescing the edit)."""
        newest = entry
        for seq, _, other in self.heap:
            if (
                isinstance(other, OutboxEntry)
                and other.alert.key == entry.alert.key
                and seq > newest.seq
            ):
                newest = other
        return newest

    async def woken(self, seconds: float) -> None:
        """Wait until something wakes the lane (a new entry, the gate), at most `seconds`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.wake.wait()


class Worker(Protocol):
    """One look at a lane's head entry (bot.delivery.attempt.Attempt)."""

    async def handle(self, lane: Lane, seq: int, entry: Entry) -> Next: ...


class Gate(Protocol):
    """Where a head entry waits for an earlier one held elsewhere (bot.delivery.gate)."""

    async def wait_turn(self, lane: Lane, seq: int) -> None: ...


class Lanes:
    """Held entries -> one lane per channel. `room` is set while fewer than `max_held` entries
    are held (the outbox reader waits on it)."""

    def __init__(self, *, gate: Gate, worker: Worker, config: DeliveryConfig) -> None:
        self._gate = gate
        self._worker = worker
        self._config = config
        # Calls in flight, per platform: discord.py waits out short 429s inside a call, and a
        # Discord backlog holding every slot would starve Slack (measured: bench delivery).
        self._slots = {p: asyncio.Semaphore(config.workers) for p in Platform}
        self._lanes: dict[str, Lane] = {}
        self._held = 0
        self._failing = Streak()  # every lane's: one log line while Redis is away, not one each
        self.room = asyncio.Event()
        self.room.set()

    def __len__(self) -> int:
        """Entries held."""
        return self._held

    def held_ids(self) -> list[str]:
        return [entry_id for lane in list(self._lanes.values()) for entry_id in lane.ids]

    def hold(self, entries: Sequence[Entry]) -> None:
        """Put entries (each with a channel and a sequence number) on their channels' lanes,
        starting a lane's task when it has none. Entries held already are skipped."""
        for entry in entries:
            channel, seq = entry.channel, entry.seq
            assert channel is not None and seq is not None, "the reader keeps orphans out"
            lane = self._lanes.get(channel.key)
            if lane is None:
                lane = self._lanes[channel.key] = Lane(channel)
            if entry.id in lane.ids:
                continue
            lane.push(seq, entry)
            self._held += 1
            if lane.task is None or lane.task.done():
                lane.task = asyncio.create_task(self._work(lane), name=f"lane:{channel.key}")
        if self._held >= self._config.max_held:
            self.room.clear()

    async def stop(self) -> None:
        """Cancel every lane's task, wait for them, and forget what they held."""
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._lanes.clear()
        self._held = 0
        self.room.set()

    async def _work(self, lane: Lane) -> None:
        """The lane's task: its head entry until the lane is empty."""
        key = lane.channel.key
        streak = Streak()  # Redis errors and bugs; reset by any look that worked
        busy = 0
        while lane.heap:
            seq, entry_id, entry = lane.heap[0]
            lane.wake.clear()
            try:
                async with self._slots[lane.channel.platform]:
                    step = await self._worker.handle(lane, seq, entry)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # Redis away, or a bug: neither may kill the lane
                pause = failure_pause(streak, f"delivery to {key}", e, shared=self._failing)
                await asyncio.sleep(pause)
                continue
            if streak.failures:
                recovered(streak, f"delivery to {key}", shared=self._failing)
            if step.done:
                lane.remove(entry_id)
                self._held -= 1
                if self._held < self._config.max_held:
                    self.room.set()
                busy = 0
            elif step.sleep > 0:
                await asyncio.sleep(step.sleep)
            elif step.busy:
                busy += 1
                await lane.woken(BUSY_BACKOFF.window(busy))
            elif step.gate is not None:
                await self._gate.wait_turn(lane, seq)
        if self._lanes.get(key) is lane and not lane.heap:
            del self._lanes[key]
