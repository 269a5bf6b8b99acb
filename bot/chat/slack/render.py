"""Alerts and command replies as Slack Block Kit payloads. Pure: values in, JSON-safe dicts out.

Colour: Block Kit has no colour of its own, so every alert is a top-level block (the header of a
parent, the "what changed" line of a thread reply) plus one legacy attachment `{"color", "blocks"}`
holding the details: Slack draws the severity colour bar beside the attachment. The first block
stays top-level so that `text` is used only as the notification / screen-reader fallback (Slack
shows `text` as the message body when a message has attachments but no blocks).

Escaping: untrusted text (incident titles and bodies, names) goes into mrkdwn with &, < and >
replaced by entities, as Slack asks, so a status page can never mention `<!channel>` or forge a
link. plain_text objects (header, buttons) are not parsed by Slack and are not escaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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
from bot.core.model import Alert, AlertKind, Backup, Reply, Section, Status
from bot.core.suggest import BACKUPS_HEADING, no_backups_text
from bot.core.text import Token, clock, localise, plain

# -- Slack's limits (docs.slack.dev/reference/block-kit) -------------------------------------------
HEADER_MAX = 150  # header block plain_text
SECTION_MAX = 3000  # section text
FIELD_MAX = 2000  # one section field
FIELDS_MAX = 10  # fields per section
CONTEXT_MAX = 2000  # one context element (kept under Slack's 3000)
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
URL_MAX = 3000
MESSAGE_BLOCKS_MAX = 50  # blocks per message (top-level and in attachments alike)
HOME_BLOCKS_MAX = 100  # blocks per Home tab view
TEXT_MAX = 3000  # our cap for fallback `text` (Slack truncates at 40 000)
BACKUPS_SHOWN = 8  # a short list: the first ones are the best ranked

# -- interactive ids the app listens to ------------------------------------------------------------
ACTION_OPEN = "aistatus_open"  # url button: Slack opens the link, the app only acks
ACTION_MUTE = "aistatus_mute"  # value "1h" -> `mute 1h`
ACTION_REPORT = "aistatus_report"  # value <surface> -> `report <surface>`
ACTIONS_BLOCK_ID = "aistatus_actions"
MUTE_VALUE = MUTE_FOR

# Slack's brand palette, by severity.
COLOURS: dict[Status, str] = {
    Status.MAJOR_OUTAGE: "#E01E5A",  # red
    Status.PARTIAL_OUTAGE: "#F2952F",  # orange
    Status.DEGRADED: "#ECB22E",  # yellow
    Status.MAINTENANCE: "#36C5F0",  # blue
    Status.OPERATIONAL: "#2EB67D",  # green
    Status.UNKNOWN: "#9E9EA6",  # grey
}

_RECOVERED_EMOJI = Status.OPERATIONAL.emoji


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """Exactly what the sender passes to chat.postMessage / chat.update."""

    text: str
    blocks: tuple[dict[str, Any], ...]
    attachments: tuple[dict[str, Any], ...] = ()

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for slack_sdk's chat_postMessage / chat_update."""
        return {
            "text": self.text,
            "blocks": list(self.blocks),
            "attachments": list(self.attachments),
        }


# -- text helpers ----------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Slack's three control characters as entities (and nothing else, as Slack asks)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")


def _fit(text: str, limit: int) -> str:
    """Cut `text` to `limit` characters with an ellipsis, never inside an entity."""
    if len(text) <= limit:
        return text
    cut = _PARTIAL_ENTITY.sub("", text[: limit - 1])
    return cut + "…"


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": _fit(text, limit) or " ", "emoji": True}


def _mrkdwn(text: str, limit: int = SECTION_MAX) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": _fit(text, limit) or " "}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(text, CONTEXT_MAX)]}


def _date(when: datetime, *, dated: bool = True, fallback: str | None = None) -> str:
    """A time each reader sees in their own zone (with its date unless `dated` is False), with
    a UTC fallback for old clients."""
    epoch = int(when.timestamp())
    shown = "{date_short_pretty} {time}" if dated else "{time}"
    return f"<!date^{epoch}^{shown}|{clock(when) if fallback is None else fallback}>"


