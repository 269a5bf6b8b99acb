"""`python -m bench delivery`: fan-out of one alert to 10,000 Slack and Discord channels through the
real delivery engine, senders and pacing, against loopback chat APIs that add latency and enforce
the platforms' rate limits; then deliveries/s with the limits off, in 1, 2 and 4 processes.
IO: a private redis-server, a chat-server process (bench.chatservers) and worker processes.
`python -m bench.bench_delivery worker '<json>'` is one worker process (started by the bench)."""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import gc
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from bench.bench_idle import idle_run, print_idle
from bench.chatservers import (
    DISCORD_GLOBAL,
    DISCORD_ROUTE,
    DISCORD_TOKEN,
    SLACK_CHANNEL,
    SLACK_TOKEN_PREFIX,
    SLACK_WORKSPACE,
    Bucket,
    Window,
)
from bench.common import heading, median, ms, percentile, secs, server_counters, table
from bot.catalog_file import load_catalog
from bot.chat.actions import Services, handle
from bot.chat.discord.sender import DiscordSender, configure_api_base, open_rest_client
from bot.chat.ports import ChatSender
from bot.chat.slack.sender import SlackSender, slack_web_client
from bot.core.catalog import Catalog
from bot.core.model import (
    ChannelRef,
    CommandContext,
    Incident,
    Observation,
    Platform,
    Reason,
    Signal,
    Status,
    SurfaceState,
    Transition,
    TransitionKind,
)
from bot.delivery.engine import Delivery, DeliveryConfig, DeliveryMetrics
from bot.delivery.pacing import UNLIMITED
from bot.ops import heap
from bot.ops.redisproc import RedisProcess
from bot.settings import Settings
from bot.store.connect import connect
from bot.store.subscriptions import SubscriptionStore
from bot.store.surfaces import SurfaceStore, Write

LATENCY = 0.05  # seconds added by the chat servers to every call in the rate-limited run
PER_WORKSPACE = 50  # channels per Slack workspace / Discord guild
SEED_BATCH = 250  # subscriptions written concurrently while seeding
SURFACE = "api"
OUTAGE = "benchoutage1"
TARGET_RATIO = 1.25
PROCESSES = (1, 2, 4)
START_TIMEOUT = 60.0  # seconds for a child process to come up
STOP_TIMEOUT = 15.0  # seconds for a child process to exit once told to
IDLE_WINDOW = 60.0  # seconds of idle measured (scaled to an hour)
IDLE_QUICK = 15.0
PACED_WINDOW = 20.0  # seconds of a paced fan-out during which /aistatus is timed
PACED_QUICK = 6.0
# A worker process run with this set profiles its drain into "<value>.<consumer>" (cProfile).
PROFILE_ENV = "AISTATUS_BENCH_PROFILE"


@dataclass(frozen=True, slots=True)
class Load:
    """How many channels: `workspaces` Slack workspaces and as many Discord guilds, each with
    `per_workspace` channels, all subscribed to `api`."""

    workspaces: int
    per_workspace: int = PER_WORKSPACE

    @property
    def per_platform(self) -> int:
        return self.workspaces * self.per_workspace

    @property
    def total(self) -> int:
        return 2 * self.per_platform


def channels(load: Load) -> list[ChannelRef]:
    """Slack channels C<ws><n> in workspaces T<ws>, Discord channels (snowflake-like ids) in
    guilds; every channel id is unique across both platforms."""
    out: list[ChannelRef] = []
    for w in range(load.workspaces):
        for c in range(load.per_workspace):
            out.append(ChannelRef(Platform.SLACK, f"T{w:05d}", f"C{w:05d}{c:04d}"))
            guild = str(1_200_000_000_000_000_000 + w)
            out.append(
                ChannelRef(Platform.DISCORD, guild, str(1_250_000_000_000_000_000 + w * 1000 + c))
            )
    return out


# -- the limits and the lower bound they set ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bound:
    """The shortest time one limit allows for its share of the load."""

    limit: str
    load: str
    seconds: float


def _bucket_time(n: int, b: Bucket) -> float:
    """Seconds from the first to the last of `n` requests through a GCRA bucket."""
    return max(0, n - b.burst) / b.per_second


def _window_time(n: int, w: Window) -> float:
    """Seconds from the first to the last of `n` requests through fixed windows."""
    return (math.ceil(n / w.limit) - 1) * w.seconds if n else 0.0


