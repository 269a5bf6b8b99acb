"""The one-shot verbs of the `aistatus` command: `status`, `deliveries`, `check-config` and
`manifests`. IO: each takes its clients from the composition root and prints to `out`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TextIO

from bot.app import http_client, redis_for
from bot.catalog_file import load_catalog
from bot.clock import utcnow
from bot.core.model import encode_json
from bot.ops.board import board_of_rows
from bot.ops.table import exit_code, render_table, status_rows
from bot.settings import Settings
from bot.watch.probe_run import run_probes
from bot.watch.read import read_page


async def status(settings: Settings, out: TextIO, *, as_json: bool = False) -> int:
    """`aistatus status [--json]`: every status page read and every probe run once, through the
    watcher's own read step, then the table (or the board document, `bot.ops.board`). No Redis:
    nothing is held from an earlier poll, so each surface is decided with no hysteresis and no
    resolution text is looked up. Returns the exit code (`exit_code`).
    Raises: ConfigError for a bad catalog."""
    catalog = load_catalog(settings.catalog_path)
    now = utcnow()
    deadline = settings.read_timeout * 2
    async with http_client(settings) as client:
        reads = await asyncio.gather(
            *(
                read_page(
                    client,
                    catalog,
                    provider,
                    now=now,
                    max_bytes=settings.max_response_bytes,
                    deadline=deadline,
                )
                for provider in catalog.watched_providers()
            )
        )
        observations = [o for read in reads for o in read.observations]
        if settings.probes_enabled:
            observations += await run_probes(
                client,
                catalog.probe_specs(),
                catalog.canaries,
                api_key=settings.anthropic_api_key,
                now=now,
                deadline=deadline,
            )
    rows = status_rows(catalog, observations, now=now)
    code = exit_code(rows)
    if as_json:
        doc = board_of_rows(rows, catalog, now=now, blind=code == 2)
        print(encode_json(doc).decode(), file=out)
    else:
        print(render_table(rows, now=now), file=out)
    return code


async def deliveries(settings: Settings, out: TextIO) -> int:
    """`aistatus deliveries`: what is queued, retrying and dead. Exit 1 when anything is dead.
    Raises: ConfigError when Redis cannot be reached."""
    from bot.delivery.engine import deliveries_report

    async with redis_for(settings) as redis:
        report = await deliveries_report(redis)
    summary = f"queued: {report.queued}  in flight or retrying: {report.pending}"
    print(f"{summary}  dead: {report.dead_total}", file=out)
    for r in report.retrying:
        print(
            f"  retrying  {r.channel}  alert {r.alert_id}  {r.attempts} attempts: {r.error}",
            file=out,
        )
    for d in report.dead:
        what = f"{d.channel}  alert {d.alert_id}  {d.at}  {d.attempts} attempts"
        print(f"  dead      {what}: {d.error}", file=out)
    return 1 if report.dead_total else 0


def check_config(settings: Settings, out: TextIO) -> int:
    """`aistatus check-config`: the catalog validated and what the settings turn on.
    Raises: ConfigError naming the file, the key and the value."""
    catalog = load_catalog(settings.catalog_path)
    claude = ", ".join(catalog.claude_surfaces())
    backups = ", ".join(s for s in catalog.surfaces if s not in catalog.claude_surfaces())
    redis = "REDIS_URL" if settings.redis_url else f"private redis-server in {settings.data_dir}"
    slack = f"on ({settings.slack_mode} mode)" if settings.slack_enabled else "off"
    rows = [
        ("Claude surfaces", claude),
        ("backups", backups),
        ("status pages", ", ".join(catalog.watched_providers())),
        ("redis", redis),
        ("slack", slack),
        ("discord", "on" if settings.discord_enabled else "off"),
        ("probes", "on" if settings.probes_enabled else "off"),
    ]
    print(f"settings ok; catalog ok: {len(catalog.surfaces)} surfaces", file=out)
    for label, value in rows:
        print(f"  {label + ':':17}{value}", file=out)
    return 0


def manifests(settings: Settings, path: str, out: TextIO) -> int:
    """`aistatus manifests`: the Discord command definitions, from the code.
    Raises: ConfigError for a bad catalog; OSError when `path` cannot be written."""
    from bot.chat.discord.commands import write_manifest

    write_manifest(Path(path), load_catalog(settings.catalog_path))
    print(f"wrote {path}", file=out)
    return 0
