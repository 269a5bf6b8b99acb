"""Slack installations (bot tokens per workspace) and OAuth `state` values in Redis, for
multi-workspace deployments: slack_sdk's AsyncInstallationStore / AsyncOAuthStateStore. IO.

One hash per workspace (keys.installation): field `installation` holds the latest Installation,
`bot` the bot part (what the app and the sender need). Values are JSON of slack_sdk's own
attribute dicts (so they round-trip through `Installation(**data)` / `Bot(**data)`), encrypted
with the TokenCipher (`bot.store.crypto`); a plaintext or old-key value is re-encrypted on read.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from redis.asyncio import Redis
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from bot.store import keys
from bot.store.crypto import TokenCipher

log = logging.getLogger(__name__)

_INSTALLATION = "installation"
_BOT = "bot"
STATE_TTL_S = 600  # an install link is good for 10 minutes


def _workspace(enterprise_id: str | None, team_id: str | None, is_enterprise: bool | None) -> str:
    """The id an installation is filed under: the workspace, or the org for org-wide installs."""
    if (is_enterprise or not team_id) and enterprise_id:
        return enterprise_id
    return team_id or ""


class RedisInstallationStore(AsyncInstallationStore):
    """Slack installations in Redis, one hash per workspace (or org for org-wide installs),
    encrypted: tokens are never in Redis (or its AOF) in clear."""

    def __init__(self, redis: Redis, cipher: TokenCipher) -> None:
        self._redis = redis
        self._cipher = cipher

    async def _load(self, workspace: str, what: str) -> dict[str, Any] | None:
        key = keys.installation(workspace)
        raw = await self._redis.hget(key, what)
        if raw is None:
            return None
        stored = raw.decode() if isinstance(raw, bytes) else raw
        try:
            text, rewrite = self._cipher.read(stored)
            data = json.loads(text)
        except ValueError:
            log.warning(
                "stored Slack %s of workspace %s cannot be read (not JSON, or no key in "
                "AISTATUS_ENCRYPTION_KEY decrypts it); ignoring it",
                what,
                workspace,
            )
            return None
        if not isinstance(data, dict):
            return None
        if rewrite is not None:  # plaintext from an older version, or an old key
            await self._redis.hset(key, what, rewrite)
            log.info("re-encrypted the stored Slack %s of workspace %s", what, workspace)
        return data

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_save(self, installation: Installation) -> None:
        """Store an installation (and its bot) as the workspace's current one."""
        key = keys.installation(
            _workspace(
                installation.enterprise_id,
                installation.team_id,
                installation.is_enterprise_install,
            )
        )
        fields = {_INSTALLATION: self._cipher.encrypt(json.dumps(vars(installation)))}
        if installation.bot_token:
            fields[_BOT] = self._cipher.encrypt(json.dumps(vars(installation.to_bot())))
        await self._redis.hset(key, mapping=fields)
        log.info("saved Slack installation of workspace %s", installation.team_id)

    async def async_save_bot(self, bot: Bot) -> None:
        """Store (or refresh, after token rotation) the bot of a workspace."""
        key = keys.installation(
            _workspace(bot.enterprise_id, bot.team_id, bot.is_enterprise_install)
        )
        await self._redis.hset(key, _BOT, self._cipher.encrypt(json.dumps(vars(bot))))

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        """The bot installed in a workspace, or None."""
        workspace = _workspace(enterprise_id, team_id, is_enterprise_install)
        data = await self._load(workspace, _BOT)
        try:
            return Bot(**data) if data else None
        except TypeError:
            log.warning(
                "stored Slack bot of workspace %s has a wrong shape; ignoring it", workspace
            )
            return None

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        """The latest installation of a workspace (any installer: the app is bot-only), or None."""
        workspace = _workspace(enterprise_id, team_id, is_enterprise_install)
        data = await self._load(workspace, _INSTALLATION)
        try:
            return Installation(**data) if data else None
        except TypeError:
            log.warning("stored Slack installation of %s has a wrong shape; ignoring it", workspace)
            return None

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        """Forget a workspace's bot (tokens_revoked / app_uninstalled)."""
        await self._redis.hdel(keys.installation(_workspace(enterprise_id, team_id, None)), _BOT)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        """Forget a workspace's installation."""
        key = keys.installation(_workspace(enterprise_id, team_id, None))
        await self._redis.hdel(key, _INSTALLATION)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        """Forget everything about a workspace."""
        await self._redis.delete(keys.installation(_workspace(enterprise_id, team_id, None)))

    async def bot_token(self, team_id: str) -> str | None:
        """The bot token for a workspace (the sender's per-team token lookup), or None."""
        bot = await self.async_find_bot(enterprise_id=None, team_id=team_id)
        return bot.bot_token if bot else None


class RedisOAuthStateStore(AsyncOAuthStateStore):
    """OAuth `state` values in Redis: issued with a TTL, consumed once, valid on any replica."""

    def __init__(self, redis: Redis, *, ttl_s: int = STATE_TTL_S) -> None:
        self._redis = redis
        self._ttl_s = ttl_s

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        """A fresh unguessable state, valid for `ttl_s` seconds."""
        state = secrets.token_urlsafe(24)
        await self._redis.set(keys.oauth_state(state), "1", ex=self._ttl_s, nx=True)
        return state

    async def async_consume(self, state: str) -> bool:
        """True exactly once for a state we issued and that has not expired."""
        if not state or len(state) > 200:
            return False
        return await self._redis.delete(keys.oauth_state(state)) == 1
