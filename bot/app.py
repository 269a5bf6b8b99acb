"""The composition root: builds every client (httpx, Redis, Slack, Discord) once, assembles the
stages (watch -> commit -> fan-out -> outbox -> lanes -> sender) and runs `aistatus run`. IO.
Nothing else constructs clients; the one-shot verbs (`bot.cli`) borrow theirs from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO, TypeVar
from urllib.parse import urlsplit

import aiohttp
import discord
import httpx
from aiohttp import web
from redis.asyncio import Redis

from bot import __version__
from bot.backoff import Backoff, Streak
from bot.catalog_file import load_catalog
from bot.chat import actions, replies
from bot.chat.actions import Services
from bot.chat.ports import ChatSender, CommandHandler, HomeProvider, SideQueue
from bot.clock import utcnow
from bot.core.catalog import Catalog
from bot.core.crowd import CrowdThresholds
from bot.core.model import CommandContext, Platform, Reply
from bot.core.transitions import Policy
from bot.delivery.engine import Delivery, DeliveryConfig
from bot.delivery.side import SideOutbox
from bot.errors import ConfigError, ConfigProblem
from bot.ops import heap, metrics
from bot.ops.api import BoardSource, api_routes
from bot.ops.console import ConsoleSink
from bot.ops.health import build_health_app, readiness, start_health_server
from bot.ops.hook import HOOK_PREFIX, HookServer, build_hook_app, start_hook_server
from bot.ops.inbound import InboundLimits, install_accept_errors
from bot.ops.redisproc import RedisProcess
from bot.settings import Settings, rules
from bot.store.connect import connect
from bot.store.outbox import OutboxStore, outbox_counts
from bot.store.surfaces import SurfaceStore
from bot.watch.hint import Hints
from bot.watch.scheduler import build_scheduler
from bot.watch.watcher import Watcher

log = logging.getLogger(__name__)

T = TypeVar("T")

LOGIN_ATTEMPTS = 4  # a chat platform unreachable at start-up: retried, then one clear line
LOGIN_BACKOFF = Backoff(0.5, 4.0)  # seconds between those tries: 0.5, 1, 2


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


def webhook_sender(
    settings: Settings, redis: Redis, client: httpx.AsyncClient, clock: Callable[[], datetime]
) -> ChatSender:
    """The outgoing webhooks' sender, on the shared client with explicit timeouts."""
    from bot.chat.webhook.sender import WebhookSender
    from bot.store.subscriptions import SubscriptionStore
    from bot.store.webhooks import WebhookStore

    store = WebhookStore(redis, SubscriptionStore(redis), settings.cipher())
    timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout)
    return WebhookSender(client, store, timeout=timeout, clock=clock)


def checked(settings: Settings, catalog: Catalog) -> list[ConfigProblem]:
    """The cross-field rules `run` and `check-config` share (`bot.settings.rules`): warnings
    are logged and returned. Raises: ConfigError with every refusal at once."""
    problems = rules(settings, catalog)
    refusals = [p for p in problems if not p.warning]
    if refusals:
        raise ConfigError.of(refusals)
    warnings = [p for p in problems if p.warning]
    for p in warnings:
        log.warning("%s", p)
    return warnings


async def listening(start: Awaitable[T], key: str, host: str, port: int) -> T:
    """Await a listener's start; a port in use or a host we cannot bind is one line naming the
    setting to change. Raises: ConfigError."""
    try:
        return await start
    except OSError as e:
        why = "is in use (another aistatus?)" if e.errno == errno.EADDRINUSE else e.strerror
        raise ConfigError.of([ConfigProblem(
            key, "the settings", f"cannot listen on {host}:{port}: {why}",
            f"stop what holds it, or set {key} to a free port (0 picks one)",
        )]) from None  # fmt: skip


