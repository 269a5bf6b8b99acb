"""read_page, the read step the watcher and `aistatus status` share, against a real loopback
StatusServer: conditional reads from a cached copy, broken pages, and the resolution text of an
incident that vanished from summary.json."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from bot.core.model import Status
from bot.ops.statusserver import StatusServer
from bot.watch.read import PageRead, read_page
from bot.watch.statuspage import INCIDENTS_PATH
from tests.helpers import RESOLUTION, catalog_for, fixture_json, resolved_incidents

NOW = datetime(2026, 9, 22, 6, 1, tzinfo=UTC)
INCIDENT = "7g1qpkyz5gxh"


@pytest.fixture
async def page() -> AsyncIterator[StatusServer]:
    async with StatusServer() as server:
        server.set_summary(fixture_json("claude/summary_recovered.json"))
        server.set_incidents(resolved_incidents())
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(2.0, connect=1.0)) as c:
        yield c


async def read(page: StatusServer, client: httpx.AsyncClient, **kw: Any) -> PageRead:
    async with asyncio.timeout(10):
        return await read_page(
            client,
            catalog_for(page.url),
            "claude",
            now=NOW,
            max_bytes=2_000_000,
            deadline=5.0,
            **kw,
        )


async def test_a_held_incident_that_vanished_is_read_with_its_resolution_text(page, client):
    result = await read(page, client, held={INCIDENT})

    [incident] = result.reading.incidents
    assert incident.id == INCIDENT and incident.status == "resolved"
    assert incident.update_body == RESOLUTION
    api = next(o for o in result.observations if o.surface == "api")
    assert api.status is Status.OPERATIONAL and api.incident == incident
    assert page.hits[INCIDENTS_PATH] == 1


async def test_with_nothing_held_incidents_json_is_never_fetched(page, client):
    result = await read(page, client)

    assert result.outcome == "ok" and result.reading.incidents == ()
    assert {o.status for o in result.observations} == {Status.OPERATIONAL}
    assert page.hits[INCIDENTS_PATH] == 0


async def test_an_unreadable_incidents_json_costs_only_the_quote(page, client):
    page.set_incidents(b"<html>busy</html>")

    result = await read(page, client, held={INCIDENT})

    assert result.outcome == "ok" and result.reading.incidents == ()
    assert {o.status for o in result.observations} == {Status.OPERATIONAL}


async def test_a_cached_copy_makes_the_read_conditional_and_is_kept(page, client):
    first = await read(page, client)
    assert first.cache is not None and first.cache.body

    second = await read(page, client, cache=first.cache)

    assert second.outcome == "not_modified" and second.cache is None
    assert second.observations == first.observations
    assert page.conditional_hits == 1


@pytest.mark.parametrize(
    ("fault", "outcome", "error"),
    [
        pytest.param({"status": 503}, "unreadable", "HTTP 503", id="http-503"),
        pytest.param(
            {"status": 200, "body": b"<html>Just a moment...</html>"},
            "malformed",
            "not JSON (HTML error page?)",
            id="html-200",
        ),
    ],
)
async def test_a_broken_page_makes_every_surface_unknown_and_keeps_no_copy(
    page, client, fault: dict[str, Any], outcome: str, error: str
):
    page.set_fault(**fault)

    result = await read(page, client)

    assert result.failed and result.outcome == outcome and result.cache is None
    assert {(o.status, o.error) for o in result.observations} == {(Status.UNKNOWN, error)}
