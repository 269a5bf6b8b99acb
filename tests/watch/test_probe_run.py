"""Real checks against a loopback StatusServer: run_probe (plain and the authenticated API check)
and run_probes with the canary guard."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx  # tests drive the IO edge over loopback
import pytest
from pydantic import SecretStr

from bot.core.catalog import ProbeSpec
from bot.core.model import Status
from bot.ops.statusserver import StatusServer
from bot.watch.probe import classify, probe_observation
from bot.watch.probe_run import run_probe, run_probes

NOW = datetime(2026, 9, 22, 1, 1, tzinfo=UTC)
KEY = "sk-ant-test-0123456789-secret"


@pytest.fixture
async def server() -> AsyncIterator[StatusServer]:
    async with StatusServer(expected_api_key=KEY) as srv:
        yield srv


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(1.0, connect=0.5)) as c:
        yield c


@pytest.fixture
async def closed_url() -> str:
    async with StatusServer() as srv:
        return srv.url


def spec_for(url: str, **kw) -> ProbeSpec:
    return ProbeSpec(url=url, **kw)


@pytest.mark.parametrize(
    ("status", "delay", "expected"),
    [
        pytest.param(200, 0.0, Status.OPERATIONAL, id="200"),
        pytest.param(503, 0.0, Status.MAJOR_OUTAGE, id="503"),
        pytest.param(200, 0.15, Status.DEGRADED, id="slow"),
    ],
)
async def test_a_probe_against_a_real_server(server, client, status, delay, expected):
    server.set_probe("web", status=status, delay=delay)
    spec = spec_for(server.url + "/probe/web", degraded_ms=100)
    async with asyncio.timeout(5):
        result = await run_probe(client, spec)
    assert result.status_code == status and result.error is None
    assert classify(spec, result)[0] is expected


async def test_a_closed_port_is_an_outage_without_an_exception(client, closed_url):
    spec = spec_for(closed_url + "/probe/web")
    async with asyncio.timeout(5):
        result = await run_probe(client, spec)
    assert result.status_code is None and result.error == "connection refused"
    assert classify(spec, result) == (Status.MAJOR_OUTAGE, "connection refused")


async def test_a_probe_past_the_read_timeout_is_an_error(server):
    server.set_probe("web", delay=5.0)
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.2)) as client, asyncio.timeout(5):
        result = await run_probe(client, spec_for(server.url + "/probe/web"))
    assert result.error == "read timeout"


async def test_the_authenticated_check_counts_tokens_with_our_key(server, client):
    spec = spec_for(server.url + "/v1/models", expect=(200, 401), auth="anthropic")
    async with asyncio.timeout(5):
        result = await run_probe(client, spec, api_key=SecretStr(KEY))
    assert result.authenticated and result.status_code == 200
    assert result.url == server.url + "/v1/messages/count_tokens"
    assert server.api_keys_seen == [KEY]
    assert server.api_bodies == [
        {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "ping"}]}
    ]
    assert classify(spec, result)[0] is Status.OPERATIONAL


async def test_a_rejected_key_is_unknown_and_never_shown(server, client):
    spec = spec_for(server.url + "/v1/models", expect=(200, 401), auth="anthropic")
    wrong = "sk-ant-wrong-key-do-not-print"
    async with asyncio.timeout(5):
        result = await run_probe(client, spec, api_key=wrong)
    status, reason = classify(spec, result)
    assert status is Status.UNKNOWN and reason == "API key rejected"
    obs = probe_observation("api", [(spec, result)], NOW)
    assert wrong not in repr(result) + reason + repr(obs)


async def test_the_key_never_appears_in_network_errors(client, closed_url):
    spec = spec_for(closed_url + "/v1/models", auth="anthropic")
    async with asyncio.timeout(5):
        result = await run_probe(client, spec, api_key=KEY)
    assert result.error == "connection refused"
    assert KEY not in repr(result)


async def test_without_a_key_the_api_probe_stays_anonymous(server, client):
    spec = spec_for(server.url + "/v1/models", expect=(200, 401), auth="anthropic")
    async with asyncio.timeout(5):
        result = await run_probe(client, spec)
    assert not result.authenticated and result.status_code == 401
    assert server.api_keys_seen == [None]
    assert classify(spec, result)[0] is Status.OPERATIONAL


async def test_an_overloaded_api_is_a_major_outage(server, client):
    server.set_api(status=529)
    spec = spec_for(server.url + "/v1/models", auth="anthropic")
    async with asyncio.timeout(5):
        result = await run_probe(client, spec, api_key=KEY)
    assert classify(spec, result) == (Status.MAJOR_OUTAGE, "HTTP 529 (overloaded)")


async def test_run_probes_reports_each_surface(server, client):
    server.set_probe("web", status=200)
    server.set_probe("mobile", status=502)
    specs = {
        "claude.ai": [spec_for(server.url + "/probe/web")],
        "mobile": [spec_for(server.url + "/probe/mobile"), spec_for(server.url + "/probe/web")],
    }
    async with asyncio.timeout(5):
        obs = await run_probes(client, specs, [server.url + "/probe/canary"], now=NOW)
    assert {o.surface: o.status for o in obs} == {
        "claude.ai": Status.OPERATIONAL,
        "mobile": Status.MAJOR_OUTAGE,
    }
    assert server.hits["/probe/canary"] == 0  # canaries only when every probe failed


async def test_everything_refused_including_canaries_is_blind_not_down(client, closed_url):
    specs = {"claude.ai": [spec_for(closed_url + "/a")], "api": [spec_for(closed_url + "/b")]}
    async with asyncio.timeout(5):
        obs = await run_probes(client, specs, [closed_url + "/canary"], now=NOW)
    assert {o.surface for o in obs} == {"claude.ai", "api"}
    assert {(o.status, o.error) for o in obs} == {(Status.UNKNOWN, "monitoring blind")}


async def test_a_canary_that_answers_means_the_outage_is_real(server, client, closed_url):
    server.set_probe("canary", status=204)
    specs = {"claude.ai": [spec_for(closed_url + "/a")]}
    async with asyncio.timeout(5):
        (obs,) = await run_probes(client, specs, [server.url + "/probe/canary"], now=NOW)
    assert obs.status is Status.MAJOR_OUTAGE and obs.error == "connection refused"
    assert server.hits["/probe/canary"] == 1


async def test_one_probe_answering_means_not_blind(server, client, closed_url):
    server.set_probe("web", status=200)
    specs = {
        "claude.ai": [spec_for(closed_url + "/a")],
        "api": [spec_for(server.url + "/probe/web")],
    }
    async with asyncio.timeout(5):
        obs = await run_probes(client, specs, [closed_url + "/canary"], now=NOW)
    assert {o.surface: o.status for o in obs} == {
        "claude.ai": Status.MAJOR_OUTAGE,
        "api": Status.OPERATIONAL,
    }
