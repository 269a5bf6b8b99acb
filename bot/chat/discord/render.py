"""Discord message building: alerts, thread updates, command replies, autocomplete choices and the
text command an app command stands for. Pure: plain dicts in Discord's JSON shape, no discord
import, no clock reads (every time comes from the Alert). Status-page text is markdown-escaped."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from bot.alerting.alert import (
    AFFECTED_TOO,
    CALM_KINDS,
    HEADLINES,
    MUTE_FOR,
    MUTE_LABEL,
    OPEN_INCIDENT,
    RESOLVED_ON_PAGE,
    shown_status,
    still_suspected,
    suspicion_note,
)
from bot.chat.commands import complete
from bot.core.catalog import Catalog
from bot.core.model import Alert, AlertKind, Reply, Status
from bot.core.suggest import BACKUPS_HEADING, no_backups_text
from bot.core.text import Token, localise, plain

# -- Discord's limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits)
CONTENT_MAX = 2000
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
EMBED_TOTAL_MAX = 6000
BUTTON_LABEL_MAX = 80
URL_MAX = 512
CUSTOM_ID_MAX = 100
ROW_BUTTONS = 5  # buttons in one action row
ROWS_MAX = 5  # action rows in one message
THREAD_NAME_MAX = 100
CHOICE_MAX = 25
CHOICE_NAME_MAX = 100
CHOICE_VALUE_MAX = 100

EPHEMERAL = 1 << 6  # message flag: only the caller sees it
BUTTON_LINK = 5  # button style: opens a URL, sends no interaction
BUTTON_SECONDARY = 2
ACTION_ROW = 1
BUTTON = 2

REPORT_PREFIX = "aistatus:report:"
MUTE_CUSTOM_ID = f"aistatus:mute:{MUTE_FOR}"  # pressed: `mute 1h`, like the slash command
NO_MENTIONS: dict[str, Any] = {"parse": []}  # status-page text may say @everyone: never ping

COLOURS: dict[Status, int] = {
    Status.OPERATIONAL: 0x2ECC71,  # green
    Status.DEGRADED: 0xF1C40F,  # yellow
    Status.PARTIAL_OUTAGE: 0xE67E22,  # orange
    Status.MAJOR_OUTAGE: 0xE74C3C,  # red
    Status.MAINTENANCE: 0x3498DB,  # blue
    Status.UNKNOWN: 0x95A5A6,  # grey
}
REPLY_COLOUR = 0x5865F2  # Discord blurple, for command answers
ERROR_COLOUR = 0xE74C3C


def suspected_footer(alert: Alert) -> str:
    """`suspected — our probes fail; not on the official status page yet`."""
    return f"suspected — {suspicion_note(alert)}"


ELLIPSIS = "…"


# -- alerts ----------------------------------------------------------------------------------------


def to_discord_message(alert: Alert) -> dict[str, Any]:
    """The parent message of an outage: a one-line content (push notifications show it), one
    embed, and the buttons. Also the body of every edit, so ended alerts send `components: []`
    to remove the report button."""
    return {
        "content": clip(headline(alert), CONTENT_MAX),
        "embeds": [fit_embed(_alert_embed(alert))],
        "components": _components(alert),
        "allowed_mentions": NO_MENTIONS,
    }


def to_discord_thread_update(alert: Alert) -> dict[str, Any]:
    """A post in the outage's thread (or a reply to the parent): what changed, the official
    update, and the backups that are up now."""
    lines = [_what_changed(alert)]
    quoted = _quoted_update(alert)
    if quoted:
        lines.append(quoted)
    if still_suspected(alert):
        lines.append(f"_{suspected_footer(alert)}_")
    embed: dict[str, Any] = {
        "description": "\n\n".join(lines),
        "color": colour(alert),
        "timestamp": alert.at.isoformat(),
        "fields": [{"name": "Duration", "value": alert.duration_text or "—", "inline": True}],
    }
    if alert.kind not in CALM_KINDS:
        embed["fields"].append(_backups_field(alert))
    return {
        "content": clip(headline(alert), CONTENT_MAX),
        "embeds": [fit_embed(embed)],
        "allowed_mentions": NO_MENTIONS,
    }


def headline(alert: Alert) -> str:
    """`🔴 Claude API: major outage` — the alert's emoji and title on one line."""
    return f"{shown_status(alert).emoji} {alert.title}"


def colour(alert: Alert) -> int:
    """Embed colour by severity; ended alerts are green."""
    return COLOURS[shown_status(alert)]


def thread_name(alert: Alert) -> str:
    """Name of the thread started under the parent (Discord allows 100 characters)."""
    names = ", ".join(alert.surface_names) or ", ".join(alert.surfaces) or "outage"
    return clip(f"{names} — updates", THREAD_NAME_MAX)


