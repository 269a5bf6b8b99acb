"""The parent message of each outage in each channel (`MessageRef`), so later alerts of the outage
edit it and reply in its thread. IO: one Redis string per (channel, outage id), in the channel's
slot. Workers store refs atomically with the channel's handled sequence number
(`OutboxStore.complete`); this store reads them and serves everyone else.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError
from redis.asyncio import Redis

from bot.core.model import ChannelRef, MessageRef, decode_json, encode_json
from bot.store import keys

log = logging.getLogger(__name__)


class MessageStore:
    """MessageRef per (channel, outage id); `ttl_ms` bounds how long a finished outage's ref
    lingers (long outages re-arm it with every delivery)."""

    def __init__(self, redis: Redis, *, ttl_ms: int = 30 * 86_400_000) -> None:
        self._redis = redis
        self.ttl_ms = ttl_ms

    async def get(self, channel: ChannelRef, outage_id: str) -> MessageRef | None:
        """The parent message of `outage_id` in `channel`, or None (never posted, expired, or
        unreadable: then a new parent is posted rather than failing the delivery)."""
        key = keys.message(channel.key, outage_id)
        return decode_ref(await self._redis.get(key), channel, key)

    async def put(self, channel: ChannelRef, outage_id: str, ref: MessageRef) -> None:
        """Remember `ref` as the parent message of `outage_id` in `channel`."""
        await self._redis.set(
            keys.message(channel.key, outage_id), encode_json(ref), px=self.ttl_ms
        )

    async def drop(self, channel: ChannelRef, outage_id: str) -> None:
        """Forget the parent (it was deleted in the chat): the next alert posts a new one."""
        await self._redis.delete(keys.message(channel.key, outage_id))


def decode_ref(raw: bytes | str | None, channel: ChannelRef, where: str) -> MessageRef | None:
    """A stored MessageRef, or None when absent or unreadable (logged: a new parent is posted
    rather than failing the delivery)."""
    if raw is None or raw is False:
        return None
    try:
        ref = decode_json(MessageRef, raw)
    except ValidationError as e:
        log.warning("unreadable message ref at %s (ignored): %s", where, str(e)[:200])
        return None
    if ref.channel != channel:
        log.warning("message ref at %s names another channel %s (ignored)", where, ref.channel)
        return None
    return ref
