"""The composition root: builds every client (httpx, Redis, Slack, Discord) once and passes them
down; runs the long-lived bot and the one-shot `status`. IO. Nothing else constructs clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import httpx
from redis.asyncio import Redis

from bot import __version__
from bot.assess import official_observations
from bot.catalog import Catalog, load_catalog
from bot.errors import ConfigError, ProbeError
from bot.health import build_health_app, start_health_server
from bot.model import Status, SurfaceState
from bot.probe import run_probes
from bot.redisproc import RedisProcess
from bot.scheduler import build_scheduler
from bot.sender import Sink
from bot.settings import Settings
from bot.sink import ConsoleSink
from bot.statuspage import PageReading, fetch_summary, parse_summary
from bot.store.connect import connect
from bot.store.surfaces import SurfaceStore
from bot.table import StatusRow, render_table
from bot.transitions import Policy, decide
from bot.watcher import Watcher

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    """The one wall clock of the process; everything below takes time as an argument."""
    return datetime.now(UTC)


def http_client(settings: Settings) -> httpx.AsyncClient:
    """The one shared HTTP client for status pages and probes."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            settings.read_timeout, connect=settings.connect_timeout, pool=settings.connect_timeout
        ),
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        headers={"User-Agent": f"aistatus/{__version__} (+self-hosted status bot)"},
        follow_redirects=False,  # fetch_summary follows a bounded number itself
    )


def policy(settings: Settings) -> Policy:
    return Policy.with_probe_thresholds(settings.failure_threshold, settings.success_threshold)


def catalog_of(settings: Settings) -> Catalog:
    """Raises: ConfigError naming the catalog file, key and value."""
    return load_catalog(settings.catalog_path)


def providers_map(catalog: Catalog) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for s in catalog.surfaces.values():
        out.setdefault(s.provider, []).append(s.id)
    return out


@contextlib.asynccontextmanager
async def redis_for(settings: Settings) -> AsyncIterator[Redis]:
    """REDIS_URL when set; otherwise a private redis-server under the data directory (unix
    socket + AOF), stopped on exit. Raises: ConfigError when no redis-server can be started."""
    proc: RedisProcess | None = None
    url = settings.redis_url
    if url is None:
        proc = RedisProcess(Path(settings.data_dir) / "redis", binary=settings.redis_server_bin)
        await asyncio.to_thread(proc.start)
        url = proc.url
        log.info("started a private redis-server in %s", proc.data_dir)
    client = connect(url)
    try:
        await client.ping()
    except Exception as e:
        await client.aclose()
        if proc is not None:
            await asyncio.to_thread(proc.stop)
        raise ConfigError(
            f"REDIS_URL: cannot reach Redis: {type(e).__name__}", key="REDIS_URL"
        ) from e
    try:
        yield client
    finally:
        await client.aclose()
        if proc is not None:
            await asyncio.to_thread(proc.stop)


@dataclass
class Bot:
    """Everything `aistatus run` holds while it runs."""

    settings: Settings
    catalog: Catalog
    redis: Redis
    client: httpx.AsyncClient
    store: SurfaceStore
    watcher: Watcher


def build_bot(
    settings: Settings,
    catalog: Catalog,
    redis: Redis,
    client: httpx.AsyncClient,
    *,
    sink: Sink | None = None,
    clock: Callable[[], datetime] = utcnow,
    out: TextIO | None = None,
) -> Bot:
    """Wire the watcher: store, sink (console unless given), policy, intervals."""
    store = SurfaceStore(redis, history_length=settings.history_length)
    pm = providers_map(catalog)

    async def states() -> dict[str, SurfaceState]:
        return await store.read_all(pm)

    if sink is None:
        sink = ConsoleSink(catalog, states, clock, **({"out": out} if out else {}))
    api_key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else None
    watcher = Watcher(
        catalog=catalog,
        store=store,
        client=client,
        sink=sink,
        clock=clock,
        policy=policy(settings),
        poll_interval=settings.poll_interval,
        probe_interval=settings.probe_interval,
        max_response_bytes=settings.max_response_bytes,
        api_key=api_key,
    )
    return Bot(settings, catalog, redis, client, store, watcher)


