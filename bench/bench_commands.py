"""`python -m bench commands`: `/aistatus` command handling time per verb, and the fan-out lookup
of the channels a transition may concern, against a real Redis holding 10,000 subscriptions.
IO: a private redis-server, the real stores, `bot.chat.actions.handle`."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis

from bench.bench_watch import DEFAULT_INTERVAL, CountingSink, http_client, serve
from bench.common import (
    INVESTIGATING,
    OPERATIONAL,
    RECOVERED,
    ServerThread,
    as_bytes,
    bench_catalog,
    fixture_json,
    heading,
    incidents_after,
    median,
    ms,
    percentile,
    private_redis,
    table,
)
from bot.catalog_file import load_catalog
from bot.chat.actions import Services, handle
from bot.clock import ManualClock
from bot.core.catalog import Catalog
from bot.core.model import ChannelRef, CommandContext, Observation, Platform, Status
from bot.store.subscriptions import SubscriptionStore
from bot.store.surfaces import SurfaceStore
from bot.watch.watcher import Watcher

SEED = 20260923
LOOKUP_BUDGET = 60.0  # seconds per fan-out row at most (full run)
MIN_LOOKUPS = 20
SEED_BATCH = 200  # subscriptions written concurrently while seeding
CHANNELS_PER_WORKSPACE = 20
HISTORY_POLLS = 60  # polls of the loopback page before the bench: 20 outages in each history
VERBS: tuple[tuple[str, str], ...] = (
    ("status", "status"),
    ("status <surface>", "status api"),
    ("subscribe", "subscribe claude.ai api --min partial"),
    ("unsubscribe", "unsubscribe api"),
    ("list", "list"),
    ("mute", "mute 2h"),
    ("unmute", "unmute"),
    ("report", "report claude.ai"),
    ("history", "history"),
    ("help", "help"),
)


class CrowdCounter:
    """`Services.on_crowd` for the bench: counts the observations instead of feeding a watcher."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, observation: Observation) -> None:
        self.calls += 1


def channels(count: int) -> list[ChannelRef]:
    """`count` channels over Slack workspaces and Discord guilds, 20 per workspace."""
    out = []
    for i in range(count):
        platform = Platform.SLACK if i % 3 else Platform.DISCORD
        ws = f"T{i // CHANNELS_PER_WORKSPACE:06d}" if platform is Platform.SLACK else f"{i // 20}"
        out.append(ChannelRef(platform, ws, f"C{i:08d}"))
    return out


async def seed_subscriptions(
    store: SubscriptionStore, catalog: Catalog, chans: Sequence[ChannelRef], now: datetime
) -> float:
    """Subscribe every channel through the store's API, SEED_BATCH at a time; a seeded mix of
    `all`, one to three Claude surfaces and backups, and minimum severities. Returns seconds."""
    rng = random.Random(SEED)
    claude = catalog.claude_surfaces()
    others = [s for s in catalog.surfaces if s not in claude]
    severities = [None, Status.DEGRADED, Status.PARTIAL_OUTAGE, Status.MAJOR_OUTAGE]
    started = time.perf_counter()

    async def one(ch: ChannelRef) -> None:
        every = rng.random() < 0.4
        picked = rng.sample(claude, rng.randint(1, 3)) if not every else []
        if rng.random() < 0.2:
            picked.append(rng.choice(others))
        await store.subscribe(
            ch,
            picked,
            all_claude=every,
            min_severity=rng.choice(severities),
            maintenance=rng.random() < 0.1 or None,
            user="U0SEED",
            now=now,
        )

    for start in range(0, len(chans), SEED_BATCH):
        await asyncio.gather(*(one(ch) for ch in chans[start : start + SEED_BATCH]))
    return time.perf_counter() - started


async def seed_history(redis: Redis, page: ServerThread, clock: ManualClock) -> int:
    """Real history and states: the watcher polls the loopback page through HISTORY_POLLS
    operational / incident / recovered cycles, ending on an open incident (so `status <surface>`
    ranks backups). Returns the transitions recorded."""
    catalog = bench_catalog(page.url)
    page.call(page.server.set_incidents, incidents_after(fixture_json(INVESTIGATING)))
    payloads = [as_bytes(fixture_json(n)) for n in (OPERATIONAL, INVESTIGATING, RECOVERED)]
    sink = CountingSink()
    async with http_client() as client:
        w = Watcher(
            catalog=catalog, store=SurfaceStore(redis), client=client, sink=sink, clock=clock
        )
        for i in range(HISTORY_POLLS + 2):  # + 2: stop on the incident page
            serve(page, payloads[i % 3])
            await w.poll_page("claude")
            clock.advance(DEFAULT_INTERVAL)
    return sink.published


@dataclass(frozen=True, slots=True)
class VerbTiming:
    verb: str
    text: str
    calls: int
    p50: float
    p99: float
    cpu: float  # mean CPU seconds per call, this thread
    errors: int


