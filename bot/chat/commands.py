"""`/aistatus` command parsing. Pure: text in, a `Command` out, or `CommandError` with a one-line
message and the usage line. Shared by Slack and Discord (also surface name resolution and the
autocomplete list).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from bot.core.catalog import Catalog
from bot.core.duration import parse_duration
from bot.core.model import Status
from bot.errors import CommandError


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
    topic: Verb | None = None  # help <verb>: the verb to explain


# -- errors: every one is a CommandError, so handlers catch that; the subclass says which mistake --


class UnknownVerb(CommandError):
    """The first word is not a command (nor a surface, which would mean `status <surface>`)."""


class UnknownSurface(CommandError):
    """A word is not a surface id, display name or alias."""


class BadDuration(CommandError):
    """`mute` got something that is not a duration, or one out of bounds."""


class BadFlag(CommandError):
    """An option the verb does not take, or a bad value for one it does."""


class MissingArgument(CommandError):
    """A required surface, duration or option value is missing."""


class ExtraArgument(CommandError):
    """More words than the verb takes."""


SEVERITY_FLAGS: dict[str, Status] = {
    "degraded": Status.DEGRADED,
    "partial": Status.PARTIAL_OUTAGE,
    "major": Status.MAJOR_OUTAGE,
}
_SEVERITY_WORDS: dict[str, Status] = {
    **SEVERITY_FLAGS,
    **{s.value: s for s in SEVERITY_FLAGS.values()},  # degraded_performance, partial_outage, ...
    **{s.value.replace("_", "-"): s for s in SEVERITY_FLAGS.values()},
}
HISTORY_DAYS = (1, 90)
DEFAULT_DAYS = 7

GENERAL_USAGE = (
    "/aistatus [status|subscribe|unsubscribe|list|mute|unmute|report|history|help] …"
    " (try /aistatus help)"
)
USAGE: dict[Verb, str] = {
    Verb.STATUS: "/aistatus status [surface]",
    Verb.SUBSCRIBE: "/aistatus subscribe <surface…|all> [--min degraded|partial|major] "
    "[--maintenance]",
    Verb.UNSUBSCRIBE: "/aistatus unsubscribe <surface…|all>",
    Verb.LIST: "/aistatus list",
    Verb.MUTE: "/aistatus mute <duration> (30m, 2h, 1d; up to 30d)",
    Verb.UNMUTE: "/aistatus unmute",
    Verb.REPORT: "/aistatus report <surface>",
    Verb.HISTORY: "/aistatus history [surface] [--days N] (N from 1 to 90, default 7)",
    Verb.HELP: "/aistatus help [command]",
}
HELP_LINES: tuple[tuple[str, str], ...] = (
    (USAGE[Verb.STATUS], "Is Claude up? `/aistatus status api` for one surface"),
    (
        USAGE[Verb.SUBSCRIBE],
        "Alert this channel: `/aistatus subscribe api code --min partial`",
    ),
    (USAGE[Verb.UNSUBSCRIBE], "Stop alerts here: `/aistatus unsubscribe all`"),
    (USAGE[Verb.LIST], "What this channel is subscribed to, and any mute"),
    (USAGE[Verb.MUTE], "Pause alerts here: `/aistatus mute 2h`"),
    (USAGE[Verb.UNMUTE], "Resume alerts now"),
    (USAGE[Verb.REPORT], "Tell us it is failing for you: `/aistatus report claude.ai`"),
    (USAGE[Verb.HISTORY], "Recent outages: `/aistatus history code --days 30`"),
    (USAGE[Verb.HELP], "This list; `/aistatus help subscribe` for one command"),
)

_VERB_WORDS: dict[str, Verb] = {
    **{v.value: v for v in Verb},
    "-h": Verb.HELP,
    "--help": Verb.HELP,
    "?": Verb.HELP,
}
# Flags each verb takes: name -> takes a value.
_FLAGS: dict[Verb, dict[str, bool]] = {
    Verb.SUBSCRIBE: {"min": True, "maintenance": False},
    Verb.HISTORY: {"days": True},
}
# Common names people use, beyond ids and display names (only used when the target exists).
_ALIASES: dict[str, str] = {
    "claude": "claude.ai",
    "claude-ai": "claude.ai",
    "claudeai": "claude.ai",
    "claude_ai": "claude.ai",
    "web": "claude.ai",
    "claude-web": "claude.ai",
    "cc": "code",
    "claude-code": "code",
    "claudecode": "code",
    "anthropic-api": "api",
    "claude-api": "api",
    "workbench": "console",
    "platform": "console",
    "claude-console": "console",
    "app": "mobile",
    "apps": "mobile",
    "ios": "mobile",
    "android": "mobile",
    "bedrock": "bedrock-claude",
    "vertex": "vertex-claude",
    "ollama": "local-ollama",
    "local": "local-ollama",
    "gpt": "chatgpt",
    "chat-gpt": "chatgpt",
    "openai": "openai-api",
    "github-copilot": "copilot",
}
_DASHES = re.compile(r"^[-\u2010-\u2015\u2212]+(?=[^\W\d_])")  # "--min", "—min" (Slack autocorrect)
_STRIP = "\"'`\u201c\u201d\u2018\u2019\u00ab\u00bb.,;:!?()[]{}<>"  # quotes, punctuation
_SHOWN = 30  # characters of a user's word echoed back
_CLOSE = 0.6  # difflib cutoff for "did you mean"


def parse(text: str, catalog: Catalog) -> Command:
    """Parse the text after `/aistatus`. Empty text is `status`; a surface alone is
    `status <surface>`.

    Raises: CommandError (one of UnknownVerb, UnknownSurface, BadDuration, BadFlag,
    MissingArgument, ExtraArgument) with a one-line `user_message` and the verb's `usage`.
    """
    words = text.replace(",", " ").split()
    if not words:
        return Command(Verb.STATUS)
    first = words[0].casefold()
    verb = _VERB_WORDS.get(first) or _VERB_WORDS.get(_flagged(first))
    if verb is None:
        return _no_verb(words, catalog)
    args = words[1:]
    usage = USAGE[verb]
    positional, flags = _split_flags(verb, args, usage)

    if verb is Verb.STATUS:
        surfaces, every = _surfaces(positional, catalog, usage)
        return Command(verb, surfaces=surfaces) if not every else Command(verb)
    if verb in (Verb.SUBSCRIBE, Verb.UNSUBSCRIBE):
        if not positional:
            raise MissingArgument(
                f"Say which surfaces ({verb} api code, or {verb} all).", usage=usage
            )
        surfaces, every = _surfaces(positional, catalog, usage)
        min_severity = _severity(flags["min"], usage) if "min" in flags else None
        return Command(
            verb,
            surfaces=surfaces,
            all_surfaces=every,
            min_severity=min_severity,
            maintenance="maintenance" in flags,
        )
    if verb in (Verb.LIST, Verb.UNMUTE):
        _no_more(verb, positional, usage)
        return Command(verb)
    if verb is Verb.MUTE:
        if positional and positional[0].casefold() == "for":
            positional = positional[1:]  # "mute for 2h"
        if not positional:
            raise MissingArgument("Say how long to mute: try 30m, 2h or 1d.", usage=usage)
        try:
            duration = parse_duration(" ".join(positional))
        except ValueError as e:
            raise BadDuration(f"{e}.".replace("..", "."), usage=usage) from None
        return Command(verb, duration=duration)
    if verb is Verb.REPORT:
        if not positional:
            raise MissingArgument("Say which surface fails for you, e.g. claude.ai.", usage=usage)
        surfaces, every = _surfaces(positional, catalog, usage)
        if every or len(surfaces) != 1:
            raise ExtraArgument("Report one surface at a time.", usage=usage)
        return Command(verb, surfaces=surfaces)
    if verb is Verb.HISTORY:
        surfaces, _every = _surfaces(positional, catalog, usage)  # `all` = no filter
        if len(surfaces) > 1:
            raise ExtraArgument("History shows one surface, or all of them.", usage=usage)
        days = _days(flags["days"], usage) if "days" in flags else DEFAULT_DAYS
        return Command(verb, surfaces=surfaces, days=days)
    # Verb.HELP
    if not positional:
        return Command(verb)
    if len(positional) > 1:
        raise ExtraArgument("Ask help about one command at a time.", usage=usage)
    topic = _VERB_WORDS.get(positional[0].casefold())
    if topic is None:
        raise UnknownVerb(_unknown_verb_message(positional[0], catalog), usage=usage)
    return Command(verb, topic=topic)


def resolve_surface(name: str, catalog: Catalog) -> str:
    """The surface id for an id, display name or alias (any case).

    Raises: UnknownSurface naming the closest surface, if any.
    """
    sid = _index(catalog).get(_norm(name))
    if sid is None:
        raise UnknownSurface(_unknown_surface_message(name, catalog))
    return sid


def closest(name: str, catalog: Catalog) -> str | None:
    """The surface id whose id, name or alias is closest to `name`, or None if none is close."""
    index = _index(catalog)
    wanted = _norm(name)[:64]  # difflib is quadratic: a pasted essay is not a surface name
    if not wanted:
        return None
    own = [
        k for k, sid in index.items() if k in (sid.casefold(), _norm(catalog.surfaces[sid].name))
    ]
    for keys in (own, list(index)):  # ids and display names win a tie with an alias
        match = difflib.get_close_matches(wanted, keys, n=1, cutoff=_CLOSE)
        if match:
            return index[match[0]]
    return None


def complete(prefix: str, catalog: Catalog, limit: int = 25) -> list[tuple[str, str]]:
    """Autocomplete choices (id, display name) for a typed prefix, best first: ids and names
    that start with it, then aliases that do, then ones that contain it; catalog order within."""
    wanted = _norm(prefix)
    ranked: list[tuple[int, int, str, str]] = []
    aliases = _aliases_by_surface(catalog)
    for order, (sid, spec) in enumerate(catalog.surfaces.items()):
        own = (sid.casefold(), _norm(spec.name))
        others = aliases.get(sid, ())
        if not wanted or any(k.startswith(wanted) for k in own):
            rank = 0
        elif any(k.startswith(wanted) for k in others):
            rank = 1
        elif any(wanted in k for k in (*own, *others)):
            rank = 2
        else:
            continue
        ranked.append((rank, order, sid, spec.name))
    ranked.sort()
    return [(sid, name) for _, _, sid, name in ranked[: max(0, limit)]]


# -- internals -------------------------------------------------------------------------------------


def _no_verb(words: Sequence[str], catalog: Catalog) -> Command:
    """No verb: `<surface…>` means status of those; anything else is an unknown command."""
    try:
        surfaces, every = _surfaces(words, catalog, USAGE[Verb.STATUS])
    except CommandError:
        raise UnknownVerb(_unknown_verb_message(words[0], catalog), usage=GENERAL_USAGE) from None
    return Command(Verb.STATUS, surfaces=surfaces) if not every else Command(Verb.STATUS)


def _unknown_verb_message(word: str, catalog: Catalog) -> str:
    shown = _show(word)
    verbs = difflib.get_close_matches(word.casefold()[:64], [v.value for v in Verb], 1, _CLOSE)
    if verbs:
        return f"Unknown command '{shown}'. Did you mean '{verbs[0]}'?"
    surface = closest(word, catalog)
    if surface is not None:
        return f"Unknown command '{shown}'. Did you mean 'status {surface}'?"
    return f"Unknown command '{shown}'. Try 'help'."


def _unknown_surface_message(word: str, catalog: Catalog) -> str:
    shown = _show(word)
    near = closest(word, catalog)
    if near is not None:
        return f"Unknown surface '{shown}'. Did you mean '{near}'?"
    known = ", ".join(catalog.claude_surfaces()[:6])
    return f"Unknown surface '{shown}'. Try one of: {known}, or all."


def _split_flags(verb: Verb, args: Sequence[str], usage: str) -> tuple[list[str], dict[str, str]]:
    """Positional words and `--name value` / `--name=value` / `--switch` options."""
    allowed = _FLAGS.get(verb, {})
    positional: list[str] = []
    flags: dict[str, str] = {}
    i = 0
    while i < len(args):
        word = _flagged(args[i])
        i += 1
        if not word.startswith("--"):
            positional.append(args[i - 1])
            continue
        name, eq, value = word[2:].partition("=")
        name = name.casefold()
        if name not in allowed:
            known = " or ".join(f"--{f}" for f in allowed)
            hint = f" (it takes {known})" if known else " (it takes no options)"
            raise BadFlag(f"Unknown option '--{_show(name)}' for {verb}{hint}.", usage=usage)
        if not allowed[name]:
            if eq:
                raise BadFlag(f"'--{name}' takes no value.", usage=usage)
            flags[name] = ""
            continue
        if not eq:
            if i >= len(args) or _flagged(args[i]).startswith("--"):
                raise MissingArgument(f"'--{name}' needs a value.", usage=usage)
            value = args[i]
            i += 1
        if not value:
            raise MissingArgument(f"'--{name}' needs a value.", usage=usage)
        flags[name] = value
    return positional, flags


def _surfaces(words: Sequence[str], catalog: Catalog, usage: str) -> tuple[tuple[str, ...], bool]:
    """Surface ids named by `words` (multi-word display names like 'Claude Code' match first),
    deduplicated in order, and whether `all` was said.

    Raises: UnknownSurface; ExtraArgument when `all` is mixed with names.
    """
    index = _index(catalog)
    longest = max((len(k.split()) for k in index), default=1)
    found: list[str] = []
    every = False
    i = 0
    while i < len(words):
        if _norm(words[i]) == "all":
            every = True
            i += 1
            continue
        for n in range(min(longest, len(words) - i), 0, -1):
            sid = index.get(_norm(" ".join(words[i : i + n])))
            if sid is not None:
                found.append(sid)
                i += n
                break
        else:
            raise UnknownSurface(_unknown_surface_message(words[i], catalog), usage=usage)
    if every and found:
        raise ExtraArgument("Say all, or name surfaces, not both.", usage=usage)
    return tuple(dict.fromkeys(found)), every


def _severity(value: str, usage: str) -> Status:
    status = _SEVERITY_WORDS.get(value.casefold())
    if status is None:
        raise BadFlag(
            f"'--min {_show(value)}' is not a level: use degraded, partial or major.", usage=usage
        )
    return status


def _days(value: str, usage: str) -> int:
    low, high = HISTORY_DAYS
    if not re.fullmatch(r"[0-9]{1,4}", value) or not low <= int(value) <= high:
        raise BadFlag(
            f"'--days {_show(value)}' must be a whole number from {low} to {high}.", usage=usage
        )
    return int(value)


def _no_more(verb: Verb, words: Sequence[str], usage: str) -> None:
    if words:
        raise ExtraArgument(
            f"'{verb}' takes nothing after it (got '{_show(words[0])}').", usage=usage
        )


def _flagged(word: str) -> str:
    """'—min' / '-min' / '--min' all read as '--min' (Slack turns '--' into an em dash)."""
    if word in ("-h", "?"):
        return word
    return _DASHES.sub("--", word)


def _norm(word: str) -> str:
    return " ".join(word.casefold().strip(_STRIP).split())


def _show(word: str) -> str:
    flat = " ".join(word.split())
    return flat if len(flat) <= _SHOWN else flat[: _SHOWN - 1] + "…"


def _aliases_by_surface(catalog: Catalog) -> Mapping[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for key, sid in _index(catalog).items():
        spec = catalog.surfaces[sid]
        if key not in (sid.casefold(), _norm(spec.name)):
            out.setdefault(sid, []).append(key)
    return {sid: tuple(keys) for sid, keys in out.items()}


def _index(catalog: Catalog) -> dict[str, str]:
    """Every accepted spelling (normalised) -> surface id: ids, display names, then aliases."""
    index: dict[str, str] = {}
    for sid in catalog.surfaces:
        index.setdefault(_norm(sid), sid)
    for sid, spec in catalog.surfaces.items():
        index.setdefault(_norm(spec.name), sid)
    for sid, spec in catalog.surfaces.items():
        index.setdefault(_norm(sid.replace("-", " ")), sid)  # "bedrock claude"
        index.setdefault(_norm(spec.name).replace(" ", "-"), sid)  # "claude-code"
    for alias, sid in _ALIASES.items():
        if sid in catalog.surfaces:
            index.setdefault(alias, sid)
    index.pop("", None)
    index.pop("all", None)  # `all` is a keyword, never a surface
    return index
