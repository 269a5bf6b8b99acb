"""The composition root: builds every client (httpx, Redis, Slack, Discord) once and passes them
down; runs the long-lived bot and the one-shot `status`. IO. Nothing else constructs clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

import aiohttp
import discord
import httpx
from redis.asyncio import Redis

from bot import __version__
from bot.chat import actions, replies
from bot.chat.actions import Services
from bot.chat.ports import ChatSender, CommandHandler, HomeProvider, Sink
from bot.clock import utcnow
from bot.core.assess import official_observations
from bot.core.catalog import Catalog, load_catalog
from bot.core.crowd import CrowdThresholds
from bot.core.model import CommandContext, Platform, Reply, Status, SurfaceState
from bot.core.transitions import Policy, decide
from bot.delivery.engine import Delivery, DeliveryConfig
from bot.errors import ConfigError, ProbeError
from bot.ops.console import ConsoleSink
from bot.ops.health import build_health_app, start_health_server
from bot.ops.inbound import InboundLimits, install_accept_errors
from bot.ops.metrics import CHAT_CONNECTED
from bot.ops.redisproc import RedisProcess
from bot.ops.table import StatusRow, render_table
from bot.settings import Settings
from bot.store.connect import connect
from bot.store.surfaces import SurfaceStore
from bot.watch.probe import run_probes
from bot.watch.scheduler import build_scheduler
from bot.watch.statuspage import PageReading, fetch_summary, parse_summary
from bot.watch.watcher import Watcher

log = logging.getLogger(__name__)

LOGIN_ATTEMPTS = 4  # a chat platform unreachable at start-up: retried, then one clear line


def http_client(settings: Settings) -> httpx.AsyncClient:
    """The one shared HTTP client for status pages and probes."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            settings.read_timeout, connect=settings.connect_timeout, pool=settings.connect_timeout
        ),
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        headers={"User-Agent": f"aistatus/{__version__} (+self-hosted status bot)"},
        follow_redirects=False,  # fetch_summary follows a bounded number itself
    )


def policy(settings: Settings) -> Policy:
    return Policy.with_probe_thresholds(settings.failure_threshold, settings.success_threshold)


def catalog_of(settings: Settings) -> Catalog:
    """Raises: ConfigError naming the catalog file, key and value."""
    return load_catalog(settings.catalog_path)


def providers_map(catalog: Catalog) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for s in catalog.surfaces.values():
        out.setdefault(s.provider, []).append(s.id)
    return out


@contextlib.asynccontextmanager
async def redis_for(settings: Settings) -> AsyncIterator[Redis]:
    """REDIS_URL when set; otherwise a private redis-server under the data directory (unix
    socket + AOF), stopped on exit. Raises: ConfigError when no redis-server can be started."""
    proc: RedisProcess | None = None
    url = settings.redis_url
    if url is None:
        private = RedisProcess(Path(settings.data_dir) / "redis", binary=settings.redis_server_bin)
        url = private.url
        if await asyncio.to_thread(private.answers):
            log.info("using the private redis-server already running in %s", private.data_dir)
        else:
            proc = private
            await asyncio.to_thread(proc.start)
            log.info("started a private redis-server in %s", proc.data_dir)
    client = connect(url)
    try:
        await client.ping()
    except Exception as e:
        await client.aclose()
        if proc is not None:
            await asyncio.to_thread(proc.stop)
        raise ConfigError(
            f"REDIS_URL: cannot reach Redis: {type(e).__name__}", key="REDIS_URL"
        ) from e
    try:
        yield client
    finally:
        await client.aclose()
        if proc is not None:
            await asyncio.to_thread(proc.stop)


@dataclass
class Bot:
    """Everything `aistatus run` holds while it runs."""

    settings: Settings
    catalog: Catalog
    redis: Redis
    client: httpx.AsyncClient
    store: SurfaceStore
    watcher: Watcher


def build_bot(
    settings: Settings,
    catalog: Catalog,
    redis: Redis,
    client: httpx.AsyncClient,
    *,
    sink: Sink | None = None,
    clock: Callable[[], datetime] = utcnow,
    out: TextIO | None = None,
) -> Bot:
    """Wire the watcher: store, sink (console unless given), policy, intervals."""
    store = SurfaceStore(redis, history_length=settings.history_length)
    pm = providers_map(catalog)

    async def states() -> dict[str, SurfaceState]:
        return await store.read_all(pm)

    if sink is None:
        sink = ConsoleSink(catalog, states, clock, **({"out": out} if out else {}))
    api_key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else None
    watcher = Watcher(
        catalog=catalog,
        store=store,
        client=client,
        sink=sink,
        clock=clock,
        policy=policy(settings),
        poll_interval=settings.poll_interval,
        probe_interval=settings.probe_interval,
        max_response_bytes=settings.max_response_bytes,
        api_key=api_key,
    )
    return Bot(settings, catalog, redis, client, store, watcher)


