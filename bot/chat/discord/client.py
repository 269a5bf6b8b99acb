"""The Discord gateway client: serves `/aistatus` and the buttons (discord.py). IO. Alerts go out
over REST through `bot.chat.discord.sender`; rendering is `bot.chat.discord.render` (pure).
"""

from __future__ import annotations

import logging

import aiohttp
import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import HTTPClient, Route

from bot.chat.discord.commands import CommandRunner, build_tree
from bot.chat.discord.sender import MAX_RATELIMIT_TIMEOUT

log = logging.getLogger(__name__)


async def configure_gateway(http: HTTPClient) -> None:
    """Dial the gateway that the configured API names (GET /gateway/bot). discord.py otherwise
    always dials wss://gateway.discord.gg, even with `Route.BASE` pointing elsewhere (a proxy,
    a compatible server, a loopback test server). Against discord.com nothing changes. When the
    API cannot say, the gateway stays as it is and the failure is logged (alerts go over REST)."""
    if Route.BASE.startswith("https://discord.com/"):
        return
    try:
        _, url, _ = await http.get_bot_gateway()
    except (discord.DiscordException, aiohttp.ClientError, OSError, KeyError, TypeError) as e:
        log.warning("could not ask %s for its gateway: %s", Route.BASE, type(e).__name__)
        return
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)


def invite_permissions() -> discord.Permissions:
    """What the invite URL asks for (README): see channels, post alerts with embeds, edit and
    reply to its own alerts, and thread updates under them."""
    return discord.Permissions(
        view_channel=True,
        send_messages=True,
        embed_links=True,
        read_message_history=True,
        create_public_threads=True,
        send_messages_in_threads=True,
    )


def bot_intents() -> discord.Intents:
    """Only `guilds`: no privileged intents. Interactions arrive without any intent."""
    intents = discord.Intents.none()
    intents.guilds = True
    return intents


class _OneLineReconnects(logging.Filter):
    """discord.py logs each failed gateway (re)connect with a full traceback, every few seconds
    while the gateway is unreachable. That is an expected state (alerts still go over REST):
    one warning line naming the error instead, and nothing while the same error repeats."""

    def __init__(self) -> None:
        super().__init__()
        self.last = ""  # the error last logged; cleared when the gateway is up again

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and str(record.msg).startswith("Attempting a reconnect"):
            error = record.exc_info[1]
            if f"{type(error).__name__}: {error}" == self.last:
                return False
            self.last = f"{type(error).__name__}: {error}"
            record.msg = "Discord gateway unreachable (%s: %s); reconnecting in %.2fs"
            record.args = (type(error).__name__, error, *(record.args or ()))  # type: ignore[misc]
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_RECONNECTS = _OneLineReconnects()


def reset_reconnect_log() -> None:
    """The gateway is up: the next failed reconnect is a new problem, logged again."""
    _RECONNECTS.last = ""


class DiscordBot(discord.Client):
    """The gateway client: `/aistatus`, its autocomplete and the report buttons. Commands are
    synced at start (setup_hook): to `dev_guild_id` when set (instant), else globally."""

    def __init__(
        self,
        runner: CommandRunner,
        *,
        dev_guild_id: int | None = None,
        max_ratelimit_timeout: float = MAX_RATELIMIT_TIMEOUT,
        proxy: str | None = None,
    ) -> None:
        super().__init__(
            proxy=proxy,  # REST and the gateway websocket (None: direct)
            intents=bot_intents(),
            max_ratelimit_timeout=max_ratelimit_timeout,
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.runner = runner
        self.dev_guild_id = dev_guild_id
        # Added once per process: addFilter skips a filter it already has.
        logging.getLogger("discord.client").addFilter(_RECONNECTS)
        self.tree = build_tree(self, runner)

    async def setup_hook(self) -> None:
        """Sync `/aistatus`; a failed sync is logged and the bot keeps delivering alerts."""
        guild = discord.Object(self.dev_guild_id) if self.dev_guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        try:
            synced = await self.tree.sync(guild=guild)
        except (discord.HTTPException, discord.app_commands.CommandSyncFailure) as e:
            log.error("could not sync /aistatus to Discord: %s", e)
            return
        except Exception as e:  # a bug or a surprise: alerts still go out, commands may be stale
            log.error("could not sync /aistatus to Discord", exc_info=e)
            return
        where = f"guild {self.dev_guild_id}" if guild else "all guilds"
        log.info("synced %d command(s) to %s", len(synced), where)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Component presses: an alert button runs its command (`report <surface>`, `mute 1h`)."""
        if interaction.type is discord.InteractionType.component:
            await self.runner.press(interaction)