def _token(token: Token) -> str:
    """A reply's token in Slack's form (the text around it, the token's own included, is
    escaped first): a time `<!date^…>`, a channel `<#C…>`, status-page text as it is."""
    if token.kind == "verbatim":
        return token.fallback
    if token.at is None:
        return f"<#{token.channel}>"
    return _date(token.at, dated=token.kind == "dated", fallback=token.fallback)


def _local(escaped: str) -> str:
    """Escaped mrkdwn with the reply's tokens as `<!date^…>` times and `<#C…>` mentions."""
    return localise(escaped, _token)


def _reply_line(line: str) -> str:
    """One reply line as mrkdwn: escaped, tokens localised; a line the reply marks as a quote
    (`> `, the update text `status` quotes) stays a block quote instead of a literal `&gt;`."""
    if line.startswith("> "):
        return "> " + _local(escape(line[2:]))
    return _local(escape(line))


def _quote(text: str) -> str:
    """Untrusted multi-line text as a mrkdwn block quote."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").strip().split("\n")
    return "\n".join(f">{' ' + escape(line) if line.strip() else ''}" for line in lines)


def _link(url: str | None, name: str) -> str:
    """`<url|name>` for http(s) URLs; the bare (escaped) name otherwise."""
    label = escape(name)
    if not url or not re.match(r"https?://\S+$", url) or len(url) > URL_MAX:
        return label
    safe = url.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")
    return f"<{safe}|{label}>"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _limit_blocks(blocks: list[dict[str, Any]], limit: int, more: str) -> list[dict[str, Any]]:
    if len(blocks) <= limit:
        return blocks
    return [*blocks[: limit - 1], _context(more)]


# -- alerts ----------------------------------------------------------------------------------------


def _title(alert: Alert) -> str:
    title = alert.title.strip() or ", ".join(alert.surface_names) or "Status change"
    if still_suspected(alert) and "suspect" not in title.lower():
        title = f"Suspected: {title}"
    return f"{shown_status(alert).emoji} {title}"


def _names(alert: Alert) -> str:
    return ", ".join(escape(n) for n in alert.surface_names) or ", ".join(alert.surfaces)


def _status_lines(alert: Alert) -> list[str]:
    lines: list[str] = []
    per_surface = len(alert.statuses) == len(alert.surface_names) > 1
    if per_surface:
        lines.append("*Affected:*")
        for name, status in zip(alert.surface_names, alert.statuses, strict=True):
            lines.append(f"• *{escape(name)}* — {status.emoji} {status.label}")
    else:
        lines.append(f"*Affected:* {_names(alert)}")
        if alert.kind in CALM_KINDS:
            lines.append(f"*Status:* {_RECOVERED_EMOJI} operational again")
        else:
            lines.append(f"*Status:* {alert.severity.emoji} {alert.severity.label}")
    if alert.incident_title and alert.incident_title.strip() != alert.title.strip():
        lines.append(f"*Incident:* {escape(alert.incident_title.strip())}")
    started = f"*Started:* {_date(alert.started_at)}"
    if alert.duration_text:
        started += f" · {escape(alert.duration_text)}"
    lines.append(started)
    return lines


def _update_block(alert: Alert) -> dict[str, Any] | None:
    if not alert.update_text or not alert.update_text.strip():
        return _section(RESOLVED_ON_PAGE) if alert.kind is AlertKind.RECOVERY else None
    when = f" · {_date(alert.update_at)}" if alert.update_at else ""
    head = f"*Latest official update*{when}\n"
    return _section(head + _fit(_quote(alert.update_text), SECTION_MAX - len(head)))


def _backup_line(backup: Backup) -> str:
    line = f"• {_link(backup.url, backup.name)}"
    if backup.note:
        line += f" — {escape(backup.note)}"
    return line


def _backups_block(alert: Alert) -> dict[str, Any] | None:
    if alert.kind in CALM_KINDS:
        return None
    if not alert.backups:
        return _section(f"*{BACKUPS_HEADING}*\n{escape(no_backups_text(alert.unchecked))}")
    shown = alert.backups[:BACKUPS_SHOWN]
    lines = [f"*{BACKUPS_HEADING}*", *(_backup_line(b) for b in shown)]
    if len(alert.backups) > len(shown):
        lines.append(f"…and {len(alert.backups) - len(shown)} more")
    return _section("\n".join(lines))


def _context_line(alert: Alert) -> str:
    if alert.kind is AlertKind.SUSPECTED_WITHDRAWN:
        origin = "The suspected outage ended without an official incident."
    elif still_suspected(alert):
        origin = f"⚠️ *Suspected:* {suspicion_note(alert)}."
    else:
        origin = "Source: official status page."
    return f"{origin} Updated {_date(alert.at)}."


def _actions_block(alert: Alert, *, interactive: bool) -> dict[str, Any] | None:
    buttons: list[dict[str, Any]] = []
    if alert.url and re.match(r"https?://\S+$", alert.url) and len(alert.url) <= URL_MAX:
        buttons.append(
            {
                "type": "button",
                "action_id": ACTION_OPEN,
                "text": _plain(OPEN_INCIDENT, BUTTON_TEXT_MAX),
                "url": alert.url,
            }
        )
    if interactive and alert.kind not in CALM_KINDS:
        buttons.append(
            {
                "type": "button",
                "action_id": ACTION_MUTE,
                "text": _plain(MUTE_LABEL, BUTTON_TEXT_MAX),
                "value": MUTE_VALUE,
            }
        )
        if alert.surfaces:
            buttons.append(
                {
                    "type": "button",
                    "action_id": ACTION_REPORT,
                    "text": _plain(AFFECTED_TOO, BUTTON_TEXT_MAX),
                    "value": alert.surfaces[0][:BUTTON_VALUE_MAX],
                }
            )
    if not buttons:
        return None
    return {"type": "actions", "block_id": ACTIONS_BLOCK_ID, "elements": buttons}


def _parent_body(alert: Alert, *, interactive: bool = True) -> list[dict[str, Any]]:
    blocks = [
        _section("\n".join(_status_lines(alert))),
        _update_block(alert),
        _backups_block(alert),
        _context(_context_line(alert)),
        _actions_block(alert, interactive=interactive),
    ]
    return [b for b in blocks if b is not None]


def _header(alert: Alert) -> dict[str, Any]:
    return {"type": "header", "text": _plain(_title(alert), HEADER_MAX)}


def to_slack_blocks(alert: Alert) -> list[dict[str, Any]]:
    """Every block of the parent message of an alert (header first), without the colour wrapper."""
    return _limit_blocks([_header(alert), *_parent_body(alert)], MESSAGE_BLOCKS_MAX, "…")


def to_slack_text(alert: Alert) -> str:
    """The alert as one line of escaped text: the notification and screen-reader fallback."""
    title = _title(alert)
    state = ["operational again" if alert.kind in CALM_KINDS else alert.severity.label]
    if alert.duration_text:
        state.append(alert.duration_text)
    names = ", ".join(alert.surface_names) or ", ".join(alert.surfaces)
    if all(n in title for n in alert.surface_names):
        # Built titles already name the surfaces and severity ("claude.ai: partial outage",
        # "Resolved: claude.ai after 2 h"): say only how long, and never it twice.
        lasted = "" if alert.kind in CALM_KINDS else f", {alert.duration_text}"
        text = escape(f"{title}{lasted}" if alert.duration_text else title)
    else:
        text = escape(f"{title} — {names}: {', '.join(state)}")
    if alert.kind not in CALM_KINDS:
        if alert.backups:
            names = ", ".join(b.name for b in alert.backups[:BACKUPS_SHOWN])
            text += f". {BACKUPS_HEADING}: {escape(names)}."
        else:
            text += f". {escape(no_backups_text(alert.unchecked))}"
    return _fit(text, TEXT_MAX)


def _wrap(alert: Alert, top: dict[str, Any], body: list[dict[str, Any]]) -> SlackMessage:
    body = _limit_blocks(body, MESSAGE_BLOCKS_MAX - 1, "…")
    attachments = ({"color": COLOURS[shown_status(alert)], "blocks": body},) if body else ()
    return SlackMessage(text=to_slack_text(alert), blocks=(top,), attachments=attachments)


def to_slack_parent(alert: Alert) -> SlackMessage:
    """The parent message: the outage's current state, edited in place as it develops."""
    return _wrap(alert, _header(alert), _parent_body(alert))