def services(bot: Bot) -> Services:
    """The command layer's dependencies; crowd reports feed the watcher's transition path."""
    return Services.over(
        bot.redis,
        bot.catalog,
        on_crowd=bot.watcher.on_crowd,
        thresholds=CrowdThresholds.from_settings(bot.settings),
        surfaces=bot.store,
    )


def home_provider(svc: Services, clock: Callable[[], datetime] = utcnow) -> HomeProvider:
    """Slack's App Home: the live board, then the subscriptions of this workspace's channels."""

    async def home(team_id: str) -> Reply:
        now = clock()
        states = await svc.surfaces.read_all(svc.providers)
        subs = await svc.subscriptions.list_workspace(Platform.SLACK, team_id)
        parts = [replies.board(states, svc.catalog, now)]
        parts += [replies.subscription_list(sub, svc.catalog, now) for sub in subs]
        return replies.combine(parts)

    return home


@dataclass
class Chat:
    """The running chat apps: their senders (for delivery) and how to stop them."""

    senders: dict[Platform, ChatSender] = field(default_factory=dict)
    stops: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Connections that bring commands in, by name: (up, detail) for /readyz and /metrics.
    links: dict[str, Callable[[], tuple[bool, str]]] = field(default_factory=dict)

    def watch(self, name: str, check: Callable[[], tuple[bool, str]]) -> None:
        """Report `check` in /readyz and as aistatus_chat_connected{connection=name}."""
        self.links[name] = check
        CHAT_CONNECTED.labels(name).set_function(lambda: 1.0 if check()[0] else 0.0)

    def down(self) -> list[str]:
        """The connections that are not up, each with why."""
        out = []
        for name, check in self.links.items():
            up, detail = check()
            if not up:
                out.append(f"{name}: {detail}")
        return out

    async def stop(self) -> None:
        for stop in reversed(self.stops):
            with contextlib.suppress(Exception):
                await stop()


async def start_slack(
    settings: Settings, redis: Redis, handler: CommandHandler, home: HomeProvider, chat: Chat
) -> None:
    """Socket Mode (default) or HTTP mode; one workspace by token, or many through OAuth.
    Raises: ConfigError for a missing or refused token."""
    from bot.chat.slack.app import build_slack_app, run_http_mode, run_socket_mode
    from bot.chat.slack.sender import SlackSender, slack_web_client
    from bot.store.crypto import HOW_TO_GENERATE, KEY_SETTING, TokenCipher
    from bot.store.installations import RedisInstallationStore, RedisOAuthStateStore
    from bot.store.subscriptions import SubscriptionStore

    subscriptions = SubscriptionStore(redis)
    installs: RedisInstallationStore | None = None

    async def on_uninstall(team: str) -> None:
        """The app was removed from `team` (or its bot token revoked): forget the installation,
        disable the workspace's subscriptions. Logged once."""
        if installs is not None:
            await installs.async_delete_all(enterprise_id=None, team_id=team)
        subs = await subscriptions.list_workspace(Platform.SLACK, team)
        for sub in subs:
            await subscriptions.disable(sub.channel, "the app was uninstalled", utcnow())
        log.info(
            "Slack workspace %s uninstalled the app: installation deleted, %d subscription(s) "
            "disabled",
            team,
            len(subs),
        )

    session = aiohttp.ClientSession()  # one connection pool for every Web API call
    chat.stops.append(session.close)
    client = slack_web_client(settings, session=session)
    if settings.slack_oauth_enabled:
        if settings.encryption_key is None:
            raise ConfigError(
                f"SLACK_CLIENT_ID/SLACK_CLIENT_SECRET (multi-workspace installs) need "
                f"{KEY_SETTING} to encrypt the installation tokens kept in Redis; make one "
                f"with {HOW_TO_GENERATE} and set it in the environment or .env",
                key=KEY_SETTING,
            )
        cipher = TokenCipher.from_setting(settings.encryption_key.get_secret_value())
        installs = RedisInstallationStore(redis, cipher)
        app = build_slack_app(
            settings,
            handler=handler,
            home=home,
            installation_store=installs,
            state_store=RedisOAuthStateStore(redis),
            on_uninstall=on_uninstall,
        )
        chat.senders[Platform.SLACK] = SlackSender(client, tokens=installs.bot_token)
    else:
        app = build_slack_app(
            settings, handler=handler, home=home, client=client, on_uninstall=on_uninstall
        )
        chat.senders[Platform.SLACK] = SlackSender(client)
    if settings.slack_mode == "http":
        server = await run_http_mode(
            app,
            settings.http_host,
            settings.slack_port,
            limits=InboundLimits.from_settings(settings),
        )
        chat.stops.append(server.stop)
        log.info("Slack: HTTP mode on %s", server.url)
    else:
        if settings.slack_app_token is None:
            raise ConfigError(
                "SLACK_APP_TOKEN is needed for Socket Mode (or set AISTATUS_SLACK_MODE=http)",
                key="SLACK_APP_TOKEN",
            )
        socket = await run_socket_mode(app, settings.slack_app_token.get_secret_value())
        chat.stops.append(socket.stop)
        chat.watch("slack_socket_mode", socket.check)
        log.info("Slack: Socket Mode connected")