def report_custom_id(surface: str) -> str | None:
    """The custom_id of the "I'm affected too" button, or None when it would be too long."""
    cid = f"{REPORT_PREFIX}{surface}"
    return cid if len(cid) <= CUSTOM_ID_MAX else None


def parse_report_custom_id(custom_id: str) -> str | None:
    """The surface of an "I'm affected too" button, or None for any other custom_id."""
    if not custom_id.startswith(REPORT_PREFIX):
        return None
    surface = custom_id.removeprefix(REPORT_PREFIX)
    return surface if _SURFACE_RE.fullmatch(surface) else None


def button_command(custom_id: str) -> str | None:
    """The `/aistatus` text a pressed alert button stands for (`report claude.ai`, `mute 1h`),
    or None for a custom_id that is not ours (anyone can send any custom_id)."""
    if custom_id == MUTE_CUSTOM_ID:
        return command_text("mute", MUTE_FOR)
    surface = parse_report_custom_id(custom_id)
    return None if surface is None else command_text("report", surface)


def discord_timestamp(at: datetime, style: str = "t") -> str:
    """`<t:EPOCH:t>`: Discord shows it in each reader's own time zone."""
    return f"<t:{int(at.timestamp())}:{style}>"


def _token(token: Token) -> str:
    """A reply's token in Discord's form: a time `<t:EPOCH:t>` (`:f` with the date), a channel
    `<#id>`, status-page text with its markdown escaped."""
    if token.kind == "verbatim":
        return escape_markdown(token.fallback)
    if token.at is None:
        return f"<#{token.channel}>"
    return discord_timestamp(token.at, "t" if token.kind == "time" else "f")


def _local(text: str) -> str:
    return localise(text, _token)


def _alert_embed(alert: Alert) -> dict[str, Any]:
    embed: dict[str, Any] = {
        "title": headline(alert),
        "color": colour(alert),
        "timestamp": alert.at.isoformat(),
    }
    if url := web_url(alert.url):
        embed["url"] = url
    parts: list[str] = []
    if alert.incident_title and alert.incident_title != alert.title:
        parts.append(f"**{escape_markdown(alert.incident_title)}**")
    quoted = _quoted_update(alert)
    if quoted:
        parts.append(quoted)
    if parts:
        embed["description"] = "\n\n".join(parts)
    names = ", ".join(_names(alert))
    status = _status_text(alert)
    fields = [
        {"name": "Affected", "value": names or "—", "inline": True},
        {"name": "Status", "value": status, "inline": True},
        {"name": "Duration", "value": alert.duration_text or "—", "inline": True},
    ]
    if alert.kind not in CALM_KINDS:
        fields.append(_backups_field(alert))
    embed["fields"] = fields
    if still_suspected(alert):
        embed["footer"] = {"text": suspected_footer(alert)}
    return embed


def _status_text(alert: Alert) -> str:
    """One status for the whole alert, or one line per surface when they differ."""
    if alert.kind in CALM_KINDS:
        text = shown_status(alert).label
    elif len(alert.statuses) == len(alert.surfaces) and len(set(alert.statuses)) > 1:
        text = "\n".join(
            f"{name}: {st.label}" for name, st in zip(_names(alert), alert.statuses, strict=True)
        )
    else:
        text = alert.severity.label
    if still_suspected(alert):
        text += " (suspected)"
    return text


def _what_changed(alert: Alert) -> str:
    status = shown_status(alert).label
    return f"**{HEADLINES[alert.kind]}** — {status}, {alert.duration_text}".rstrip(", ")


def _quoted_update(alert: Alert) -> str:
    """The official update as a block quote, stamped with its time."""
    if not alert.update_text:
        return RESOLVED_ON_PAGE if alert.kind is AlertKind.RECOVERY else ""
    text = alert.update_text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        return ""
    body = clip(text, DESCRIPTION_MAX - 200)  # room for the incident title and the stamp
    quoted = "\n".join(f"> {escape_markdown(ln)}" if ln else ">" for ln in body.split("\n"))
    stamp = discord_timestamp(alert.update_at or alert.at)
    return f"{quoted}\n{stamp}"


def _backups_field(alert: Alert) -> dict[str, Any]:
    if not alert.backups:
        value = escape_markdown(no_backups_text(alert.unchecked))
        return {"name": BACKUPS_HEADING, "value": value, "inline": False}
    lines: list[str] = []
    for b in alert.backups:
        name = _escape_link_text(b.name)
        url = web_url(b.url)
        link = f"[{name}]({url})" if url else name
        lines.append(f"{b.status.emoji} {link}" + (f" — {b.note}" if b.note else ""))
    return {
        "name": BACKUPS_HEADING,
        "value": _join_within(lines, FIELD_VALUE_MAX),
        "inline": False,
    }