def lower_bounds(load: Load) -> list[Bound]:
    """Each enforced limit's bound for one message per channel; the load's bound is the largest
    (the limits are independent) plus one latency for the last answer."""
    n, per = load.per_platform, load.per_workspace
    return [
        Bound(
            f"slack channel {SLACK_CHANNEL.per_second:g}/s burst {SLACK_CHANNEL.burst}",
            "1 message per channel",
            _bucket_time(1, SLACK_CHANNEL),
        ),
        Bound(
            f"slack workspace {SLACK_WORKSPACE.per_second:g}/s burst {SLACK_WORKSPACE.burst}",
            f"{per} messages per workspace, {load.workspaces} in parallel",
            _bucket_time(per, SLACK_WORKSPACE),
        ),
        Bound(
            f"discord global {DISCORD_GLOBAL.limit} per {DISCORD_GLOBAL.seconds:g} s",
            f"{n:,} messages",
            _window_time(n, DISCORD_GLOBAL),
        ),
        Bound(
            f"discord route {DISCORD_ROUTE.limit} per {DISCORD_ROUTE.seconds:g} s per channel",
            "1 message per channel",
            _window_time(1, DISCORD_ROUTE),
        ),
    ]


# -- processes ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def private_redis_url() -> AsyncIterator[tuple[Redis, str]]:
    """A private redis-server (unix socket + AOF in a temp dir); yields (client, URL) so worker
    processes can connect too; stopped and deleted on exit."""
    with tempfile.TemporaryDirectory(prefix="aistatus-bench-") as tmp:
        proc = RedisProcess(Path(tmp) / "redis")
        await asyncio.to_thread(proc.start)
        client = connect(proc.url)
        try:
            await client.ping()
            yield client, proc.url
        finally:
            await client.aclose()
            await asyncio.to_thread(proc.stop)


class Child:
    """A Python child process of ours: a JSON line protocol on its stdin/stdout. Closing stdin
    tells it to stop; `close` waits for it (bounded), then kills it (by its own pid)."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name

    @classmethod
    async def start(cls, name: str, *args: str) -> Child:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc, name)

    async def line(self, within: float) -> Any:
        """The next JSON line it prints. Raises: RuntimeError when it exits or stays silent."""
        assert self.proc.stdout is not None
        try:
            async with asyncio.timeout(within):
                raw = await self.proc.stdout.readline()
        except TimeoutError:
            raise RuntimeError(f"{self.name}: no answer within {within:g} s") from None
        if not raw:
            raise RuntimeError(f"{self.name} exited (code {await self.proc.wait()})")
        return json.loads(raw)

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")

    async def close(self) -> None:
        if self.proc.returncode is None and self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


class ChatProcess:
    """The bench.chatservers process and a client of its control port."""

    def __init__(self, child: Child, urls: dict[str, str]) -> None:
        self.child = child
        self.urls = urls
        self._http = httpx.AsyncClient(base_url=urls["control"], timeout=30.0)

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls) -> AsyncIterator[ChatProcess]:
        child = await Child.start("chat servers", "bench.chatservers")
        try:
            chat = cls(child, await child.line(START_TIMEOUT))
            try:
                yield chat
            finally:
                await chat._http.aclose()
        finally:
            await child.close()

    async def config(self, *, latency: float, limits: bool) -> None:
        """Set latency and limits; resets every count and bucket."""
        resp = await self._http.post("/config", json={"latency": latency, "limits": limits})
        resp.raise_for_status()

    async def stats(self, *, per_channel: bool = False) -> dict[str, Any]:
        resp = await self._http.get("/stats", params={"channels": "1" if per_channel else "0"})
        resp.raise_for_status()
        return resp.json()


# -- the rig: stores, senders, the transition ------------------------------------------------------


def wall() -> datetime:
    return datetime.now(UTC)


async def slack_token(workspace: str) -> str:
    """The bench's per-workspace bot token (the server reads the workspace from it)."""
    return f"{SLACK_TOKEN_PREFIX}{workspace}"


