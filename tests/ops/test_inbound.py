"""Inbound hardening against slow clients: a running bot under a trickling-connection flood still
answers /healthz and signed commands, still alerts, closes the slow connections and keeps its log
small; header and body deadlines, the connection cap and the accept-error log on their own."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web

from bot.ops.inbound import AcceptErrors, InboundLimits, serve
from bot.ops.redisproc import RedisProcess, free_port
from bot.ops.statusserver import StatusServer
from tests.helpers import (
    SECRET,
    bot_env,
    command_form,
    fixture_json,
    loopback_catalog,
    running_bot,
    sign,
)
from tests.peers.slack_api import SlackApi

FORM = "application/x-www-form-urlencoded"


@dataclass
class Flood:
    """`count` clients that each open a connection and trickle header lines (or, with `body`,
    complete headers and then a trickling body) until the server closes it, then come back."""

    port: int
    count: int
    body: bool = False
    every: float = 0.3
    back_after: float = 1.0
    closed: int = 0
    opened: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def _count(self, opened: int = 0, closed: int = 0) -> None:
        self.opened += opened
        self.closed += closed
        async with self.changed:
            self.changed.notify_all()

    async def until(self, opened: int = 0, closed: int = 0, within: float = 30) -> None:
        """Until this many connections were opened and closed. Raises: TimeoutError."""
        async with asyncio.timeout(within), self.changed:
            await self.changed.wait_for(lambda: self.opened >= opened and self.closed >= closed)

    async def _one(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(self.back_after)
                continue
            await self._count(opened=1)
            head = "POST /slack/events HTTP/1.1\r\nHost: x\r\n"
            if self.body:
                head += f"Content-Type: {FORM}\r\nContent-Length: 100000\r\n\r\n"
            try:
                writer.write(head.encode())
                while not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.every):
                            if not await reader.read(1024):
                                break  # closed by the server (after its 408)
                    writer.write(b"a" if self.body else b"X-Slow: 1\r\n")
                    await writer.drain()
                else:
                    break
                await self._count(closed=1)
            except OSError:
                await self._count(closed=1)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            await asyncio.sleep(self.back_after)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Flood]:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(self._one(stop)) for _ in range(self.count)]
        try:
            yield self
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)


def _lower_nofile() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512))


async def test_a_slow_connection_flood_does_not_silence_a_running_bot(
    tmp_path: Path, redis, redis_server: RedisProcess
):
    slack_port, ops_port = free_port(), free_port()
    async with (
        SlackApi(tokens={"xoxb-test": "T0001"}) as api,
        StatusServer() as claude,
        aiohttp.ClientSession() as session,
    ):
        claude.set_summary(fixture_json("claude/summary_all_operational.json"))
        env = bot_env(
            SLACK_BOT_TOKEN="xoxb-test",
            SLACK_SIGNING_SECRET=SECRET,
            AISTATUS_SLACK_MODE="http",
            AISTATUS_SLACK_PORT=str(slack_port),
            SLACK_API_URL=api.base_url,
            REDIS_URL=redis_server.url,
            AISTATUS_CATALOG=loopback_catalog(tmp_path / "catalog.json", claude.url),
            AISTATUS_PROBES="false",
            AISTATUS_POLL_INTERVAL="0.5",
            AISTATUS_HTTP_PORT=str(ops_port),
            AISTATUS_INBOUND_HEADER_TIMEOUT="2",
            AISTATUS_INBOUND_BODY_TIMEOUT="2",
            AISTATUS_DATA_DIR=str(tmp_path / "data"),
        )
        url = f"http://127.0.0.1:{slack_port}/slack/events"
        healthz_seconds: list[float] = []
        # 512 descriptors: the cap is 192 per server
        bot = running_bot(env, tmp_path, preexec_fn=_lower_nofile)
        async with bot as (proc, err, logs), asyncio.timeout(90):
            await err.wait_for("Slack: HTTP mode on", within=30)
            slow, slow_bodies, ops = (
                Flood(slack_port, 300),
                Flood(slack_port, 20, body=True),
                Flood(ops_port, 100),
            )
            async with slow.running(), slow_bodies.running(), ops.running():
                await slow.until(opened=300)
                await ops.until(opened=100)
                for _ in range(5):
                    started = time.monotonic()
                    async with (
                        asyncio.timeout(3),
                        session.get(f"http://127.0.0.1:{ops_port}/healthz") as resp,
                    ):
                        assert resp.status == 200
                    healthz_seconds.append(time.monotonic() - started)
                body = urlencode(command_form(api, "subscribe all"))
                headers = {**sign(body, secret=SECRET), "Content-Type": FORM}
                async with (
                    asyncio.timeout(3),
                    session.post(url, data=body.encode(), headers=headers) as resp,
                ):
                    assert resp.status == 200
                await api.wait_for("respond:cmd", within=10)
                claude.set_summary(fixture_json("claude/summary_incident_investigating.json"))
                await api.wait_until(
                    lambda: any("blocks" in c.params for c in api.accepted_to("chat.postMessage")),
                    within=15,
                )
                await slow.until(closed=300)  # the deadlines cut them
                await slow_bodies.until(closed=20)
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
    log_text = "".join(logs)
    print(
        f"\nflood: healthz max {max(healthz_seconds) * 1000:.0f} ms, "
        f"log {len(log_text.encode())} bytes, slack closed {slow.closed}+{slow_bodies.closed}, "
        f"ops closed {ops.closed}"
    )
    assert proc.returncode == 0, log_text[-3000:]
    assert max(healthz_seconds) < 1.0, healthz_seconds
    assert (
        "Traceback" not in log_text
        and "EMFILE" not in log_text
        and "Too many open files" not in log_text
    )
    assert len(log_text.encode()) < 20_000, log_text[-3000:]
    assert log_text.count("Slack HTTP: closing slow or excess connections") == 1, log_text
    assert "at most 192 per server" in log_text


# -- the mechanisms on their own, in-process -------------------------------------------------------


async def hello(_: web.Request) -> web.Response:
    return web.Response(text="hello")


async def echo(request: web.Request) -> web.Response:
    return web.Response(text=str(len(await request.read())))


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, object]]:
    app = web.Application()
    app.add_routes([web.get("/", hello), web.post("/", echo)])
    limits = InboundLimits(max_connections=10, header_timeout=0.5, body_timeout=0.5, quiet=0.2)
    runner, guard = await serve(app, "127.0.0.1", 0, limits, name="test server")
    try:
        yield runner.addresses[0][1], guard
    finally:
        await runner.cleanup()


class LogWatch(logging.Handler):
    """Records what `bot.ops.inbound` log_text; `seen(needle)` waits for a line with it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.changed = asyncio.Event()
        self.logger = logging.getLogger("bot.ops.inbound")

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self.changed.set()

    async def seen(self, needle: str, within: float = 3) -> None:
        async with asyncio.timeout(within):
            while not any(needle in line for line in self.lines):
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
def log_text() -> Iterator[LogWatch]:
    watch = LogWatch()
    watch.logger.addHandler(watch)
    try:
        yield watch
    finally:
        watch.logger.removeHandler(watch)


