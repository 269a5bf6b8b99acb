"""`aistatus demo`: replays the recorded 2026-09-22 Claude incident through the whole pipeline on
loopback — a status server it starts, a Redis (a private redis-server, or its own db on REDIS_URL's
server), the real watcher — with the console sink, time-compressed. IO. Needs no account and no
internet.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

import redis.asyncio as aioredis

from bot.catalog_file import load_catalog
from bot.clock import ManualClock
from bot.core import text
from bot.core.catalog import Catalog
from bot.errors import ConfigError
from bot.ops.redisproc import RedisProcess
from bot.ops.statusserver import StatusServer
from bot.settings import Settings
from bot.store.connect import connect
from bot.store.keys import PREFIX

FIXTURES = resources.files("bot").joinpath("data", "fixtures", "statuspage")


def fixture(name: str) -> dict[str, Any]:
    return json.loads(FIXTURES.joinpath(name).read_text("utf-8"))


SYNTHESISED = "(synthesised by aistatus demo: no capture holds this update's text)"
RESOLVED_AT = datetime(2026, 9, 22, 5, 58, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Step:
    at: datetime  # the moment on the incident's own timeline
    claude: dict[str, Any]
    note: str
    incidents: dict[str, Any] | None = None  # incidents.json from this step on (None: as before)


def with_update(
    page: dict[str, Any], at: datetime, *, status: str, body: str, update_id: str
) -> dict[str, Any]:
    """A copy of a summary.json page whose first incident has one more official update on top,
    stamped `at` (the captures hold only each incident's first update)."""
    out = copy.deepcopy(page)
    incident = out["incidents"][0]
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    update = dict(incident["incident_updates"][0])
    update.update(
        id=update_id, status=status, body=body, created_at=stamp, display_at=stamp, updated_at=stamp
    )
    incident["incident_updates"].insert(0, update)
    incident["status"] = status
    incident["updated_at"] = stamp
    return out


def identified_update(investigating: dict[str, Any], at: datetime) -> dict[str, Any]:
    """The recorded page with one more incident update (`identified`) on top. The capture holds
    only the first update; this one is synthesised so the demo shows a threaded update."""
    return with_update(
        investigating,
        at,
        status="identified",
        body="The issue has been identified and a fix is being implemented.",
        update_id="demo0identif",
    )


def resolved_incidents(investigating: dict[str, Any], at: datetime) -> dict[str, Any]:
    """incidents.json as the page would serve it once 7g1qpkyz5gxh resolved: the recorded
    incident with a resolution update on top. No capture holds its resolution text, so the
    update is synthesised, and says so in its own body."""
    page = with_update(
        investigating,
        at,
        status="resolved",
        body=f"This incident has been resolved. {SYNTHESISED}",
        update_id="demo0resolvd",
    )
    incident = page["incidents"][0]
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    incident.update(resolved_at=stamp, status="resolved")
    return {"page": page["page"], "incidents": [incident]}


def timeline() -> list[Step]:
    """The incident 7g1qpkyz5gxh 'Elevated errors for multiple models' as the page showed it."""
    start = datetime(2026, 9, 22, 0, 45, tzinfo=UTC)
    ok = fixture("claude/summary_all_operational.json")
    out = fixture("claude/summary_incident_investigating.json")
    recovered = fixture("claude/summary_recovered.json")
    steps = [Step(start, ok, "all operational (recorded 2026-09-15)")]
    steps.append(Step(start + timedelta(minutes=7), ok, "quiet poll"))
    t_inc = datetime(2026, 9, 22, 1, 1, tzinfo=UTC)
    steps.append(Step(t_inc, out, "incident posted: investigating (recorded ~01:01Z)"))
    steps.append(Step(t_inc + timedelta(minutes=15), out, "same page again: nothing new to say"))
    t_id = datetime(2026, 9, 22, 2, 30, tzinfo=UTC)
    steps.append(Step(t_id, identified_update(out, t_id), "new official update (synthesised)"))
    steps.append(Step(t_id + timedelta(hours=1), identified_update(out, t_id), "quiet poll"))
    steps.append(
        Step(
            datetime(2026, 9, 22, 6, 1, tzinfo=UTC),
            recovered,
            "recovered (recorded ~06:01Z); its resolution update is synthesised",
            incidents=resolved_incidents(out, RESOLVED_AT),
        )
    )
    steps.append(Step(datetime(2026, 9, 22, 6, 16, tzinfo=UTC), recovered, "quiet poll"))
    return steps


def step_page() -> dict[str, Any]:
    """The recorded page's `page` object (id, name, url, time zone)."""
    return fixture("claude/summary_all_operational.json")["page"]


def demo_catalog(claude_url: str) -> Catalog:
    """The shipped catalog with Claude's page on loopback. No other page was recorded on the
    incident's day (the OpenAI capture is from another week), so the demo polls none: their
    surfaces stay unknown, never suggested as backups ("couldn't check"), never alerted on."""
    override = {"providers": {"claude": {"statuspage": claude_url}}}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        json.dump(override, f)  # JSON is YAML
        path = Path(f.name)
    try:
        return load_catalog(path)
    finally:
        path.unlink()


async def _unlink_demo_keys(redis: aioredis.Redis) -> None:
    """Delete every aistatus key in the demo's db; keys of anything else there are left alone."""
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=f"{PREFIX}:*", count=500):
        batch.append(key)
        if len(batch) >= 500:
            await redis.unlink(*batch)
            batch.clear()
    if batch:
        await redis.unlink(*batch)