def slack_sender(base_url: str, session: aiohttp.ClientSession) -> SlackSender:
    """The real SlackSender on `slack_web_client`, one bot token per workspace (OAuth mode),
    over one long-lived `session` as `aistatus run` has (bot.app)."""
    settings = Settings(_env_file=None, slack_api_url=base_url)  # type: ignore[call-arg]
    client = slack_web_client(settings, token=f"{SLACK_TOKEN_PREFIX}unused", session=session)
    return SlackSender(client, tokens=slack_token)


async def discord_sender(api_url: str) -> tuple[DiscordSender, Any]:
    """The real DiscordSender on a discord.py HTTPClient logged in against `api_url`."""
    configure_api_base(api_url)
    http = await open_rest_client(DISCORD_TOKEN)
    return DiscordSender(http), http


async def seed(subs: SubscriptionStore, chans: Sequence[ChannelRef]) -> float:
    """Subscribe every channel to `api` through the store, SEED_BATCH at a time. Returns seconds."""
    started = time.perf_counter()
    now = wall()
    for start in range(0, len(chans), SEED_BATCH):
        await asyncio.gather(
            *(
                subs.subscribe(c, (SURFACE,), all_claude=False, user="U0BENCH", now=now)
                for c in chans[start : start + SEED_BATCH]
            )
        )
    return time.perf_counter() - started


async def commit_start(surfaces: SurfaceStore) -> None:
    """Commit one `api` outage start through the surface store, as a watcher poll would.
    Raises: RuntimeError when the store did not record it."""
    now = wall()
    incident = Incident(
        id=OUTAGE,
        name="Elevated errors on the API",
        status="investigating",
        impact="major",
        update_id="benchupdate1",
        update_status="investigating",
        update_body="We are investigating elevated error rates on the API.",
        update_at=now,
        started_at=now,
    )
    t = Transition(
        id=f"{SURFACE}@1",
        surface=SURFACE,
        provider="claude",
        kind=TransitionKind.START,
        reason=Reason.STARTED,
        status=Status.PARTIAL_OUTAGE,
        prev_status=Status.OPERATIONAL,
        source=Signal.OFFICIAL,
        suspected=False,
        prev_suspected=False,
        outage_id=OUTAGE,
        incident=incident,
        started_at=now,
        at=now,
    )
    state = SurfaceState(
        SURFACE,
        status=Status.PARTIAL_OUTAGE,
        source=Signal.OFFICIAL,
        incident=incident,
        outage_id=OUTAGE,
        started_at=now,
        since=now,
        version=1,
    )
    if await surfaces.commit("claude", [Write(SURFACE, 0, state, t)]) != [t]:
        raise RuntimeError("the start transition was not recorded")


def build_delivery(
    redis: Redis,
    senders: dict[Platform, ChatSender],
    catalog: Catalog,
    config: DeliveryConfig,
    consumer: str,
) -> tuple[Delivery, CollectorRegistry]:
    registry = CollectorRegistry()
    delivery = Delivery.on(
        redis,
        senders,
        catalog,
        config=config,
        clock=wall,
        consumer=consumer,
        metrics=DeliveryMetrics.create(registry),
    )
    heap.settle()  # as `aistatus run` does once started (bot.ops.heap)
    return delivery, registry


def samples(registry: CollectorRegistry, name: str) -> dict[str, float]:
    """label values joined by '/' -> value, for one metric of a registry."""
    out: dict[str, float] = {}
    for metric in registry.collect():
        for s in metric.samples:
            if s.name == name:
                out["/".join(s.labels.values())] = s.value
    return out


# -- checks ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tally:
    """Accepted messages against the expected one per channel, for one platform."""

    platform: str
    expected: int
    messages: int
    requests: int  # every call the server answered (429s included)
    duplicates: int  # messages beyond the first in a channel
    losses: int  # channels without any
    limited: dict[str, int]
    first: float | None
    last: float | None


def tally(stats: dict[str, Any], chans: Sequence[ChannelRef]) -> list[Tally]:
    out = []
    for platform in (Platform.SLACK, Platform.DISCORD):
        s = stats[str(platform)]
        got: dict[str, int] = s["channels"]
        mine = [c.channel for c in chans if c.platform is platform]
        out.append(
            Tally(
                str(platform),
                expected=len(mine),
                messages=s["messages"],
                requests=s["requests"],
                duplicates=sum(max(0, n - 1) for n in got.values()),
                losses=sum(1 for c in mine if got.get(c, 0) == 0),
                limited=s["limited"],
                first=s["first"],
                last=s["last"],
            )
        )
    return out


