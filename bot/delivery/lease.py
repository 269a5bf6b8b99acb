"""This consumer's leases, all under one token: the fan-out lease (one replica fans out at a
time, so the outbox keeps transition order) and the channel leases (one consumer sends to a
channel at a time). A dead holder's lease lapses after `ttl`. IO (through OutboxStore)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from bot.core.model import ChannelRef
from bot.delivery.config import ms
from bot.delivery.loop import REDIS_ERRORS
from bot.store import keys
from bot.store.outbox import OutboxStore


class Leases:
    """token: this consumer's lease token; ttl_ms: the lease time the store takes."""

    def __init__(self, outbox: OutboxStore, token: str, ttl: float) -> None:
        self._outbox = outbox
        self.token = token
        self.ttl = ttl
        self.ttl_ms = ms(ttl)

    async def take_fanout(self) -> bool:
        """Take or renew the fan-out lease; False while another consumer holds it."""
        return await self._outbox.take_lease(keys.fanout_lease(), self.token, self.ttl_ms)

    async def release_fanout(self) -> None:
        """Give the fan-out lease back (best effort: it lapses by itself)."""
        with contextlib.suppress(*REDIS_ERRORS):
            await self._outbox.release_lease(keys.fanout_lease(), self.token)

    @contextlib.asynccontextmanager
    async def keeping(self, channel: ChannelRef) -> AsyncIterator[None]:
        """Renew the channel's lease every third of its time while the body runs (a slow chat
        call). A body done within the first third (nearly every call) costs a timer, no task."""
        loop = asyncio.get_running_loop()
        renewer: asyncio.Task[None] | None = None

        def start() -> None:
            nonlocal renewer
            renewer = loop.create_task(self._renew(channel))

        timer = loop.call_later(self.ttl / 3, start)
        try:
            yield
        finally:
            timer.cancel()
            if renewer is not None:
                renewer.cancel()
                await asyncio.gather(renewer, return_exceptions=True)

    async def _renew(self, channel: ChannelRef) -> None:
        lease = keys.channel_lease(channel.key)
        while True:
            with contextlib.suppress(*REDIS_ERRORS):
                await self._outbox.take_lease(lease, self.token, self.ttl_ms)
            await asyncio.sleep(self.ttl / 3)

    async def release_channel(self, channel: ChannelRef, seq: int, *, unsent: bool) -> None:
        """Give the channel's lease back without recording entry `seq` done (best effort: it
        lapses by itself); `unsent`: no call of this attempt can have been applied."""
        with contextlib.suppress(*REDIS_ERRORS):
            await self._outbox.release(channel, seq, self.token, unsent=unsent)