def _components(alert: Alert) -> list[dict[str, Any]]:
    if alert.kind in CALM_KINDS:
        return []
    buttons: list[dict[str, Any]] = []
    if web_url(alert.url):
        buttons.append(
            {"type": BUTTON, "style": BUTTON_LINK, "label": OPEN_INCIDENT, "url": alert.url}
        )
    buttons.append(
        {
            "type": BUTTON,
            "style": BUTTON_SECONDARY,
            "label": MUTE_LABEL,
            "custom_id": MUTE_CUSTOM_ID,
        }
    )
    many = len(alert.surfaces) > 1
    for surface, name in zip(alert.surfaces, _names(alert), strict=True):
        cid = report_custom_id(surface)
        if cid is None or len(buttons) >= ROW_BUTTONS * ROWS_MAX:
            continue
        label = clip(f"{AFFECTED_TOO}: {name}", BUTTON_LABEL_MAX) if many else AFFECTED_TOO
        buttons.append(
            {"type": BUTTON, "style": BUTTON_SECONDARY, "label": label, "custom_id": cid}
        )
    return [
        {"type": ACTION_ROW, "components": buttons[i : i + ROW_BUTTONS]}
        for i in range(0, len(buttons), ROW_BUTTONS)
    ]


def _names(alert: Alert) -> list[str]:
    names = list(alert.surface_names)
    return [names[i] if i < len(names) else s for i, s in enumerate(alert.surfaces)]


# -- command replies -------------------------------------------------------------------------------


def to_discord_reply(reply: Reply) -> dict[str, Any]:
    """An interaction response body (`data` of callback type 4): one embed when the reply has
    sections (each thing said once: no `content` repeating its first line), else the plain
    `content`; flags 64 when only the caller should see it. Times show in the reader's zone."""
    out: dict[str, Any] = {"allowed_mentions": NO_MENTIONS}
    if reply.sections:
        embed: dict[str, Any] = {"color": ERROR_COLOUR if reply.error else REPLY_COLOUR}
        blocks: list[str] = []
        fields: list[dict[str, Any]] = []
        for section in reply.sections:
            block = "\n".join(section.lines)
            if section.title:
                block = f"**{section.title}**" + (f"\n{block}" if block else "")
            if block:
                blocks.append(_local(block))
            fields.extend(
                {"name": plain(label) or "—", "value": _local(value) or "—", "inline": True}
                for label, value in section.fields
            )
        if blocks:
            embed["description"] = "\n\n".join(blocks)
        if fields:
            embed["fields"] = fields
        out["embeds"] = [fit_embed(embed)]
    else:
        out["content"] = clip(reply.text or "—", CONTENT_MAX)
    if reply.ephemeral:
        out["flags"] = EPHEMERAL
    return out


def to_discord_announce(text: str, *, user_id: str, user_name: str) -> dict[str, Any]:
    """The public line after a subscription change; the actor's name becomes a `<@id>` mention
    (rendered as their name, never a ping), times show in each reader's zone."""
    mention = f"<@{user_id}>"
    text = _local(text)
    if user_name and f"@{user_name}" in text:
        text = text.replace(f"@{user_name}", mention, 1)
    elif user_name and text.startswith(user_name):
        text = mention + text[len(user_name) :]
    return {"content": clip(text, CONTENT_MAX), "allowed_mentions": NO_MENTIONS}


# -- the text command an app command stands for --------------------------------------------------

SEVERITIES = ("degraded", "partial", "major")
_SURFACE_RE = re.compile(r"[a-z0-9][a-z0-9._\-]{0,63}")
DURATION_SUGGESTIONS = ("30m", "1h", "2h", "4h", "8h", "1d")


def command_text(verb: str, *words: str | None, **flags: str | int | bool | None) -> str:
    """The `/aistatus` text an app command stands for, e.g.
    `command_text("subscribe", "api code", min="partial", maintenance=True)` ->
    `subscribe api code --min partial --maintenance`. None and False are left out."""
    parts = [verb]
    parts.extend(" ".join(w.replace(",", " ").split()) for w in words if w and w.strip())
    for name, value in flags.items():
        if value is None or value is False:
            continue
        parts.append(f"--{name}" if value is True else f"--{name} {value}")
    return " ".join(parts)


# -- autocomplete ----------------------------------------------------------------------------------

