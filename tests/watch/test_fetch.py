"""fetch_summary / fetch_incidents against a real loopback StatusServer: conditional GETs,
redirects, the size cap, timeouts and deadlines; what they fetch is parsed by parse_summary."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx  # tests drive the IO edge over loopback
import pytest

from bot.errors import ProbeError
from bot.ops.statusserver import StatusServer
from bot.watch.fetch import Validators, fetch_incidents, fetch_summary
from bot.watch.statuspage import PageReading, parse_summary
from tests.helpers import fixture_json, fixture_text

NOW = datetime(2026, 9, 22, 1, 1, tzinfo=UTC)


def read(body: bytes) -> PageReading:
    return parse_summary(body, provider="claude", observed_at=NOW)


@pytest.fixture
async def server() -> AsyncIterator[StatusServer]:
    async with StatusServer() as srv:
        yield srv


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(1.0, connect=0.5)) as c:
        yield c


async def test_a_second_fetch_is_conditional_and_gets_304(server, client):
    server.set_summary(fixture_json("claude/summary_all_operational.json"))
    async with asyncio.timeout(5):
        first = await fetch_summary(client, server.url)
        assert not first.not_modified and first.status_code == 200
        assert first.validators.etag and first.validators.last_modified
        assert read(first.body or b"").ok
        second = await fetch_summary(client, server.url, validators=first.validators)
    assert second.not_modified and second.body is None and second.status_code == 304
    assert second.validators == first.validators
    assert server.conditional_hits == 1 and server.requests == 2


async def test_a_changed_page_is_fetched_in_full_despite_old_validators(server, client):
    server.set_summary(fixture_json("claude/summary_all_operational.json"))
    async with asyncio.timeout(5):
        first = await fetch_summary(client, server.url)
        server.set_summary(fixture_json("claude/summary_incident_investigating.json"))
        second = await fetch_summary(client, server.url, validators=first.validators)
    assert not second.not_modified
    assert read(second.body or b"").incidents[0].id == "7g1qpkyz5gxh"
    assert server.conditional_hits == 0


async def test_the_old_host_redirects_to_the_new_one(client):
    async with StatusServer() as new, StatusServer() as old:
        new.set_summary(fixture_json("claude/summary_all_operational.json"))
        old.redirect_all(new.url)
        async with asyncio.timeout(5):
            result = await fetch_summary(client, old.url)
        assert result.final_url == new.url + "/api/v2/summary.json"
        assert read(result.body or b"").ok
        assert old.requests == 1 and new.requests == 1


async def test_a_redirect_loop_is_cut_short(server, client):
    server.add_redirect("/api/v2/summary.json", "/api/v2/summary.json")
    with pytest.raises(ProbeError, match="too many redirects"):
        async with asyncio.timeout(5):
            await fetch_summary(client, server.url, max_redirects=3)
    assert server.requests == 4


async def test_an_html_503_page_is_a_probe_error(server, client):
    server.set_fault(status=503)
    with pytest.raises(ProbeError) as info:
        async with asyncio.timeout(5):
            await fetch_summary(client, server.url)
    assert info.value.reason == "HTTP 503"


async def test_a_200_html_page_fetches_but_does_not_parse(server, client):
    server.set_fault(status=200, body=b"<!DOCTYPE html><html>Just a moment...</html>")
    async with asyncio.timeout(5):
        result = await fetch_summary(client, server.url)
    reading = read(result.body or b"")
    assert not reading.ok and reading.error == "not JSON (HTML error page?)"


async def test_truncated_json_is_read_as_not_ok(server, client):
    whole = fixture_text("claude/summary_incident_investigating.json").encode()
    server.set_summary(whole[: len(whole) // 2])
    async with asyncio.timeout(5):
        result = await fetch_summary(client, server.url)
    assert read(result.body or b"").error == "truncated JSON"


async def test_a_body_over_the_cap_is_refused(server, client):
    server.set_summary(fixture_json("claude/summary_all_operational.json"))
    server.set_fault(size=300_000)
    with pytest.raises(ProbeError, match="response larger than 100000 bytes"):
        async with asyncio.timeout(5):
            await fetch_summary(client, server.url, max_bytes=100_000)


async def test_a_slow_server_times_out(server):
    server.set_summary(fixture_json("claude/summary_all_operational.json"))
    server.set_fault(delay=5.0)
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.2)) as client:
        with pytest.raises(ProbeError) as info:
            async with asyncio.timeout(5):
                await fetch_summary(client, server.url)
    assert info.value.reason == "read timeout"


async def test_a_slow_drip_body_is_cut_by_the_deadline(server, client):
    server.set_summary(fixture_json("claude/summary_all_operational.json"))
    server.set_fault(drip=True, delay=0.05)
    with pytest.raises(ProbeError) as info:
        async with asyncio.timeout(5):
            await fetch_summary(client, server.url, deadline=0.3)
    assert info.value.reason == "no answer within 0.3 s"


async def test_a_closed_port_is_connection_refused(client):
    async with StatusServer() as srv:
        url = srv.url
    with pytest.raises(ProbeError) as info:
        async with asyncio.timeout(5):
            await fetch_summary(client, url)
    assert info.value.reason == "connection refused"


async def test_incidents_json_is_fetched(server, client):
    body = {"page": {"url": "https://status.claude.com"}, "incidents": []}
    server.set_incidents(body)
    async with asyncio.timeout(5):
        data = await fetch_incidents(client, server.url)
    assert json.loads(data) == body
    assert server.hits["/api/v2/incidents.json"] == 1


async def test_a_page_without_validators_is_fetched_in_full_every_time(server, client):
    server.set_summary(fixture_json("openai/summary_two_incidents_degraded.json"), validators=False)
    async with asyncio.timeout(5):
        first = await fetch_summary(client, server.url)
        second = await fetch_summary(client, server.url, validators=first.validators)
    assert first.validators == Validators(None, None)
    assert not second.not_modified and server.conditional_hits == 0
