"""The status-page webhook receiver: `POST /hooks/statuspage/<secret>` on its own listener. IO
(aiohttp). A delivery is only a hint to poll that page now: its body is never believed.

Answers, cheapest first: a wrong secret (constant-time compare) or any other path 404 (the URL's
existence is not revealed); over the rate limit 429; a body over MAX_BODY 413; a body not sent
in time 408; junk 400; a delivery 202. A connection lives at most `deadline` seconds, so a
client slow to send its headers or body is cut off.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from aiohttp import web

from bot.core.catalog import Catalog
from bot.ops.inbound import INBOUND_SERVERS, ConnectionGuard, InboundLimits
from bot.watch.statuspage import parse_hook

log = logging.getLogger(__name__)

HOOK_PREFIX = "/hooks/statuspage/"
MAX_BODY = 64 * 1024  # bytes: a real delivery is a few KiB
BODY_TIMEOUT = 5.0  # seconds to send the whole body once the headers are in
CONNECTION_DEADLINE = 10.0  # seconds a connection may live: headers + body + answer

Hint = Callable[[list[str]], None]


@dataclass
class RateLimit:
    """A token bucket: `per_second` sustained, `burst` at once. Clock injected (monotonic)."""

    per_second: float = 2.0
    burst: int = 20
    clock: Callable[[], float] = time.monotonic
    _tokens: float = field(default=-1.0, init=False)
    _at: float = field(default=0.0, init=False)

    def allow(self) -> bool:
        now = self.clock()
        if self._tokens < 0:
            self._tokens, self._at = float(self.burst), now
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.per_second)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


def build_hook_app(
    secret: str,
    catalog: Catalog,
    hint: Hint,
    *,
    limit: RateLimit | None = None,
    body_timeout: float = BODY_TIMEOUT,
) -> web.Application:
    """The receiver. `hint` gets the providers to poll (`Catalog.providers_for_page`)."""
    limit = limit or RateLimit()
    wanted = secret.encode()
    app = web.Application(client_max_size=MAX_BODY)
    problem = {"rate_limited": False}  # logged when it starts and when it ends, once each

    async def receive(request: web.Request) -> web.Response:
        given = request.match_info["secret"].encode()
        if not hmac.compare_digest(given, wanted):
            raise web.HTTPNotFound()
        if not limit.allow():
            if not problem["rate_limited"]:
                log.warning("status-page hook: rate limited (answering 429 until it slows)")
            problem["rate_limited"] = True
            raise web.HTTPTooManyRequests(headers={"Retry-After": "1"})
        if problem["rate_limited"]:
            log.warning("status-page hook: no longer rate limited")
            problem["rate_limited"] = False
        if (request.content_length or 0) > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(MAX_BODY, request.content_length or 0)
        try:
            async with asyncio.timeout(body_timeout):
                body = await request.read()  # client_max_size caps a chunked body too (413)
        except TimeoutError:
            raise web.HTTPRequestTimeout() from None
        try:
            page_id = parse_hook(body)
        except ValueError as e:
            raise web.HTTPBadRequest(text=f"{e}\n") from None
        providers = catalog.providers_for_page(page_id)
        log.info("status-page hook (page %s): polling %s now", page_id, ", ".join(providers))
        hint(providers)
        return web.Response(status=202, text="polling\n")

    app.router.add_post(HOOK_PREFIX + "{secret}", receive)
    return app


class _Deadline(asyncio.Protocol):
    """Wraps aiohttp's protocol: the connection is closed `limit` seconds after it opened,
    whatever the client is still (not) sending. aiohttp has no header-read timeout."""

    def __init__(self, inner: asyncio.Protocol, limit: float) -> None:
        self._inner = inner
        self._limit = limit
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._timer = asyncio.get_running_loop().call_later(self._limit, transport.close)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


@dataclass
class HookServer:
    """A running receiver: `port` (the bound one) and `stop()`."""

    runner: web.AppRunner
    server: asyncio.Server
    port: int
    guard: ConnectionGuard

    async def stop(self) -> None:
        self.guard.close()
        self.server.close()
        await self.server.wait_closed()
        await self.runner.cleanup()


async def start_hook_server(
    app: web.Application,
    host: str,
    port: int,
    *,
    deadline: float = CONNECTION_DEADLINE,
    limits: InboundLimits | None = None,
) -> HookServer:
    """Listen on host:port (0 picks a free port). Each connection lives at most `deadline`
    seconds; the connection cap of every inbound server (`bot.ops.inbound`) holds too, its
    header deadline left beyond `deadline` so the connection deadline decides."""
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=deadline)
    await runner.setup()
    assert runner.server is not None
    protocol = runner.server
    loop = asyncio.get_running_loop()
    shared = limits or InboundLimits(servers=INBOUND_SERVERS + 1)
    guard = ConnectionGuard(replace(shared, header_timeout=deadline * 2), "status-page hook")
    server = await loop.create_server(
        guard.factory(lambda: _Deadline(protocol(), deadline)), host, port, reuse_address=True
    )
    bound = int(server.sockets[0].getsockname()[1])
    return HookServer(runner, server, bound, guard)