def policy(settings: Settings) -> Policy:
    return Policy.with_probe_thresholds(settings.failure_threshold, settings.success_threshold)


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
    console: TextIO | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Bot:
    """Wire the watcher: store, policy, intervals, and the console sink printing to `console`
    when given (None: what the watcher records leaves only through the transition stream)."""
    store = SurfaceStore(redis, history_length=settings.history_length)
    sink = None
    if console is not None:
        states = functools.partial(store.read_all, catalog.surfaces_by_provider())
        sink = ConsoleSink(catalog, states, clock, out=console)
    watcher = Watcher(
        catalog=catalog,
        store=store,
        client=client,
        sink=sink,
        clock=clock,
        policy=policy(settings),
        poll_interval=settings.poll_interval,
        probe_interval=settings.probe_interval,
        recheck_interval=settings.probe_recheck_interval,
        max_response_bytes=settings.max_response_bytes,
        api_key=settings.anthropic_api_key,
    )
    return Bot(settings, catalog, redis, client, store, watcher)


def board_routes(bot: Bot, blind: Callable[[], bool]) -> list[web.RouteDef]:
    """The read-only JSON API and web board for the operator listener (bot.ops.api)."""
    source = BoardSource(
        bot.store, bot.catalog, bot.catalog.surfaces_by_provider(), bot.watcher.clock, blind
    )
    token = bot.settings.api_token.get_secret_value() if bot.settings.api_token else None
    return api_routes(source, token=token)


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
    """Slack's App Home: the live board, then this workspace's subscribed channels, each named."""

    async def home(team_id: str) -> Reply:
        now = clock()
        states = await svc.surfaces.read_all(svc.providers)
        subs = await svc.subscriptions.list_workspace(Platform.SLACK, team_id)
        return replies.combine(
            [replies.board(states, svc.catalog, now), replies.channel_list(subs, svc.catalog, now)]
        )

    return home


async def start_hook(settings: Settings, bot: Bot) -> tuple[Hints, HookServer] | None:
    """The status-page webhook receiver, when AISTATUS_HOOK_SECRET is set: each delivery makes
    the watcher poll that page at once (coalesced); the scheduled polls stay the safety net."""
    if settings.hook_secret is None:
        return None
    hints = Hints(functools.partial(bot.watcher.poll_page, hinted=True))
    app = build_hook_app(settings.hook_secret.get_secret_value(), bot.catalog, hints.hint)
    server = await listening(
        start_hook_server(
            app, settings.hook_host, settings.hook_port,
            limits=InboundLimits.from_settings(settings),
        ),
        "AISTATUS_HOOK_PORT", settings.hook_host, settings.hook_port,
    )  # fmt: skip
    log.info(  # never the secret: it is the URL's only protection
        "status-page hook listening on http://%s:%d%s<secret>",
        settings.hook_host, server.port, HOOK_PREFIX,
    )  # fmt: skip
    return hints, server


@dataclass
class Chat:
    """The running chat apps: their senders (for delivery), whether each live connection is up
    (Socket Mode, the Discord gateway; for /metrics) and how to stop them."""

    senders: dict[Platform, ChatSender] = field(default_factory=dict)
    connected: dict[Platform, Callable[[], Awaitable[bool]]] = field(default_factory=dict)
    stops: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Connections that bring commands in, by name: (up, detail) for /readyz.
    links: dict[str, Callable[[], tuple[bool, str]]] = field(default_factory=dict)

    def watch(self, platform: Platform, name: str, check: Callable[[], tuple[bool, str]]) -> None:
        """Report `check` in /readyz (as `name`) and, read on each scrape, as
        aistatus_chat_connected{platform=...}."""
        self.links[name] = check

        async def up() -> bool:
            return check()[0]

        self.connected[platform] = up

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


