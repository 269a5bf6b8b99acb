"""`aistatus webhooks add|list|remove` as a user runs them: a real subprocess against a real
redis-server; the URL checks refuse private targets unless --allow-private."""

from __future__ import annotations

import re
from pathlib import Path

from cryptography.fernet import Fernet

from bot.core.model import ChannelRef, Platform, Status
from bot.ops.redisproc import RedisProcess
from bot.store.crypto import KEY_SETTING, TokenCipher
from bot.store.subscriptions import SubscriptionStore
from bot.store.webhooks import WebhookStore
from tests.helpers import aistatus

URL = "http://127.0.0.1:9/hooks/T000/B000/sekritpath"
KEY = Fernet.generate_key().decode()


async def test_add_list_remove_a_webhook(redis, redis_server: RedisProcess, tmp_path: Path):
    env = {"REDIS_URL": redis_server.url, "AISTATUS_PROBES": "false", KEY_SETTING: KEY}
    add = ("webhooks", "add", URL, "--surfaces", "api", "code", "--min", "partial",
           "--format", "teams", "--allow-private")  # fmt: skip
    code, out, err = await aistatus(*add, env=env, cwd=tmp_path)
    assert code == 0, err
    hook_id = re.search(r"added webhook (wh[0-9a-f]+) \(teams\)", out).group(1)
    secret = re.search(r"signing secret \(shown once, keep it\): (whsec_\w+)", out).group(1)

    stored = await WebhookStore(redis, SubscriptionStore(redis), TokenCipher([KEY])).get(hook_id)
    assert stored is not None and (stored.url, stored.secret) == (URL, secret)
    sub = await SubscriptionStore(redis).get(ChannelRef(Platform.WEBHOOK, "cli", hook_id))
    assert sub is not None and sub.surfaces == {"api", "code"}
    assert sub.min_severity is Status.PARTIAL_OUTAGE

    code, out, _ = await aistatus("webhooks", "list", env=env, cwd=tmp_path)
    assert code == 0 and hook_id in out and "teams" in out and "api, code" in out
    assert "sekrit" not in out and secret not in out  # the path and the secret stay hidden

    code, out, _ = await aistatus("webhooks", "remove", hook_id, env=env, cwd=tmp_path)
    assert code == 0 and f"removed webhook {hook_id}" in out
    assert await SubscriptionStore(redis).get(sub.channel) is None
    code, out, _ = await aistatus("webhooks", "list", env=env, cwd=tmp_path)
    assert "no webhooks" in out
    code, _, _ = await aistatus("webhooks", "remove", hook_id, env=env, cwd=tmp_path)
    assert code == 1


async def test_add_refuses_private_urls_and_unknown_surfaces(redis_server, tmp_path: Path):
    env = {"REDIS_URL": redis_server.url, "AISTATUS_PROBES": "false", KEY_SETTING: KEY}
    code, _, err = await aistatus("webhooks", "add", URL, "--surfaces", "api", env=env,
                                  cwd=tmp_path)  # fmt: skip
    assert code == 2 and "--allow-private" in err
    code, _, err = await aistatus("webhooks", "add", "ftp://example.com/x", "--surfaces", "api",
                                  env=env, cwd=tmp_path)  # fmt: skip
    assert code == 2 and "http" in err
    code, _, err = await aistatus("webhooks", "add", URL, "--surfaces", "nope",
                                  "--allow-private", env=env, cwd=tmp_path)  # fmt: skip
    assert code == 2 and "unknown nope" in err


async def test_add_without_an_encryption_key_names_the_setting_and_stores_nothing(
    redis, redis_server: RedisProcess, tmp_path: Path
):
    env = {"REDIS_URL": redis_server.url, "AISTATUS_PROBES": "false"}
    code, _, err = await aistatus("webhooks", "add", URL, "--surfaces", "api",
                                  "--allow-private", env=env, cwd=tmp_path)  # fmt: skip
    assert code == 2 and KEY_SETTING in err and "Fernet.generate_key" in err
    assert await redis.keys("*") == []
