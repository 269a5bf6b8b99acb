"""The Slack app: the Bolt app (`/aistatus`, alert buttons, App Home) and its Socket Mode / HTTP
runners. IO (slack_bolt). Alerts go out through `bot.chat.slack.sender`; rendering is
`bot.chat.slack.render` (pure).
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_server import AsyncSlackAppServer
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient

from bot.chat.ports import CommandHandler, HomeProvider, SideQueue
from bot.chat.slack.gate import slack_gate
from bot.chat.slack.render import (
    ACTION_MUTE,
    ACTION_OPEN,
    ACTION_REPORT,
    MUTE_VALUE,
    to_home_view,
    to_slack_announce,
    to_slack_reply,
)
from bot.chat.slack.sender import slack_api_error
from bot.clock import utcnow
from bot.core.model import ChannelRef, CommandContext, Platform, SideMessage
from bot.errors import ConfigError
from bot.ops.inbound import InboundLimits, serve
from bot.settings import Settings

log = logging.getLogger(__name__)

COMMAND = "/aistatus"

# Every Slack API method (and feature) the code uses, with the bot scopes it needs. The manifest's
# oauth_config.scopes.bot must equal the union, and every `client.<method>(` call in this package
# is listed here (tests/chat/slack/test_slack_manifest.py checks both).
REQUIRED_SCOPES: Mapping[str, tuple[str, ...]] = {
    COMMAND: ("commands",),  # the slash command itself
    # chat:write.public: post alerts and announcements in public channels without being invited.
    "chat.postMessage": ("chat:write", "chat:write.public"),
    "chat.update": ("chat:write",),
    # Before re-sending an alert whose earlier attempt's answer was lost, the engine looks for its
    # metadata in the channel's recent history (public channels, private ones) or thread.
    "conversations.history": ("channels:history", "groups:history"),
    "conversations.replies": ("channels:history", "groups:history"),
    # ... joining first a public channel it posts to unjoined (Slack refuses its history then).
    "conversations.join": ("channels:join",),
    "views.publish": (),  # App Home: needs no scope
    "auth.test": (),  # Bolt's single-workspace authorization
    "apps.connections.open": (),  # Socket Mode: the app-level token's connections:write
}


def required_scopes() -> frozenset[str]:
    """The bot scopes the app asks for: the union of REQUIRED_SCOPES."""
    return frozenset(scope for scopes in REQUIRED_SCOPES.values() for scope in scopes)


# -- the Bolt app ----------------------------------------------------------------------------------

_WORD = re.compile(r"[\w.:-]{1,64}")


async def _respond(respond: AsyncRespond, **message: Any) -> None:
    try:
        resp = await respond(**message)
    except (aiohttp.ClientError, TimeoutError) as e:
        log.warning("could not answer through response_url: %s", type(e).__name__)
        return
    if resp.status_code != 200:
        log.warning("response_url answered HTTP %s", resp.status_code)


async def _announce(
    side: SideQueue, ctx: CommandContext, announce: str, payload: Mapping[str, Any], verb: str
) -> None:
    """Queue the public line after a command or button in the outbox (the delivery engine
    posts it: paced, retried on 429, dead-lettered where `aistatus deliveries` shows it). Its
    key is the request's trigger id, so one request is announced once."""
    text = to_slack_announce(announce, user_id=ctx.user_id, user_name=ctx.user_name)
    trigger = str(payload.get("trigger_id") or secrets.token_hex(8))
    message = SideMessage.announcement(
        ctx.channel, text, key=f"slack:{ctx.channel.workspace}:{trigger}", at=ctx.now,
        about=f"{verb} by {ctx.user_id}",
    )  # fmt: skip
    await side(message)


def _action_context(body: Mapping[str, Any], now: datetime) -> CommandContext | None:
    """Who clicked a button, and in which channel (None outside a channel)."""
    user = body.get("user") or {}
    channel = (body.get("channel") or {}).get("id")
    team = (body.get("team") or {}).get("id") or user.get("team_id")
    if not channel or not team or not user.get("id"):
        return None
    return CommandContext(
        channel=ChannelRef(Platform.SLACK, team, channel),
        user_id=user["id"],
        user_name=user.get("username") or user.get("name") or user["id"],
        now=now,
        can_manage=True,
    )