async def _read_all(reader: asyncio.StreamReader, within: float) -> bytes:
    async with asyncio.timeout(within):
        return await reader.read()


async def test_headers_too_slow_get_408_and_are_closed(server, log_text: LogWatch):
    port, _ = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
    answer = await _read_all(reader, within=3)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    await log_text.seen("slow connections ended; 1 closed")
    assert [line[:30] for line in log_text.lines] == [
        "test server: closing slow or e",
        "test server: slow connections ",
    ]


@pytest.mark.parametrize(
    ("request_bytes", "answer"),
    [
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", b"HTTP/1.1 408 "),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\nabc", b"HTTP/1.1 413 "),
    ],
    ids=["body-too-slow", "body-too-large-before-it-is-read"],
)
async def test_a_body_too_slow_or_too_large_is_refused(server, request_bytes: bytes, answer: bytes):
    port, _ = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request_bytes)
    got = await _read_all(reader, within=3)
    writer.close()
    assert got.startswith(answer)


async def test_a_client_leaving_mid_body_is_no_traceback(server, caplog):
    port, _ = server
    caplog.set_level(logging.DEBUG)
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    await writer.drain()
    await asyncio.sleep(0.1)  # the middleware is reading the body
    writer.close()
    await asyncio.sleep(0.2)
    assert "Error handling request" not in caplog.text
    assert "Traceback" not in caplog.text


async def test_at_the_cap_the_oldest_slow_connection_gives_way(server):
    port, guard = server
    slow = []
    for _ in range(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\n")
        slow.append((reader, writer))
    # Connections are accepted in order: the ten are in before the eleventh.
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/") as r:
        assert r.status == 200 and await r.text() == "hello"
    first = await _read_all(slow[0][0], within=1)
    assert first.startswith(b"HTTP/1.1 408 ")
    assert guard.live <= 10
    for _, writer in slow:
        writer.close()


async def test_keep_alive_requests_are_answered_while_the_deadline_rearms(server):
    port, _ = server
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.get(f"http://127.0.0.1:{port}/") as r:
                assert r.status == 200


async def test_a_flood_of_accept_errors_is_one_line_and_its_end_one_more(log_text: LogWatch):
    loop = asyncio.get_running_loop()
    handler = AcceptErrors(loop, quiet=0.2)
    loop.set_exception_handler(handler)
    try:
        for _ in range(500):  # what asyncio reports on each accept retry while out of descriptors
            loop.call_exception_handler(
                {"message": AcceptErrors.MESSAGE, "exception": OSError(24, "Too many open files")}
            )
        await log_text.seen("accepting connections again after 500 accept errors")
    finally:
        loop.set_exception_handler(None)
    assert len(log_text.lines) == 2, log_text.lines