async def time_verb(
    label: str,
    text: str,
    svc: Services,
    chans: Sequence[ChannelRef],
    clock: ManualClock,
    calls: int,
    rng: random.Random,
) -> VerbTiming:
    """`calls` calls of `handle(text)` from random seeded channels and users, the clock moving 1 s
    per call (crowd reports age out of their window as they would)."""
    walls: list[float] = []
    cpu = 0.0
    errors = 0
    for i in range(calls):
        ch = rng.choice(chans)
        ctx = CommandContext(ch, f"U{rng.randrange(1_000_000):07d}", f"user{i}", clock())
        t0, w0 = time.thread_time(), time.perf_counter()
        reply = await handle(text, ctx, svc)
        walls.append(time.perf_counter() - w0)
        cpu += time.thread_time() - t0
        errors += reply.error
        clock.advance(1)
    return VerbTiming(label, text, calls, median(walls), percentile(walls, 99), cpu / calls, errors)


@dataclass(frozen=True, slots=True)
class Lookup:
    surfaces: tuple[str, ...]
    lookups: int
    p50: float
    p99: float
    channels: int


async def time_candidates(
    store: SubscriptionStore, surfaces: tuple[str, ...], lookups: int, budget: float
) -> Lookup:
    """Up to `lookups` fan-out lookups, stopping early (after at least MIN_LOOKUPS) once
    `budget` seconds are spent: a lookup over thousands of channels takes a while."""
    walls: list[float] = []
    found = 0
    started = time.perf_counter()
    for i in range(lookups):
        if i >= MIN_LOOKUPS and time.perf_counter() - started > budget:
            break
        w0 = time.perf_counter()
        subs = await store.candidates(surfaces)
        walls.append(time.perf_counter() - w0)
        found = len(subs)
    return Lookup(surfaces, len(walls), median(walls), percentile(walls, 99), found)


async def main(*, quick: bool) -> None:
    subscriptions = 1_000 if quick else 10_000
    calls = 100 if quick else 1_000
    lookups = 20 if quick else 200
    print(
        f"bench commands: {subscriptions:,} subscriptions, {calls:,} calls per verb, "
        f"{lookups} fan-out lookups{' (quick: smaller than the full run)' if quick else ''}",
        flush=True,
    )
    clock = ManualClock(datetime(2026, 9, 22, 0, 30, tzinfo=UTC))
    async with private_redis() as redis:
        with ServerThread() as page:
            recorded = await seed_history(redis, page, clock)
        catalog = load_catalog()  # the shipped one: commands read Redis only, never a page
        crowd = CrowdCounter()
        svc = Services.over(redis, catalog, on_crowd=crowd)
        subs = svc.subscriptions
        chans = channels(subscriptions)
        took = await seed_subscriptions(subs, catalog, chans, clock())
        print(
            f"seeded {recorded} transitions ({HISTORY_POLLS + 2} polls) and "
            f"{subscriptions:,} subscriptions in {took:.1f} s "
            f"({took / subscriptions * 1000:.2f} ms each, {SEED_BATCH} at a time)",
            flush=True,
        )
        rng = random.Random(SEED)
        for _, text in VERBS:  # warm-up: scripts loaded, connections open
            await handle(text, CommandContext(chans[0], "U0WARM", "warm", clock()), svc)
        timings = []
        for label, text in VERBS:
            timings.append(await time_verb(label, text, svc, chans, clock, calls, rng))
        found = [
            await time_candidates(subs, surfaces, lookups, 10.0 if quick else LOOKUP_BUDGET)
            for surfaces in (("claude.ai", "mobile"), ("api",), ("chatgpt",))
        ]
    heading(
        f"commands: bot.chat.actions.handle per verb ({subscriptions:,} subscriptions in Redis)"
    )
    print(
        table(
            ["verb", "command text", "calls", "wall p50", "wall p99", "CPU/call", "errors"],
            [[t.verb, t.text, t.calls, ms(t.p50), ms(t.p99), ms(t.cpu), t.errors] for t in timings],
        )
    )
    print(
        "wall: time.perf_counter() around handle() (parse + Redis + reply building); CPU/call:"
        " time.thread_time(),\nthis process only (redis-server excluded). errors: replies with"
        f" error=True. on_crowd was called {crowd.calls} times (a counting no-op)."
    )
    heading(f"commands: fan-out lookup SubscriptionStore.candidates ({subscriptions:,} channels)")
    print(
        table(
            [
                "transition of",
                "lookups",
                "wall p50",
                "wall p99",
                "channels returned",
                "per channel",
            ],
            [
                [
                    " + ".join(f.surfaces),
                    f.lookups,
                    ms(f.p50),
                    ms(f.p99),
                    f"{f.channels:,}",
                    f"{f.p50 / max(1, f.channels) * 1e6:.1f} µs",
                ]
                for f in found
            ],
        )
    )
    print(
        "channels returned: candidates before `skip_reason` (severity, mute) filters them. A row"
        f" stops early after {LOOKUP_BUDGET:g} s\n(lookups < 100: p99 is the slowest lookup)."
    )


def run(*, quick: bool) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(quick=quick))
