"""Inbound HTTP hardening shared by every aiohttp server the bot runs (operators' endpoints, Slack
HTTP mode, any new receiver): header and body read deadlines, a connection cap kept under the
descriptor budget, and one log line (with a count) for a flood of accept errors. IO.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

# Descriptors kept for the bot's own outbound sockets (status pages, probes, Slack, Discord,
# Redis) and files: at least this many, or a quarter of the soft RLIMIT_NOFILE if that is more.
FD_RESERVE = 128
INBOUND_SERVERS = 2  # operators' endpoints + Slack HTTP mode share the rest (+1: the hook, when on)
MIN_CAP = 8

_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


@dataclass(frozen=True, slots=True)
class InboundLimits:
    """How long a client may take to send a request, and how many connections a server holds."""

    max_connections: int = 256  # per server; lowered to fit the descriptor budget (`capped`)
    header_timeout: float = 10.0  # from accept (or the previous answer) to complete headers
    body_timeout: float = 10.0  # from complete headers to the whole body
    max_body_bytes: int = 1_000_000  # Slack's payloads are a few kB
    quiet: float = 30.0  # a burst of cut connections ends after this long without one
    servers: int = INBOUND_SERVERS  # inbound servers sharing the descriptor budget

    @classmethod
    def from_settings(cls, settings: Any) -> InboundLimits:
        hook = getattr(settings, "hook_secret", None) is not None  # the status-page receiver
        return cls(
            max_connections=settings.inbound_max_connections,
            header_timeout=settings.inbound_header_timeout,
            body_timeout=settings.inbound_body_timeout,
            servers=INBOUND_SERVERS + (1 if hook else 0),
        )

    def capped(self, soft_nofile: int | None = None) -> int:
        """The connection cap that leaves the reserve free: min(setting, budget per server)."""
        soft = soft_nofile if soft_nofile is not None else _soft_nofile()
        reserve = max(FD_RESERVE, soft // 4)
        return max(MIN_CAP, min(self.max_connections, (soft - reserve) // self.servers))


def _soft_nofile() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


class _Guarded(asyncio.Protocol):
    """aiohttp's request handler behind a deadline: closed with 408 when a request's headers are
    not complete in time. The deadline is off while a request is being answered."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self._transport: asyncio.Transport | None = None
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._inner.connection_made(transport)
        self._guard._admit(self)
        self.request_done()

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._guard._gone(self)
        self._inner.connection_lost(exc)

    def request_started(self) -> None:
        """Headers are in: the answer is the handler's job now."""
        self._disarm()
        self._guard._waiting.pop(self, None)

    def request_done(self) -> None:
        """Waiting for (the next) request's headers again."""
        if self._transport is None or self._transport.is_closing():
            return
        self._disarm()
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self._guard.limits.header_timeout, self.cut)
        self._guard._waiting[self] = None

    def cut(self) -> None:
        """Answer 408 and close: too slow, or the oldest idle one when the server is full."""
        self._disarm()
        self._guard._waiting.pop(self, None)
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(_TIMEOUT)
            self._transport.close()
            self._guard._cut()

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None


class _Refused(asyncio.Protocol):
    """Every connection busy answering: 503 and close at once (the descriptor comes back)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(_BUSY)
        transport.close()


class ConnectionGuard:
    """One server's connections: at most `cap` at a time. At the cap, the oldest connection still
    sending its headers gives way (so a slow flood cannot lock out a client that sends a request
    at once); only when every connection is being answered is a new one refused."""

    def __init__(self, limits: InboundLimits, name: str) -> None:
        self.limits = limits
        self.name = name
        self.cap = limits.capped()
        self._live: set[_Guarded] = set()
        self._waiting: OrderedDict[_Guarded, None] = OrderedDict()  # oldest first
        self.cut_total = 0
        self._burst = 0  # cut since the burst began; 0 while no burst
        self._quiet: asyncio.TimerHandle | None = None

    @property
    def live(self) -> int:
        return len(self._live)

    def factory(self, inner: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """Wrap aiohttp's protocol factory (`runner.server`) for `loop.create_server`."""

        def make() -> asyncio.Protocol:
            if len(self._live) >= self.cap:
                if not self._waiting:
                    self._cut()
                    return _Refused()
                oldest = next(iter(self._waiting))
                oldest.cut()
            return _Guarded(self, inner())

        return make

    def _admit(self, conn: _Guarded) -> None:
        self._live.add(conn)

    def _gone(self, conn: _Guarded) -> None:
        self._live.discard(conn)
        self._waiting.pop(conn, None)

    def _cut(self) -> None:
        """Count a cut connection; log the start of a burst once and its end once."""
        self.cut_total += 1
        if self._burst == 0:
            log.warning(
                "%s: closing slow or excess connections (cap %d, %.0fs to send headers)",
                self.name,
                self.cap,
                self.limits.header_timeout,
            )
        self._burst += 1
        if self._quiet is not None:
            self._quiet.cancel()
        self._quiet = asyncio.get_running_loop().call_later(self.limits.quiet, self._calm)

    def _calm(self) -> None:
        log.warning("%s: slow connections ended; %d closed", self.name, self._burst)
        self._burst = 0
        self._quiet = None

    def close(self) -> None:
        if self._quiet is not None:
            self._quiet.cancel()
            self._quiet = None