# -- part 1: under the rate limits ---------------------------------------------------------------


async def limited_run(
    redis: Redis, chat: ChatProcess, catalog: Catalog, load: Load, *, quick: bool
) -> None:
    chans = channels(load)
    subs = SubscriptionStore(redis, claude_surfaces=catalog.claude_surfaces())
    took = await seed(subs, chans)
    print(f"seeded {len(chans):,} subscriptions in {took:.1f} s ({SEED_BATCH} at a time)")
    bounds = lower_bounds(load)
    bound = max(b.seconds for b in bounds) + LATENCY
    await chat.config(latency=LATENCY, limits=True)
    session = aiohttp.ClientSession()
    slack = slack_sender(chat.urls["slack"], session)
    discord, http = await discord_sender(chat.urls["discord"])
    config = DeliveryConfig()
    delivery, registry = build_delivery(
        redis, {Platform.SLACK: slack, Platform.DISCORD: discord}, catalog, config, "bench-main"
    )
    await chat.config(latency=LATENCY, limits=True)  # forget the login: counts start at zero
    deadline = max(60.0, 3 * bound + 60)
    every = 2.0 if quick else 10.0
    print(
        f"delivering 1 alert to {load.total:,} channels; lower bound {bound:.1f} s; progress "
        f"every {every:g} s (gives up after {deadline:.0f} s)",
        flush=True,
    )
    redis0, chat0, cpu0 = (
        await server_counters(redis),
        (await chat.stats())["cpu"],
        time.process_time(),
    )
    stop = asyncio.Event()
    started = time.monotonic()
    await commit_start(SurfaceStore(redis))
    task = asyncio.create_task(delivery.run(stop))
    next_print = started + every
    finished = False
    try:
        async with asyncio.timeout(deadline):
            while not finished:
                await asyncio.sleep(0.25)
                finished = await delivery.idle()
                if time.monotonic() >= next_print or finished:
                    next_print += every
                    s = await chat.stats()
                    limited = sum(sum(s[p]["limited"].values()) for p in ("slack", "discord"))
                    print(
                        f"  {time.monotonic() - started:6.1f} s: slack "
                        f"{s['slack']['messages']:,}/{load.per_platform:,}, discord "
                        f"{s['discord']['messages']:,}/{load.per_platform:,}, 429s {limited:,}, "
                        f"CPU so far {time.process_time() - cpu0:.1f} s",
                        flush=True,
                    )
    except TimeoutError:
        print(f"  gave up after {deadline:.0f} s: not every message was accepted", flush=True)
    finally:
        stop.set()
        async with asyncio.timeout(STOP_TIMEOUT * 4):
            await task
        cpu = time.process_time() - cpu0
        await http.close()
        await session.close()
    stats = await chat.stats(per_channel=True)
    redis_used = await server_counters(redis) - redis0
    redis_cpu = redis_used.cpu
    rows = tally(stats, chans)
    print_limited(load, bounds, bound, started, rows, registry)
    delivered = sum(r.messages for r in rows)
    print(
        f"CPU: delivery process {cpu:.1f} s ({cpu / max(1, delivered) * 1000:.2f} ms per message,"
        f" senders included), chat servers {stats['cpu'] - chat0:.1f} s, redis-server "
        f"{redis_cpu:.1f} s. Engine config: DeliveryConfig() defaults (workers="
        f"{config.workers}, shipped pacing bot.delivery.pacing.DEFAULT_POLICIES).\n"
        f"Redis per delivered message (fan-out included): "
        f"{redis_used.commands / max(1, delivered):.1f} commands counted by redis-server (those "
        f"inside scripts included), {redis_used.scripts / max(1, delivered):.1f} script calls. "
        f"Target: <= 1.5 ms CPU per message."
    )