@contextlib.asynccontextmanager
async def demo_redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    """Where the demo keeps its state, starting empty.

    1. No REDIS_URL: a private redis-server in a temporary directory, removed afterwards.
    2. REDIS_URL: db AISTATUS_DEMO_REDIS_DB on that server (a slim container has no
       redis-server). Its aistatus keys are deleted before and after the run; no other key is
       touched, nothing is flushed.
    3. Refused when that db is the one REDIS_URL selects: it holds the bot's own state.
    Raises: ConfigError (rule 3; a server without numbered dbs, such as Redis Cluster; no Redis).
    """
    if settings.redis_url is None:
        with tempfile.TemporaryDirectory(prefix="aistatus-demo-") as tmp:
            proc = RedisProcess(Path(tmp) / "redis", binary=settings.redis_server_bin)
            await asyncio.to_thread(proc.start)
            redis = aioredis.Redis.from_url(proc.url)
            try:
                yield redis
            finally:
                await redis.aclose()
                await asyncio.to_thread(proc.stop)
        return
    db = settings.demo_redis_db
    redis = connect(settings.redis_url)
    options = redis.connection_pool.connection_kwargs
    if int(options.get("db") or 0) == db:
        await redis.aclose()
        raise ConfigError(
            f"AISTATUS_DEMO_REDIS_DB: the demo would share db {db} with the bot (REDIS_URL selects "
            "it); set AISTATUS_DEMO_REDIS_DB to a db nothing else uses",
            key="AISTATUS_DEMO_REDIS_DB",
        )
    options["db"] = db  # the URL's own db would win over a `db=` argument: set it on the pool
    try:
        try:
            await _unlink_demo_keys(redis)
        except Exception as e:
            raise ConfigError(
                f"REDIS_URL: the demo cannot use db {db} there: {type(e).__name__}: {e}",
                key="REDIS_URL",
            ) from e
        try:
            yield redis
        finally:
            await _unlink_demo_keys(redis)
    finally:
        await redis.aclose()


async def run_demo(settings: Settings, out: TextIO, *, pause: float = 3.0) -> int:
    """Play the timeline: before each step the loopback page changes, then one poll runs.
    Raises: ConfigError when its Redis cannot be had (see `demo_redis`)."""
    from bot.app import build_bot, http_client

    print(
        'aistatus demo: replaying the Claude incident of 2026-09-22 ("Elevated errors for '
        'multiple models")\nfrom recorded status-page payloads, on loopback, through the real '
        "pipeline (status server -> watcher -> Redis -> alerts).\n",
        file=out,
    )
    async with demo_redis(settings) as redis, StatusServer() as claude_page:
        claude_page.set_incidents({"page": step_page(), "incidents": []})
        catalog = demo_catalog(claude_page.url)
        steps = timeline()
        clock = ManualClock(steps[0].at)
        demo_settings = settings.model_copy(update={"probes_enabled": False})
        async with http_client(demo_settings) as client:
            bot = build_bot(demo_settings, catalog, redis, client, clock=clock, console=out)
            bot.watcher.poll_interval = 60.0
            for step in steps:
                clock.now = step.at
                claude_page.set_summary(step.claude)
                if step.incidents is not None:
                    claude_page.set_incidents(step.incidents)
                when = text.clock(step.at, step.at)
                print(f"── {when} · status page: {step.note}", file=out)
                await bot.watcher.poll_page("claude")
                out.flush()
                await asyncio.sleep(pause)
    print("\ndemo done: one alert per outage, threaded updates, one recovery.", file=out)
    return 0
