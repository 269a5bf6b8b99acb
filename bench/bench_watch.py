"""`python -m bench watch`: the watch loop's cost (CPU per poll and per surface, Redis round trips
per poll checked on both sides) and its end-to-end detection latency under the real scheduler.
IO: a private redis-server, a loopback status page, the real Watcher and scheduler."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from prometheus_client import REGISTRY
from redis.asyncio import Redis

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
    secs,
    server_counters,
    table,
    us,
    with_fake_components,
)
from bot.app import build_bot
from bot.clock import ManualClock
from bot.core.model import Transition, decode_json
from bot.settings import Settings
from bot.store import keys
from bot.store.surfaces import SurfaceStore
from bot.watch.scheduler import build_scheduler
from bot.watch.watcher import Watcher

DEFAULT_INTERVAL = float(Settings.model_fields["poll_interval"].default)  # 15 s
WARMUP_POLLS = 3  # one full payload cycle: loads the scripts, opens the connections
SEED = 20260922


class CountingSink:
    """A sink that only counts what the watcher publishes (the bench measures the watcher)."""

    def __init__(self) -> None:
        self.published = 0

    async def publish(self, transitions: Sequence[Transition]) -> None:
        self.published += len(transitions)


def http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=2.0))


def serve(page: ServerThread, payload: bytes) -> float:
    """Set the summary on the server thread; returns the wall time (epoch s) it took effect."""

    def set_it() -> float:
        page.server.set_summary(payload)
        return time.time()

    return page.call(set_it)


# -- 1 and 2: cost per poll -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PollCost:
    scenario: str
    surfaces: int
    polls: int
    thread_cpu: float  # seconds per poll, the watcher's thread only
    process_cpu: float  # seconds per poll, the whole bench process (page server thread included)
    wall: float  # seconds per poll, median
    wall_p99: float
    round_trips: float  # per poll, counted by SurfaceStore
    scripts: float  # EVALSHA/EVAL per poll, counted by redis-server
    commands: float  # every command per poll, counted by redis-server
    redis_cpu: float  # redis-server CPU seconds per poll
    transitions: float  # recorded per poll
    not_modified: int
    claimed: int


async def measure_polls(
    redis: Redis, page: ServerThread, *, extra: int, polls: int, changing: bool
) -> PollCost:
    """`polls` calls of `Watcher.poll_page("claude")` on a fresh Redis, every poll in a new slot
    (the manual clock moves one interval each time); `changing` cycles the page between all
    operational / incident investigating / recovered, otherwise it stays on the open incident
    (304s)."""
    await redis.flushall()
    catalog = bench_catalog(page.url, extra_surfaces=extra)
    payloads = [
        as_bytes(with_fake_components(fixture_json(name), extra))
        for name in (OPERATIONAL, INVESTIGATING, RECOVERED)
    ]
    surfaces = sum(1 for s in catalog.surfaces_of("claude") if s.official)
    clock = ManualClock(datetime(2026, 9, 22, 1, 5, tzinfo=UTC))
    sink = CountingSink()
    async with http_client() as client:
        store = SurfaceStore(redis)
        watcher = Watcher(
            catalog=catalog,
            store=store,
            client=client,
            sink=sink,
            clock=clock,
            poll_interval=DEFAULT_INTERVAL,
        )

        def payload_of(i: int) -> bytes:
            return payloads[i % 3] if changing else payloads[1]

        for i in range(WARMUP_POLLS):
            serve(page, payload_of(i))
            await watcher.poll_page("claude")
            clock.advance(DEFAULT_INTERVAL)
        sink.published = 0
        rt0, srv0 = store.round_trips, await server_counters(redis)
        thread_cpu = process_cpu = 0.0
        walls: list[float] = []
        not_modified = claimed = 0
        for i in range(WARMUP_POLLS, WARMUP_POLLS + polls):
            if changing:
                serve(page, payload_of(i))
            t0, p0, w0 = time.thread_time(), time.process_time(), time.perf_counter()
            report = await watcher.poll_page("claude")
            walls.append(time.perf_counter() - w0)
            thread_cpu += time.thread_time() - t0
            process_cpu += time.process_time() - p0
            not_modified += report.not_modified
            claimed += report.claimed
            clock.advance(DEFAULT_INTERVAL)
        rt, srv = store.round_trips - rt0, await server_counters(redis) - srv0
    return PollCost(
        scenario="page changes every poll (200)" if changing else "unchanged, open incident (304)",
        surfaces=surfaces,
        polls=polls,
        thread_cpu=thread_cpu / polls,
        process_cpu=process_cpu / polls,
        wall=median(walls),
        wall_p99=percentile(walls, 99),
        round_trips=rt / polls,
        scripts=srv.scripts / polls,
        commands=srv.commands / polls,
        redis_cpu=srv.cpu / polls,
        transitions=sink.published / polls,
        not_modified=not_modified,
        claimed=claimed,
    )


def print_costs(costs: Sequence[PollCost]) -> None:
    heading("watch: cost of one status-page poll (Watcher.poll_page, real Redis, loopback page)")
    print(
        table(
            [
                "scenario",
                "surfaces",
                "polls",
                "CPU/poll",
                "CPU/surface",
                "CPU/poll (process)",
                "wall/poll p50",
                "wall p99",
                "transitions/poll",
            ],
            [
                [
                    c.scenario,
                    c.surfaces,
                    c.polls,
                    ms(c.thread_cpu),
                    us(c.thread_cpu / c.surfaces),
                    ms(c.process_cpu),
                    ms(c.wall),
                    ms(c.wall_p99),
                    f"{c.transitions:.2f}",
                ]
                for c in costs
            ],
        )
    )
    print(
        "CPU/poll: time.thread_time() of the watcher's thread (fetch + parse + assess + decide +"
        " store client);\nCPU/poll (process): time.process_time() of this whole process, which"
        " also serves the loopback page\non its own thread. redis-server's CPU is not in either"
        " (see below). CPU/surface = CPU/poll / surfaces."
    )
    heading("watch: Redis round trips per poll (client count vs redis-server INFO commandstats)")
    print(
        table(
            [
                "scenario",
                "surfaces",
                "round trips/poll",
                "EVALSHA+EVAL/poll",
                "commands/poll",
                "redis-server CPU/poll",
            ],
            [
                [
                    c.scenario,
                    c.surfaces,
                    f"{c.round_trips:.2f}",
                    f"{c.scripts:.2f}",
                    f"{c.commands:.2f}",
                    us(c.redis_cpu),
                ]
                for c in costs
            ],
        )
    )
    for scenario in dict.fromkeys(c.scenario for c in costs):
        few, many = sorted((c for c in costs if c.scenario == scenario), key=lambda c: c.surfaces)
        extra = many.surfaces - few.surfaces
        marginal = (many.thread_cpu - few.thread_cpu) / extra
        print(
            f"{scenario}: round trips {many.surfaces} vs {few.surfaces} surfaces ="
            f" x{many.round_trips / few.round_trips:.2f}; CPU per extra surface {us(marginal)},"
            f" fixed CPU per poll {ms(few.thread_cpu - few.surfaces * marginal)}"
        )
    odd = [c for c in costs if c.claimed != c.polls]
    for c in odd:
        print(f"warning: {c.scenario}/{c.surfaces}: only {c.claimed}/{c.polls} polls claimed")
    for c in costs:
        if c.scenario.endswith("(304)") and c.not_modified != c.polls:
            print(f"warning: {c.surfaces} surfaces: only {c.not_modified}/{c.polls} polls got 304")


# -- 3: detection latency under the real scheduler -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Detection:
    latency: float  # seconds: recorded in the stream - page changed
    wait: float  # seconds: the poll that saw it started - page changed
    work: float  # seconds: recorded - that poll started
    transitions: int


def polls_by_outcome() -> dict[str, float]:
    out = {}
    for outcome in ("ok", "not_modified", "error", "skipped"):
        value = REGISTRY.get_sample_value(
            "aistatus_polls_total", {"provider": "claude", "outcome": outcome}
        )
        out[outcome] = value or 0.0
    return out


async def next_transitions(
    redis: Redis, after: str, deadline: float
) -> tuple[str, list[tuple[str, Transition]]]:
    """Block on the provider's stream (XREAD, 1 s at a time: the client's socket timeout is 5 s)
    until entries after `after` arrive. Raises: TimeoutError at `deadline` (monotonic)."""
    key = keys.transitions("claude")
    while time.monotonic() < deadline:
        reply = await redis.xread({key: after}, count=1000, block=1000)
        if reply:
            entries = [
                (eid.decode(), decode_json(Transition, fields[b"t"])) for eid, fields in reply[0][1]
            ]
            return entries[-1][0], entries
    raise TimeoutError("no transition recorded in time")


async def measure_latency(
    redis: Redis, page: ServerThread, *, interval: float, changes: int
) -> tuple[list[Detection], dict[str, float]]:
    """Run the real scheduler with the real clock; change the page at random moments (seeded);
    time each change until its transitions are in the provider's stream."""
    await redis.flushall()
    rng = random.Random(SEED)
    calm = as_bytes(fixture_json(OPERATIONAL))
    incident = as_bytes(fixture_json(INVESTIGATING))
    page.call(page.server.set_incidents, incidents_after(fixture_json(INVESTIGATING)))
    serve(page, calm)
    catalog = bench_catalog(page.url)
    settings = Settings(_env_file=None, poll_interval=interval)  # type: ignore[call-arg]
    before = polls_by_outcome()
    detections: list[Detection] = []
    async with http_client() as client:
        bot = build_bot(settings, catalog, redis, client)
        scheduler = build_scheduler(bot.watcher, probes=False)
        scheduler.start()
        try:
            await _first_poll_done(before["ok"], within=interval * 2 + 10)
            last = await redis.xrevrange(keys.transitions("claude"), count=1)
            after = last[0][0].decode() if last else "0-0"
            for k in range(changes):
                await asyncio.sleep(rng.uniform(0, interval))  # a random phase of the schedule
                to_incident = k % 2 == 0
                changed = serve(page, incident if to_incident else calm)
                after, entries = await next_transitions(
                    redis, after, time.monotonic() + 3 * interval + 10
                )
                recorded = int(entries[0][0].split("-")[0]) / 1000  # the stream id is ms
                started = entries[0][1].at.timestamp()
                d = Detection(
                    recorded - changed, started - changed, recorded - started, len(entries)
                )
                detections.append(d)
                print(
                    f"  change {k + 1:2d}/{changes}: page -> "
                    f"{'incident' if to_incident else 'all operational':15s}"
                    f" recorded after {d.latency:6.2f} s ({d.transitions} transitions)",
                    flush=True,
                )
        finally:
            scheduler.shutdown(wait=False)
            await _drain()
    after_counts = polls_by_outcome()
    return detections, {k: after_counts[k] - before[k] for k in before}