def to_slack_webhook(alert: Alert) -> dict[str, Any]:
    """The alert as a Slack incoming-webhook body (`text` + `blocks`, no attachments: Slack
    workflows, Mattermost and Rocket.Chat read it; the latter two show `text`). The parent's
    content without the Mute and Report buttons: no app answers an incoming webhook's clicks."""
    blocks = [_header(alert), *_parent_body(alert, interactive=False)]
    return {
        "text": to_slack_text(alert),
        "blocks": _limit_blocks(blocks, MESSAGE_BLOCKS_MAX, "…"),
    }


def _change_line(alert: Alert) -> str:
    when = _date(alert.at)
    if alert.kind is AlertKind.RECOVERY:
        done = alert.duration_text.strip()
        said = _sentence(done) if done.lower().startswith("resolved") else f"Resolved {done}"
        return f"{_RECOVERED_EMOJI} *{escape(said.strip())}* · {_names(alert)} · {when}"
    label = HEADLINES[alert.kind]
    if alert.kind in CALM_KINDS:
        return f"{_RECOVERED_EMOJI} *{label}* · {_names(alert)} · {when}"
    if alert.kind is AlertKind.UPDATE and not (alert.update_text or "").strip():
        status = f"{alert.severity.emoji} now {alert.severity.label}"
        return f"*{label}* · {_names(alert)}: {status} · {when}"
    return f"{alert.severity.emoji} *{label}* · {_names(alert)} · {when}"


