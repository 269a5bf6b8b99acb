"""What an outgoing webhook is (`Webhook`, `WebhookFormat`) and which URLs may be one
(`url_problem`). Pure: addresses are resolved by the caller."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit

from bot.core.model import ChannelRef, Platform

OWNER = "cli"  # the workspace part of a webhook's ChannelRef: who manages it (the CLI)


class WebhookFormat(StrEnum):
    JSON = "json"  # our versioned, signed payload (README "Webhooks")
    SLACK = "slack"  # Slack incoming-webhook JSON: Slack workflows, Mattermost, Rocket.Chat
    TEAMS = "teams"  # an Adaptive Card message for Microsoft Teams Workflows webhooks


@dataclass(frozen=True, slots=True)
class Webhook:
    """One outgoing webhook. `url` and `secret` never appear in a repr (logs): a Slack or
    Teams webhook URL is itself a credential, and the secret signs every body.
    `allow_private`: added with --allow-private; otherwise every POST first checks that the
    host still resolves to public addresses only (a name re-pointed inside is refused)."""

    id: str
    url: str = field(repr=False)
    secret: str = field(repr=False)
    format: WebhookFormat = WebhookFormat.JSON
    allow_private: bool = False

    @property
    def channel(self) -> ChannelRef:
        """The webhook as a delivery channel: subscriptions, outbox lanes and dead letters."""
        return ChannelRef(Platform.WEBHOOK, OWNER, self.id)


def shown_url(url: str) -> str:
    """The URL as `aistatus webhooks list` prints it: scheme, host and port, the path elided
    (Slack and Teams URLs carry their secret in the path or query)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…" if parts.path.strip("/") or parts.query else url


def url_problem(url: str, addresses: Sequence[str], *, allow_private: bool) -> str | None:
    """Why `url` cannot be a webhook target, or None when it can. `addresses`: what its host
    resolves to (the caller's DNS lookup; a literal IP host needs none). Rules, in order:

    1. only http and https URLs with a host, and no user:password part;
    2. unless `allow_private`: no localhost name, and no address (the host itself when it is
       an IP literal, else every resolved one) that is loopback, private, link-local,
       unspecified, multicast or reserved: an alert must not become a request into our own
       network (SSRF).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "only http:// and https:// URLs with a host can be webhooks"
    if parts.username or parts.password:
        return "put credentials in the URL's path or query, not as user:password@"
    if allow_private:
        return None
    host = parts.hostname.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host} is this machine: pass --allow-private to post to it"
    for address in _literal(host) or addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if not ip.is_global or ip.is_multicast:
            return f"{host} is a private address ({ip}): pass --allow-private to post to it"
    return None


def _literal(host: str) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        return []
