"""The delivery bench's idle part (`python -m bench delivery`, part 3): what a quiet bot costs —
30 surfaces polled at the default interval from an unchanged all-operational loopback page, 10,000
subscriptions, the real `Delivery` with nothing to do — in CPU and in AOF growth, measured over a
window and scaled to an hour. IO: the private redis-server of the caller, a `ServerThread` page.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from bench.bench_watch import DEFAULT_INTERVAL, CountingSink, http_client, serve
from bench.common import (
    OPERATIONAL,
    ServerThread,
    as_bytes,
    bench_catalog,
    fixture_json,
    heading,
    server_counters,
    table,
    with_fake_components,
)
from bot.chat.ports import ChatSender
from bot.core.model import Platform
from bot.delivery.engine import Delivery, DeliveryConfig, DeliveryMetrics
from bot.ops import heap
from bot.store.subscriptions import SubscriptionStore
from bot.store.surfaces import SurfaceStore
from bot.watch.watcher import Watcher

EXTRA_SURFACES = 24  # + the catalog's 6 official Claude surfaces = 30
WARMUP_POLLS = 2


@dataclass(frozen=True, slots=True)
class Idle:
    seconds: float  # the measured window
    surfaces: int
    subscriptions: int
    polls: int
    loop_cpu: float  # CPU seconds of the event loop's thread over the window
    poll_cpu: float  # ... of which inside the polls
    commands: int  # redis-server commands over the window (INFO excluded)
    aof: int  # bytes the AOF grew by over the window
    redis_cpu: float

    def per_hour(self, value: float) -> float:
        return value * 3600.0 / self.seconds


async def aof_size(redis: Redis) -> int:
    """The AOF's current size in bytes (`INFO persistence`), 0 when AOF is off."""
    info = await redis.info("persistence")
    return int(info.get("aof_current_size", 0))


Seed = Callable[[SubscriptionStore, int], Awaitable[None]]  # subscribes n channels


async def idle_run(redis: Redis, subscriptions: int, *, window: float, seed: Seed) -> Idle:
    """Seed `subscriptions` (by `seed`), run the watcher's polls of one unchanged page with 30
    surfaces every DEFAULT_INTERVAL and an idle `Delivery`, and measure `window` seconds after a
    warm-up. Real clock, real waits: this is idle time."""
    await redis.flushdb()
    await seed(SubscriptionStore(redis), subscriptions)
    with ServerThread() as page:
        catalog = bench_catalog(page.url, extra_surfaces=EXTRA_SURFACES)
        surfaces = sum(1 for s in catalog.surfaces_of("claude") if s.official)
        serve(page, as_bytes(with_fake_components(fixture_json(OPERATIONAL), EXTRA_SURFACES)))
        store = SurfaceStore(redis)
        senders: Mapping[Platform, ChatSender] = {}  # idle: nothing is ever sent
        delivery = Delivery(
            redis,
            senders,
            store,
            SubscriptionStore(redis, claude_surfaces=catalog.claude_surfaces()),
            catalog,
            config=DeliveryConfig(),
            clock=lambda: datetime.now(UTC),
            consumer="bench-idle",
            metrics=DeliveryMetrics.create(CollectorRegistry()),  # one per run, not the global
        )
        stop = asyncio.Event()
        engine = asyncio.create_task(delivery.run(stop))
        async with http_client() as client:
            watcher = Watcher(
                catalog=catalog,
                store=store,
                client=client,
                sink=CountingSink(),
                clock=lambda: datetime.now(UTC),
                poll_interval=DEFAULT_INTERVAL,
            )
            try:
                for _ in range(WARMUP_POLLS):  # first sight recorded; steady from here
                    await watcher.poll_page("claude", hinted=True)
                    await asyncio.sleep(0.2)
                await asyncio.sleep(2.0)  # the engine's first reads and beats
                heap.settle()  # as `aistatus run` does once started
                loop0, aof0 = time.thread_time(), await aof_size(redis)
                srv0 = await server_counters(redis)
                started = time.monotonic()
                polls, poll_cpu = 0, 0.0
                next_poll = started
                while (now := time.monotonic()) < started + window:
                    if now >= next_poll:
                        t0 = time.thread_time()
                        await watcher.poll_page("claude")
                        poll_cpu += time.thread_time() - t0
                        polls += 1
                        next_poll += DEFAULT_INTERVAL
                    await asyncio.sleep(max(0.0, min(next_poll, started + window) - now))
                loop_cpu = time.thread_time() - loop0
                srv = await server_counters(redis) - srv0
                aof = await aof_size(redis) - aof0
                seconds = time.monotonic() - started
            finally:
                stop.set()
                async with asyncio.timeout(30):
                    await engine
    return Idle(
        seconds, surfaces, subscriptions, polls, loop_cpu, poll_cpu, srv.commands, aof, srv.cpu
    )


def print_idle(idle: Idle) -> None:
    heading(
        f"delivery: idle — {idle.surfaces} surfaces polled every {DEFAULT_INTERVAL:g} s, "
        f"{idle.subscriptions:,} subscriptions"
    )
    print(
        table(
            ["measured", "over the window", "per hour (scaled)"],
            [
                ["window", f"{idle.seconds:.0f} s, {idle.polls} polls", "3600 s"],
                [
                    "bot CPU (event-loop thread)",
                    f"{idle.loop_cpu:.3f} s",
                    f"{idle.per_hour(idle.loop_cpu):.1f} s",
                ],
                [
                    "  of which polls",
                    f"{idle.poll_cpu:.3f} s",
                    f"{idle.per_hour(idle.poll_cpu):.1f} s",
                ],
                [
                    "  of which the rest (delivery engine idle)",
                    f"{idle.loop_cpu - idle.poll_cpu:.3f} s",
                    f"{idle.per_hour(idle.loop_cpu - idle.poll_cpu):.1f} s",
                ],
                [
                    "redis-server commands",
                    f"{idle.commands:,}",
                    f"{idle.per_hour(idle.commands):,.0f}",
                ],
                [
                    "redis-server CPU",
                    f"{idle.redis_cpu:.3f} s",
                    f"{idle.per_hour(idle.redis_cpu):.1f} s",
                ],
                ["AOF growth", f"{idle.aof:,} B", f"{idle.per_hour(idle.aof) / 1e6:.2f} MB"],
            ],
        )
    )
    print(
        f"The page serves the recorded all-operational summary with {EXTRA_SURFACES} extra "
        "components, unchanged (304s); the watcher's polls run on the\nreal clock every "
        f"{DEFAULT_INTERVAL:g} s (the Settings default) beside an idle Delivery.run "
        "(DeliveryConfig defaults, no chat calls).\nPer hour = the window's figure x 3600 / "
        "window: a measurement of the window, scaled, not an hour measured.\nCPU is "
        "time.thread_time() of the event-loop thread (the page server runs on its own thread)."
    )