Complete = Callable[[str, Catalog], Sequence[tuple[str, str]]]
"""(prefix, catalog) -> [(surface id, display name)], best first: `bot.chat.commands.complete`."""


def surface_choices(
    current: str,
    catalog: Catalog,
    *,
    complete: Complete = complete,
    several: bool = False,
    allow_all: bool = False,
) -> list[dict[str, str]]:
    """Autocomplete choices (`{"name", "value"}`) for a surface option. With `several`, the
    option holds a space- or comma-separated list and the last word is completed."""
    words = current.replace(",", " ").split()
    if several and current and not current[-1].isspace() and current[-1] != ",":
        done, last = words[:-1], words[-1] if words else ""
    elif several:
        done, last = words, ""
    else:
        done, last = [], current.strip()
    candidates: list[tuple[str, str]] = []
    if allow_all and "all".startswith(last.lower()) and not done:
        candidates.append(("all", "every Claude surface"))
    candidates.extend((sid, name) for sid, name in complete(last, catalog) if sid not in done)
    choices: list[dict[str, str]] = []
    for sid, name in candidates[:CHOICE_MAX]:
        value = " ".join([*done, sid])
        if len(value) > CHOICE_VALUE_MAX:
            continue
        label = value if name.lower() == sid else f"{value} ({name})"
        choices.append({"name": clip(label, CHOICE_NAME_MAX), "value": value})
    return choices


# -- limits ----------------------------------------------------------------------------------------


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, ending in … when cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + ELLIPSIS


def fit_embed(embed: dict[str, Any]) -> dict[str, Any]:
    """The embed within Discord's limits: each part clipped, at most 25 fields, and the total
    of title, description, field names and values and footer at most 6000 characters (the
    description gives way first, then trailing fields)."""
    out = dict(embed)
    if "title" in out:
        out["title"] = clip(out["title"], TITLE_MAX)
    if "description" in out:
        out["description"] = clip(out["description"], DESCRIPTION_MAX)
    if "footer" in out:
        out["footer"] = {**out["footer"], "text": clip(out["footer"]["text"], FOOTER_MAX)}
    fields = [
        {
            **f,
            "name": clip(f["name"], FIELD_NAME_MAX),
            "value": clip(f["value"], FIELD_VALUE_MAX),
        }
        for f in out.get("fields", [])[:FIELDS_MAX]
    ]
    if "fields" in out:
        out["fields"] = fields
    over = embed_length(out) - EMBED_TOTAL_MAX
    if over > 0 and out.get("description"):
        keep = max(len(out["description"]) - over, 1)
        out["description"] = clip(out["description"], keep)
    while embed_length(out) > EMBED_TOTAL_MAX and out.get("fields"):
        out["fields"] = out["fields"][:-1]
    return out


def embed_length(embed: dict[str, Any]) -> int:
    """Characters Discord counts toward the 6000 total of one embed."""
    n = len(embed.get("title", "")) + len(embed.get("description", ""))
    n += len(embed.get("footer", {}).get("text", ""))
    n += len(embed.get("author", {}).get("name", ""))
    n += sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))
    return n


def _join_within(lines: Iterable[str], limit: int) -> str:
    out: list[str] = []
    used = 0
    for line in lines:
        line = clip(line, limit)
        extra = len(line) + (1 if out else 0)
        if used + extra > limit:
            break
        out.append(line)
        used += extra
    return "\n".join(out)


# discord.py's `escape_markdown` (as_needed=False, ignore_links=True), without importing discord:
# emphasis, code, spoiler and strike characters, a quote, heading or list at a line start, and
# masked links get a backslash; links stay as written (`<https://…>` included).
_MARKDOWN = re.compile(
    r"(?P<url><[^: >]+:/[^ >]+>|(?:https?|steam)://[^\s<]+[^<.,:;\"'\]\s])"
    r"|(?P<markdown>[_\\~|*`]|^>(?:>>)?\s|\[.+\]\(.+\)|^#{1,3}|^\s*-)",
    re.MULTILINE,
)


def escape_markdown(text: str) -> str:
    """Untrusted text shown as written in Discord markdown: `a_b *c*` -> `a\\_b \\*c\\*`."""
    return _MARKDOWN.sub(lambda m: m["url"] or "\\" + m["markdown"], text)


def web_url(url: str | None) -> str | None:
    """`url` when it is an http(s) URL Discord accepts (no spaces, not too long), else None:
    a `javascript:` or `data:` link from a compromised page never becomes a link or button."""
    if not url or len(url) > URL_MAX or not re.fullmatch(r"https?://[^\s<>]+", url):
        return None
    return url


def _escape_link_text(text: str) -> str:
    return text.replace("[", "(").replace("]", ")")
