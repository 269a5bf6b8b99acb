"""This consumer's leases, all under one token: the fan-out lease (one replica fans out at a
time, so the outbox keeps transition order) and the channel leases (one consumer sends to a
channel at a time). A dead holder's lease lapses after `ttl`, or is broken as soon as its
heartbeat is gone: the fan-out lease by the next consumer asking for it, its channel leases when
its entries are taken over (bot.delivery.reader). IO (through OutboxStore)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

from bot.core.model import ChannelRef
from bot.delivery.config import ms
from bot.delivery.loop import REDIS_ERRORS
from bot.store import keys
from bot.store.outbox import OutboxStore


def holder(consumer: str) -> str:
    """What every lease token of `consumer` starts with (`Leases.of`)."""
    return f"{consumer}:"


class Leases:
    """token: this consumer's lease token; ttl_ms: the lease time the store takes."""

    def __init__(self, outbox: OutboxStore, token: str, ttl: float) -> None:
        self._outbox = outbox
        self.token = token
        self.ttl = ttl
        self.ttl_ms = ms(ttl)

    @classmethod
    def of(cls, outbox: OutboxStore, consumer: str, ttl: float) -> Leases:
        """The leases of `consumer`: a token of its own per run (a restart reusing the name
        holds none of the old run's leases), starting with `holder(consumer)`."""
        return cls(outbox, f"{holder(consumer)}{uuid.uuid4().hex[:8]}", ttl)

    async def take_fanout(self) -> bool:
        """Take or renew the fan-out lease; False while another consumer holds it. A holder
        without a heartbeat (killed mid fan-out) has its lease broken at once: the rest of the
        fan-out does not wait for the lease to lapse."""
        key = keys.fanout_lease()
        if await self._outbox.take_lease(key, self.token, self.ttl_ms):
            return True
        owner = await self._outbox.lease_owner(key)
        if owner is None:  # given back meanwhile
            return await self._outbox.take_lease(key, self.token, self.ttl_ms)
        consumer = owner.rpartition(":")[0]
        if not consumer or await self._outbox.alive(consumer):
            return False
        await self._outbox.break_leases([key], holder(consumer))
        return await self._outbox.take_lease(key, self.token, self.ttl_ms)

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
