"""Probe classification, the canary guard, and real checks against a loopback StatusServer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx  # tests drive the IO edge over loopback
import pytest
from pydantic import SecretStr

from bot.core.catalog import ProbeSpec
from bot.core.model import Signal, Status
from bot.ops.statusserver import StatusServer
from bot.watch.probe import (
    ProbeResult,
    blind_observations,
    classify,
    is_blind,
    probe_observation,
    run_probe,
    run_probes,
)

NOW = datetime(2026, 9, 22, 1, 1, tzinfo=UTC)
KEY = "sk-ant-test-0123456789-secret"
SPEC = ProbeSpec(url="https://claude.ai/login", expect=(200, 403), degraded_ms=3000)
API = ProbeSpec(
    url="https://api.anthropic.com/v1/models", expect=(200, 401), degraded_ms=3000, auth="anthropic"
)


def res(code: int | None, ms: float | None = 100.0, error: str | None = None, auth: bool = False):
    return ProbeResult("https://x", code, ms, error, auth)


# -- classify ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "result", "status", "reason"),
    [
        pytest.param(SPEC, res(200), Status.OPERATIONAL, "HTTP 200 in 100 ms", id="ok"),
        pytest.param(SPEC, res(403), Status.OPERATIONAL, "HTTP 403 in 100 ms", id="expected-403"),
        pytest.param(
            SPEC, res(200, 4500.0), Status.DEGRADED, "slow: 4500 ms (limit 3000 ms)", id="slow"
        ),
        pytest.param(
            SPEC,
            res(None, None, "connection refused"),
            Status.MAJOR_OUTAGE,
            "connection refused",
            id="refused",
        ),
        pytest.param(
            SPEC, res(None, None, "read timeout"), Status.MAJOR_OUTAGE, "read timeout", id="timeout"
        ),
        pytest.param(SPEC, res(503), Status.MAJOR_OUTAGE, "HTTP 503", id="5xx"),
        pytest.param(SPEC, res(529), Status.MAJOR_OUTAGE, "HTTP 529 (overloaded)", id="529"),
        pytest.param(SPEC, res(404), Status.MAJOR_OUTAGE, "unexpected HTTP 404", id="unexpected"),
        pytest.param(SPEC, res(429), Status.DEGRADED, "rate limited", id="429"),
        pytest.param(
            API,
            res(401),
            Status.OPERATIONAL,
            "HTTP 401 in 100 ms",
            id="anonymous-401-is-the-front-door",
        ),
        pytest.param(
            API, res(200, auth=True), Status.OPERATIONAL, "HTTP 200 in 100 ms", id="auth-ok"
        ),
        pytest.param(
            API, res(401, auth=True), Status.UNKNOWN, "API key rejected", id="auth-401-our-key"
        ),
        pytest.param(
            API, res(403, auth=True), Status.UNKNOWN, "API key rejected", id="auth-403-our-key"
        ),
        pytest.param(API, res(429, auth=True), Status.DEGRADED, "rate limited", id="auth-429"),
        pytest.param(
            API, res(529, auth=True), Status.MAJOR_OUTAGE, "HTTP 529 (overloaded)", id="auth-529"
        ),
        pytest.param(API, res(500, auth=True), Status.MAJOR_OUTAGE, "HTTP 500", id="auth-500"),
        pytest.param(
            API,
            res(400, auth=True),
            Status.UNKNOWN,
            "check request rejected (HTTP 400)",
            id="auth-400-our-request",
        ),
    ],
)
def test_classify(spec: ProbeSpec, result: ProbeResult, status: Status, reason: str):
    assert classify(spec, result) == (status, reason)


def test_a_surface_takes_its_worst_probe_and_slowest_latency():
    obs = probe_observation("claude.ai", [(SPEC, res(200, 120.0)), (SPEC, res(503, 80.0))], NOW)
    assert obs.signal is Signal.PROBE and obs.surface == "claude.ai"
    assert obs.status is Status.MAJOR_OUTAGE
    assert obs.latency_ms == 120.0
    assert obs.error == "HTTP 503"
    assert obs.observed_at == NOW


def test_a_rejected_key_does_not_hide_a_working_probe():
    obs = probe_observation("api", [(API, res(401, auth=True)), (SPEC, res(200))], NOW)
    assert obs.status is Status.OPERATIONAL


def test_an_operational_surface_has_no_error():
    assert probe_observation("api", [(SPEC, res(200))], NOW).error is None


# -- canary guard --------------------------------------------------------------------------------

REFUSED = res(None, None, "connection refused")


@pytest.mark.parametrize(
    ("results", "canaries", "blind"),
    [
        pytest.param([REFUSED, REFUSED], [REFUSED], True, id="all-down-canaries-down"),
        pytest.param([REFUSED, REFUSED], [], True, id="all-down-no-canaries"),
        pytest.param([REFUSED, REFUSED], [REFUSED, res(204)], False, id="a-canary-answers"),
        pytest.param([REFUSED, res(503)], [REFUSED], False, id="a-probe-answers-even-503"),
        pytest.param([], [REFUSED], False, id="no-probes"),
    ],
)
def test_is_blind(results, canaries, blind: bool):
    assert is_blind(results, canaries) is blind


def test_blind_observations_are_unknown_never_an_outage():
    obs = blind_observations(["api", "claude.ai"], NOW)
    assert [(o.surface, o.status, o.error) for o in obs] == [
        ("api", Status.UNKNOWN, "monitoring blind"),
        ("claude.ai", Status.UNKNOWN, "monitoring blind"),
    ]


# -- real checks over loopback -------------------------------------------------------------------


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
    async with asyncio.timeout(5):
        result = await run_probe(client, spec_for(closed_url + "/probe/web"))
    assert result.status_code is None and result.error == "connection refused"
    assert classify(SPEC, result) == (Status.MAJOR_OUTAGE, "connection refused")


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
