"""Redis store of surface state: claim a poll slot, compare-and-set commit of decided states with
their transitions (history + stream), exactly once across replicas. IO; at most two round trips per
poll of one provider (claim.lua, commit.lua), whatever the number of surfaces."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis

from bot.core.model import Signal, Status, SurfaceState, Transition, decode_json, encode_json
from bot.store import keys
from bot.store.connect import run_acknowledged

log = logging.getLogger(__name__)

_LUA = resources.files("bot.store").joinpath("lua")


@dataclass(frozen=True, slots=True)
class PageCache:
    """The last good summary.json of a provider and its validators: any replica can send a
    conditional GET and, on a 304, still re-assess the body it did not download."""

    etag: str | None = None
    last_modified: str | None = None
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """What a won poll slot hands the poller: every asked surface's committed state (a default
    `SurfaceState(surface)` when never stored) and, when asked, the page cache (None if empty)."""

    states: dict[str, SurfaceState]
    page: PageCache | None = None


@dataclass(frozen=True, slots=True)
class Held:
    """A page poll refused: the page asked (429 Retry-After) not to be polled before `until`."""

    until: datetime


@dataclass(frozen=True, slots=True)
class Write:
    """One compare-and-set: store `state` if the surface is still at `expected_version`, and record
    `transition` only then. `state.version` must be `expected_version + 1`."""

    surface: str
    expected_version: int
    state: SurfaceState
    transition: Transition | None = None


class SurfaceStore:
    """Surface states of every provider in Redis, keyed with the provider's hash tag.

    `round_trips` counts the network round trips its methods made (a NOSCRIPT reload after a
    server restart adds one more, once per script), for the benchmark's round-trips-per-poll.
    """

    def __init__(
        self, redis: Redis, *, history_length: int = 1000, stream_maxlen: int = 10_000
    ) -> None:
        if history_length < 1 or stream_maxlen < 1:
            raise ValueError("history_length and stream_maxlen must be positive")
        self._redis = redis
        self._history_length = history_length
        self._stream_maxlen = stream_maxlen
        self._claim = redis.register_script(_LUA.joinpath("claim.lua").read_text("utf-8"))
        self._commit = redis.register_script(_LUA.joinpath("commit.lua").read_text("utf-8"))
        self.round_trips = 0

    # -- poll path: claim, then commit ---------------------------------------------------------

    async def claim(
        self,
        provider: str,
        job: str,
        slot_index: int,
        ttl_ms: int,
        surfaces: Sequence[str],
        *,
        with_page: bool = False,
        now: datetime | None = None,
    ) -> Claim | Held | None:
        """Claim (`SET NX PX`) this interval slot of `job` for `provider` and read the surfaces'
        states in the same round trip. None when another replica already holds the slot;
        `Held` for a page poll (`with_page`) while the page's Retry-After hold (`hold`) lasts
        past `now`."""
        if ttl_ms < 1:
            raise ValueError("ttl_ms must be positive")
        script_keys = claim_keys(provider, job, slot_index, surfaces)
        now_ms = int(now.timestamp() * 1000) if now is not None else 0
        self.round_trips += 1
        reply = await self._claim(
            keys=script_keys, args=[ttl_ms, uuid.uuid4().hex, "1" if with_page else "0", now_ms]
        )
        if reply is None:
            return None
        if reply[0] in (b"held", "held"):
            return Held(datetime.fromtimestamp(int(reply[1]) / 1000, tz=UTC))
        page_fields, flat = reply[0], reply[1:]
        seen = _decode_seen(page_fields[-1] if page_fields else None)
        states = {
            surface: with_seen(
                self._decode_state(
                    provider, surface, flat[2 * i], flat[2 * i + 1], script_keys[2 + i]
                ),
                seen,
            )
            for i, surface in enumerate(surfaces)
        }
        return Claim(states=states, page=_decode_page(page_fields) if with_page else None)

    async def hold(self, provider: str, until: datetime) -> None:
        """Every replica's page polls of `provider` wait until `until` (its Retry-After)."""
        self.round_trips += 1
        await self._redis.hset(keys.etag(provider), "held_until", int(until.timestamp() * 1000))

    async def commit(
        self, provider: str, writes: Sequence[Write], *, page: PageCache | None = None
    ) -> list[Transition]:
        """`commit_applied`, keeping only the transitions actually recorded."""
        recorded, _ = await self.commit_applied(provider, writes, page=page)
        return recorded

    async def commit_applied(
        self,
        provider: str,
        writes: Sequence[Write],
        *,
        page: PageCache | None = None,
        seen: datetime | None = None,
    ) -> tuple[list[Transition], list[bool]]:
        """Apply every write whose surface is still at its expected version, recording its
        transition in the history and the provider's stream in the same atomic step; store `page`
        when given, and `seen`: the poll time of the surfaces the poll observed but did not write
        because only their official signal's poll time moved (every read of a state applies it,
        `with_seen`). Returns the transitions actually recorded, in write order (a write another
        replica beat is skipped and its transition is not recorded).
        Raises: ValueError when a write's state does not match its surface or expected version.
        """
        if not writes and page is None and seen is None:
            return [], []
        args = commit_args(
            provider,
            writes,
            page=page,
            history_length=self._history_length,
            stream_maxlen=self._stream_maxlen,
            token=uuid.uuid4().hex,
            seen=seen,
        )
        self.round_trips += 1
        # On a replica too before it counts (Sentinel): a failover cannot undo what was alerted.
        reply = await run_acknowledged(
            self._redis, self._commit, commit_keys(provider, [w.surface for w in writes]), args
        )
        recorded: list[Transition] = []
        applied: list[bool] = []
        for i, w in enumerate(writes):
            outcome = int(reply[2 * i])
            applied.append(outcome != 0)
            if outcome == 0:
                log.debug(
                    "commit skipped: %s/%s moved past version %d (another replica won)",
                    provider,
                    w.surface,
                    w.expected_version,
                )
            elif w.transition is not None:
                recorded.append(w.transition)
        return recorded, applied

    # -- readers ---------------------------------------------------------------------------------

    async def read(self, provider: str, surfaces: Sequence[str]) -> dict[str, SurfaceState]:
        """The committed state of each surface of `provider` (default when never stored)."""
        return await self.read_all({provider: surfaces})

    async def read_all(self, providers: Mapping[str, Sequence[str]]) -> dict[str, SurfaceState]:
        """The committed state of every surface of every provider (the catalog's mapping), keyed
        by surface id, in one pipelined round trip."""
        pairs = [(p, s) for p, surfaces in providers.items() for s in surfaces]
        if not pairs:
            return {}
        providers_read = sorted({p for p, _ in pairs})
        async with self._redis.pipeline(transaction=False) as pipe:
            for p, s in pairs:
                pipe.hmget(keys.state(p, s), "v", "s")
            for p in providers_read:
                pipe.hget(keys.etag(p), "seen")
            self.round_trips += 1
            replies = await pipe.execute()
        seen = {
            p: _decode_seen(raw)
            for p, raw in zip(providers_read, replies[len(pairs) :], strict=True)
        }
        return {
            s: with_seen(self._decode_state(p, s, v, js, keys.state(p, s)), seen[p])
            for (p, s), (v, js) in zip(pairs, replies[: len(pairs)], strict=True)
        }

    async def history(self, provider: str, surface: str, limit: int = 100) -> list[Transition]:
        """The surface's recorded transitions, newest first, at most `limit`."""
        if limit < 1:
            return []
        key = keys.history(provider, surface)
        self.round_trips += 1
        raw = await self._redis.lrange(key, 0, limit - 1)
        return [t for blob in raw if (t := _decode_transition(blob, key)) is not None]

    async def read_transitions(
        self, provider: str, after_id: str = "0-0", count: int = 100
    ) -> list[tuple[str, Transition]]:
        """Recorded transitions of `provider` after stream id `after_id`, oldest first, as
        (stream id, transition); an undecodable entry is logged and skipped."""
        key = keys.transitions(provider)
        self.round_trips += 1
        entries = await self._redis.xrange(key, min=f"({after_id}", max="+", count=count)
        out: list[tuple[str, Transition]] = []
        for entry_id, fields in entries:
            t = _decode_transition(fields.get(b"t", b""), f"{key} {_text(entry_id)}")
            if t is not None:
                out.append((_text(entry_id), t))
        return out

    # -- decoding ----------------------------------------------------------------------------------

    def _decode_state(
        self, provider: str, surface: str, v: bytes | None, blob: bytes | None, key: str
    ) -> SurfaceState:
        """A stored state; corrupt data gives a fresh state that keeps the stored version, so the
        next commit's compare-and-set still matches and overwrites it."""
        try:
            version = int(v) if v is not None else 0
        except ValueError:
            log.warning("corrupt version %r in %s: treating it as 0", v, key)
            version = 0
        if blob is None:
            return SurfaceState(surface, version=version)
        try:
            state = decode_json(SurfaceState, blob)
        except ValidationError as e:
            log.warning(
                "corrupt state in %s (%d errors, first: %s): treating %s/%s as fresh at version %d",
                key,
                e.error_count(),
                e.errors()[0]["msg"] if e.errors() else "?",
                provider,
                surface,
                version,
            )
            return SurfaceState(surface, version=version)
        if state.surface != surface or state.version != version:
            # The hash's `v` is what the CAS compares: it wins over the copy inside the JSON.
            state = dataclasses.replace(state, surface=surface, version=version)
        return state