def deadlines(limits: InboundLimits) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Middleware: marks a connection busy while its request is answered, reads the body within
    `body_timeout` and `max_body_bytes` (408 / 413, closing), before the handler sees it."""

    @web.middleware
    async def middleware(
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        transport = request.transport
        proto = transport.get_protocol() if transport is not None else None
        conn = proto if isinstance(proto, _Guarded) else None
        if conn is not None:
            conn.request_started()
        try:
            if (
                request.content_length is not None
                and request.content_length > limits.max_body_bytes
            ):
                return _closing(413, "request body too large")
            if request.body_exists:
                try:
                    async with asyncio.timeout(limits.body_timeout):
                        await request.read()  # cached: the handler's read() returns these bytes
                except TimeoutError:
                    return _closing(408, "request body too slow")
                except ConnectionResetError:  # the client left mid-body: nobody to answer
                    return _closing(400, "client went away")
                except web.HTTPRequestEntityTooLarge:
                    return _closing(413, "request body too large")
            return await handler(request)
        finally:
            if conn is not None:
                conn.request_done()

    return middleware


def _closing(status: int, text: str) -> web.Response:
    resp = web.Response(status=status, text=text)
    resp.force_close()
    return resp


def protect(app: web.Application, limits: InboundLimits) -> None:
    """Add the deadline middleware to `app` (before `runner.setup()`), first in line."""
    app.middlewares.insert(0, deadlines(limits))


class GuardedSite(web.TCPSite):
    """A TCPSite whose connections go through a ConnectionGuard."""

    __slots__ = ("guard",)

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, guard: ConnectionGuard
    ) -> None:
        super().__init__(runner, host, port)
        self.guard = guard

    async def start(self) -> None:
        self._runner._reg_site(self)
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self.guard.factory(server),
            self._host,
            self._port,
            backlog=self._backlog,
        )
        self._bound_port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.guard.close()
        await super().stop()


async def serve(
    app: web.Application, host: str, port: int, limits: InboundLimits, *, name: str
) -> tuple[web.AppRunner, ConnectionGuard]:
    """Protect `app`, set it up and listen on host:port (0 picks a free port).
    Raises: OSError when the address cannot be bound."""
    protect(app, limits)
    # aiohttp closes idle keep-alive connections silently; our deadline (with a 408) comes first.
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=limits.header_timeout * 2)
    await runner.setup()
    guard = ConnectionGuard(limits, name)
    try:
        await GuardedSite(runner, host, port, guard).start()
    except OSError:
        await runner.cleanup()
        raise
    return runner, guard


class AcceptErrors:
    """The loop's exception handler for accept errors (EMFILE, ENFILE, ENOBUFS, ENOMEM): asyncio
    reports one per listening socket per retry, each with a traceback. One warning when they
    begin, one with the count when none came for `quiet` seconds; anything else goes to the
    previous handler."""

    MESSAGE = "socket.accept() out of system resource"

    def __init__(self, loop: asyncio.AbstractEventLoop, *, quiet: float = 10.0) -> None:
        self._loop = loop
        self._quiet_after = quiet
        self._previous = loop.get_exception_handler()
        self.count = 0  # since the flood began; 0 while none
        self._quiet: asyncio.TimerHandle | None = None

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != self.MESSAGE:
            if self._previous is not None:
                self._previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        if self.count == 0:
            exc = context.get("exception")
            log.error(
                "cannot accept connections: %s (out of descriptors or memory); retrying",
                exc.strerror if isinstance(exc, OSError) else type(exc).__name__,
            )
        self.count += 1
        if self._quiet is not None:
            self._quiet.cancel()
        self._quiet = loop.call_later(self._quiet_after, self._ended)

    def _ended(self) -> None:
        log.warning("accepting connections again after %d accept errors", self.count)
        self.count = 0
        self._quiet = None


def install_accept_errors(loop: asyncio.AbstractEventLoop) -> AcceptErrors:
    """Route the loop's accept-error reports through one AcceptErrors (idempotent)."""
    current = loop.get_exception_handler()
    if isinstance(current, AcceptErrors):
        return current
    handler = AcceptErrors(loop)
    loop.set_exception_handler(handler)
    return handler
