"""Redis side of delivery: the fan-out consumer group on the transitions streams, the outbox stream
with its `workers` group, per-channel sequence numbers (assigned and handled), leases, retry notes
and dead letters (listed, retried, dropped). IO: thin wrappers over streams and Lua in `lua/`.

An outbox entry holds: c channel key, a alert id, k outage id (alert key), n per-channel sequence
number, q queued-at (ISO-8601), alert (Alert JSON). A side message's entry (an announcement or a
direct message: `SideEntry`) holds c its lane, a its key, n, q and side (SideMessage JSON) instead
of k and alert. Entries are deleted when acknowledged, so the stream's length is the backlog.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis, RedisCluster
from redis.crc import key_slot
from redis.exceptions import ResponseError

from bot.core.model import (
    Alert,
    ChannelRef,
    MessageRef,
    SideMessage,
    Transition,
    decode_json,
    encode_json,
)
from bot.store import keys
from bot.store.connect import Batched, run_pipelined
from bot.store.messages import decode_ref

log = logging.getLogger(__name__)

_LUA = resources.files("bot.store").joinpath("lua")
WORKERS = "workers"
FANOUT = "fanout"


def _script(name: str) -> str:
    return _LUA.joinpath(name).read_text("utf-8")


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _fields(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}


def _flat_fields(flat: Sequence[Any]) -> dict[str, str]:
    """A script's HGETALL answer ([k, v, k, v, ...]) as a dict."""
    return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One delivery to do: `alert` to `channel`, number `seq` in that channel's order."""

    id: str  # stream entry id
    channel: ChannelRef
    alert_id: str
    seq: int
    alert: Alert
    queued_at: datetime | None


@dataclass(frozen=True, slots=True)
class SideEntry:
    """One side message to deliver (bot.core.model.SideMessage): number `seq` in the order of
    its lane `channel` (the message's `to`). `alert_id` holds the message's key: the slot an
    alert id fills in logs, retry notes and the `fanned` marker."""

    id: str  # stream entry id
    channel: ChannelRef
    alert_id: str
    seq: int
    side: SideMessage
    queued_at: datetime | None


@dataclass(frozen=True, slots=True)
class BadEntry:
    """An outbox entry that does not decode: dead-lettered as is, never retried. `channel` and
    `seq` are set when they could be read, so the channel's order moves past it."""

    id: str
    error: str
    fields: Mapping[str, str]
    channel: ChannelRef | None = None
    seq: int | None = None


Entry = OutboxEntry | SideEntry | BadEntry
"""What reading the outbox gives: an alert's entry, a side message's, or one that does not
decode."""


@dataclass(frozen=True, slots=True)
class Begin:
    """The answer of `OutboxStore.begin`: verdict done | wait | busy | go (see outbox_begin.lua);
    with `go` the caller holds the channel's lease and gets the parent ref, and `unsure` says an
    earlier attempt at the entry began and never ended (its call may have been applied);
    `disabled` is why the channel's alerts are disabled (None: enabled)."""

    verdict: str
    handled: int
    parent: MessageRef | None = None
    unsure: bool = False
    disabled: str | None = None


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One transitions-stream entry read by the fan-out; `transition` is None when undecodable."""

    provider: str
    id: str
    transition: Transition | None


@dataclass(frozen=True, slots=True)
class RetryingDelivery:
    entry_id: str
    channel: str
    alert_id: str
    attempts: int
    error: str


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead letter as `aistatus deliveries` names it. kind, surfaces and outage come from
    the alert it carries; kind is None when that does not decode (a malformed entry: it cannot
    be retried, only dropped)."""

    id: str  # dead-letter stream id: what --retry / --drop take
    entry_id: str
    channel: str
    alert_id: str
    error: str
    attempts: int
    at: str
    kind: str | None = None
    surfaces: tuple[str, ...] = ()
    outage: str = "?"
    side: SideMessage | None = None  # set for a side message's dead letter

    @property
    def what(self) -> str:
        """ "start of 7g1qpkyz5gxh (api, code)", a side message's `what`, or what is known of a
        malformed one."""
        if self.side is not None:
            return self.side.what
        kind = self.kind or "undecodable alert"
        surfaces = f" ({', '.join(self.surfaces)})" if self.surfaces else ""
        return f"{kind} of {self.outage}{surfaces}"


