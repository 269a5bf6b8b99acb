"""`python -m bench detect`: how soon a channel hears of an outage, in real time, at the default
settings. Probe onset -> chat API call (trials in parallel, one surface and one channel each) and
status-page hook -> chat API call. IO: a private redis-server, a loopback status page and probe
targets on a thread of their own, a loopback Slack Web API; the real scheduler, watcher, hook
receiver, delivery engine and SlackSender.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import httpx
from aiohttp import web
from redis.asyncio import Redis

from bench.common import (
    INVESTIGATING,
    OPERATIONAL,
    ServerThread,
    as_bytes,
    bench_data,
    fixture_json,
    heading,
    incidents_after,
    median,
    percentile,
    private_redis,
    secs,
    table,
)
from bot.app import build_bot
from bot.chat.slack.sender import SlackSender, slack_web_client
from bot.clock import utcnow
from bot.core.catalog import Catalog, parse_catalog
from bot.core.model import ChannelRef, Platform
from bot.delivery.engine import Delivery, DeliveryConfig
from bot.ops.hook import HOOK_PREFIX, build_hook_app, start_hook_server
from bot.settings import Settings
from bot.store.subscriptions import SubscriptionStore
from bot.watch.hint import Hints
from bot.watch.scheduler import build_scheduler

SEED = 20260922
TEAM = "T0001"
TOKEN = "xoxb-bench-detect"
HOOK_SECRET = "bench-hook-secret-0123456789abcdef"
POLL_PATH = (7.8, 16.0)  # `python -m bench watch`, 15 s polls: p50, p99 (bench/README.md)
HOOK_POLL_INTERVAL = 600.0  # seconds: in the hook run only the hook can explain an alert


@dataclass
class SlackCalls:
    """A loopback Slack Web API that accepts every call and notes when each chat call arrived."""

    calls: list[tuple[float, str, str]] = field(default_factory=list)  # (epoch s, method, channel)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        ts = itertools.count(1)

        async def method(request: web.Request) -> web.Response:
            name = request.match_info["method"]
            form = dict(await request.post()) if request.can_read_body else {}
            if request.content_type == "application/json":
                form = await request.json()
            channel = str(form.get("channel", ""))
            if name.startswith("chat."):
                self.calls.append((time.time(), name, channel))
                self.changed.set()
            return web.json_response(
                {"ok": True, "channel": channel, "ts": f"1790000000.{next(ts):06d}"}
            )

        app = web.Application()
        app.router.add_post("/api/{method}", method)
        return app

    def first_after(self, channel: str, after: float) -> float | None:
        return next((t for t, _, c in self.calls if c == channel and t >= after), None)

    async def wait_first_after(self, channel: str, after: float, within: float) -> float:
        """Raises: TimeoutError when no chat call reaches `channel` within `within` seconds."""
        async with asyncio.timeout(within):
            while (t := self.first_after(channel, after)) is None:
                self.changed.clear()
                await self.changed.wait()
        return t


@contextlib.asynccontextmanager
async def slack_api() -> AsyncIterator[tuple[str, SlackCalls]]:
    calls = SlackCalls()
    runner = web.AppRunner(calls.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/api/", calls
    finally:
        await runner.cleanup()


def detect_catalog(page_url: str, trials: int) -> Catalog:
    """The shipped catalog with Claude's page on loopback, the shipped probes dropped, and
    `trials` Claude surfaces `trial-NN` probed on loopback; canaries on loopback (they answer)."""
    data = bench_data(page_url)
    for i in range(trials):
        data["surfaces"][f"trial-{i:02d}"] = {
            "name": f"Trial {i}",
            "provider": "claude",
            "claude": True,
            "probes": [{"url": f"{page_url}/probe/trial-{i:02d}", "expect": [200]}],
        }
    data["canaries"] = [f"{page_url}/probe/canary"]
    return parse_catalog(data, source="bench")


@contextlib.asynccontextmanager
async def running_bot(
    redis: Redis, catalog: Catalog, slack_url: str, settings: Settings, *, hook: bool
) -> AsyncIterator[str | None]:
    """build_bot + the real scheduler + the delivery engine with the real SlackSender (and the
    hook receiver when `hook`), as `aistatus run` assembles them. Yields the hook URL."""
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0)) as client,
        aiohttp.ClientSession() as session,
    ):
        bot = build_bot(settings, catalog, redis, client)
        scheduler = build_scheduler(bot.watcher, probes=settings.probes_enabled)
        sender = SlackSender(slack_web_client(settings, TOKEN, session=session))
        delivery = Delivery(
            redis,
            {Platform.SLACK: sender},
            bot.store,
            SubscriptionStore(redis),
            catalog,
            config=DeliveryConfig.from_settings(settings),
            clock=utcnow,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(delivery.run(stop))
        hints = Hints(lambda p: bot.watcher.poll_page(p, hinted=True))
        server = None
        url = None
        if hook:
            server = await start_hook_server(
                build_hook_app(HOOK_SECRET, catalog, hints.hint), "127.0.0.1", 0
            )
            url = f"http://127.0.0.1:{server.port}{HOOK_PREFIX}{HOOK_SECRET}"
        scheduler.start()
        try:
            yield url
        finally:
            scheduler.shutdown(wait=False)
            if server is not None:
                await server.stop()
            await hints.aclose()
            stop.set()
            await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 30)
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if pending:  # a probe round or poll the scheduler started: let it finish (bounded)
                await asyncio.wait(pending, timeout=10)


async def subscribe(redis: Redis, channel: str, surface: str) -> None:
    await SubscriptionStore(redis).subscribe(
        ChannelRef(Platform.SLACK, TEAM, channel), [surface], all_claude=False, user="U1",
        now=utcnow(),
    )  # fmt: skip


# -- probe onset -> alert -------------------------------------------------------------------------


async def measure_probes(redis: Redis, page: ServerThread, trials: int) -> list[float]:
    """`trials` probe targets, each starting to fail (HTTP 503) at a seeded random moment of one
    base interval; each timed until the first chat call to its own channel."""
    await redis.flushall()
    settings = Settings(_env_file=None, slack_bot_token=TOKEN)  # type: ignore[call-arg]
    page.call(page.server.set_summary, as_bytes(fixture_json(OPERATIONAL)))
    page.call(page.server.set_probe, "canary", 204)
    for i in range(trials):
        page.call(page.server.set_probe, f"trial-{i:02d}", 200)
        await subscribe(redis, f"C{i:04d}", f"trial-{i:02d}")
    catalog = detect_catalog(page.url, trials)
    rng = random.Random(SEED)
    async with slack_api() as (url, calls):
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, slack_bot_token=TOKEN, slack_api_url=url
        )
        print(
            f"  defaults: probe round every {settings.probe_interval:g} s, re-checks every"
            f" {settings.probe_recheck_interval:g} s, {settings.failure_threshold} failures"
            " to open",
            flush=True,
        )
        async with running_bot(redis, catalog, url, settings, hook=False):
            await asyncio.sleep(settings.probe_interval + 2)  # a first healthy round everywhere
            offsets = sorted((rng.uniform(0, settings.probe_interval), i) for i in range(trials))
            t0 = time.monotonic()
            onsets: dict[int, float] = {}
            for offset, i in offsets:
                await asyncio.sleep(max(0.0, t0 + offset - time.monotonic()))
                onsets[i] = page.call(_fail, page, f"trial-{i:02d}")
            latencies = []
            for i in range(trials):
                got = await calls.wait_first_after(f"C{i:04d}", onsets[i], within=120)
                latencies.append(got - onsets[i])
    return latencies


def _fail(page: ServerThread, name: str) -> float:
    page.server.set_probe(name, 503)
    return time.time()


# -- hook -> alert -------------------------------------------------------------------------------


async def measure_hook(redis: Redis, page: ServerThread, changes: int) -> list[float]:
    """The page alternates between an open incident and all operational, `changes` times; after
    each change a webhook delivery is POSTed; each is timed until the next chat call to the
    channel subscribed to the API. Scheduled polls are 600 s apart (only the first happens)."""
    await redis.flushall()
    calm = as_bytes(fixture_json(OPERATIONAL))
    incident = as_bytes(fixture_json(INVESTIGATING))
    page.call(page.server.set_incidents, incidents_after(fixture_json(INVESTIGATING)))
    page.call(page.server.set_summary, calm)
    await subscribe(redis, "CAPI", "api")
    catalog = detect_catalog(page.url, 0)
    delivery = {"page": {"id": "tymt9n04zgry"}, "component_update": {"new_status": "x"}}
    latencies = []
    async with slack_api() as (url, calls):
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            slack_bot_token=TOKEN,
            slack_api_url=url,
            poll_interval=HOOK_POLL_INTERVAL,
            probes_enabled=False,
        )
        async with (
            running_bot(redis, catalog, url, settings, hook=True) as hook_url,
            httpx.AsyncClient() as http,
        ):
            assert hook_url is not None
            before = page.call(lambda: page.server.hits["/api/v2/summary.json"])
            for _ in range(200):  # the scheduler's first poll, bounded
                if page.call(lambda: page.server.hits["/api/v2/summary.json"]) > before:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            for k in range(changes):
                page.call(page.server.set_summary, incident if k % 2 == 0 else calm)
                sent = time.time()
                resp = await http.post(hook_url, json=delivery)
                assert resp.status_code == 202, resp.status_code
                got = await calls.wait_first_after("CAPI", sent, within=30)
                latencies.append(got - sent)
                await asyncio.sleep(1.2)  # Slack's pace: about one message a second per channel
    return latencies


# -- entry point ---------------------------------------------------------------------------------


async def main(*, quick: bool) -> None:
    trials = 8 if quick else 24
    changes = 6 if quick else 40
    print(
        f"bench detect: {trials} probe outages in parallel (real time, ~1 min), then"
        f" {changes} hook deliveries",
        flush=True,
    )
    async with private_redis() as redis:
        with ServerThread() as page:
            probes = await measure_probes(redis, page, trials)
            hooks = await measure_hook(redis, page, changes)
    heading("detect: how soon the chat API is called (real time, loopback, default settings)")
    print(
        table(
            ["path", "samples", "median", "p99", "max"],
            [
                [
                    "probe onset -> chat API call",
                    len(probes),
                    secs(median(probes)),
                    secs(percentile(probes, 99)),
                    secs(max(probes)),
                ],
                [
                    "status-page hook -> chat API call",
                    len(hooks),
                    secs(median(hooks)),
                    secs(percentile(hooks, 99)),
                    secs(max(hooks)),
                ],
                [
                    "poll path, 15 s polls (bench watch, for reference)",
                    "",
                    secs(POLL_PATH[0]),
                    secs(POLL_PATH[1]),
                    "",
                ],
            ],
        )
    )
    print(
        "Probe onset: the wall time the loopback target started answering 503; targets fail at"
        " seeded random moments\nof one base interval. The chat API call: when the loopback"
        " Slack API received it. Targets: probe median\n<= 35 s, max <= 50 s; hook <= 3 s."
        " The poll-path row is `python -m bench watch`'s figure, not re-measured here."
    )


def run(*, quick: bool) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(quick=quick))