async def start_discord(
    settings: Settings,
    catalog: Catalog,
    handler: CommandHandler,
    chat: Chat,
    on_fatal: Callable[[str], None],
) -> None:
    """Log in over REST (alerts flow even while the gateway reconnects), then run the gateway
    under a supervisor (`on_fatal` when Discord closes it for good).
    Raises: ConfigError when Discord refuses DISCORD_TOKEN."""
    from bot.chat.discord.client import DiscordBot, configure_gateway
    from bot.chat.discord.commands import CommandRunner
    from bot.chat.discord.gateway import GatewaySupervisor
    from bot.chat.discord.sender import DiscordSender, configure_api_base

    assert settings.discord_token is not None
    configure_api_base(settings.discord_api_url)
    client = DiscordBot(CommandRunner(handler, catalog), dev_guild_id=settings.discord_dev_guild_id)
    for attempt in range(LOGIN_ATTEMPTS):
        try:
            await client.login(settings.discord_token.get_secret_value())
            break
        except discord.LoginFailure:
            await client.close()
            raise ConfigError("Discord refused DISCORD_TOKEN", key="DISCORD_TOKEN") from None
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as e:
            why = f"{type(e).__name__}: {e}"[:200]
            if attempt == LOGIN_ATTEMPTS - 1:
                await client.close()
                raise ConfigError(
                    f"cannot reach Discord at DISCORD_API_URL={settings.discord_api_url}: {why}",
                    key="DISCORD_API_URL",
                ) from None
            log.warning("Discord login failed (%s); retrying", why)
            await asyncio.sleep(0.5 * 2.0**attempt)
    chat.senders[Platform.DISCORD] = DiscordSender(client.http)
    await configure_gateway(client.http)
    supervisor = GatewaySupervisor(client, on_fatal=on_fatal)
    chat.watch("discord_gateway", supervisor.check)
    gateway = asyncio.create_task(supervisor.run(), name="discord-gateway")

    async def stop() -> None:
        await client.close()
        gateway.cancel()
        await asyncio.gather(gateway, return_exceptions=True)

    chat.stops.append(stop)
    log.info("Discord: logged in; gateway connecting")


async def run(settings: Settings, *, stop: asyncio.Event, out: TextIO | None = None) -> int:
    """`aistatus run`: watch, answer commands and deliver alerts until `stop` is set.
    Raises: ConfigError for settings a platform refuses."""
    catalog = catalog_of(settings)
    async with redis_for(settings) as redis, http_client(settings) as client:
        bot = build_bot(settings, catalog, redis, client, out=out)
        svc = services(bot)

        async def handler(text: str, ctx: CommandContext) -> Reply:
            return await actions.handle(text, ctx, svc)

        chat = Chat()
        exit_code = 0

        def on_fatal(reason: str) -> None:
            """A chat connection closed for good: stop, and exit non-zero (restart or fix)."""
            nonlocal exit_code
            exit_code = 1
            stop.set()

        delivery_stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        scheduler = build_scheduler(bot.watcher, probes=settings.probes_enabled)

        async def ready() -> tuple[bool, str]:
            try:
                await redis.ping()
            except Exception as e:  # readiness reports, it does not raise
                return False, f"redis: {type(e).__name__}"
            if down := chat.down():
                return False, "; ".join(down)
            return True, "monitoring blind" if bot.watcher.blind else "ok"

        install_accept_errors(asyncio.get_running_loop())
        limits = InboundLimits.from_settings(settings)
        log.info(
            "inbound connections: at most %d per server, %ss for headers, %ss for a body",
            limits.capped(),
            limits.header_timeout,
            limits.body_timeout,
        )
        health = await start_health_server(
            build_health_app(ready), settings.ops_host, settings.operator_port, limits
        )
        try:
            if settings.slack_enabled:
                await start_slack(settings, redis, handler, home_provider(svc), chat)
            if settings.discord_enabled:
                await start_discord(settings, catalog, handler, chat, on_fatal)
            if chat.senders:
                delivery = Delivery(
                    redis,
                    chat.senders,
                    bot.store,
                    svc.subscriptions,
                    catalog,
                    config=DeliveryConfig.from_settings(settings),
                    clock=utcnow,
                )
                tasks.append(asyncio.create_task(delivery.run(delivery_stop), name="delivery"))
            scheduler.start()
            log.info(
                "watching %d surfaces on %d status pages every %ss; probes %s; chat: %s",
                len(catalog.surfaces),
                len(catalog.watched_providers()),
                settings.poll_interval,
                "on" if settings.probes_enabled else "off",
                ", ".join(p.value for p in chat.senders) or "console only",
            )
            await stop.wait()
        finally:
            if scheduler.running:
                scheduler.shutdown(wait=False)
            delivery_stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await chat.stop()
            await health.cleanup()
    return exit_code


