"""The `/aistatus` Discord app command group, the alert buttons (report, mute), and the runner that
turns both into the same text commands Slack sends (`subscribe api code --min partial`). IO:
answers interactions through discord.py. `command_definitions` / `write_manifest` produce the
exact JSON the tree syncs (manifests/discord-commands.json).

Manage Channels: Discord honours `default_member_permissions` only on a top-level command, and
`/aistatus status` must stay open to everyone, so the runner passes
`interaction.permissions.manage_channels` (resolved by Discord per channel, overwrites included)
as `CommandContext.can_manage`, and `bot.chat.actions.handle` refuses the verbs that need it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import discord
from discord import app_commands

from bot.chat import replies
from bot.chat.commands import complete as complete_surfaces
from bot.chat.discord.render import (
    DURATION_SUGGESTIONS,
    EPHEMERAL,
    Complete,
    button_command,
    command_text,
    surface_choices,
    to_discord_announce,
    to_discord_reply,
)
from bot.chat.ports import CommandHandler, SideQueue
from bot.clock import utcnow
from bot.core.catalog import Catalog
from bot.core.model import ChannelRef, CommandContext, Platform, Reply, SideMessage
from bot.errors import CommandError

log = logging.getLogger(__name__)


ANSWER_WITHIN = 2.0  # seconds before we defer: Discord drops an interaction unanswered for 3 s


class CommandRunner:
    """Runs one text command for an interaction and answers it: who may manage the channel, the
    3 s deadline (defer, then edit), and the public announcement. The handler answers every
    failure itself (`bot.chat.actions.handle`).

    The announcement is a channel post with the bot token, queued in the outbox (`side`): paced,
    retried on 429, dead-lettered where `aistatus deliveries` shows it. Unlike the interaction's
    followup it needs the bot's View Channel and Send Messages there, which alerts need anyway:
    where they are missing it dead-letters as `missing_access` / `missing_permissions`, and the
    user's own answer (immediate, through the interaction) is unaffected."""

    def __init__(
        self,
        handler: CommandHandler,
        catalog: Catalog,
        *,
        side: SideQueue,
        complete: Complete = complete_surfaces,
        clock: Callable[[], datetime] = utcnow,
        answer_within: float = ANSWER_WITHIN,
    ) -> None:
        self.handler = handler
        self.catalog = catalog
        self.side = side
        self.complete = complete
        self.clock = clock
        self.answer_within = answer_within

    def context(self, interaction: discord.Interaction) -> CommandContext:
        """Who asked, where, and whether Discord lets them manage the channel."""
        channel = ChannelRef(
            Platform.DISCORD, str(interaction.guild_id or 0), str(interaction.channel_id or 0)
        )
        return CommandContext(
            channel=channel,
            user_id=str(interaction.user.id),
            user_name=interaction.user.display_name,
            now=self.clock(),
            can_manage=interaction.permissions.manage_channels,
        )

    async def run(
        self, interaction: discord.Interaction, text: str, *, ephemeral: bool = False
    ) -> None:
        """Answer `interaction` with the reply to `text`; `ephemeral` forces a private answer."""
        ctx = self.context(interaction)
        task = asyncio.ensure_future(self.handler(text, ctx))
        done, _ = await asyncio.wait({task}, timeout=self.answer_within)
        if not done:
            await _quietly(interaction.response.defer(ephemeral=True, thinking=True))
        reply = await task
        if ephemeral and not reply.ephemeral:
            reply = Reply(reply.text, reply.sections, True, reply.announce, reply.error)
        await self.answer(interaction, reply, ctx=ctx, verb=text.split(" ", 1)[0])

    async def answer(
        self,
        interaction: discord.Interaction,
        reply: Reply,
        *,
        ctx: CommandContext | None = None,
        verb: str = "",
    ) -> None:
        """Send `reply` (as the response, or as an edit of a deferred one), then queue its
        announce line for the channel (keyed by the interaction: announced once)."""
        kwargs = send_kwargs(to_discord_reply(reply))
        if interaction.response.is_done():
            kwargs.pop("ephemeral", None)  # a deferred answer keeps the deferral's visibility
            await _quietly(interaction.edit_original_response(**kwargs))
        else:
            await _quietly(interaction.response.send_message(**kwargs))
        if reply.announce:
            ctx = ctx or self.context(interaction)
            announce = to_discord_announce(
                reply.announce, user_id=ctx.user_id, user_name=ctx.user_name
            )
            message = SideMessage.announcement(
                ctx.channel, announce["content"], key=f"discord:{interaction.id}", at=ctx.now,
                about=f"{verb} by {ctx.user_id}" if verb else f"by {ctx.user_id}",
            )  # fmt: skip
            await self.side(message)

    async def press(self, interaction: discord.Interaction) -> bool:
        """Handle an alert button ("I'm affected too", Mute 1h) like the command it stands for:
        the same Manage Channels gate, a private answer to the presser, and the command's
        public announcement (the Mute button says who muted, like `/aistatus mute`). False for
        any other component."""
        data: Any = interaction.data or {}
        text = button_command(str(data.get("custom_id", "")))
        if text is None:
            return False
        await self.run(interaction, text, ephemeral=True)
        return True

    def choices(
        self, current: str, *, several: bool = False, allow_all: bool = False
    ) -> list[app_commands.Choice[str]]:
        """Surface autocomplete choices for what the user typed so far."""
        found = surface_choices(
            current, self.catalog, complete=self.complete, several=several, allow_all=allow_all
        )
        return [app_commands.Choice(name=c["name"], value=c["value"]) for c in found]