def _oauth_settings(
    settings: Settings,
    installation_store: AsyncInstallationStore | None,
    state_store: AsyncOAuthStateStore | None,
) -> AsyncOAuthSettings:
    if installation_store is None or state_store is None:
        raise ConfigError(
            "SLACK_CLIENT_ID/SLACK_CLIENT_SECRET are set (multi-workspace) but no installation "
            "store and OAuth state store were given",
            key="SLACK_CLIENT_ID",
        )
    assert settings.slack_client_secret is not None  # slack_oauth_enabled checked it
    return AsyncOAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret.get_secret_value(),
        scopes=sorted(required_scopes()),
        redirect_uri=settings.slack_redirect_uri,
        installation_store=installation_store,
        installation_store_bot_only=True,
        state_store=state_store,
    )


def build_slack_app(
    settings: Settings,
    *,
    handler: CommandHandler,
    home: HomeProvider,
    installation_store: AsyncInstallationStore | None = None,
    state_store: AsyncOAuthStateStore | None = None,
    client: AsyncWebClient | None = None,
    on_uninstall: Callable[[str], Awaitable[None]] | None = None,
    side: SideQueue,
    clock: Callable[[], datetime] = utcnow,
) -> AsyncApp:
    """The Bolt app: `/aistatus`, the alert buttons and the App Home. A reply's announcement
    goes to `side` (the outbox); the user's own answer goes out at once.

    One workspace: SLACK_BOT_TOKEN (or `client`'s token). Many: SLACK_CLIENT_ID/SECRET turn on
    Bolt's OAuth install flow with `installation_store` and `state_store`; with only an
    installation_store, tokens come from it (installs done elsewhere). `clock` stamps each
    command's `now`.
    Raises: ConfigError without a token or store, or in HTTP mode without SLACK_SIGNING_SECRET.
    """
    signing_secret = (
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    )
    if settings.slack_mode == "http" and not signing_secret:
        raise ConfigError(
            "AISTATUS_SLACK_MODE=http needs SLACK_SIGNING_SECRET to verify requests",
            key="SLACK_SIGNING_SECRET",
        )
    # Socket Mode never checks signatures; a random secret (not an empty one, which anyone could
    # sign with) keeps an HTTP server started by mistake closed to every request.
    signing_secret = signing_secret or secrets.token_hex(32)
    multi = settings.slack_oauth_enabled or installation_store is not None
    if client is None:
        client = AsyncWebClient(
            token=None if multi else _secret(settings.slack_bot_token),
            base_url=settings.slack_api_url,
        )
    if not multi and not client.token:
        raise ConfigError(
            "Slack needs SLACK_BOT_TOKEN (or SLACK_CLIENT_ID/SECRET)", key="SLACK_BOT_TOKEN"
        )
    app = AsyncApp(
        name="aistatus",
        logger=logging.getLogger("bot.chat.slack.app.bolt"),
        signing_secret=signing_secret,
        client=client,
        installation_store=None if settings.slack_oauth_enabled else installation_store,
        installation_store_bot_only=True if multi else None,
        oauth_settings=(
            _oauth_settings(settings, installation_store, state_store)
            if settings.slack_oauth_enabled
            else None
        ),
    )

    @app.command(COMMAND)
    async def on_command(
        ack: AsyncAck,
        command: dict[str, Any],
        respond: AsyncRespond,
        context: AsyncBoltContext,
    ) -> None:
        await ack()  # inside Slack's 3 s, before any work
        team = command["team_id"]
        authorized = context.authorize_result
        if not multi and authorized is not None and authorized.team_id:
            team = authorized.team_id  # one workspace: the installed one, whatever the payload says
        ctx = CommandContext(
            channel=ChannelRef(Platform.SLACK, team, command["channel_id"]),
            user_id=command["user_id"],
            user_name=command.get("user_name") or command["user_id"],
            now=clock(),
            can_manage=True,
        )
        text = command.get("text", "")
        reply = await handler(text, ctx)  # answers every failure itself
        await _respond(respond, **to_slack_reply(reply))
        if reply.announce:
            await _announce(side, ctx, reply.announce, command, text.split(" ", 1)[0])

    async def clicked(text: str, body: dict[str, Any], respond: AsyncRespond) -> None:
        """A button runs its command like the slash command does: a private answer, then the
        announcement in the channel (the Mute button says who muted, like `/aistatus mute`)."""
        ctx = _action_context(body, clock())
        if ctx is None:
            log.info("button %r clicked outside a channel; ignored", text)
            return
        reply = await handler(text, ctx)
        message = {**to_slack_reply(reply), "response_type": "ephemeral"}
        await _respond(respond, **message, replace_original=False)
        if reply.announce:
            await _announce(side, ctx, reply.announce, body, f"{text.split(' ', 1)[0]} button")

    @app.action(ACTION_MUTE)
    async def on_mute(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await clicked(f"mute {MUTE_VALUE}", body, respond)

    @app.action(ACTION_REPORT)
    async def on_report(
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        respond: AsyncRespond,
    ) -> None:
        await ack()
        surface = _WORD.fullmatch(str(action.get("value", "")).strip())
        if surface is None:
            log.info("report button with an unexpected value; ignored")
            return
        await clicked(f"report {surface.group()}", body, respond)

    @app.action(ACTION_OPEN)
    async def on_open(ack: AsyncAck) -> None:
        await ack()  # Slack opens the URL itself

    async def gone(body: dict[str, Any]) -> None:
        team = str(body.get("team_id") or "")
        if on_uninstall is not None and team:
            await on_uninstall(team)

    @app.event("app_uninstalled")
    async def on_app_uninstalled(body: dict[str, Any]) -> None:
        await gone(body)

    @app.event("tokens_revoked")
    async def on_tokens_revoked(body: dict[str, Any], event: dict[str, Any]) -> None:
        if (event.get("tokens") or {}).get("bot"):  # a revoked user token leaves the bot working
            await gone(body)

    @app.event("app_home_opened")
    async def on_home(event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        team = body.get("team_id") or ""
        try:
            view = to_home_view(await home(team))
        except Exception:
            log.exception("App Home board for %s failed", team)
            return
        try:
            await client.views_publish(user_id=event["user"], view=view)
        except SlackApiError as e:
            log.warning("views.publish failed: %s", slack_api_error(e).reason)

    return app


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


# -- runners ---------------------------------------------------------------------------------------


@dataclass
class SlackHttpServer:
    """A running HTTP-mode endpoint (commands, interactivity and events on one path)."""

    runner: web.AppRunner
    host: str
    port: int
    path: str

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    async def stop(self) -> None:
        """Stop listening and finish in-flight requests."""
        await self.runner.cleanup()


async def run_http_mode(
    app: AsyncApp,
    host: str,
    port: int,
    *,
    path: str = "/slack/events",
    limits: InboundLimits | None = None,
) -> SlackHttpServer:
    """Serve the app over HTTP (Bolt's aiohttp server; signatures checked by Bolt's
    RequestVerification: forged, stale or unsigned requests get 401), behind the inbound
    deadlines and connection cap (`bot.ops.inbound`). Port 0 picks a free port.
    Raises: OSError when the address cannot be bound."""
    server = AsyncSlackAppServer(port=port, path=path, app=app, host=host)
    server.web_app.middlewares.append(slack_gate(app._signing_secret, events_path=path))
    runner, _ = await serve(
        server.web_app, host, port, limits or InboundLimits(), name="Slack HTTP"
    )
    bound = runner.addresses[0][1] if runner.addresses else port
    log.info("Slack HTTP mode listening on %s:%s%s", host, bound, path)
    return SlackHttpServer(runner=runner, host=host, port=bound, path=path)


@dataclass
class SlackSocketMode:
    """A connected Socket Mode session (reconnects by itself until stopped)."""

    handler: AsyncSocketModeHandler

    def check(self) -> tuple[bool, str]:
        """(connected, detail) for /readyz and the aistatus_chat_connected gauge."""
        client = self.handler.client
        session = client.current_session
        up = not client.closed and session is not None and not session.closed
        return up, "connected" if up else "reconnecting"

    async def stop(self) -> None:
        """Disconnect and release the websocket."""
        await self.handler.close_async()


_AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "token_revoked", "not_allowed_token_type"})


async def run_socket_mode(app: AsyncApp, app_token: str) -> SlackSocketMode:
    """Connect the app over Socket Mode with an app-level token (xapp-...).
    Raises: ConfigError when Slack refuses the token; SlackApiError / aiohttp errors otherwise."""
    handler = AsyncSocketModeHandler(app, app_token, logger=logging.getLogger(__name__))
    try:
        # Ask for the websocket URL first: the client's own connect() retries every error forever,
        # so a revoked token would hang start-up instead of failing it.
        handler.client.wss_uri = await handler.client.issue_new_wss_url()
        await handler.connect_async()
    except SlackApiError as e:
        await handler.close_async()
        error = slack_api_error(e)
        if error.reason in _AUTH_ERRORS:
            raise ConfigError(
                f"Slack refused SLACK_APP_TOKEN: {error.reason}", key="SLACK_APP_TOKEN"
            ) from None
        raise
    log.info("Slack Socket Mode connected")
    return SlackSocketMode(handler=handler)
