"""The status-page webhook receiver over real HTTP on loopback: what it answers to a delivery, a
wrong secret, junk, a huge body, a flood and a client that never finishes its headers. The hint
it gives is recorded here; `tests/test_hook_run.py` proves a hook makes the alert arrive."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from bot.catalog_file import load_catalog
from bot.ops.hook import HOOK_PREFIX, MAX_BODY, RateLimit, build_hook_app, start_hook_server

SECRET = "s3cr3t-hook-path-0123456789abcdef"
CLAUDE_PAGE = "tymt9n04zgry"


def delivery(page_id: str = CLAUDE_PAGE) -> dict:
    """A Statuspage component-update delivery (the shape Statuspage documents)."""
    return {
        "meta": {"unsubscribe": "https://status.claude.com/?unsubscribe=x", "documentation": ""},
        "page": {"id": page_id, "status_indicator": "major", "status_description": "Outage"},
        "component_update": {"created_at": "2026-09-22T01:01:12Z", "new_status": "major_outage"},
        "component": {"id": "k8w3r06qmzrp", "name": "Claude API", "status": "major_outage"},
    }


@dataclass
class Receiver:
    url: str
    port: int
    hints: list[list[str]] = field(default_factory=list)


class Ticks:
    """A monotonic clock moved by hand, for the rate limit."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
async def receiver(ticks: Ticks) -> AsyncIterator[Receiver]:
    hints: list[list[str]] = []
    app = build_hook_app(
        SECRET,
        load_catalog(),
        hints.append,
        limit=RateLimit(per_second=1.0, burst=3, clock=ticks),
        body_timeout=0.5,
    )
    server = await start_hook_server(app, "127.0.0.1", 0, deadline=1.0)
    try:
        yield Receiver(f"http://127.0.0.1:{server.port}", server.port, hints)
    finally:
        await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


async def test_a_delivery_is_a_hint_to_poll_that_page(receiver, http):
    resp = await http.post(receiver.url + HOOK_PREFIX + SECRET, json=delivery())
    assert resp.status_code == 202
    assert receiver.hints == [["claude"]]


async def test_an_unknown_page_id_polls_every_watched_page(receiver, http):
    resp = await http.post(receiver.url + HOOK_PREFIX + SECRET, json=delivery("someoneelse1"))
    assert resp.status_code == 202
    assert receiver.hints == [load_catalog().watched_providers()]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        pytest.param(HOOK_PREFIX + "wrong", delivery(), 404, id="wrong-secret"),
        pytest.param(HOOK_PREFIX + SECRET[:-1], delivery(), 404, id="secret-prefix"),
        pytest.param("/hooks/statuspage", delivery(), 404, id="no-secret"),
        pytest.param(HOOK_PREFIX + SECRET, b"<html>hi</html>", 400, id="html"),
        pytest.param(HOOK_PREFIX + SECRET, b'{"hello": 1}', 400, id="not-a-delivery"),
        pytest.param(HOOK_PREFIX + SECRET, b"[1, 2]", 400, id="a-list"),
        pytest.param(HOOK_PREFIX + SECRET, b"x" * (MAX_BODY + 1), 413, id="too-big"),
    ],
)
async def test_what_is_not_a_delivery_is_refused_quickly(receiver, http, path, body, status):
    content = json.dumps(body).encode() if isinstance(body, dict) else body
    resp = await http.post(receiver.url + path, content=content)
    assert resp.status_code == status
    assert receiver.hints == []


async def test_a_chunked_body_past_the_cap_is_413(receiver, http):
    async def chunks():
        for _ in range(MAX_BODY // 1024 + 2):
            yield b" " * 1024

    resp = await http.post(receiver.url + HOOK_PREFIX + SECRET, content=chunks())
    assert resp.status_code == 413 and receiver.hints == []


async def test_a_flood_is_rate_limited_and_a_wrong_secret_costs_no_token(receiver, http, ticks):
    url = receiver.url + HOOK_PREFIX + SECRET
    wrong = [await http.post(receiver.url + HOOK_PREFIX + "x", json=delivery()) for _ in range(5)]
    got = [(await http.post(url, json=delivery())).status_code for _ in range(5)]
    assert {r.status_code for r in wrong} == {404}
    assert got == [202, 202, 202, 429, 429]
    ticks.now += 1.0
    assert (await http.post(url, json=delivery())).status_code == 202, "one token a second"
    assert len(receiver.hints) == 4


async def test_a_client_that_never_finishes_its_headers_is_cut_off(receiver):
    reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
    writer.write(f"POST {HOOK_PREFIX}{SECRET} HTTP/1.1\r\nHost: x\r\n".encode())
    await writer.drain()
    async with asyncio.timeout(5):
        rest = await reader.read()  # EOF once the server closes the connection
    assert rest == b"" and reader.at_eof()
    writer.close()
    assert receiver.hints == []


async def test_a_body_that_never_arrives_is_408(receiver):
    reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
    writer.write(
        f"POST {HOOK_PREFIX}{SECRET} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{".encode()
    )
    await writer.drain()
    async with asyncio.timeout(5):
        head = await reader.readline()
    assert head.startswith(b"HTTP/1.1 408")
    writer.close()
    assert receiver.hints == []