def print_limited(
    load: Load,
    bounds: Sequence[Bound],
    bound: float,
    started: float,
    rows: Sequence[Tally],
    registry: CollectorRegistry,
) -> None:
    heading(
        f"delivery: 1 alert to {load.total:,} channels under the published rate limits "
        f"({LATENCY * 1000:.0f} ms per call)"
    )
    print(
        f"{load.workspaces} Slack workspaces and {load.workspaces} Discord guilds x "
        f"{load.per_workspace} channels, all subscribed to `{SURFACE}`; one START transition "
        "committed through SurfaceStore.commit."
    )
    print(
        table(
            ["limit enforced by the loopback server", "its load", "lower bound"],
            [[b.limit, b.load, secs(b.seconds)] for b in bounds],
        )
    )
    print(
        f"lower bound for the load: max of the above + {LATENCY * 1000:.0f} ms for the last "
        f"answer = {bound:.2f} s"
    )
    last = [r.last for r in rows if r.last is not None]
    done = (max(last) - started) if last else math.nan
    print(
        table(
            [
                "platform",
                "accepted",
                "expected",
                "requests",
                "duplicates",
                "losses",
                "429s answered",
                "first msg",
                "completion",
                "throughput",
            ],
            [
                [
                    r.platform,
                    f"{r.messages:,}",
                    f"{r.expected:,}",
                    f"{r.requests:,}",
                    r.duplicates,
                    r.losses,
                    ", ".join(f"{k}: {v:,}" for k, v in sorted(r.limited.items())) or "0",
                    secs(r.first - started) if r.first is not None else "-",
                    secs(r.last - started) if r.last is not None else "-",
                    f"{r.messages / (r.last - started):.1f} msg/s" if r.last else "-",
                ]
                for r in rows
            ],
        )
    )
    ratio = done / bound if bound else math.nan
    verdict = "within" if ratio <= TARGET_RATIO else "OVER"
    total_429 = sum(sum(r.limited.values()) for r in rows)
    print(
        "first msg / completion: commit -> the platform's first / last accepted message; "
        "throughput = accepted / completion."
    )
    print(
        f"completion (commit -> last accepted message): {secs(done)}; lower bound {secs(bound)};"
        f" ratio {ratio:.2f}x ({verdict} the {TARGET_RATIO:g}x target)\n"
        f"429s answered: {total_429:,}; duplicates {sum(r.duplicates for r in rows)}, losses "
        f"{sum(r.losses for r in rows)} (expected 0 and 0)"
    )
    retried = samples(registry, "aistatus_delivery_retries_total")
    dead = samples(registry, "aistatus_delivery_dead_total")
    print(
        "engine: retries "
        + (", ".join(f"{k} {v:.0f}" for k, v in sorted(retried.items())) or "none")
        + "; dead letters "
        + (", ".join(f"{k} {v:.0f}" for k, v in sorted(dead.items())) or "none")
        + "\n(a 429 discord.py waits out itself and retries never reaches the engine)"
    )


# -- part 2: deliveries/s with the limits off ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Throughput:
    processes: int
    messages: int
    seconds: float
    first: float  # commit -> first accepted message (fan-out and the first send)
    split: tuple[int, ...]  # deliveries made by each worker
    duplicates: int
    losses: int
    worker_cpu: float
    chat_cpu: float
    redis_cpu: float
    failed: int

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else math.nan


async def unlimited_run(
    redis: Redis, url: str, chat: ChatProcess, catalog: Catalog, load: Load, processes: int
) -> Throughput:
    """Fresh Redis, `processes` worker processes, one alert; timed from the commit to the last
    accepted message."""
    chans = channels(load)
    await redis.flushdb()
    await seed(SubscriptionStore(redis, claude_surfaces=catalog.claude_surfaces()), chans)
    await chat.config(latency=0.0, limits=False)
    timeout = 30.0 + load.total / 50  # bounded even at 50 deliveries/s
    spec = {"redis": url, "slack": chat.urls["slack"], "discord": chat.urls["discord"]}
    workers = await asyncio.gather(
        *(
            Child.start(
                f"worker {i}",
                "bench.bench_delivery",
                "worker",
                json.dumps({**spec, "consumer": f"bench-w{i}", "timeout": timeout}),
            )
            for i in range(processes)
        )
    )
    try:
        for w in workers:
            ready = await w.line(START_TIMEOUT)
            if ready.get("ready") is not True:
                raise RuntimeError(f"{w.name} failed to start: {ready}")
        await chat.config(latency=0.0, limits=False)  # forget the logins
        redis0, chat0 = await server_counters(redis), (await chat.stats())["cpu"]
        started = time.monotonic()
        await commit_start(SurfaceStore(redis))
        for w in workers:
            w.send("go")
        results = [await w.line(timeout + 30) for w in workers]
    finally:
        await asyncio.gather(*(w.close() for w in workers))
    stats = await chat.stats(per_channel=True)
    rows = tally(stats, chans)
    last = max((r.last for r in rows if r.last is not None), default=math.nan)
    first = min((r.first for r in rows if r.first is not None), default=math.nan)
    return Throughput(
        processes,
        messages=sum(r.messages for r in rows),
        seconds=last - started,
        first=first - started,
        split=tuple(int(r["delivered"]) for r in results),
        duplicates=sum(r.duplicates for r in rows),
        losses=sum(r.losses for r in rows),
        worker_cpu=sum(r["cpu"] for r in results),
        chat_cpu=stats["cpu"] - chat0,
        redis_cpu=(await server_counters(redis)).cpu - redis0.cpu,
        failed=sum(1 for r in results if not r["ok"]),
    )