def claim_keys(provider: str, job: str, slot_index: int, surfaces: Sequence[str]) -> list[str]:
    """KEYS of claim.lua, in its order: slot claim, page cache, one state per surface."""
    return [
        keys.slot(provider, job, slot_index),
        keys.etag(provider),
        *(keys.state(provider, s) for s in surfaces),
    ]


def commit_keys(provider: str, surfaces: Sequence[str]) -> list[str]:
    """KEYS of commit.lua, in its order: stream, page cache, then (state, history) per write."""
    out = [keys.transitions(provider), keys.etag(provider)]
    for s in surfaces:
        out += [keys.state(provider, s), keys.history(provider, s)]
    return out


def commit_args(
    provider: str,
    writes: Sequence[Write],
    *,
    page: PageCache | None,
    history_length: int,
    stream_maxlen: int,
    token: str,
    seen: datetime | None = None,
) -> list[Any]:
    """ARGV of commit.lua, in its order (see the script's header); `token` must be unique per call.
    Raises: ValueError when a write's state does not match its surface or expected version.
    """
    surfaces = [w.surface for w in writes]
    if len(set(surfaces)) != len(surfaces):
        raise ValueError(f"one write per surface per commit, got {surfaces}")
    args: list[Any] = [history_length, stream_maxlen, token, *_page_args(page)]
    for w in writes:
        _check_write(provider, w)
        args += [
            w.expected_version,
            w.state.version,
            encode_json(w.state),
            encode_json(w.transition) if w.transition is not None else b"",
        ]
    args.append(seen.isoformat() if seen is not None else "")
    return args