def send_kwargs(payload: dict[str, Any]) -> dict[str, Any]:
    """discord.py keyword arguments for a rendered reply dict (content, embeds, ephemeral)."""
    out: dict[str, Any] = {"allowed_mentions": discord.AllowedMentions.none()}
    if "content" in payload:
        out["content"] = payload["content"]
    if payload.get("embeds"):
        out["embeds"] = [discord.Embed.from_dict(e) for e in payload["embeds"]]
    if payload.get("flags", 0) & EPHEMERAL:
        out["ephemeral"] = True
    return out


async def _quietly(call: Awaitable[Any]) -> None:
    """An interaction answer that Discord refused (expired token, deleted channel) is logged,
    never raised: there is nobody left to tell."""
    try:
        await call
    except discord.HTTPException as e:  # its text carries Discord's field errors
        log.warning(
            "discord refused an interaction answer: %s %s %s", e.status, e.code, e.text[:300]
        )
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        log.warning("could not send an interaction answer: %s", type(e).__name__)


SEVERITY_CHOICES = [
    app_commands.Choice(name="degraded performance and worse", value="degraded"),
    app_commands.Choice(name="partial outages and worse", value="partial"),
    app_commands.Choice(name="major outages only", value="major"),
]


class AistatusGroup(app_commands.Group):
    """`/aistatus <verb>`: each subcommand builds the text command and hands it to the runner."""

    def __init__(self, runner: CommandRunner) -> None:
        super().__init__(
            name="aistatus",
            description="Is Claude down, or is it just me? Status, alerts and backups.",
            guild_only=True,
        )
        self.runner = runner

    @app_commands.command(name="status", description="Live status of every surface, or of one")
    @app_commands.describe(surface="A surface, e.g. claude.ai, api, code")
    async def status(self, interaction: discord.Interaction, surface: str | None = None) -> None:
        await self.runner.run(interaction, command_text("status", surface))

    @app_commands.command(name="subscribe", description="Alert this channel about surfaces")
    @app_commands.describe(
        surfaces="Surfaces separated by spaces, or `all` for every Claude surface",
        min="Least severe outage to alert on (default: degraded)",
        maintenance="Also announce scheduled maintenance",
    )
    @app_commands.choices(min=SEVERITY_CHOICES)
    async def subscribe(
        self,
        interaction: discord.Interaction,
        surfaces: str,
        min: app_commands.Choice[str] | None = None,  # the option is named `min`, like the flag
        maintenance: bool = False,
    ) -> None:
        text = command_text(
            "subscribe", surfaces, min=min.value if min else None, maintenance=maintenance
        )
        await self.runner.run(interaction, text)

    @app_commands.command(name="unsubscribe", description="Stop alerts in this channel")
    @app_commands.describe(surfaces="Surfaces to drop (default: all of them)")
    async def unsubscribe(
        self, interaction: discord.Interaction, surfaces: str | None = None
    ) -> None:
        await self.runner.run(interaction, command_text("unsubscribe", surfaces))

    @app_commands.command(name="list", description="What this channel is subscribed to")
    async def list_(self, interaction: discord.Interaction) -> None:
        await self.runner.run(interaction, "list")

    @app_commands.command(name="mute", description="Pause alerts in this channel for a while")
    @app_commands.describe(duration="How long: 30m, 2h, 1d (up to 30 days)")
    async def mute(self, interaction: discord.Interaction, duration: str) -> None:
        await self.runner.run(interaction, command_text("mute", duration))

    @app_commands.command(name="unmute", description="Resume alerts in this channel")
    async def unmute(self, interaction: discord.Interaction) -> None:
        await self.runner.run(interaction, "unmute")

    @app_commands.command(name="report", description="Say a surface is failing for you")
    @app_commands.describe(surface="The surface that fails for you")
    async def report(self, interaction: discord.Interaction, surface: str) -> None:
        await self.runner.run(interaction, command_text("report", surface), ephemeral=True)

    @app_commands.command(name="history", description="Recent outages, of every surface or of one")
    @app_commands.describe(surface="A surface (default: all)", days="How many days back (1-90)")
    async def history(
        self,
        interaction: discord.Interaction,
        surface: str | None = None,
        days: app_commands.Range[int, 1, 90] | None = None,
    ) -> None:
        await self.runner.run(interaction, command_text("history", surface, days=days))

    @app_commands.command(name="help", description="What /aistatus can do")
    async def help(self, interaction: discord.Interaction) -> None:
        await self.runner.run(interaction, "help")

    # -- autocomplete ------------------------------------------------------------------------------

    @status.autocomplete("surface")
    @report.autocomplete("surface")
    @history.autocomplete("surface")
    async def _one_surface(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return self.runner.choices(current)

    @subscribe.autocomplete("surfaces")
    @unsubscribe.autocomplete("surfaces")
    async def _several_surfaces(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return self.runner.choices(current, several=True, allow_all=True)

    @mute.autocomplete("duration")
    async def _duration(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        hits = [d for d in DURATION_SUGGESTIONS if d.startswith(current.strip().lower())]
        return [app_commands.Choice(name=d, value=d) for d in hits or DURATION_SUGGESTIONS]


class AistatusTree(app_commands.CommandTree):
    """The command tree. Commands fail in `bot.chat.actions.handle`; what reaches `on_error` is
    a bug of this adapter (building or sending an answer), logged and apologised for the same
    way."""

    def __init__(self, client: discord.Client, runner: CommandRunner) -> None:
        super().__init__(client)
        self.runner = runner

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        name = interaction.command.qualified_name if interaction.command else "?"
        log.error("app command %s failed", name, exc_info=error)
        if not interaction.response.is_done():
            await self.runner.answer(interaction, replies.internal_error())


def build_tree(client: discord.Client, runner: CommandRunner) -> AistatusTree:
    """The command tree of `client` with `/aistatus` on it."""
    tree = AistatusTree(client, runner)
    tree.add_command(AistatusGroup(runner))
    return tree


async def _no_handler(text: str, ctx: CommandContext) -> Reply:
    raise CommandError("not running")


async def _no_side(message: SideMessage) -> None:
    raise CommandError("not running")


def command_definitions(catalog: Catalog | None = None) -> list[dict[str, Any]]:
    """The application command JSON exactly as `tree.sync()` sends it. Surfaces come by
    autocomplete, not static choices, so the JSON does not depend on the catalog (a catalog
    edit never needs a re-sync); `catalog` is accepted for symmetry with the Slack manifest."""
    client = discord.Client(intents=discord.Intents.none())
    runner = CommandRunner(
        _no_handler, catalog or Catalog(providers={}, surfaces={}), side=_no_side
    )
    tree = build_tree(client, runner)
    return [cmd.to_dict(tree) for cmd in tree.get_commands()]


def manifest_text(catalog: Catalog | None = None) -> str:
    """manifests/discord-commands.json as text (stable key order, trailing newline)."""
    return json.dumps(command_definitions(catalog), indent=2, ensure_ascii=False) + "\n"


def write_manifest(path: Path, catalog: Catalog | None = None) -> None:
    """Write the command JSON to `path`. Raises: OSError when it cannot be written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(manifest_text(catalog), encoding="utf-8")
