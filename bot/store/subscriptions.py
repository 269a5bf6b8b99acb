"""Redis store of channel subscriptions and the fan-out index. IO.

Storage (one hash per channel, `keys.subscription`, so every change is one atomic script in the
channel's slot):
  ch      channel key              by     user id who first subscribed the channel
  s:<id>  "1" per surface          all    "1" when subscribed to every Claude surface
  min     Status value (minimum)   maint  "1"/"0": maintenance announcements
  mute    muted_until, ISO-8601    dis    why alerts are disabled (absent: enabled)
  at      updated_at, ISO-8601 (bumped only when something really changed)
Datetimes are ISO-8601 strings with their UTC offset (exact round trip, readable in redis-cli).

The index sets (`channels_of(surface)`, `channels_of("*")`, `all_channels()`,
`workspace_channels()`) live in other slots, so they are a second step and are kept a SUPERSET
of what the hashes say, never a subset: writers add to the index before and again after writing
the hash; removers remove from the index after the hash, then re-read the hash and add back
whatever a concurrent subscribe wrote meanwhile. Readers re-check the hash itself.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from importlib import resources
from typing import Any

from redis.asyncio import Redis

from bot.alerting.subscription import Subscription
from bot.core.model import ChannelRef, Status
from bot.store import keys

log = logging.getLogger(__name__)

_LUA = resources.files("bot.store").joinpath("lua")
ALL_CLAUDE = "*"  # the index member name for "all Claude surfaces"
LOAD_CHUNK = 500  # subscription hashes per round trip when loading many (fan-out)


class SubscriptionStore:
    """Channel subscriptions in Redis, with the per-surface fan-out index.

    claude_surfaces: the catalog's Claude surface ids; `candidates` reads the `*` index only when
    an alert touches one of them. None (unknown) reads it always: a harmless superset.
    """

    def __init__(self, redis: Redis, *, claude_surfaces: Collection[str] | None = None) -> None:
        self._redis = redis
        self._claude = frozenset(claude_surfaces) if claude_surfaces is not None else None
        self._subscribe = redis.register_script(_script("sub_subscribe.lua"))
        self._unsubscribe = redis.register_script(_script("sub_unsubscribe.lua"))
        self._patch = redis.register_script(_script("sub_patch.lua"))

    # -- changes -----------------------------------------------------------------------------------

    async def subscribe(
        self,
        channel: ChannelRef,
        surfaces: Collection[str],
        *,
        all_claude: bool,
        min_severity: Status | None = None,
        maintenance: bool | None = None,
        user: str,
        now: datetime,
    ) -> Subscription:
        """Add `surfaces` (and the all-Claude flag when set) to the channel's subscription,
        creating it if needed. Flags given (not None) replace the stored ones; None keeps them
        (new subscriptions default to degraded-and-worse, no maintenance). Subscribing again to
        the same thing changes nothing, not even `updated_at`.
        Raises: ValueError when neither a surface nor all_claude is given.
        """
        surfaces = sorted(set(surfaces))
        if not surfaces and not all_claude:
            raise ValueError("subscribe needs at least one surface or all_claude")
        index = _index_keys(channel, surfaces, all_claude)
        await self._sadd(channel, index)  # before the hash: the index is never a subset
        reply = await self._subscribe(
            keys=[keys.subscription(channel.key)],
            args=[
                channel.key,
                now.isoformat(),
                user,
                min_severity.value if min_severity is not None else "",
                Status.DEGRADED.value,
                "" if maintenance is None else ("1" if maintenance else "0"),
                "1" if all_claude else "0",
                *surfaces,
            ],
        )
        # And again after it: an unsubscribe racing us may have removed our index entries after
        # we added them but before our hash write, and re-read the hash too early to notice.
        await self._sadd(channel, index)
        sub = _decode(reply[1], channel.key)
        if sub is None:  # pragma: no cover - the script always leaves a hash
            raise RuntimeError(f"subscription of {channel.key} vanished while being written")
        return sub

    async def unsubscribe(
        self,
        channel: ChannelRef,
        surfaces: Collection[str],
        *,
        all_claude: bool,
        now: datetime,
        everything: bool = False,
    ) -> Subscription | None:
        """Remove `surfaces` (and the all-Claude flag when `all_claude`; every surface and the
        flag when `everything`) from the channel's subscription. Returns what is left, or None
        when nothing is (the hash is deleted). Idempotent."""
        reply = await self._unsubscribe(
            keys=[keys.subscription(channel.key)],
            args=[
                now.isoformat(),
                "1" if all_claude else "0",
                "1" if everything else "0",
                *sorted(set(surfaces)),
            ],
        )
        removed = [_text(s) for s in reply[0]]
        flag_cleared = int(reply[1]) == 1
        sub = _decode(reply[2], channel.key)
        stale = [keys.channels_of(s) for s in removed]
        if flag_cleared:
            stale.append(keys.channels_of(ALL_CLAUDE))
        if sub is None:
            stale += [keys.all_channels(), _workspace_key(channel)]
        if stale:
            await self._srem_verified(channel, stale)
        return sub

    async def mute(
        self, channel: ChannelRef, until: datetime, *, now: datetime
    ) -> Subscription | None:
        """Hold alerts back until `until` (the mute lapses by itself). None: no subscription."""
        return await self._patch_fields(channel, now, [("s", "mute", until.isoformat())])

    async def unmute(
        self, channel: ChannelRef, *, now: datetime | None = None
    ) -> Subscription | None:
        """Lift a mute. None: no subscription."""
        return await self._patch_fields(channel, now, [("d", "mute", "")])

    async def disable(self, channel: ChannelRef, reason: str, now: datetime) -> Subscription | None:
        """Stop sending to a channel a chat API said is gone or closed to us, keeping the
        subscription and recording why. None: no subscription."""
        return await self._patch_fields(channel, now, [("s", "dis", reason or "disabled")])

    async def enable(
        self, channel: ChannelRef, *, now: datetime | None = None
    ) -> Subscription | None:
        """Resume sending to a disabled channel. None: no subscription."""
        return await self._patch_fields(channel, now, [("d", "dis", "")])

    # -- reads ------------------------------------------------------------------------------------

    async def get(self, channel: ChannelRef) -> Subscription | None:
        """The channel's subscription, or None."""
        return _decode(await self._redis.hgetall(keys.subscription(channel.key)), channel.key)

    async def list_workspace(self, platform: str, workspace: str) -> list[Subscription]:
        """Every subscription of one workspace/guild, ordered by channel id (Slack App Home)."""
        members = await self._redis.smembers(keys.workspace_channels(str(platform), workspace))
        prefix = f"{platform}:{workspace}:"
        channel_keys = sorted(k for k in map(_text, members) if k.startswith(prefix))
        return await self._load(channel_keys)

    async def candidates(self, surfaces: Collection[str]) -> list[Subscription]:
        """Subscriptions that may want an alert about `surfaces` (fan-out): the union of the
        surfaces' index sets (plus `*` when a Claude surface is involved), then one pipeline of
        HGETALLs per LOAD_CHUNK channels. Index entries whose hash is gone are skipped. The
        caller still applies `skip_reason` to each."""
        names = set(surfaces)
        if self._claude is None or not self._claude.isdisjoint(names):
            names.add(ALL_CLAUDE)
        if not names:
            return []
        # SMEMBERS per set in one pipeline, not SUNION: the sets live in different hash slots,
        # and a cross-slot SUNION fails on Redis Cluster.
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in sorted(names):
                pipe.smembers(keys.channels_of(name))
            replies = await pipe.execute()
        channel_keys = sorted({_text(m) for members in replies for m in members})
        return await self._load(channel_keys)

    # -- internals ---------------------------------------------------------------------------------

    async def _load(self, channel_keys: Sequence[str]) -> list[Subscription]:
        """The subscriptions of `channel_keys`, LOAD_CHUNK hashes per pipelined round trip: the
        event loop gets a turn between chunks, so a 10,000-channel fan-out never holds up the
        commands (`/aistatus`) served on the same loop for the whole decode."""
        out: list[Subscription] = []
        for start in range(0, len(channel_keys), LOAD_CHUNK):
            chunk = channel_keys[start : start + LOAD_CHUNK]
            async with self._redis.pipeline(transaction=False) as pipe:
                for ck in chunk:
                    pipe.hgetall(keys.subscription(ck))
                replies = await pipe.execute()
            for ck, fields in zip(chunk, replies, strict=True):
                sub = _decode(fields, ck)
                if sub is None:
                    log.debug("stale index entry %s skipped: its subscription is gone", ck)
                    continue
                out.append(sub)
        return out

    async def _sadd(self, channel: ChannelRef, index: Iterable[str]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in index:
                pipe.sadd(key, channel.key)
            await pipe.execute()

    async def _srem_verified(self, channel: ChannelRef, stale: Sequence[str]) -> None:
        """Remove the channel from index sets, then re-read its hash and add back every entry a
        concurrent subscribe made true again meanwhile (keeps the index a superset)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in stale:
                pipe.srem(key, channel.key)
            await pipe.execute()
        now_sub = await self.get(channel)
        if now_sub is None:
            return
        wanted = set(_index_keys(channel, now_sub.surfaces, now_sub.all_claude))
        back = [key for key in stale if key in wanted]
        if back:
            await self._sadd(channel, back)

    async def _patch_fields(
        self, channel: ChannelRef, now: datetime | None, ops: Sequence[tuple[str, str, str]]
    ) -> Subscription | None:
        args: list[str] = [now.isoformat() if now is not None else ""]
        for op in ops:
            args += list(op)
        reply = await self._patch(keys=[keys.subscription(channel.key)], args=args)
        return _decode(reply, channel.key)


def _script(name: str) -> str:
    return _LUA.joinpath(name).read_text("utf-8")


def _workspace_key(channel: ChannelRef) -> str:
    return keys.workspace_channels(str(channel.platform), channel.workspace)


def _index_keys(channel: ChannelRef, surfaces: Iterable[str], all_claude: bool) -> list[str]:
    """Every index set the channel must be in for this subscription content."""
    out = [keys.all_channels(), _workspace_key(channel)]
    out += [keys.channels_of(s) for s in surfaces]
    if all_claude:
        out.append(keys.channels_of(ALL_CLAUDE))
    return out


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _fields(raw: Mapping[Any, Any] | Sequence[Any]) -> dict[str, str]:
    """HGETALL as a dict (redis-py gives a dict; a script gives a flat [k, v, k, v] list)."""
    if isinstance(raw, Mapping):
        return {_text(k): _text(v) for k, v in raw.items()}
    flat = list(raw)
    return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}


def _decode(raw: Mapping[Any, Any] | Sequence[Any], channel_key: str) -> Subscription | None:
    """A stored hash as a Subscription; None for an empty (missing) hash. A corrupt field is
    logged and replaced by its default, so one bad value never hides a channel's subscription."""
    f = _fields(raw)
    if not f:
        return None
    try:
        channel = ChannelRef.parse(f.get("ch") or channel_key)
    except ValueError:
        log.warning("corrupt channel key %r in subscription of %s", f.get("ch"), channel_key)
        channel = ChannelRef.parse(channel_key)
    try:
        min_severity = Status(f.get("min", Status.DEGRADED.value))
    except ValueError:
        log.warning("corrupt min severity %r for %s: using degraded", f.get("min"), channel_key)
        min_severity = Status.DEGRADED
    return Subscription(
        channel=channel,
        surfaces=frozenset(k[2:] for k in f if k.startswith("s:")),
        all_claude=f.get("all") == "1",
        min_severity=min_severity,
        maintenance=f.get("maint") == "1",
        muted_until=_when(f.get("mute"), "mute", channel_key),
        disabled_reason=f.get("dis"),
        created_by=f.get("by", ""),
        updated_at=_when(f.get("at"), "at", channel_key),
    )


def _when(value: str | None, field: str, channel_key: str) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        log.warning("corrupt %s %r in subscription of %s: ignored", field, value, channel_key)
        return None
    if when.tzinfo is None:
        log.warning("naive %s %r in subscription of %s: ignored", field, value, channel_key)
        return None
    return when
