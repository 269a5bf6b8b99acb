"""What an outgoing webhook POSTs: the versioned `json` payload, the Slack-compatible body, the
Teams Adaptive Card, and the HMAC-SHA256 signature over `v1:<timestamp>:<body>`. Pure: the
timestamp is an argument."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.alerting.alert import (
    CALM_KINDS,
    OPEN_INCIDENT,
    RESOLVED_ON_PAGE,
    alert_id,
    alert_text,
    shown_status,
    still_suspected,
    suspicion_note,
)
from bot.chat.slack.render import to_slack_webhook
from bot.chat.webhook.target import Webhook, WebhookFormat
from bot.core.model import Alert, Backup, ChannelRef, Status
from bot.core.suggest import BACKUPS_HEADING, no_backups_text
from bot.core.text import clock

VERSION = 1  # of the `json` payload: a new field is not a new version; a changed meaning is
SIGNATURE_HEADER = "X-Aistatus-Signature"  # "v1=<hex HMAC-SHA256 of v1:<timestamp>:<body>>"
TIMESTAMP_HEADER = "X-Aistatus-Timestamp"  # unix seconds: receivers refuse old ones (replays)
EVENT_HEADER = "X-Aistatus-Event"  # the payload's `event`, for routing without parsing
IDEMPOTENCY_HEADER = "Idempotency-Key"  # the delivery key: the same on every retry
BACKUPS_SHOWN = 8

# Adaptive Card text colours by severity (the card's own palette; it has no hex colours).
TEAMS_COLOURS: dict[Status, str] = {
    Status.MAJOR_OUTAGE: "Attention",
    Status.PARTIAL_OUTAGE: "Warning",
    Status.DEGRADED: "Warning",
    Status.MAINTENANCE: "Accent",
    Status.OPERATIONAL: "Good",
    Status.UNKNOWN: "Default",
}


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """Exactly what the sender POSTs: the body bytes (what is signed) and the headers."""

    body: bytes
    headers: dict[str, str]


def delivery_key(channel: ChannelRef, alert: Alert) -> str:
    """The key of one (alert, webhook) delivery: the same on every retry and replica, so a
    receiver can drop a repeat (the `Idempotency-Key` header and the payload's `id`)."""
    return f"{channel.channel}.{alert_id(alert)}"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value: `v1=` and the hex HMAC-SHA256 of `v1:<timestamp>:<body>`
    keyed with the webhook's secret (Slack's request-signing scheme, our prefix)."""
    base = b"v1:" + str(timestamp).encode("ascii") + b":" + body
    return "v1=" + hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


def to_webhook_request(webhook: Webhook, alert: Alert, *, timestamp: int) -> WebhookRequest:
    """The signed POST of `alert` to `webhook`, in its format (every format is signed)."""
    key = delivery_key(webhook.channel, alert)
    if webhook.format is WebhookFormat.SLACK:
        payload = to_slack_webhook(alert)
    elif webhook.format is WebhookFormat.TEAMS:
        payload = to_teams_message(alert)
    else:
        payload = to_webhook_json(alert, delivery=key)
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        IDEMPOTENCY_HEADER: key,
        EVENT_HEADER: str(alert.kind),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(webhook.secret, timestamp, body),
    }
    return WebhookRequest(body, headers)


# -- json ------------------------------------------------------------------------------------------


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def _backup(b: Backup) -> dict[str, Any]:
    return {
        "surface": b.surface,
        "name": b.name,
        "url": b.url,
        "status": str(b.status),
        "same_model": b.same_model,
        "note": b.note,
    }


def to_webhook_json(alert: Alert, *, delivery: str) -> dict[str, Any]:
    """The `json` format, version 1 (README "Webhooks"). `outage_id` is the same for every
    event of one outage (thread or edit on it); `id` is this delivery's key."""
    statuses = alert.statuses if len(alert.statuses) == len(alert.surfaces) else ()
    surfaces = [
        {"id": sid, "name": name, **({"status": str(statuses[i])} if statuses else {})}
        for i, (sid, name) in enumerate(zip(alert.surfaces, alert.surface_names, strict=False))
    ]
    incident = None
    if alert.incident_title or alert.url or alert.update_text:
        update = None
        if alert.update_text:
            update = {"text": alert.update_text, "at": _iso(alert.update_at)}
        incident = {"title": alert.incident_title, "url": alert.url, "update": update}
    calm = alert.kind in CALM_KINDS
    return {
        "version": VERSION,
        "id": delivery,
        "event": str(alert.kind),
        "outage_id": alert.key,
        "title": alert.title,
        "severity": str(alert.severity),
        "status_now": str(shown_status(alert)),
        "suspected": alert.suspected,
        "source": str(alert.source) if alert.source is not None else None,
        "surfaces": surfaces,
        "started_at": _iso(alert.started_at),
        "at": _iso(alert.at),
        "duration": alert.duration_text,
        "incident": incident,
        "backups": [] if calm else [_backup(b) for b in alert.backups],
        "unchecked": [] if calm else [b.surface for b in alert.unchecked],
        "text": alert_text(alert),
    }