def to_slack_thread_reply(alert: Alert) -> SlackMessage:
    """A reply in the outage's thread: what changed (the new update, severity, recovery)."""
    body = [
        _update_block(alert),
        _backups_block(alert),
        _context(_context_line(alert)),
        _actions_block(alert, interactive=False),
    ]
    return _wrap(alert, _section(_change_line(alert)), [b for b in body if b is not None])


# -- command replies and the App Home --------------------------------------------------------------


def _chunks(lines: Iterable[str], limit: int) -> list[str]:
    """Join lines into texts of at most `limit` characters, splitting between lines."""
    out: list[str] = []
    current = ""
    for line in lines:
        line = _fit(line, limit)
        if current and len(current) + 1 + len(line) > limit:
            out.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        out.append(current)
    return out


def _reply_blocks(sections: Sequence[Section], *, home: bool) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for i, section in enumerate(sections):
        if home and i:
            blocks.append({"type": "divider"})
        lines = [_reply_line(line) for line in section.lines]
        if section.title and home:
            blocks.append({"type": "header", "text": _plain(plain(section.title), HEADER_MAX)})
        elif section.title:
            lines.insert(0, f"*{_local(escape(section.title))}*")
        blocks.extend(_section(text) for text in _chunks(lines, SECTION_MAX))
        fields = [
            _mrkdwn(f"*{escape(plain(label))}*\n{_local(escape(value))}", FIELD_MAX)
            for label, value in section.fields
        ]
        for start in range(0, len(fields), FIELDS_MAX):
            blocks.append({"type": "section", "fields": fields[start : start + FIELDS_MAX]})
    return blocks


def to_slack_reply(reply: Reply) -> dict[str, Any]:
    """A command reply as keyword arguments for `respond` (response_type, text, blocks)."""
    text = _fit(escape(reply.text), TEXT_MAX)
    blocks = _reply_blocks(reply.sections, home=False)
    more = "…more than fits in one message."
    out: dict[str, Any] = {
        "response_type": "ephemeral" if reply.ephemeral else "in_channel",
        "text": text,
    }
    if blocks:
        out["blocks"] = _limit_blocks(blocks, MESSAGE_BLOCKS_MAX, more)
    return out


def to_home_view(reply: Reply) -> dict[str, Any]:
    """The App Home tab (a `home` view for views.publish) showing a board reply."""
    blocks = _reply_blocks(reply.sections, home=True)
    if not blocks:
        blocks = [_section(t) for t in _chunks([escape(reply.text)], SECTION_MAX)]
    more = "…more than fits here: use `/aistatus status` in a channel."
    return {"type": "home", "blocks": _limit_blocks(blocks, HOME_BLOCKS_MAX, more)}


def to_slack_announce(text: str, *, user_id: str, user_name: str) -> str:
    """A reply's public announcement with the user's plain name turned into a mention."""
    escaped = _local(escape(text))
    if user_name:
        name = re.compile(rf"(?<![\w@])@?{re.escape(escape(user_name))}(?!\w)")
        escaped = name.sub(f"<@{user_id}>", escaped, count=1)
    return _fit(escaped, TEXT_MAX)