def print_unlimited(load: Load, runs: Sequence[Throughput]) -> None:
    heading(f"delivery: deliveries/s with the limits off ({load.total:,} channels, 1 alert)")
    base = runs[0].rate if runs else math.nan
    print(
        table(
            [
                "processes",
                "accepted",
                "wall",
                "first msg",
                "deliveries/s",
                "speedup",
                "per worker",
                "worker CPU/msg",
                "chat server CPU",
                "redis CPU",
                "dups",
                "losses",
            ],
            [
                [
                    r.processes,
                    f"{r.messages:,}",
                    secs(r.seconds),
                    secs(r.first),
                    f"{r.rate:,.0f}/s",
                    f"{r.rate / base:.2f}x",
                    "/".join(map(str, r.split)),
                    f"{r.worker_cpu / max(1, r.messages) * 1000:.2f} ms",
                    f"{r.chat_cpu:.1f} s",
                    f"{r.redis_cpu:.1f} s",
                    r.duplicates,
                    r.losses,
                ]
                for r in runs
            ],
        )
    )
    failed = sum(r.failed for r in runs)
    print(
        "Chat servers: no limits, no added latency (latency 0). Engine: DeliveryConfig() with "
        "pacing UNLIMITED for\nevery platform, default workers per process; each worker is a "
        "spawned `python -m bench.bench_delivery worker`\nprocess running Delivery.drain "
        "against the same Redis. wall: commit -> last accepted message; first msg:\ncommit -> "
        "first accepted (fan-out included); per worker: deliveries each made. worker CPU: all "
        "workers'\nprocess time / messages. Redis is FLUSHDB'd and re-seeded before each row."
        + (f"\n{failed} worker(s) did not drain in time." if failed else "")
    )


# -- part 3: memory and /aistatus during a fan-out ---------------------------------------------


STATUS_EVERY = 0.02  # seconds between two `/aistatus status` calls while measuring
IDLE_CALLS = 100  # `/aistatus status` calls timed before the fan-out
SETTLE = 5.0  # seconds given to the process after the fan-out before its RSS is read again


def rss() -> int:
    """This process's resident set size in bytes (/proc/self/statm)."""
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, slots=True)
class FanOutLoad:
    paced: bool  # under the limits for `seconds` (then stopped), or limits off to the end
    channels: int
    messages: int
    seconds: float  # commit -> the engine idle again (limits off), or the window (paced)
    idle_calls: list[float]  # /aistatus wall times before the fan-out
    busy_calls: list[float]  # ... while it ran
    rss_idle: int
    rss_peak: int
    rss_done: int
    rss_settled: int
    duplicates: int


async def _no_crowd(_: Observation) -> None:
    return None


