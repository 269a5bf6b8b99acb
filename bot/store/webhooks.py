"""Redis store of outgoing webhooks: URL, signing secret and format beside the webhook's
subscription (which lives in `bot.store.subscriptions`, like any channel's). IO.

The secret is stored as it is (no crypto helper on main yet): Redis is the bot's trusted store,
as for Slack installations. It is never logged and shown once, by `aistatus webhooks add`.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from datetime import datetime

from redis.asyncio import Redis

from bot.alerting.subscription import Subscription
from bot.chat.webhook.target import OWNER, Webhook, WebhookFormat
from bot.core.model import ChannelRef, Platform, Status
from bot.store import keys
from bot.store.subscriptions import SubscriptionStore, _fields, _text


def new_webhook(url: str, fmt: WebhookFormat) -> Webhook:
    """A webhook with a fresh id and signing secret (both from `secrets`)."""
    return Webhook(f"wh{secrets.token_hex(5)}", url, f"whsec_{secrets.token_hex(24)}", fmt)


class WebhookStore:
    """Outgoing webhooks and their subscriptions (one `SubscriptionStore`, shared with chat)."""

    def __init__(self, redis: Redis, subscriptions: SubscriptionStore) -> None:
        self._redis = redis
        self._subs = subscriptions

    async def add(
        self,
        webhook: Webhook,
        surfaces: Collection[str],
        *,
        all_claude: bool,
        min_severity: Status | None,
        now: datetime,
    ) -> Subscription:
        """Store the webhook, then subscribe it (fan-out finds it only once it is whole)."""
        channel = webhook.channel
        await self._redis.hset(
            keys.webhook(channel.key),
            mapping={
                "url": webhook.url,
                "secret": webhook.secret,
                "format": str(webhook.format),
                "at": now.isoformat(),
            },
        )
        await self._redis.sadd(keys.webhooks(), webhook.id)
        return await self._subs.subscribe(
            channel, surfaces, all_claude=all_claude, min_severity=min_severity, user=OWNER, now=now
        )

    async def get(self, webhook_id: str) -> Webhook | None:
        """The webhook of that id, or None (removed, or never added)."""
        channel = ChannelRef(Platform.WEBHOOK, OWNER, webhook_id)
        fields = _fields(await self._redis.hgetall(keys.webhook(channel.key)))
        if "url" not in fields or "secret" not in fields:
            return None
        try:
            fmt = WebhookFormat(fields.get("format", "json"))
        except ValueError:
            fmt = WebhookFormat.JSON
        return Webhook(webhook_id, fields["url"], fields["secret"], fmt)

    async def list(self) -> list[tuple[Webhook, Subscription | None]]:
        """Every webhook with its subscription, ordered by id."""
        ids = sorted(_text(m) for m in await self._redis.smembers(keys.webhooks()))
        out: list[tuple[Webhook, Subscription | None]] = []
        for wid in ids:
            hook = await self.get(wid)
            if hook is not None:
                out.append((hook, await self._subs.get(hook.channel)))
        return out

    async def remove(self, webhook_id: str, *, now: datetime) -> bool:
        """Unsubscribe and forget the webhook. False when there was none of that id.
        Entries already queued for it are dead-lettered by the sender ("webhook removed")."""
        channel = ChannelRef(Platform.WEBHOOK, OWNER, webhook_id)
        existed = await self._redis.delete(keys.webhook(channel.key))
        await self._subs.unsubscribe(channel, (), all_claude=True, now=now, everything=True)
        await self._redis.srem(keys.webhooks(), webhook_id)
        return bool(existed)