async def _first_poll_done(ok_before: float, *, within: float) -> None:
    """Wait until the scheduler's first poll has committed (bounded).
    Raises: TimeoutError after `within` seconds."""
    for _ in range(int(within / 0.05) + 1):
        if polls_by_outcome()["ok"] > ok_before:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the scheduler's first poll did not happen")


async def _drain() -> None:
    """Let a poll the scheduler already started finish before the clients close (bounded)."""
    pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    if pending:
        await asyncio.wait(pending, timeout=10)


def print_latency(
    detections: Sequence[Detection], polls: dict[str, float], *, interval: float, cost: float
) -> None:
    label = "the default" if interval == DEFAULT_INTERVAL else "NOT the default: --quick"
    heading(f"watch: detection latency, real scheduler, poll interval {interval:g} s ({label})")
    lat = [d.latency for d in detections]
    wait = [d.wait for d in detections]
    work = [d.work for d in detections]
    jitter = min(2.0, interval / 10)
    print(
        table(
            ["measure", "changes", "median", "p99", "max"],
            [
                [
                    "page changed -> transition recorded",
                    len(lat),
                    secs(median(lat)),
                    secs(percentile(lat, 99)),
                    secs(max(lat)),
                ],
                [
                    "  of which: waiting for the next poll",
                    len(wait),
                    secs(median(wait)),
                    secs(percentile(wait, 99)),
                    secs(max(wait)),
                ],
                [
                    "  of which: that poll's work (wall)",
                    len(work),
                    ms(median(work), 1),
                    ms(percentile(work, 99), 1),
                    ms(max(work), 1),
                ],
                [
                    "expected (interval/2 + poll cost)",
                    "",
                    secs(interval / 2 + cost),
                    secs(0.99 * interval + jitter + cost),
                    "",
                ],
                [
                    "  with the jitter (interval/2 + jitter/2 + cost)",
                    "",
                    secs(interval / 2 + jitter / 2 + cost),
                    secs(0.99 * interval + jitter + cost),
                    "",
                ],
            ],
        )
    )
    total = sum(polls.values())
    print(
        f"polls during the run: {total:.0f} ({polls['ok']:.0f} changed, "
        f"{polls['not_modified']:.0f} unchanged/304, {polls['error']:.0f} errors, "
        f"{polls['skipped']:.0f} skipped: their slot was already claimed)"
    )
    print(
        f"The scheduler adds up to {jitter:g} s of jitter to each poll and APScheduler 3 counts the"
        " next poll from the jittered one,\nso polls are interval + U(0, jitter) apart; each change"
        " comes U(0, interval) after the poll that saw the last one.\nTimes: the wall clock at"
        " the change vs the stream entry id (redis-server's clock, same host).\nWith fewer than"
        " 100 changes p99 is the slowest one."
    )


# -- entry point ---------------------------------------------------------------------------------


async def main(*, quick: bool) -> None:
    polls = 50 if quick else 500
    interval = 1.0 if quick else DEFAULT_INTERVAL
    changes = 5 if quick else 20
    print(
        f"bench watch: {polls} polls per scenario; latency: {changes} page changes at a"
        f" {interval:g} s interval{' (quick)' if quick else ''}",
        flush=True,
    )
    async with private_redis() as redis:
        with ServerThread() as page:
            page.call(page.server.set_incidents, incidents_after(fixture_json(INVESTIGATING)))
            costs = []
            for extra in (0, 24):
                for changing in (True, False):
                    costs.append(
                        await measure_polls(
                            redis, page, extra=extra, polls=polls, changing=changing
                        )
                    )
            print_costs(costs)
            heading(f"watch: detection latency, running for about {changes * interval:.0f} s")
            detections, outcomes = await measure_latency(
                redis, page, interval=interval, changes=changes
            )
            print_latency(detections, outcomes, interval=interval, cost=costs[0].wall)


def run(*, quick: bool) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(quick=quick))