async def fanout_run(
    redis: Redis,
    chat: ChatProcess,
    catalog: Catalog,
    load: Load,
    *,
    paced_for: float | None = None,
) -> FanOutLoad:
    """One alert to every channel of `load` through an in-process Delivery while `/aistatus
    status` is answered on the same loop every STATUS_EVERY seconds. Limits off (`paced_for`
    None): pacing UNLIMITED, no chat latency, the heaviest the loop gets, run to the end; RSS
    read before, during (peak of the samples), right after and SETTLE seconds after. Paced:
    DeliveryConfig() defaults against the limited servers (LATENCY per call) for `paced_for`
    seconds from the commit (the fan-out and the first paced deliveries), then stopped."""
    chans = channels(load)
    await redis.flushdb()
    await seed(SubscriptionStore(redis, claude_surfaces=catalog.claude_surfaces()), chans)
    paced = paced_for is not None
    latency = LATENCY if paced else 0.0
    await chat.config(latency=latency, limits=paced)
    session = aiohttp.ClientSession()
    slack = slack_sender(chat.urls["slack"], session)
    discord, http = await discord_sender(chat.urls["discord"])
    config = DeliveryConfig() if paced else DeliveryConfig(pacing={p: UNLIMITED for p in Platform})
    delivery, _ = build_delivery(
        redis, {Platform.SLACK: slack, Platform.DISCORD: discord}, catalog, config, "bench-fan"
    )
    svc = Services.over(redis, catalog, on_crowd=_no_crowd)
    asker = ChannelRef(Platform.SLACK, "T99999", "C99999")

    async def ask() -> float:
        ctx = CommandContext(asker, "U0ASKER", "asker", wall())
        started = time.perf_counter()
        await handle("status", ctx, svc)
        return time.perf_counter() - started

    stop = asyncio.Event()
    engine = asyncio.create_task(delivery.run(stop))
    try:
        for _ in range(10):  # warm-up: scripts loaded, connections open
            await ask()
        await asyncio.sleep(1.0)
        idle_calls = []
        for _ in range(IDLE_CALLS):
            idle_calls.append(await ask())
            await asyncio.sleep(STATUS_EVERY)
        gc.collect()
        rss_idle = rss_peak = rss()
        await chat.config(latency=latency, limits=paced)  # counts start at zero
        started = time.monotonic()
        await commit_start(SurfaceStore(redis))
        busy_calls: list[float] = []
        done = False

        async def watch() -> None:
            nonlocal done
            if paced_for is not None:
                await asyncio.sleep(paced_for)
            else:
                while not await delivery.idle():  # noqa: ASYNC110 (a Redis condition)
                    await asyncio.sleep(0.25)
            done = True

        watcher = asyncio.create_task(watch())
        async with asyncio.timeout(30.0 + load.total / 50):
            await asyncio.sleep(0.05)  # the fan-out begins
            while not done:
                busy_calls.append(await ask())
                rss_peak = max(rss_peak, rss())
                await asyncio.sleep(STATUS_EVERY)
            await watcher
        seconds = time.monotonic() - started
        rss_done = rss_settled = rss()
        if not paced:
            await asyncio.sleep(SETTLE)
            gc.collect()
            rss_settled = rss()
    finally:
        stop.set()
        async with asyncio.timeout(STOP_TIMEOUT * 4):
            await engine
        await http.close()
        await session.close()
    rows = tally(await chat.stats(per_channel=True), chans)
    return FanOutLoad(
        paced,
        load.total,
        sum(r.messages for r in rows),
        seconds,
        idle_calls,
        busy_calls,
        rss_idle,
        rss_peak,
        rss_done,
        rss_settled,
        sum(r.duplicates for r in rows),
    )


def print_fanout(paced: FanOutLoad, free: FanOutLoad) -> None:
    heading(f"delivery: /aistatus and memory during a {free.channels:,}-channel fan-out")
    rows = []
    for f in (paced, free):
        how = (
            f"under the limits, first {f.seconds:.0f} s ({f.messages:,} sent)"
            if f.paced
            else f"limits off, to the end ({f.messages:,} sent in {f.seconds:.1f} s)"
        )
        for label, v in (("before", f.idle_calls), ("during", f.busy_calls)):
            if v:
                rows.append([how, label, len(v), ms(median(v)), ms(percentile(v, 99)), ms(max(v))])
    print(table(["fan-out", "/aistatus status", "calls", "p50", "p99", "max"], rows))
    mb = 1024 * 1024

    def grew(value: int) -> str:
        return f"{(value - free.rss_idle) / mb:+.1f}"

    print(
        table(
            ["RSS (limits-off run)", "MB", "vs idle"],
            [
                ["idle (engine running, before the alert)", f"{free.rss_idle / mb:.1f}", ""],
                ["peak while delivering", f"{free.rss_peak / mb:.1f}", grew(free.rss_peak)],
                ["right after the last delivery", f"{free.rss_done / mb:.1f}", grew(free.rss_done)],
                [
                    f"{SETTLE:g} s later (gc.collect())",
                    f"{free.rss_settled / mb:.1f}",
                    grew(free.rss_settled),
                ],
            ],
        )
    )
    print(
        "One Delivery in this process (the paced run: DeliveryConfig() defaults, "
        f"{LATENCY * 1000:.0f} ms per call, the servers' limits;\nlimits off: pacing UNLIMITED, no "
        "latency); `/aistatus status` through bot.chat.actions.handle on the same event loop "
        f"every\n{STATUS_EVERY * 1000:.0f} ms (wall time per call). Duplicates: "
        f"{paced.duplicates} paced, {free.duplicates} limits off. Targets: p99 <= 50 ms during "
        "the fan-out;\nRSS back within 20 MB of idle."
    )


