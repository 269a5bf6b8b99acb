"""The channel gate: per-channel order across consumers. A lane whose head entry is not next in
its channel waits here until the channel's handled sequence number reaches it; one watcher reads
every waiting channel's progress per tick (one pipelined read) instead of every lane polling. IO.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from bot.backoff import Backoff
from bot.delivery.config import DeliveryConfig
from bot.delivery.lane import Lane
from bot.delivery.loop import REDIS_ERRORS, pause, persist
from bot.store.outbox import OutboxStore

log = logging.getLogger("bot.delivery")


class ChannelGate:
    """An earlier entry of the channel is held by another consumer, or pending under a dead one
    until it is reclaimed: wait for it. `_waiting`: channel key -> (lane, the handled seq it
    needs), read by the watcher."""

    def __init__(self, outbox: OutboxStore, *, config: DeliveryConfig) -> None:
        self._outbox = outbox
        self._config = config
        self._looks = Backoff(0.1, config.gate_poll_max)  # the fallback: look without a wake
        self._waiting: dict[str, tuple[Lane, int]] = {}
        self._someone = asyncio.Event()  # set while `_waiting` is not empty

    async def run(self, stop: asyncio.Event) -> None:
        """The watcher: wake lanes whose channel's earlier entry got done elsewhere. It sleeps
        while no lane waits (idle costs nothing), and reads every `gate_tick` while some do."""
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                if not self._waiting:
                    self._someone.clear()
                    someone = asyncio.ensure_future(self._someone.wait())
                    try:
                        await asyncio.wait({someone, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        someone.cancel()
                    continue
                await pause(stop, self._config.gate_tick)
                await self._look()
        finally:
            stopping.cancel()

    async def _look(self) -> None:
        """One pipelined read of the waiting channels' progress; wake those whose turn came."""
        waiting = list(self._waiting.values())
        if waiting:
            try:
                handled = await self._outbox.handled_seqs([lane.channel for lane, _ in waiting])
            except REDIS_ERRORS:
                return  # the lanes' own fallback looks go on meanwhile
            for (lane, needed), seq in zip(waiting, handled, strict=True):
                if seq >= needed:
                    lane.wake.set()

    async def wait_turn(self, lane: Lane, seq: int) -> None:
        """Wait until entry `seq - 1` of the lane's channel may be done (woken by the watcher,
        or after a fallback timeout that grows with each look). After `gate_stall` seconds of
        waiting, entries that no longer exist (a flushed stream) stop holding the channel."""
        channel = lane.channel
        now = asyncio.get_running_loop().time()
        lane.gate_since = lane.gate_since if lane.gate_since is not None else now
        waited = now - lane.gate_since
        if waited >= self._config.gate_stall and not await self._outbox.has_earlier(channel, seq):
            log.warning(
                "delivery: %s waited %.0fs for entries before #%d that no longer exist; going on",
                channel.key,
                waited,
                seq,
            )
            await persist(
                partial(self._outbox.complete, channel, seq - 1),
                within=self._config.redis_retry,
            )
            return
        lane.gate_looks += 1
        self._waiting[channel.key] = (lane, seq - 1)
        self._someone.set()
        try:
            await lane.woken(self._looks.window(lane.gate_looks))
        finally:
            self._waiting.pop(channel.key, None)