def scrape_gauges(redis: Redis, chat: Chat) -> Callable[[], Awaitable[None]]:
    """What /metrics reads at each scrape: the outbox backlog and dead letters (two XLENs) and
    the chat connections' state."""

    async def refresh() -> None:
        for platform, up in chat.connected.items():
            metrics.CHAT_CONNECTED.labels(platform.value).set(1 if await up() else 0)
        queued, dead = await outbox_counts(redis)
        metrics.OUTBOX_ENTRIES.set(queued)
        metrics.DEAD_LETTERS.set(dead)

    return refresh


def side_queue(redis: Redis) -> SideQueue:
    """Where the chat apps queue their announcements: the outbox, which the delivery engine
    (of this replica or another) sends from."""
    return SideOutbox(OutboxStore(redis), clock=utcnow)


async def start_slack(
    settings: Settings, redis: Redis, handler: CommandHandler, home: HomeProvider, chat: Chat
) -> None:
    """Socket Mode (default) or HTTP mode; one workspace by token, or many through OAuth.
    Raises: ConfigError for a missing or refused token."""
    from bot.chat.slack.app import build_slack_app, run_http_mode, run_socket_mode
    from bot.chat.slack.sender import SlackSender, slack_web_client
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
        cipher = settings.required_cipher(
            "SLACK_CLIENT_ID/SLACK_CLIENT_SECRET (multi-workspace installs)"
        )
        installs = RedisInstallationStore(redis, cipher)
        app = build_slack_app(
            settings,
            handler=handler,
            home=home,
            installation_store=installs,
            state_store=RedisOAuthStateStore(redis),
            on_uninstall=on_uninstall,
            side=side_queue(redis),
        )
        chat.senders[Platform.SLACK] = SlackSender(client, tokens=installs.bot_token)
    else:
        app = build_slack_app(
            settings, handler=handler, home=home, client=client, on_uninstall=on_uninstall,
            side=side_queue(redis),
        )  # fmt: skip
        chat.senders[Platform.SLACK] = SlackSender(client)
    if settings.slack_mode == "http":
        server = await listening(
            run_http_mode(
                app, settings.http_host, settings.slack_port,
                limits=InboundLimits.from_settings(settings),
            ),
            "AISTATUS_SLACK_PORT", settings.http_host, settings.slack_port,
        )  # fmt: skip
        chat.stops.append(server.stop)
        log.info("Slack: HTTP mode on %s", server.url)
    else:
        assert settings.slack_app_token is not None  # settings.rules checked it before start
        socket = await run_socket_mode(app, settings.slack_app_token.get_secret_value())
        chat.stops.append(socket.stop)
        chat.watch(Platform.SLACK, "slack_socket_mode", socket.check)
        log.info("Slack: Socket Mode connected")


async def start_discord(
    settings: Settings,
    catalog: Catalog,
    handler: CommandHandler,
    chat: Chat,
    on_fatal: Callable[[str], None],
    *,
    side: SideQueue,
) -> None:
    """Log in over REST (alerts flow even while the gateway reconnects), then run the gateway
    under a supervisor (`on_fatal` when Discord closes it for good).
    Raises: ConfigError when Discord refuses DISCORD_TOKEN."""
    from bot.chat.discord.client import DiscordBot, configure_gateway
    from bot.chat.discord.commands import CommandRunner
    from bot.chat.discord.gateway import GatewaySupervisor
    from bot.chat.discord.sender import DiscordSender, configure_api_base, env_proxy

    assert settings.discord_token is not None
    configure_api_base(settings.discord_api_url)
    proxy = env_proxy(settings.discord_api_url)
    if proxy is not None:  # host and port only: a proxy URL may carry credentials
        where = urlsplit(proxy)
        log.info("Discord: REST and gateway through the proxy at %s:%s", where.hostname, where.port)
    client = DiscordBot(
        CommandRunner(handler, catalog, side=side),
        dev_guild_id=settings.discord_dev_guild_id,
        proxy=proxy,
    )
    streak = Streak()
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
            if streak.failed(why):
                log.warning("Discord login failed (%s); retrying", why)
            await asyncio.sleep(LOGIN_BACKOFF.window(streak.failures))
    chat.senders[Platform.DISCORD] = DiscordSender(client.http)
    await configure_gateway(client.http)
    supervisor = GatewaySupervisor(client, on_fatal=on_fatal)
    chat.watch(Platform.DISCORD, "discord_gateway", supervisor.check)
    gateway = asyncio.create_task(supervisor.run(), name="discord-gateway")

    async def stop() -> None:
        await client.close()
        gateway.cancel()
        await asyncio.gather(gateway, return_exceptions=True)

    chat.stops.append(stop)
    log.info("Discord: logged in; gateway connecting")