async def deliveries(settings: Settings, out: TextIO) -> int:
    """`aistatus deliveries`: what is queued, retrying and dead. Exit 1 when anything is dead."""
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


def write_manifests(settings: Settings, path: str) -> int:
    """`aistatus manifests`: the Discord command definitions, from the code."""
    from bot.chat.discord.commands import write_manifest

    write_manifest(Path(path), catalog_of(settings))
    print(f"wrote {path}")
    return 0


# -- `aistatus status`: one poll, no Redis -----------------------------------------------------


async def _read_page(
    client: httpx.AsyncClient, provider: str, base_url: str, settings: Settings, now: datetime
) -> PageReading:
    try:
        fetched = await fetch_summary(
            client,
            base_url,
            max_bytes=settings.max_response_bytes,
            deadline=settings.read_timeout * 2,
        )
    except ProbeError as e:
        return PageReading(provider, now, ok=False, error=e.reason)
    return parse_summary(fetched.body or b"", provider=provider, observed_at=now, base_url=base_url)


async def poll_once(
    settings: Settings, catalog: Catalog, client: httpx.AsyncClient, now: datetime
) -> list[StatusRow]:
    """Poll every status page and probe once and decide each surface with no hysteresis."""
    providers = catalog.watched_providers()
    readings = await asyncio.gather(
        *(
            _read_page(client, p, catalog.providers[p].statuspage or "", settings, now)
            for p in providers
        )
    )
    observations = [o for r in readings for o in official_observations(r, catalog, observed_at=now)]
    if settings.probes_enabled:
        specs = {s.id: s.probes for s in catalog.surfaces.values() if s.probes}
        api_key = (
            settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else None
        )
        observations += await run_probes(
            client,
            specs,
            catalog.canaries,
            api_key=api_key,
            now=now,
            deadline=settings.read_timeout * 2,
        )
    rows: list[StatusRow] = []
    for surface in catalog.surfaces.values():
        obs = [o for o in observations if o.surface == surface.id]
        d = decide(
            SurfaceState(surface.id),
            obs,
            provider=surface.provider,
            now=now,
            policy=Policy.immediate(),
        )
        probe = d.state.signals.get("probe")
        rows.append(
            StatusRow(
                surface=surface.id,
                name=surface.name,
                claude=surface.claude and surface.provider == "claude",
                status=d.verdict.status,
                source=d.verdict.source.value if d.verdict.source else "-",
                suspected=d.verdict.suspected,
                since=(d.verdict.incident.started_at if d.verdict.incident else None),
                incident=d.verdict.incident.name if d.verdict.incident else None,
                latency_ms=probe.latency_ms if probe else None,
                detail=d.verdict.reason,
            )
        )
    return rows


def exit_code(rows: list[StatusRow]) -> int:
    """0 every Claude surface operational; 1 any is not; 2 nothing could be reached (blind)."""
    if rows and all(r.status is Status.UNKNOWN for r in rows):
        return 2
    claude = [r for r in rows if r.claude]
    if claude and all(r.status is Status.UNKNOWN for r in claude):
        return 2
    return 0 if all(r.status is Status.OPERATIONAL for r in claude) else 1


async def status(settings: Settings, out: TextIO) -> int:
    """`aistatus status`: print the table, return the exit code."""
    catalog = catalog_of(settings)
    now = utcnow()
    async with http_client(settings) as client:
        rows = await poll_once(settings, catalog, client, now)
    print(render_table(rows, now=now), file=out)
    return exit_code(rows)
