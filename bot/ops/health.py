"""Operators' endpoints: /healthz (alive), /readyz (Redis takes a write; says when monitoring is
blind), /metrics (Prometheus). IO: a small aiohttp server started by `aistatus run`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from redis.asyncio import Redis

from bot.ops.inbound import InboundLimits, serve
from bot.store import keys

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[tuple[bool, str]]]

# A probe slower than this is "not ready": the connection retries would outlast the prober.
PROBE_TIMEOUT_S = 2.0


def readiness(
    redis: Redis,
    blind: Callable[[], bool],
    *,
    down: Callable[[], Sequence[str]] = tuple,
) -> Check:
    """The /readyz check of `aistatus run`: not ready while Redis does not take a write (down, a
    read-only replica, a cluster that is down or moved where we cannot follow — a PING would
    answer in each case; nothing can be recorded or delivered) or while a chat connection that
    brings commands in is down (`down`: each with why); ready but saying so while monitoring is
    blind. The Redis probe is one tiny SET PX in the outbox's slot."""

    async def ready() -> tuple[bool, str]:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                await redis.set(keys.readiness(), b"1", px=10_000)
        except TimeoutError:
            return False, "redis: no answer within 2 s"
        except Exception as e:  # readiness reports, it does not raise
            return False, f"redis: {type(e).__name__}"
        if gone := down():
            return False, "; ".join(gone)
        return True, "monitoring blind" if blind() else "ok"

    return ready


def build_health_app(
    ready: Check,
    *,
    registry: CollectorRegistry = REGISTRY,
    refresh: Callable[[], Awaitable[None]] | None = None,
) -> web.Application:
    """The app; `ready` answers (ok, detail) — e.g. Redis PING and "monitoring blind";
    `refresh` updates the gauges read on scrape (outbox, dead letters, chat connections) first:
    a failing refresh leaves their last values and never fails the scrape."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(_: web.Request) -> web.Response:
        ok, detail = await ready()
        return web.json_response({"ok": ok, "detail": detail}, status=200 if ok else 503)

    async def metrics(_: web.Request) -> web.Response:
        if refresh is not None:
            try:
                await refresh()
            except Exception as e:  # a scrape reports what it has; Redis down shows in /readyz
                log.debug("metrics refresh failed: %s: %s", type(e).__name__, e)
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.add_routes(
        [web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", metrics)]
    )
    return app


async def start_health_server(
    app: web.Application, host: str, port: int, limits: InboundLimits | None = None
) -> web.AppRunner:
    """Serve `app` on host:port (port 0 picks a free one) behind the inbound deadlines and
    connection cap; stop it with `await runner.cleanup()`. Raises: OSError when it cannot bind."""
    runner, _ = await serve(app, host, port, limits or InboundLimits(), name="operator endpoints")
    return runner