async def run(settings: Settings, *, stop: asyncio.Event, out: TextIO) -> int:
    """`aistatus run`: watch, answer commands and deliver alerts until `stop` is set. With no
    chat platform configured, every transition and its alerts are printed to `out` instead.
    Raises: ConfigError for settings a platform refuses."""
    catalog = load_catalog(settings.catalog_path)
    checked(settings, catalog)
    chat_configured = settings.slack_enabled or settings.discord_enabled
    async with redis_for(settings) as redis, http_client(settings) as client:
        # watch -> commit: the watcher reads, decides and commits each change once (Lua CAS);
        # the same commit appends it to the transition stream the delivery engine reads.
        bot = build_bot(settings, catalog, redis, client, console=None if chat_configured else out)
        scheduler = build_scheduler(bot.watcher, probes=settings.probes_enabled)
        svc = services(bot)

        async def handler(text: str, ctx: CommandContext) -> Reply:
            return await actions.handle(text, ctx, svc)

        chat = Chat()
        install_accept_errors(asyncio.get_running_loop())
        limits = InboundLimits.from_settings(settings)
        log.info(
            "inbound connections: at most %d per server, %ss for headers, %ss for a body",
            limits.capped(),
            limits.header_timeout,
            limits.body_timeout,
        )
        # The operator listener (AISTATUS_OPS_HOST/PORT, loopback by default): health, metrics,
        # the JSON API and the web board, behind the inbound deadlines and connection cap.
        operator = build_health_app(
            readiness(redis, lambda: bot.watcher.blind, down=chat.down),
            refresh=scrape_gauges(redis, chat),
        )
        operator.add_routes(board_routes(bot, lambda: bot.watcher.blind))
        port_key = "AISTATUS_OPS_PORT" if settings.ops_port is not None else "AISTATUS_HTTP_PORT"
        health = await listening(
            start_health_server(operator, settings.ops_host, settings.operator_port, limits),
            port_key, settings.ops_host, settings.operator_port,
        )  # fmt: skip
        exit_code = 0

        def on_fatal(reason: str) -> None:
            """A chat connection closed for good: stop, and exit non-zero (restart or fix)."""
            nonlocal exit_code
            exit_code = 1
            stop.set()

        delivery_stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        hook: tuple[Hints, HookServer] | None = None
        try:
            # The chat apps: commands in (-> actions), and the senders alerts go out through.
            if settings.slack_enabled:
                await start_slack(settings, redis, handler, home_provider(svc), chat)
            if settings.discord_enabled:
                await start_discord(
                    settings, catalog, handler, chat, on_fatal, side=side_queue(redis)
                )
            # Outgoing webhooks need no login: `aistatus webhooks add` may add one at any time.
            chat.senders[Platform.WEBHOOK] = webhook_sender(settings, redis, client, utcnow)
            if chat.senders:
                # fan-out -> outbox -> lanes -> sender, composed in the delivery engine.
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
            hook = await start_hook(settings, bot)  # before polling: a busy port fails first
            heap.settle()  # what start-up built lives as long as the process (bot.ops.heap)
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
            if hook is not None:
                await hook[1].stop()
                await hook[0].aclose()
            if scheduler.running:
                scheduler.shutdown(wait=False)
            delivery_stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await chat.stop()
            await health.cleanup()
    return exit_code
