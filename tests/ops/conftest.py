"""The board rig for the API and web-board tests: the product wired by the composition root
(`build_bot`, `board_routes`) over a loopback status page replaying the recorded 2026-09-22
incident, a real redis-server, and the operator listener on a free loopback port; the JSON
Schemas shipped in the package, to validate every answer."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from jsonschema import Draft202012Validator
from prometheus_client import CollectorRegistry

from bot.app import Bot, board_routes, build_bot
from bot.clock import ManualClock
from bot.ops.demo import Step, timeline
from bot.ops.health import build_health_app, start_health_server
from bot.ops.redisproc import free_port
from bot.ops.statusserver import StatusServer
from bot.settings import Settings
from tests.helpers import catalog_for

INVESTIGATING = "We are investigating elevated errors on requests to Claude Mythos 5.1"
IDENTIFIED = "The issue has been identified and a fix is being implemented."
TITLE = "Elevated errors for multiple models"
# The recorded timeline (bot.ops.demo): the steps where the page says something new.
OPERATIONAL, INCIDENT, UPDATE, RECOVERED = 0, 2, 4, 6


@cache
def schema(name: str) -> dict[str, Any]:
    """A shipped schema, e.g. 'board-v1.json'."""
    text = resources.files("bot").joinpath("data", "schema", name).read_text("utf-8")
    return json.loads(text)


def validate(doc: Any, name: str, definition: str | None = None) -> None:
    """Raises: jsonschema.ValidationError when `doc` does not fit the schema (or one of its
    $defs)."""
    root = schema(name)
    if definition is not None:
        root = {"$ref": f"#/$defs/{definition}", "$defs": root["$defs"]}
    Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(doc)


async def _ready() -> tuple[bool, str]:
    return True, "ok"


@dataclass
class BoardRig:
    """The in-process product with its operator listener at `base`."""

    page: StatusServer
    bot: Bot
    clock: ManualClock
    base: str
    steps: list[Step]
    played: int = -1  # the last step played

    async def play(self, index: int) -> None:
        """The page shows step `index` from its moment on; the watcher polls it and probes."""
        step = self.steps[index]
        self.clock.now = step.at
        self.page.set_summary(step.claude)
        assert (await self.bot.watcher.poll_page("claude")).claimed
        await self.bot.watcher.run_probe_round()
        self.played = index

    async def play_until(self, index: int) -> None:
        """Play every step after the last one played, up to `index`."""
        for i in range(self.played + 1, index + 1):
            await self.play(i)


@contextlib.asynccontextmanager
async def board_rig(
    redis: aioredis.Redis, *, token: str | None = None, probe_answers: bool = True
) -> AsyncIterator[BoardRig]:
    """Claude's page replays the recorded incident; Claude on Bedrock is watched by one loopback
    probe (answering 200, or never answering at all: then monitoring is blind)."""
    steps = timeline()
    clock = ManualClock(steps[0].at)
    async with StatusServer() as page, httpx.AsyncClient(timeout=5.0) as client:
        page.set_summary(steps[0].claude)
        page.set_probe("bedrock", status=200)
        probe = f"{page.url}/probe/bedrock" if probe_answers else f"http://127.0.0.1:{free_port()}/"
        catalog = catalog_for(page.url, probes={"bedrock-claude": [{"url": probe}]})
        settings = Settings(_env_file=None, AISTATUS_API_TOKEN=token)  # type: ignore[call-arg]
        bot = build_bot(settings, catalog, redis, client, clock=clock)
        app = build_health_app(_ready, registry=CollectorRegistry())
        app.add_routes(board_routes(bot, lambda: bot.watcher.blind))
        runner = await start_health_server(app, "127.0.0.1", 0)
        try:
            port = runner.addresses[0][1]
            yield BoardRig(page, bot, clock, f"http://127.0.0.1:{port}", steps)
        finally:
            await runner.cleanup()


@pytest.fixture
async def rig(redis: aioredis.Redis) -> AsyncIterator[BoardRig]:
    async with board_rig(redis) as r:
        yield r
