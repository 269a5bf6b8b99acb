"""The one-shot verbs of the `aistatus` command: `status`, `deliveries`, `check-config`,
`manifests` and `webhooks add|list|remove`. IO: each takes its clients from the composition
root and prints to `out`.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.app import http_client, redis_for
from bot.catalog_file import load_catalog
from bot.clock import utcnow
from bot.core.catalog import Catalog
from bot.core.model import ChannelRef, encode_json
from bot.errors import ConfigError, ConfigProblem, ProbeError
from bot.ops.board import board_of_rows
from bot.ops.table import exit_code, render_table, status_rows
from bot.settings import Settings, load_settings, rules, unknown_keys
from bot.store.connect import describe
from bot.watch.fetch import fetch_summary
from bot.watch.probe_run import run_probes
from bot.watch.read import read_page

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from bot.alerting.subscription import Subscription
    from bot.store.webhooks import WebhookStore


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


async def deliveries(
    settings: Settings,
    out: TextIO,
    *,
    retry: str | None = None,
    drop: str | None = None,
    err: TextIO = sys.stderr,
) -> int:
    """`aistatus deliveries [--retry ID|all | --drop ID|all]`: what is queued, retrying and dead
    (each dead letter by its id, channel key, alert kind, outage id and surfaces); side messages
    (announcements, direct messages) pending or waiting, by lane and kind. Exit 1 when
    anything is dead. `retry` puts dead letters back into the outbox (a running bot delivers
    them, once, in the channel's order after what is queued; a channel disabled by a permanent
    error is enabled again: retrying says the cause is fixed); `drop` deletes them. Exit 2 for
    an id that is not a dead letter, 1 when some could not be retried.
    Raises: ConfigError when Redis cannot be reached."""
    from bot.delivery.engine import deliveries_report

    async with redis_for(settings) as redis:
        if retry is not None or drop is not None:
            return await _dead_letters(redis, out, err, retry=retry, drop=drop)
        report = await deliveries_report(redis)
    summary = f"queued: {report.queued}  in flight or retrying: {report.pending}"
    print(f"{summary}  dead: {report.dead_total}", file=out)
    for r in report.retrying:
        print(
            f"  retrying  {r.channel}  alert {r.alert_id}  {r.attempts} attempts: {r.error}",
            file=out,
        )
    for q in report.side:
        tried = f"  {q.attempts} attempts: {q.error}" if q.error is not None else ""
        print(f"  {q.state:<9} {q.lane}  {q.side.what}{tried}", file=out)
    for d in report.dead:
        what = f"{d.id}  {d.channel}  {d.what}  {d.at}  {d.attempts} attempts"
        print(f"  dead      {what}: {d.error}", file=out)
    return 1 if report.dead_total else 0


async def _dead_letters(
    redis: Redis, out: TextIO, err: TextIO, *, retry: str | None, drop: str | None
) -> int:
    """--retry / --drop of `deliveries`: one line per dead letter handled."""
    from bot.store.outbox import OutboxStore
    from bot.store.subscriptions import SubscriptionStore

    which = retry if retry is not None else drop
    assert which is not None
    outbox = OutboxStore(redis)
    letters = await outbox.dead_letters(which)
    if not letters and which != "all":
        print(f"aistatus: no dead letter {which} (ids are listed by `aistatus deliveries`)",
              file=err)  # fmt: skip
        return 2
    if drop is not None:
        gone = await outbox.drop_dead([d.id for d in letters])
        for d in letters:
            print(f"dropped   {d.id}  {d.channel}  {d.what}", file=out)
        print(f"dropped {gone} dead letters", file=out)
        return 0
    subs = SubscriptionStore(redis)
    failed = 0
    enabled: set[str] = set()
    now = utcnow()
    for d in letters:
        # Enabled before it is queued: a running bot sends at once, and a worker dead-letters
        # an entry of a channel that still reads as disabled without sending it. A side
        # message disabled no channel.
        was = None
        if d.kind is not None and d.side is None and d.channel not in enabled:
            channel = ChannelRef.parse(d.channel)
            sub = await subs.get(channel)
            if sub is not None and sub.disabled_reason is not None:
                await subs.enable(channel, now=now)
                enabled.add(d.channel)
                was = sub.disabled_reason
        entry = await outbox.retry_dead(d, now=now)
        if entry is None:
            failed += 1
            why = "undecodable alert: drop it" if d.kind is None else "gone meanwhile"
            print(f"not retried {d.id}  {d.channel}  {d.what}: {why}", file=err)
            continue
        print(f"retried   {d.id}  {d.channel}  {d.what}: queued again as {entry}", file=out)
        if was is not None:
            print(f"enabled   {d.channel} again (was disabled: {was})", file=out)
    return 1 if failed else 0


async def check_config(
    env_file: str | Path, out: TextIO, *, require_file: bool = False, connect: bool = False
) -> int:
    """`aistatus check-config [--connect]`: every problem at once — bad values, unknown keys
    (with the closest known one), a bad catalog and the cross-field rules `run` applies —, then
    what the settings turn on; `connect`: reach Redis and each status page once, a line each.
    Returns 0, or 1 when something could not be reached.
    Raises: ConfigError carrying every refusal, each naming the key, the file and the fix."""
    problems = unknown_keys(env_file)
    settings: Settings | None = None
    catalog: Catalog | None = None
    try:
        settings = load_settings(env_file, require_file=require_file)
        catalog = load_catalog(settings.catalog_path)
        problems += rules(settings, catalog)
    except ConfigError as e:
        problems += e.problems or [
            ConfigProblem(e.key or "AISTATUS_CATALOG", e.source or "the catalog", str(e),
                          'correct the catalog file (README "The catalog")')
        ]  # fmt: skip
    for p in problems:
        if p.warning:
            print(f"warning: {p}", file=out)
    refusals = [p for p in problems if not p.warning]
    if refusals or settings is None or catalog is None:
        raise ConfigError.of(refusals)
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
        ("logs", f"{settings.log_format}, {settings.log_level}"),
    ]
    print(f"settings ok; catalog ok: {len(catalog.surfaces)} surfaces", file=out)
    for label, value in rows:
        print(f"  {label + ':':17}{value}", file=out)
    if not connect:
        return 0
    return await _connect(settings, catalog, out)


async def _connect(settings: Settings, catalog: Catalog, out: TextIO) -> int:
    """Reach Redis and every watched status page once; one line each. 1 when any failed."""
    failed = False
    started = time.perf_counter()
    try:
        async with redis_for(settings) as redis:
            found = await describe(redis)
        ms = (time.perf_counter() - started) * 1000
        print(f"redis: {found} ({ms:.0f} ms)", file=out)
    except (ConfigError, RedisError) as e:
        failed = True
        print(f"redis: FAILED: {e or type(e).__name__}", file=out)
    deadline = settings.read_timeout * 2
    async with http_client(settings) as client:

        async def reach(provider: str) -> tuple[str, str, str | None]:
            url = catalog.providers[provider].statuspage or ""
            try:
                got = await fetch_summary(
                    client, url, max_bytes=settings.max_response_bytes, deadline=deadline
                )
            except ProbeError as e:
                return provider, url, e.reason
            return provider, url, f"ok (HTTP {got.status_code}, {got.elapsed_ms:.0f} ms)"

        for provider, url, result in await asyncio.gather(
            *(reach(p) for p in catalog.watched_providers())
        ):
            ok = result is not None and result.startswith("ok ")
            failed = failed or not ok
            print(f"reach status page {provider} ({url}): {result if ok else f'FAILED: {result}'}",
                  file=out)  # fmt: skip
    return 1 if failed else 0


def manifests(settings: Settings, path: str, out: TextIO) -> int:
    """`aistatus manifests`: the Discord command definitions, from the code.
    Raises: ConfigError for a bad catalog; OSError when `path` cannot be written."""
    from bot.chat.discord.commands import write_manifest

    write_manifest(Path(path), load_catalog(settings.catalog_path))
    print(f"wrote {path}", file=out)
    return 0


async def _resolved(url: str) -> list[str]:
    """Every address the URL's host resolves to (empty for an IP literal or no host).
    Raises: ConfigError when the name does not resolve."""
    from bot.watch.fetch import resolved

    try:
        return await resolved(url)
    except OSError as e:
        raise ConfigError(f"webhook URL: cannot resolve the host: {e.strerror or e}") from None


async def webhooks_add(
    settings: Settings,
    url: str,
    surfaces: Sequence[str],
    out: TextIO,
    *,
    min_flag: str | None = None,
    fmt: str = "json",
    allow_private: bool = False,
) -> int:
    """`aistatus webhooks add URL --surfaces … [--min …] [--format …] [--allow-private]`:
    check the URL and surfaces, store the webhook and its subscription, print its id and its
    signing secret (shown this once). Raises: ConfigError for a refused URL or surface."""
    from bot.chat.commands import SEVERITY_FLAGS
    from bot.chat.webhook.target import WebhookFormat, url_problem
    from bot.store.webhooks import new_webhook

    catalog = load_catalog(settings.catalog_path)
    settings.required_cipher("outgoing webhooks")
    problem = url_problem(url, [], allow_private=True)
    if problem is None and not allow_private:
        problem = url_problem(url, await _resolved(url), allow_private=False)
    if problem:
        raise ConfigError(f"webhook URL refused: {problem}")
    unknown = [s for s in surfaces if s != "all" and s not in catalog.surfaces]
    if unknown or not surfaces:
        known = ", ".join(catalog.surfaces)
        raise ConfigError(f"--surfaces: unknown {', '.join(unknown) or '(none)'}; known: {known}")
    webhook = new_webhook(url, WebhookFormat(fmt), allow_private=allow_private)
    async with redis_for(settings) as redis:
        sub = await _webhook_store(settings, redis, catalog).add(
            webhook,
            [s for s in surfaces if s != "all"],
            all_claude="all" in surfaces,
            min_severity=SEVERITY_FLAGS[min_flag] if min_flag else None,
            now=utcnow(),
        )
    print(f"added webhook {webhook.id} ({webhook.format}) for {_covers(sub)}", file=out)
    print(f"signing secret (shown once, keep it): {webhook.secret}", file=out)
    return 0


async def webhooks_list(settings: Settings, out: TextIO) -> int:
    """`aistatus webhooks list`: id, format, URL (path elided), surfaces, minimum, state."""
    from bot.chat.webhook.target import shown_url

    catalog = load_catalog(settings.catalog_path)
    async with redis_for(settings) as redis:
        hooks = await _webhook_store(settings, redis, catalog).list()
    if not hooks:
        print("no webhooks (add one: aistatus webhooks add URL --surfaces api)", file=out)
    for hook, sub in hooks:
        state = (
            ""
            if sub is None or sub.disabled_reason is None
            else f"  DISABLED: {sub.disabled_reason}"
        )
        minimum = f"  min {sub.min_severity.label}" if sub is not None else ""
        print(
            f"{hook.id}  {hook.format}  {shown_url(hook.url)}  {_covers(sub)}{minimum}{state}",
            file=out,
        )
    return 0


async def webhooks_remove(settings: Settings, webhook_id: str, out: TextIO) -> int:
    """`aistatus webhooks remove ID`: exit 1 when there is no such webhook."""
    catalog = load_catalog(settings.catalog_path)
    async with redis_for(settings) as redis:
        removed = await _webhook_store(settings, redis, catalog).remove(webhook_id, now=utcnow())
    print(f"removed webhook {webhook_id}" if removed else f"no webhook {webhook_id}", file=out)
    return 0 if removed else 1


def _webhook_store(settings: Settings, redis: Redis, catalog: Catalog) -> WebhookStore:
    from bot.store.subscriptions import SubscriptionStore
    from bot.store.webhooks import WebhookStore

    subs = SubscriptionStore(redis, claude_surfaces=catalog.claude_surfaces())
    return WebhookStore(redis, subs, settings.cipher())


def _covers(sub: Subscription | None) -> str:
    if sub is None:
        return "nothing"
    names = sorted(sub.surfaces) + (["all Claude surfaces"] if sub.all_claude else [])
    return ", ".join(names) or "nothing"
