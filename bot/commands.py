"""`/aistatus` command parsing. Pure: text in, a `Command` out, or `CommandError` with a one-line
message and the usage line. Shared by Slack and Discord.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from bot.catalog import Catalog
from bot.model import Status


class Verb(StrEnum):
    STATUS = "status"
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    LIST = "list"
    MUTE = "mute"
    UNMUTE = "unmute"
    REPORT = "report"
    HISTORY = "history"
    HELP = "help"


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed command. `all_surfaces`: the user said `all` (every Claude surface)."""

    verb: Verb
    surfaces: tuple[str, ...] = ()
    all_surfaces: bool = False
    min_severity: Status | None = None  # subscribe --min degraded|partial|major
    maintenance: bool = False  # subscribe --maintenance
    duration: timedelta | None = None  # mute 30m|2h|1d
    days: int = 7  # history --days N


def parse(text: str, catalog: Catalog) -> Command:
    """Parse the text after `/aistatus`. Empty text is `status`.

    Raises: CommandError(user_message, usage) for unknown verbs, unknown surfaces (with the
    closest name), bad durations and bad flags.
    """
    raise NotImplementedError
