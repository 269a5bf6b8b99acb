"""The loopback StatusServer itself: the API the demo, the benchmarks and other tests rely on."""

from __future__ import annotations

import asyncio
import json

import httpx  # tests drive the IO edge over loopback
import pytest

from bot.ops.statusserver import StatusServer


async def test_it_serves_dicts_as_json_and_counts_requests():
    async with StatusServer() as srv, httpx.AsyncClient() as client, asyncio.timeout(5):
        srv.set_summary({"components": []})
        resp = await client.get(srv.url + "/api/v2/summary.json")
        missing = await client.get(srv.url + "/api/v2/nothing.json")
    assert resp.json() == {"components": []}
    assert resp.headers["content-type"].startswith("application/json")
    assert missing.status_code == 404
    assert srv.requests == 2 and srv.hits["/api/v2/summary.json"] == 1


async def test_if_modified_since_alone_gets_304():
    async with StatusServer() as srv, httpx.AsyncClient() as client, asyncio.timeout(5):
        srv.set_summary("{}")
        first = await client.get(srv.url + "/api/v2/summary.json")
        again = await client.get(
            srv.url + "/api/v2/summary.json",
            headers={"If-Modified-Since": first.headers["Last-Modified"]},
        )
    assert again.status_code == 304 and srv.conditional_hits == 1


async def test_play_sets_each_payload_in_turn():
    async with StatusServer() as srv, httpx.AsyncClient() as client, asyncio.timeout(5):
        srv.set_summary({"step": 0})
        await srv.play([(0.0, {"step": 1}), (0.01, b'{"step": 2}')])
        resp = await client.get(srv.url + "/api/v2/summary.json")
    assert json.loads(resp.content) == {"step": 2}


async def test_wait_for_requests_returns_once_polled_and_times_out_otherwise():
    async with StatusServer() as srv, httpx.AsyncClient() as client:
        srv.set_summary("{}")
        waiter = asyncio.create_task(srv.wait_for_requests(1, within=5))
        await client.get(srv.url + "/api/v2/summary.json")
        await waiter
        with pytest.raises(TimeoutError):
            await srv.wait_for_requests(5, within=0.05)


async def test_stop_ends_a_slow_drip_at_once():
    srv = StatusServer()
    await srv.start()
    srv.set_summary("{}" + " " * 10_000)
    srv.set_fault(drip=True, delay=1.0)
    async with (
        httpx.AsyncClient() as client,
        client.stream("GET", srv.url + "/api/v2/summary.json") as resp,
    ):
        assert resp.status_code == 200
        async with asyncio.timeout(3):  # the drip alone would take hours
            await srv.stop()


def test_it_refuses_to_listen_beyond_loopback():
    with pytest.raises(ValueError, match="loopback"):
        StatusServer(host="0.0.0.0")
    with pytest.raises(RuntimeError):
        _ = StatusServer().url
