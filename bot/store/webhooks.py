"""Redis store of outgoing webhooks: URL, signing secret and format beside the webhook's
subscription (which lives in `bot.store.subscriptions`, like any channel's). IO.

The URL (Slack and Teams URLs are credentials) and the secret are kept encrypted with the
TokenCipher over AISTATUS_ENCRYPTION_KEY (`bot.store.crypto`); a plaintext value written by an
older version, or one under an older key, is re-encrypted when read. Neither is ever logged;
the secret is shown once, by `aistatus webhooks add`.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from datetime import datetime

from redis.asyncio import Redis

from bot.alerting.subscription import Subscription
from bot.chat.webhook.target import OWNER, Webhook, WebhookFormat
from bot.core.model import ChannelRef, Platform, Status
from bot.errors import ConfigError
from bot.store import keys
from bot.store.crypto import HOW_TO_GENERATE, KEY_SETTING, PREFIX, TokenCipher
from bot.store.subscriptions import SubscriptionStore, _fields, _text

_SECRET_FIELDS = ("url", "secret")
NO_KEY = (
    f"webhooks keep their URL and signing secret in Redis encrypted: set {KEY_SETTING} "
    f"(make one with {HOW_TO_GENERATE})"
)


def new_webhook(url: str, fmt: WebhookFormat, *, allow_private: bool = False) -> Webhook:
    """A webhook with a fresh id and signing secret (both from `secrets`)."""
    secret = f"whsec_{secrets.token_hex(24)}"
    return Webhook(f"wh{secrets.token_hex(5)}", url, secret, fmt, allow_private)


class WebhookStore:
    """Outgoing webhooks and their subscriptions (one `SubscriptionStore`, shared with chat).
    `cipher` None (AISTATUS_ENCRYPTION_KEY unset): webhooks can be listed by id and removed,
    but not added, and an encrypted one cannot be read (ConfigError naming the key)."""

    def __init__(
        self, redis: Redis, subscriptions: SubscriptionStore, cipher: TokenCipher | None
    ) -> None:
        self._redis = redis
        self._subs = subscriptions
        self._cipher = cipher

    def _need_cipher(self) -> TokenCipher:
        if self._cipher is None:
            raise ConfigError(NO_KEY, key=KEY_SETTING)
        return self._cipher

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
        cipher = self._need_cipher()
        channel = webhook.channel
        await self._redis.hset(
            keys.webhook(channel.key),
            mapping={
                "url": cipher.encrypt(webhook.url),
                "secret": cipher.encrypt(webhook.secret),
                "format": str(webhook.format),
                "private": "1" if webhook.allow_private else "0",
                "at": now.isoformat(),
            },
        )
        await self._redis.sadd(keys.webhooks(), webhook.id)
        return await self._subs.subscribe(
            channel, surfaces, all_claude=all_claude, min_severity=min_severity, user=OWNER, now=now
        )

    async def get(self, webhook_id: str) -> Webhook | None:
        """The webhook of that id, or None (removed, or never added). Raises: ConfigError when
        its URL and secret cannot be decrypted (no key, or none of the configured keys)."""
        channel = ChannelRef(Platform.WEBHOOK, OWNER, webhook_id)
        key = keys.webhook(channel.key)
        fields = _fields(await self._redis.hgetall(key))
        if not all(f in fields for f in _SECRET_FIELDS):
            return None
        plain = await self._decrypted(key, {f: fields[f] for f in _SECRET_FIELDS})
        try:
            fmt = WebhookFormat(fields.get("format", "json"))
        except ValueError:
            fmt = WebhookFormat.JSON
        private = fields.get("private") == "1"
        return Webhook(webhook_id, plain["url"], plain["secret"], fmt, private)

    async def _decrypted(self, key: str, stored: dict[str, str]) -> dict[str, str]:
        """Each field in clear; one written in clear or under an older key is written back
        encrypted under the current key (when there is one)."""
        if self._cipher is None:
            if any(v.startswith(PREFIX) for v in stored.values()):
                raise ConfigError(NO_KEY, key=KEY_SETTING)
            return stored
        out: dict[str, str] = {}
        stale: dict[str, str] = {}
        for name, value in stored.items():
            try:
                out[name], rewrite = self._cipher.read(value)
            except ValueError:
                raise ConfigError(
                    f"no key in {KEY_SETTING} decrypts webhook {key}: add the key it was "
                    "written with to the list (the first encrypts, every one decrypts)",
                    key=KEY_SETTING,
                ) from None
            if rewrite is not None:
                stale[name] = rewrite
        if stale:
            await self._redis.hset(key, mapping=stale)
        return out

    async def list(self) -> list[tuple[Webhook, Subscription | None]]:
        """Every webhook with its subscription, ordered by id. Raises: ConfigError (`get`)."""
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