def decode_dead_letter(dead_id: str, raw: Mapping[Any, Any]) -> DeadLetter:
    """A dead-letter stream entry as a value; never raises (unreadable parts become "?")."""
    f = _fields(raw)
    try:
        attempts = int(f.get("attempts", "0"))
    except ValueError:
        attempts = 0
    kind: str | None = None
    surfaces: tuple[str, ...] = ()
    outage = f.get("k", "?")
    side: SideMessage | None = None
    try:
        if "side" in f:
            side = decode_json(SideMessage, f["side"])
            kind, outage = str(side.kind), "-"
        else:
            alert = decode_json(Alert, f["alert"])
            kind, surfaces, outage = str(alert.kind), alert.surfaces, alert.key
    except (KeyError, ValueError, ValidationError):
        pass
    return DeadLetter(
        dead_id, f.get("entry", ""), f.get("c", "?"), f.get("a", "?"), f.get("error", ""),
        attempts, f.get("at", ""), kind, surfaces, outage, side,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Tally:
    """An alert whose entries are all finished: `total` channels, first queued at `queued_at`,
    `retried` of them needed more than one attempt, `dead` were dead-lettered."""

    alert_id: str
    what: str  # "start of 7g1qpkyz5gxh"
    total: int
    retried: int
    dead: int
    queued_at: datetime | None


@dataclass(frozen=True, slots=True)
class Finished:
    """Entries of one alert finished (delivered or dead-lettered) in one acknowledgement, for
    its tally: how many, how many of them needed more than one attempt, how many are dead."""

    entries: int = 0
    retried: int = 0
    dead: int = 0

    def plus(self, *, retried: bool, dead: bool) -> Finished:
        return Finished(self.entries + 1, self.retried + int(retried), self.dead + int(dead))


@dataclass(frozen=True, slots=True)
class QueuedSide:
    """A side message still in the outbox, as `aistatus deliveries` lists it: `pending` (not
    sent yet) or, with `attempts` and `error`, waiting for another attempt after a failure."""

    entry_id: str
    lane: str
    side: SideMessage
    attempts: int = 0
    error: str | None = None

    @property
    def state(self) -> str:
        return "pending" if self.error is None else "waiting"


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What `aistatus deliveries` shows. queued: outbox entries not yet acknowledged; pending: of
    those, read by a worker (in flight, waiting or retrying); retrying: alert entries that failed
    and wait; side: side messages in the outbox (of the first `side_scan` entries: the report's
    bound); dead_total: all dead letters kept."""

    queued: int
    pending: int
    retrying: tuple[RetryingDelivery, ...]
    dead: tuple[DeadLetter, ...]
    dead_total: int
    side: tuple[QueuedSide, ...] = ()


@functools.lru_cache(maxsize=64)
def _alert(blob: str) -> Alert:
    """One alert's JSON, decoded once: a fan-out writes the same blob into each of its thousands
    of entries, and an Alert is immutable, so they can share one. Raises: ValidationError."""
    return decode_json(Alert, blob)


def decode_entry(entry_id: str, raw: Mapping[Any, Any]) -> Entry:
    """An outbox stream entry as a value; malformed data becomes a BadEntry, never an exception."""
    fields = _fields(raw)
    channel: ChannelRef | None = None
    seq: int | None = None
    try:
        channel = ChannelRef.parse(fields["c"])
        seq = int(fields["n"])
        queued = datetime.fromisoformat(fields["q"]) if fields.get("q") else None
        if "side" in fields:
            side = decode_json(SideMessage, fields["side"])
            return SideEntry(entry_id, channel, fields["a"], seq, side, queued)
        return OutboxEntry(entry_id, channel, fields["a"], seq, _alert(fields["alert"]), queued)
    except (KeyError, ValueError, ValidationError) as e:
        error = f"malformed outbox entry: {type(e).__name__}: {str(e)[:200]}"
        return BadEntry(entry_id, error, fields, channel, seq)


class OutboxStore:
    """The outbox stream and everything keyed beside it.

    marker_ttl_ms: how long the `fanned` and `queued` markers live (longer than any outage plus
    any redelivery); ref_ttl_ms: how long a parent message reference is kept.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        marker_ttl_ms: int = 14 * 86_400_000,
        ref_ttl_ms: int = 30 * 86_400_000,
        dead_maxlen: int = 10_000,
    ) -> None:
        self._redis = redis
        self.marker_ttl_ms = marker_ttl_ms
        self.ref_ttl_ms = ref_ttl_ms
        self.dead_maxlen = dead_maxlen
        self._enqueue = redis.register_script(_script("outbox_enqueue.lua"))
        # Every lane of every worker begins and completes its entries: those calls are batched.
        self._complete = Batched(redis, redis.register_script(_script("outbox_complete.lua")))
        self._begin = Batched(redis, redis.register_script(_script("outbox_begin.lua")))
        self._release = redis.register_script(_script("outbox_release.lua"))
        self._lease = redis.register_script(_script("delivery_lease.lua"))
        self._retry = redis.register_script(_script("outbox_retry.lua"))
        self._ack = redis.register_script(_script("outbox_ack.lua"))
        self._side = redis.register_script(_script("outbox_side.lua"))

    # -- fan-out side --------------------------------------------------------------------------

    async def enqueue(
        self, items: Sequence[tuple[Alert, str, ChannelRef]], *, now: datetime
    ) -> list[str | None]:
        """Write one entry per (alert, alert id, channel), in order, each at most once ever (the
        `fanned` marker). One pipelined round trip. Returns the new entry ids, None for entries
        written before."""
        if not items:
            return []
        queued_at = now.isoformat()
        blobs: dict[int, bytes] = {}  # one JSON per alert object: channels share their alert

        def blob(alert: Alert) -> bytes:
            out = blobs.get(id(alert))
            if out is None:
                out = blobs[id(alert)] = encode_json(alert)
            return out

        calls = [
            (
                [
                    keys.outbox(),
                    keys.fanned(aid, channel.key),
                    keys.outbox_seq(channel.key),
                    keys.queued(channel.key, alert.key),
                    keys.tally(aid),
                ],
                [
                    self.marker_ttl_ms,
                    channel.key,
                    aid,
                    alert.key,
                    queued_at,
                    blob(alert),
                    f"{alert.kind} of {alert.key}",
                ],
            )
            for alert, aid, channel in items
        ]
        replies = await run_pipelined(self._redis, self._enqueue, calls, acknowledged=True)
        return [_text(r) if r else None for r in replies]

    async def enqueue_side(self, message: SideMessage, *, now: datetime) -> str | None:
        """Write the entry of one side message at most once ever (its key's `fanned` marker), as
        the next in its lane's order (outbox_side.lua). Returns the entry id, None when this key
        was written before."""
        lane = message.to.key
        reply = await self._side(
            keys=[keys.outbox(), keys.fanned(message.key, lane), keys.outbox_seq(lane)],
            args=[self.marker_ttl_ms, lane, message.key, now.isoformat(), encode_json(message)],
        )
        return _text(reply) if reply else None

    async def threads(self, pairs: Sequence[tuple[ChannelRef, str]]) -> list[bool]:
        """For each (channel, outage id): was an entry of this outage queued for the channel, or
        does it have a parent message? (fan-out's `has_parent`). One round trip."""
        if not pairs:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for channel, outage in pairs:  # two EXISTS: the keys live in different slots
                pipe.exists(keys.queued(channel.key, outage))
                pipe.exists(keys.message(channel.key, outage))
            replies = await pipe.execute()
        return [int(a) + int(b) > 0 for a, b in zip(replies[::2], replies[1::2], strict=True)]

    # -- workers side ----------------------------------------------------------------------------

    async def ensure_group(self) -> None:
        """Create the `workers` group (and the stream) if missing."""
        try:
            await self._redis.xgroup_create(keys.outbox(), WORKERS, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    async def read(self, consumer: str, *, count: int, block_ms: int | None) -> list[Entry]:
        """New entries for `consumer` (XREADGROUP >), waiting up to `block_ms` for some."""
        reply = await self._redis.xreadgroup(
            WORKERS, consumer, {keys.outbox(): ">"}, count=count, block=block_ms
        )
        return [decode_entry(_text(i), f) for _, entries in reply or [] for i, f in entries]

    async def own_pending(self, consumer: str, *, count: int) -> list[Entry]:
        """Entries this consumer name read before but never acknowledged (a restart under the
        same name)."""
        reply = await self._redis.xreadgroup(WORKERS, consumer, {keys.outbox(): "0"}, count=count)
        return [decode_entry(_text(i), f) for _, entries in reply or [] for i, f in entries if f]

    async def reclaim(
        self, consumer: str, *, min_idle_ms: int, start: str, count: int
    ) -> tuple[str, list[Entry]]:
        """XAUTOCLAIM entries idle for `min_idle_ms` (their consumer died or stalls) to
        `consumer`. Returns the cursor to continue from ("0-0" when the scan is complete)."""
        reply = await self._redis.xautoclaim(
            keys.outbox(), WORKERS, consumer, min_idle_ms, start_id=start, count=count
        )
        cursor, entries = _text(reply[0]), reply[1]
        return cursor, [decode_entry(_text(i), f) for i, f in entries if f]

    async def begin(self, entry: Entry, seq: int, token: str, lease_ms: int) -> Begin:
        """The order gate and the channel's lease for entry `seq`, with its outage's parent ref,
        in one round trip."""
        channel = entry.channel
        if channel is None:
            raise ValueError("an entry without a channel has no order to keep")
        outage = entry.alert.key if isinstance(entry, OutboxEntry) else "-"
        ref_key = keys.message(channel.key, outage)
        # The `sending` marker is on a replica before the call is made (acknowledged, Batched).
        verdict, handled, raw, unsure, *disabled = await self._begin(
            [
                keys.handled_seq(channel.key),
                keys.channel_lease(channel.key),
                ref_key,
                keys.sending(channel.key),
                keys.subscription(channel.key),
            ],
            [seq, token, lease_ms, self.marker_ttl_ms],
        )
        ref = decode_ref(raw, channel, ref_key) if raw else None
        why = _text(disabled[0]) if disabled and disabled[0] else None
        return Begin(_text(verdict), int(handled), ref, bool(int(unsure)), why)

    async def release(self, channel: ChannelRef, seq: int, token: str, *, unsent: bool) -> None:
        """Give back the channel's lease held by `token` without recording entry `seq` done;
        `unsent`: no call of this attempt can have been applied (a pacing wait, a 429), so the
        next attempt need not check the channel first (see outbox_release.lua)."""
        await self._release(
            keys=[keys.channel_lease(channel.key), keys.sending(channel.key)],
            args=[token, seq, "1" if unsent else "0"],
        )

    async def complete(
        self,
        channel: ChannelRef,
        seq: int,
        *,
        outage: str | None = None,
        ref: MessageRef | None = None,
        drop_ref: bool = False,
        lease_token: str = "",
    ) -> None:
        """Record entry `seq` of `channel` as done (delivered or given up), storing (`ref`) or
        forgetting (`drop_ref`) the outage's parent message reference, and give back the
        channel's lease held by `lease_token`. One atomic step in the channel's slot."""
        op = "set" if ref is not None else ("del" if drop_ref else "keep")
        if op != "keep" and outage is None:
            raise ValueError("a message ref change needs the outage id")
        await self._complete(
            [
                keys.handled_seq(channel.key),
                keys.message(channel.key, outage or "-"),
                keys.channel_lease(channel.key),
                keys.sending(channel.key),
            ],
            [seq, op, encode_json(ref) if ref is not None else b"", self.ref_ttl_ms, lease_token],
        )

    async def handled_seqs(self, channels: Sequence[ChannelRef]) -> list[int]:
        """The handled sequence number of each channel, in one pipelined round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for channel in channels:
                pipe.get(keys.handled_seq(channel.key))
            replies = await pipe.execute()
        return [int(r or 0) for r in replies]

    async def touch(self, consumer: str, entry_ids: Sequence[str]) -> list[str]:
        """Reset the idle time of those of `entry_ids` that `consumer` still owns (a heartbeat:
        XAUTOCLAIM then leaves them alone). Returns the ids it still owns."""
        owned = await self._redis.xpending_range(
            keys.outbox(), WORKERS, min="-", max="+", count=len(entry_ids) + 100,
            consumername=consumer,
        )  # fmt: skip
        mine = {_text(p["message_id"]) for p in owned}
        keep = [i for i in entry_ids if i in mine]
        if keep:
            await self._redis.xclaim(keys.outbox(), WORKERS, consumer, 0, keep, justid=True)
        return keep

    async def beat(self, consumer: str, ttl_ms: int) -> None:
        """Refresh `consumer`'s heartbeat: it lives `ttl_ms` unless refreshed again."""
        await self._redis.set(keys.consumer_beat(consumer), "1", px=ttl_ms)

    async def alive(self, consumer: str) -> bool:
        """Has `consumer` a heartbeat (it runs, or stopped less than its beat TTL ago)?"""
        return bool(await self._redis.exists(keys.consumer_beat(consumer)))

    async def lease_owner(self, key: str) -> str | None:
        """The token holding the lease at `key`, or None."""
        owner = await self._redis.get(key)
        return None if owner is None else _text(owner)

    async def leave(self, consumer: str) -> None:
        """Drop `consumer`'s heartbeat: others take over what it still holds at once."""
        await self._redis.delete(keys.consumer_beat(consumer))

    async def orphans(self, consumer: str) -> list[str]:
        """The other consumers of the `workers` group that hold pending entries and have no
        heartbeat (stopped or dead). Two round trips."""
        try:
            found = await self._redis.xinfo_consumers(keys.outbox(), WORKERS)
        except ResponseError as e:
            if "NOGROUP" in str(e) or "no such key" in str(e):
                return []
            raise
        names = [_text(c["name"]) for c in found if int(c.get("pending", 0))]
        names = [n for n in names if n != consumer]
        if not names:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.exists(keys.consumer_beat(name))
            alive = await pipe.execute()
        return [n for n, a in zip(names, alive, strict=True) if not int(a)]

    async def take_over(self, dead: str, consumer: str, *, count: int) -> list[Entry]:
        """XCLAIM up to `count` of `dead`'s pending entries to `consumer` whatever their idle
        time (its heartbeat is gone). Entries deleted meanwhile are acknowledged away."""
        pending = await self._redis.xpending_range(
            keys.outbox(), WORKERS, min="-", max="+", count=count, consumername=dead
        )
        ids = [_text(p["message_id"]) for p in pending]
        if not ids:
            return []
        claimed = await self._redis.xclaim(keys.outbox(), WORKERS, consumer, 0, ids)
        entries = [decode_entry(_text(i), f) for i, f in claimed if f]
        gone = set(ids) - {e.id for e in entries}
        if gone:
            await self._redis.xack(keys.outbox(), WORKERS, *gone)
        return entries

    async def ack(
        self, entry_ids: Sequence[str], *, done: Mapping[str, Finished] | None = None
    ) -> list[Tally]:
        """Acknowledge and delete entries (and their retry notes): they are done. `done`: alert
        id -> the entries of it finished by this call, counted in the alert's tally in the same
        step (outbox_ack.lua: one command, one slot, so it runs on Redis Cluster too). Returns
        the tallies this call completed (it finished their alerts' last entries)."""
        done = dict(done or {})
        if not entry_ids and not done:
            return []
        alerts = sorted(done)
        args: list[Any] = [WORKERS, len(alerts)]
        for alert_id in alerts:
            f = done[alert_id]
            args += [f.entries, f.retried, f.dead]
        replies = await self._ack(
            keys=[keys.outbox(), keys.retrying(), *(keys.tally(a) for a in alerts)],
            args=[*args, *entry_ids],
        )
        out: list[Tally] = []
        for alert_id, raw in zip(alerts, replies, strict=True):
            if not raw:
                continue
            f = _flat_fields(raw)
            queued = datetime.fromisoformat(f["q"]) if f.get("q") else None
            out.append(
                Tally(
                    alert_id,
                    f.get("what", alert_id),
                    int(f.get("total", "0")),
                    int(f.get("retried", "0")),
                    int(f.get("dead", "0")),
                    queued,
                )
            )
        return out

    async def note_retry(
        self, entry_id: str, channel: ChannelRef, alert_id: str, attempts: int, error: str
    ) -> None:
        """Remember that an entry failed and waits for another attempt (for the report)."""
        note = {"channel": channel.key, "alert_id": alert_id, "attempts": attempts, "error": error}
        await self._redis.hset(keys.retrying(), entry_id, json.dumps(note))

    async def dead_letter(
        self,
        entry: Entry,
        *,
        error: str,
        attempts: int,
        now: datetime,
    ) -> str:
        """Append the entry and its last error to the dead letters (capped). Returns its id."""
        if isinstance(entry, OutboxEntry):
            fields: dict[str, Any] = {
                "entry": entry.id,
                "c": entry.channel.key,
                "a": entry.alert_id,
                "k": entry.alert.key,
                "n": entry.seq,
                "alert": encode_json(entry.alert),
            }
        elif isinstance(entry, SideEntry):
            fields = {
                "entry": entry.id,
                "c": entry.channel.key,
                "a": entry.alert_id,
                "n": entry.seq,
                "side": encode_json(entry.side),
            }
        else:
            fields = {"entry": entry.id, **{k: v for k, v in entry.fields.items() if k != "entry"}}
        fields.update({"error": error[:500], "attempts": attempts, "at": now.isoformat()})
        dead_id = await self._redis.xadd(
            keys.dead_letters(), fields, maxlen=self.dead_maxlen, approximate=True
        )
        return _text(dead_id)

    # -- dead letters (the operator's `aistatus deliveries --retry / --drop`) ---------------------

    async def dead_letters(self, which: str) -> list[DeadLetter]:
        """The dead letter with id `which`, or every one kept for "all" (oldest first); [] for
        an id that is not there (or is not a stream id at all)."""
        try:
            if which == "all":
                raw = await self._redis.xrange(keys.dead_letters(), min="-", max="+")
            else:
                raw = await self._redis.xrange(keys.dead_letters(), min=which, max=which)
        except ResponseError:  # "Invalid stream ID specified"
            return []
        return [decode_dead_letter(_text(i), f) for i, f in raw]

    async def retry_dead(self, dead: DeadLetter, *, now: datetime) -> str | None:
        """Queue a dead letter again (outbox_retry.lua: the channel's next sequence number, the
        letter removed in the same step). Returns the new outbox entry id; None when it cannot
        be retried (an undecodable alert) or is gone (retried or dropped meanwhile)."""
        if dead.kind is None:
            return None
        reply = await self._retry(
            keys=[
                keys.dead_letters(),
                keys.outbox(),
                keys.outbox_seq(dead.channel),
                keys.queued(dead.channel, dead.outage),
            ],
            args=[dead.id, dead.channel, now.isoformat(), self.marker_ttl_ms],
        )
        return _text(reply) if reply else None

    async def drop_dead(self, dead_ids: Sequence[str]) -> int:
        """Delete dead letters for good. Returns how many were there."""
        if not dead_ids:
            return 0
        return int(await self._redis.xdel(keys.dead_letters(), *dead_ids))

    async def take_lease(self, key: str, token: str, ttl_ms: int) -> bool:
        """Take or renew the lease at `key` for `token`; False while someone else holds it."""
        return int(await self._lease(keys=[key], args=[token, ttl_ms, "take"])) == 1

    async def release_lease(self, key: str, token: str) -> None:
        """Give the lease back if `token` still holds it."""
        await self._lease(keys=[key], args=[token, 1, "release"])

    async def break_leases(self, lease_keys: Sequence[str], holder: str) -> int:
        """Delete each lease at `lease_keys` whose token starts with `holder` (a consumer known
        dead: its leases would block their channels until they lapse). One pipelined round
        trip; returns how many were broken."""
        if not lease_keys:
            return 0
        calls = [([key], [holder, 1, "break"]) for key in lease_keys]
        return sum(int(r) for r in await run_pipelined(self._redis, self._lease, calls))

    async def backlog(self) -> int:
        """Outbox entries not yet acknowledged."""
        return int(await self._redis.xlen(keys.outbox()))

    async def has_earlier(self, channel: ChannelRef, seq: int) -> bool:
        """Is any entry of `channel` numbered below `seq` still in the outbox? (A bounded scan:
        after 500,000 entries it answers True, the safe side.)"""
        start = "-"
        for _ in range(1000):
            batch = await self._redis.xrange(keys.outbox(), min=start, max="+", count=500)
            if not batch:
                return False
            for _, raw in batch:
                f = _fields(raw)
                if f.get("c") == channel.key and f.get("n", "").isdigit() and int(f["n"]) < seq:
                    return True
            start = "(" + _text(batch[-1][0])
        return True


class TransitionFeed:
    """The fan-out consumer group `fanout` on every provider's transitions stream."""

    def __init__(self, redis: Redis, providers: Sequence[str]) -> None:
        self._redis = redis
        self.providers = tuple(providers)
        # Redis Cluster refuses one XREADGROUP across slots: there the providers' streams are read
        # per hash slot ({p:<provider>} gives each provider its own, usually); one server, one read.
        by_slot: dict[int, list[str]] = {}
        for p in self.providers:
            slot = key_slot(keys.transitions(p).encode()) if isinstance(redis, RedisCluster) else 0
            by_slot.setdefault(slot, []).append(p)
        self._slots = [tuple(ps) for ps in by_slot.values()]
        self._inflight: dict[tuple[str, ...], asyncio.Task[list[FeedItem]]] = {}

    async def ensure_groups(self) -> None:
        """Create the `fanout` group on each provider's stream if missing (from the start of the
        stream: transitions recorded before the first start are delivered too)."""
        for provider in self.providers:
            try:
                await self._redis.xgroup_create(
                    keys.transitions(provider), FANOUT, id="0", mkstream=True
                )
            except ResponseError as e:
                if "BUSYGROUP" not in str(e):
                    raise

    async def caught_up(self) -> bool:
        """Has the fan-out read and acknowledged every transition of every provider?"""
        for provider in self.providers:
            stream = keys.transitions(provider)
            if not await self._redis.exists(stream):
                continue
            info = await self._redis.xinfo_stream(stream)
            last = _text(info.get("last-generated-id", b"0-0"))
            groups = await self._redis.xinfo_groups(stream)
            group = next((g for g in groups if _text(g.get("name", b"")) == FANOUT), None)
            if group is None:
                if int(info.get("length", 0)):
                    return False
                continue
            read_all = _text(group.get("last-delivered-id", b"0-0")) == last
            if int(group.get("pending", 0)) or not read_all:
                return False
        return True

    def _item(self, provider: str, entry_id: Any, raw: Mapping[Any, Any]) -> FeedItem:
        blob = _fields(raw).get("t", "")
        try:
            t: Transition | None = decode_json(Transition, blob)
        except ValidationError as e:
            log.warning(
                "fan-out: undecodable transition %s in %s (skipped): %s",
                _text(entry_id),
                provider,
                str(e)[:200],
            )
            t = None
        return FeedItem(provider, _text(entry_id), t)

    async def read(self, consumer: str, *, count: int, block_ms: int | None) -> list[FeedItem]:
        """New transitions of every provider (XREADGROUP >), oldest first per provider.

        One read per hash slot. With several slots the reads wait together and the first answers
        are returned; the reads still waiting stay in flight for the next call: a read is never
        cancelled while running, so what the server hands this consumer is never dropped."""
        if len(self._slots) == 1:
            return await self._read_slot(self._slots[0], consumer, count, block_ms)
        for providers in self._slots:
            if providers not in self._inflight:
                self._inflight[providers] = asyncio.ensure_future(
                    self._read_slot(providers, consumer, count, block_ms)
                )
        await asyncio.wait(self._inflight.values(), return_when=asyncio.FIRST_COMPLETED)
        out: list[FeedItem] = []
        for providers, task in list(self._inflight.items()):
            if task.done():
                del self._inflight[providers]
                out += task.result()
        return out

    async def close(self) -> None:
        """Stop the reads still in flight (at stop; what they were handed is taken over later)."""
        tasks, self._inflight = list(self._inflight.values()), {}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _read_slot(
        self, providers: Sequence[str], consumer: str, count: int, block_ms: int | None
    ) -> list[FeedItem]:
        streams = {keys.transitions(p): ">" for p in providers}
        by_key = {keys.transitions(p): p for p in providers}
        reply = await self._redis.xreadgroup(FANOUT, consumer, streams, count=count, block=block_ms)
        return [
            self._item(by_key[_text(stream)], i, f)
            for stream, entries in reply or []
            for i, f in entries
        ]

    async def take_over(self, consumer: str, *, count: int) -> list[FeedItem]:
        """Every transition read but never acknowledged by any fan-out consumer (a previous lease
        holder crashed), claimed to `consumer`, oldest first per provider. Entries trimmed from
        the stream meanwhile are acknowledged away."""
        out: list[FeedItem] = []
        for provider in self.providers:
            key = keys.transitions(provider)
            cursor = "0-0"
            for _ in range(10_000):  # bounded: each round claims up to `count`
                reply = await self._redis.xautoclaim(
                    key, FANOUT, consumer, 0, start_id=cursor, count=count
                )
                cursor = _text(reply[0])
                out += [self._item(provider, i, f) for i, f in reply[1] if f]
                gone = [_text(i) for i in reply[2]] if len(reply) > 2 else []
                if gone:
                    await self._redis.xack(key, FANOUT, *gone)
                if cursor == "0-0":
                    break
        return out

    async def ack(self, items: Sequence[FeedItem]) -> None:
        """Acknowledge transitions whose delivery entries are all written."""
        by_provider: dict[str, list[str]] = {}
        for item in items:
            by_provider.setdefault(item.provider, []).append(item.id)
        if not by_provider:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for provider, ids in by_provider.items():
                pipe.xack(keys.transitions(provider), FANOUT, *ids)
            await pipe.execute()


async def outbox_counts(redis: Redis) -> tuple[int, int]:
    """(outbox entries not yet acknowledged, dead letters kept): two XLENs, one round trip —
    cheap enough for every metrics scrape."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xlen(keys.outbox())
        pipe.xlen(keys.dead_letters())
        queued, dead = await pipe.execute()
    return int(queued), int(dead)


async def deliveries_report(
    redis: Redis, *, dead_limit: int = 20, side_scan: int = 20_000
) -> DeliveryReport:
    """The backlog, the entries waiting for another attempt, the side messages queued, and the
    newest dead letters."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xlen(keys.outbox())
        pipe.hgetall(keys.retrying())
        pipe.xrevrange(keys.dead_letters(), count=dead_limit)
        pipe.xlen(keys.dead_letters())
        queued, retrying_raw, dead_raw, dead_total = await pipe.execute()
    try:
        summary = await redis.xpending(keys.outbox(), WORKERS)
        pending = int(summary.get("pending", 0)) if isinstance(summary, dict) else 0
    except ResponseError:  # no group yet: nothing was ever read
        pending = 0
    retrying: list[RetryingDelivery] = []
    for entry_id, blob in (retrying_raw or {}).items():
        try:
            note = json.loads(_text(blob))
            retrying.append(
                RetryingDelivery(
                    _text(entry_id),
                    str(note.get("channel", "?")),
                    str(note.get("alert_id", "?")),
                    int(note.get("attempts", 0)),
                    str(note.get("error", "")),
                )
            )
        except (ValueError, TypeError, AttributeError):
            log.warning("deliveries report: unreadable retry note %s", _text(entry_id))
    dead = [decode_dead_letter(_text(i), raw) for i, raw in dead_raw or []]
    notes = {r.entry_id: r for r in retrying}
    side = [
        QueuedSide(e.id, e.channel.key, e.side)
        if (note := notes.pop(e.id, None)) is None
        else QueuedSide(e.id, e.channel.key, e.side, note.attempts, note.error)
        for e in await _side_entries(redis, limit=side_scan)
    ]
    retrying = sorted(notes.values(), key=lambda r: r.entry_id)  # the alerts' notes
    return DeliveryReport(
        int(queued), pending, tuple(retrying), tuple(dead), int(dead_total), tuple(side)
    )


async def _side_entries(redis: Redis, *, limit: int) -> list[SideEntry]:
    """The side messages among the outbox's first `limit` entries, oldest first (a bounded scan
    in pages of 500: side messages are few beside a fan-out's alerts)."""
    found: list[SideEntry] = []
    start, seen = "-", 0
    while seen < limit:
        batch = await redis.xrange(keys.outbox(), min=start, max="+", count=min(500, limit - seen))
        if not batch:
            break
        seen += len(batch)
        for entry_id, raw in batch:
            if b"side" in raw or "side" in raw:
                entry = decode_entry(_text(entry_id), raw)
                if isinstance(entry, SideEntry):
                    found.append(entry)
        start = "(" + _text(batch[-1][0])
    return found
