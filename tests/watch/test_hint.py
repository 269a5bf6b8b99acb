"""Webhook hints become polls: the page id routes the hint (pure), junk is refused (pure), and a
burst of hints makes one poll now and at most one after it (coalesced), with the real watcher
polling a loopback page in a real redis-server."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from bot.catalog_file import load_catalog
from bot.ops.statusserver import StatusServer
from bot.store.surfaces import SurfaceStore
from bot.watch.hint import Hints
from bot.watch.statuspage import SUMMARY_PATH, parse_hook
from bot.watch.watcher import Watcher
from tests.helpers import Recorder, catalog_for, fixture_json


@pytest.mark.parametrize(
    ("body", "page_id"),
    [
        pytest.param(b'{"page": {"id": "tymt9n04zgry"}, "incident": {}}', "tymt9n04zgry", id="id"),
        pytest.param(b'{"component_update": {"new_status": "major_outage"}}', None, id="no-page"),
        pytest.param(b'{"page": {"id": 7}, "incident": {}}', None, id="odd-id"),
    ],
)
def test_parse_hook_reads_only_the_page_id(body: bytes, page_id: str | None):
    assert parse_hook(body) == page_id


@pytest.mark.parametrize(
    "body", [b"", b"<html>", b"{", b"[]", b'{"x": 1}', b'{"page": "p"}', b"\xff\xfe"]
)
def test_parse_hook_refuses_what_is_no_delivery(body: bytes):
    with pytest.raises(ValueError):
        parse_hook(body)


def test_a_hint_routes_by_page_id_else_to_every_watched_page():
    catalog = load_catalog()
    assert catalog.providers_for_page("tymt9n04zgry") == ["claude"]
    assert catalog.providers_for_page(None) == catalog.watched_providers()
    assert catalog.providers_for_page("forged000000") == catalog.watched_providers()


async def test_a_burst_of_hints_makes_one_poll_and_one_follow_up(redis, clock):
    async with StatusServer() as page, httpx.AsyncClient(timeout=2.0) as client:
        page.set_summary(fixture_json("claude/summary_all_operational.json"))
        w = Watcher(
            catalog=catalog_for(page.url),
            store=SurfaceStore(redis),
            client=client,
            sink=Recorder(),
            clock=clock,
        )
        reports = []
        first_started = asyncio.Event()

        async def poll(provider: str) -> None:
            first_started.set()
            reports.append(await w.poll_page(provider, hinted=True))
            clock.advance(1.0)  # the next hint window

        hints = Hints(poll, follow_up=0.01)
        hints.hint(["claude"])
        await asyncio.wait_for(first_started.wait(), 5)
        for _ in range(20):
            hints.hint(["claude"])  # while the first poll is in flight
        await asyncio.wait_for(hints.wait_idle(), 5)
        await hints.aclose()
    assert hints.polls == 2 and [r.claimed for r in reports] == [True, True]
    assert page.hits[SUMMARY_PATH] == 2