async def run(settings: Settings, *, stop: asyncio.Event, out: TextIO | None = None) -> int:
    """`aistatus run`: watch until `stop` is set. Returns the exit code."""
    catalog = catalog_of(settings)
    async with redis_for(settings) as redis, http_client(settings) as client:
        bot = build_bot(settings, catalog, redis, client, out=out)
        scheduler = build_scheduler(bot.watcher, probes=settings.probes_enabled)

        async def ready() -> tuple[bool, str]:
            try:
                await redis.ping()
            except Exception as e:
                return False, f"redis: {type(e).__name__}"
            return True, "monitoring blind" if bot.watcher.blind else "ok"

        health = await start_health_server(
            build_health_app(ready), settings.http_host, settings.http_port
        )
        scheduler.start()
        log.info(
            "watching %d surfaces on %d status pages every %ss; probes %s",
            len(catalog.surfaces),
            len(catalog.watched_providers()),
            settings.poll_interval,
            "on" if settings.probes_enabled else "off",
        )
        try:
            await stop.wait()
        finally:
            scheduler.shutdown(wait=False)
            await health.cleanup()
    return 0


# -- `aistatus status`: one poll, no Redis -----------------------------------------------------


async def _read_page(
    client: httpx.AsyncClient, provider: str, base_url: str, settings: Settings, now: datetime
) -> PageReading:
    try:
        fetched = await fetch_summary(
            client,
            base_url,
            max_bytes=settings.max_response_bytes,
            deadline=settings.read_timeout * 2,
        )
    except ProbeError as e:
        return PageReading(provider, now, ok=False, error=e.reason)
    return parse_summary(fetched.body or b"", provider=provider, observed_at=now, base_url=base_url)


async def poll_once(
    settings: Settings, catalog: Catalog, client: httpx.AsyncClient, now: datetime
) -> list[StatusRow]:
    """Poll every status page and probe once and decide each surface with no hysteresis."""
    providers = catalog.watched_providers()
    readings = await asyncio.gather(
        *(
            _read_page(client, p, catalog.providers[p].statuspage or "", settings, now)
            for p in providers
        )
    )
    observations = [o for r in readings for o in official_observations(r, catalog, observed_at=now)]
    if settings.probes_enabled:
        specs = {s.id: s.probes for s in catalog.surfaces.values() if s.probes}
        api_key = (
            settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else None
        )
        observations += await run_probes(
            client,
            specs,
            catalog.canaries,
            api_key=api_key,
            now=now,
            deadline=settings.read_timeout * 2,
        )
    rows: list[StatusRow] = []
    for surface in catalog.surfaces.values():
        obs = [o for o in observations if o.surface == surface.id]
        d = decide(
            SurfaceState(surface.id),
            obs,
            provider=surface.provider,
            now=now,
            policy=Policy.immediate(),
        )
        probe = d.state.signals.get("probe")
        rows.append(
            StatusRow(
                surface=surface.id,
                name=surface.name,
                claude=surface.claude and surface.provider == "claude",
                status=d.verdict.status,
                source=d.verdict.source.value if d.verdict.source else "-",
                suspected=d.verdict.suspected,
                since=(d.verdict.incident.started_at if d.verdict.incident else None),
                incident=d.verdict.incident.name if d.verdict.incident else None,
                latency_ms=probe.latency_ms if probe else None,
                detail=d.verdict.reason,
            )
        )
    return rows


def exit_code(rows: list[StatusRow]) -> int:
    """0 every Claude surface operational; 1 any is not; 2 nothing could be reached (blind)."""
    if rows and all(r.status is Status.UNKNOWN for r in rows):
        return 2
    claude = [r for r in rows if r.claude]
    if claude and all(r.status is Status.UNKNOWN for r in claude):
        return 2
    return 0 if all(r.status is Status.OPERATIONAL for r in claude) else 1


async def status(settings: Settings, out: TextIO) -> int:
    """`aistatus status`: print the table, return the exit code."""
    catalog = catalog_of(settings)
    now = utcnow()
    async with http_client(settings) as client:
        rows = await poll_once(settings, catalog, client, now)
    print(render_table(rows, now=now), file=out)
    return exit_code(rows)