# -- the worker process ---------------------------------------------------------------------------


async def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One worker process: senders and a Delivery with pacing off; ready -> "go" -> drain."""
    catalog = load_catalog()
    redis = connect(spec["redis"])
    session = aiohttp.ClientSession()
    slack = slack_sender(spec["slack"], session)
    discord, http = await discord_sender(spec["discord"])
    config = DeliveryConfig(pacing={p: UNLIMITED for p in Platform})
    delivery, registry = build_delivery(
        redis, {Platform.SLACK: slack, Platform.DISCORD: discord}, catalog, config, spec["consumer"]
    )
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    print(json.dumps({"ready": True}), flush=True)
    timeout = float(spec["timeout"])
    ok = False
    try:
        async with asyncio.timeout(START_TIMEOUT * 2):
            go = await stdin.readline()
        if go.strip() == b"go":
            profile = cProfile.Profile() if os.environ.get(PROFILE_ENV) else None
            cpu0 = time.process_time()
            if profile is not None:
                profile.enable()
            try:
                await delivery.drain(timeout)
                ok = True
            except TimeoutError:
                pass
            cpu = time.process_time() - cpu0
            if profile is not None:
                profile.disable()
                profile.dump_stats(f"{os.environ[PROFILE_ENV]}.{spec['consumer']}")
        else:
            cpu = 0.0
    finally:
        await http.close()
        await session.close()
        await redis.aclose()
    delivered = sum(samples(registry, "aistatus_deliveries_total").values())
    return {"ok": ok, "cpu": cpu, "delivered": delivered}


def worker(argv: Sequence[str]) -> int:
    """Entry of `python -m bench.bench_delivery worker '<json spec>'`."""
    result = asyncio.run(_worker(json.loads(argv[0])))
    print(json.dumps(result), flush=True)
    return 0


# -- main -----------------------------------------------------------------------------------------


async def main(*, quick: bool) -> None:
    load = Load(workspaces=10 if quick else 100)
    print(
        f"bench delivery: 1 alert to {load.total:,} channels ({load.workspaces} Slack "
        f"workspaces + {load.workspaces} Discord guilds x {load.per_workspace}), then "
        f"deliveries/s in {', '.join(map(str, PROCESSES))} processes"
        + (" (quick: 10x smaller than the full run)" if quick else ""),
        flush=True,
    )
    catalog = load_catalog()
    async with private_redis_url() as (redis, url), ChatProcess.running() as chat:
        await limited_run(redis, chat, catalog, load, quick=quick)
        runs = []
        for n in PROCESSES:
            print(f"limits off: {n} process(es)...", flush=True)
            runs.append(await unlimited_run(redis, url, chat, catalog, load, n))
        print_unlimited(load, runs)
        print("fan-out with /aistatus: paced, then limits off with RSS...", flush=True)
        paced = await fanout_run(
            redis, chat, catalog, load, paced_for=PACED_QUICK if quick else PACED_WINDOW
        )
        print_fanout(paced, await fanout_run(redis, chat, catalog, load))

        async def seed_n(store: SubscriptionStore, n: int) -> None:
            await seed(store, channels(Load(workspaces=max(1, n // (2 * PER_WORKSPACE)))))

        window = IDLE_QUICK if quick else IDLE_WINDOW
        print(f"idle for {window:g} s...", flush=True)
        print_idle(await idle_run(redis, load.total, window=window, seed=seed_n))


def run(*, quick: bool) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(quick=quick))


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        raise SystemExit(worker(sys.argv[2:]))
    raise SystemExit("usage: python -m bench delivery [--quick]")