# -- teams -----------------------------------------------------------------------------------------


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _facts(alert: Alert) -> dict[str, Any]:
    names = ", ".join(alert.surface_names) or ", ".join(alert.surfaces)
    if len(alert.statuses) == len(alert.surface_names) > 1:
        pairs = zip(alert.surface_names, alert.statuses, strict=True)
        facts = [{"title": name, "value": f"{st.emoji} {st.label}"} for name, st in pairs]
    else:
        shown = shown_status(alert)
        state = "operational again" if alert.kind in CALM_KINDS else shown.label
        facts = [
            {"title": "Affected", "value": names},
            {"title": "Status", "value": f"{shown.emoji} {state}"},
        ]
    if alert.incident_title and alert.incident_title.strip() != alert.title.strip():
        facts.append({"title": "Incident", "value": alert.incident_title.strip()})
    started = clock(alert.started_at, alert.at)
    if alert.duration_text:
        started += f" · {alert.duration_text}"
    facts.append({"title": "Started", "value": started})
    return {"type": "FactSet", "facts": facts}


def _teams_backups(alert: Alert) -> list[dict[str, Any]]:
    if alert.kind in CALM_KINDS:
        return []
    if not alert.backups:
        return [_text(f"**{BACKUPS_HEADING}**"), _text(no_backups_text(alert.unchecked))]
    lines = []
    for b in alert.backups[:BACKUPS_SHOWN]:
        line = f"- [{b.name}]({b.url})" if b.url else f"- {b.name}"
        lines.append(f"{line} — {b.note}" if b.note else line)
    if len(alert.backups) > BACKUPS_SHOWN:
        lines.append(f"- …and {len(alert.backups) - BACKUPS_SHOWN} more")
    return [_text(f"**{BACKUPS_HEADING}**", spacing="Medium"), _text("\n".join(lines))]


def to_teams_card(alert: Alert) -> dict[str, Any]:
    """The Adaptive Card (1.4) of an alert: title by severity colour, facts, the official
    update, the backups up now, where it came from, and a button to the incident."""
    title = alert.title.strip() or ", ".join(alert.surface_names) or "Status change"
    if still_suspected(alert) and "suspect" not in title.lower():
        title = f"Suspected: {title}"
    shown = shown_status(alert)
    body: list[dict[str, Any]] = [
        _text(f"{shown.emoji} {title}", weight="Bolder", size="Medium", color=TEAMS_COLOURS[shown]),
        _facts(alert),
    ]
    if alert.update_text and alert.update_text.strip():
        when = f" · {clock(alert.update_at, alert.at)}" if alert.update_at else ""
        body += [_text(f"**Latest official update**{when}"), _text(alert.update_text.strip())]
    elif alert.kind in CALM_KINDS and alert.incident_title:
        body.append(_text(RESOLVED_ON_PAGE))
    body += _teams_backups(alert)
    origin = (
        f"Suspected: {suspicion_note(alert)}."
        if still_suspected(alert)
        else "Source: official status page."
    )
    body.append(_text(f"{origin} Updated {clock(alert.at)}.", isSubtle=True, size="Small"))
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "msteams": {"width": "Full"},
    }
    if alert.url and alert.url.startswith(("https://", "http://")):
        card["actions"] = [{"type": "Action.OpenUrl", "title": OPEN_INCIDENT, "url": alert.url}]
    return card


def to_teams_message(alert: Alert) -> dict[str, Any]:
    """The `teams` format: a message with the card as its one attachment (what Teams
    Workflows' "post to a channel when a webhook request is received" expects)."""
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": to_teams_card(alert),
            }
        ],
    }