def with_seen(state: SurfaceState, seen: datetime | None) -> SurfaceState:
    """`state` with its official signal observed at `seen` (the page's last poll that left it
    unwritten, commit.lua) when that is newer than the stored observation; an official signal
    whose last observation was unknown keeps its own time (the poll did not see it)."""
    official = state.signals.get(Signal.OFFICIAL.value)
    if (
        seen is None
        or official is None
        or official.raw is Status.UNKNOWN
        or official.observed_at >= seen
    ):
        return state
    signals = {**state.signals, Signal.OFFICIAL.value: replace(official, observed_at=seen)}
    return replace(state, signals=signals)


def _decode_seen(raw: bytes | None) -> datetime | None:
    if raw is None:
        return None
    try:
        seen = datetime.fromisoformat(_text(raw))
    except ValueError:
        log.warning("corrupt page poll time %r: ignored", raw)
        return None
    return seen if seen.tzinfo is not None else None


def _check_write(provider: str, w: Write) -> None:
    if w.state.surface != w.surface:
        raise ValueError(f"write for {w.surface!r} carries the state of {w.state.surface!r}")
    if w.state.version != w.expected_version + 1:
        raise ValueError(
            f"{w.surface}: state version {w.state.version} is not expected {w.expected_version} + 1"
        )
    t = w.transition
    if t is not None and (t.surface != w.surface or t.provider != provider):
        raise ValueError(
            f"transition {t.id!r} is for {t.provider}/{t.surface}, not {provider}/{w.surface}"
        )


def _page_args(page: PageCache | None) -> list[Any]:
    if page is None:
        return ["0", "0", "", "0", "", "0", b""]
    out: list[Any] = ["1"]
    for value in (page.etag, page.last_modified, page.body):
        out += ["0", ""] if value is None else ["1", value]
    return out


def _decode_page(fields: Sequence[bytes | None]) -> PageCache | None:
    etag, last_modified, body = [*fields, None, None, None][:3]  # then `seen`
    if etag is None and last_modified is None and body is None:
        return None
    return PageCache(
        etag=_text(etag) if etag is not None else None,
        last_modified=_text(last_modified) if last_modified is not None else None,
        body=body,
    )


def _decode_transition(blob: bytes, where: str) -> Transition | None:
    try:
        return decode_json(Transition, blob)
    except ValidationError as e:
        log.warning("corrupt transition in %s skipped (%d errors)", where, e.error_count())
        return None


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
