"""Secrets at rest and in logs: an OAuth install through a running bot at DEBUG leaves no token
in its log, in Redis or in the private redis-server's AOF (0600 files in a 0700 directory); the
cipher rotates keys and re-encrypts legacy plaintext; OAuth without a key is refused."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import stat
import sys
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from cryptography.fernet import Fernet
from redis.asyncio import Redis

from bot.app import Chat, start_slack
from bot.core.model import CommandContext, Reply
from bot.errors import ConfigError
from bot.ops.redact import Redact
from bot.ops.redisproc import free_port
from bot.ops.statusserver import StatusServer
from bot.settings import Settings
from bot.store import keys
from bot.store.crypto import TokenCipher
from bot.store.installations import RedisInstallationStore
from tests.helpers import (
    ENCRYPTION_KEY,
    SECRET,
    bot_env,
    command_form,
    installation,
    loopback_catalog,
    running_bot,
    sign,
)
from tests.peers.slack_api import SlackApi

FORM = "application/x-www-form-urlencoded"
INSTALLED = "xoxb-1111-2222-installedtokenvalue"
CLIENT_SECRET = "client-secret-c0ffee-value"
API_KEY = "sk-ant-api03-notreallyasecretbutlongenough"


async def _dump(redis: Redis) -> str:
    """Every key and value, as text."""
    out = []
    for key in await redis.keys("*"):
        kind = (await redis.type(key)).decode()
        if kind == "string":
            value: object = await redis.get(key)
        elif kind == "hash":
            value = await redis.hgetall(key)
        elif kind == "list":
            value = await redis.lrange(key, 0, -1)
        elif kind == "set":
            value = await redis.smembers(key)
        elif kind == "zset":
            value = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = await redis.xrange(key)
        else:
            value = kind
        out.append(f"{key!r} {value!r}")
    return "\n".join(out)


async def test_a_debug_oauth_install_leaves_no_token_in_logs_redis_or_the_aof(tmp_path: Path):
    slack_port, ops_port = free_port(), free_port()
    data = tmp_path / "data"
    async with SlackApi(tokens={}) as api, StatusServer() as pages, aiohttp.ClientSession() as s:
        api.oauth_codes["code-1"] = ("T0009", INSTALLED)
        env = bot_env(
            SLACK_CLIENT_ID="111.222",
            SLACK_CLIENT_SECRET=CLIENT_SECRET,
            SLACK_SIGNING_SECRET=SECRET,
            AISTATUS_ENCRYPTION_KEY=ENCRYPTION_KEY,
            ANTHROPIC_API_KEY=API_KEY,
            AISTATUS_SLACK_MODE="http",
            AISTATUS_SLACK_PORT=str(slack_port),
            AISTATUS_SLACK_REDIRECT_URI=f"http://127.0.0.1:{slack_port}/slack/oauth_redirect",
            SLACK_API_URL=api.base_url,
            AISTATUS_CATALOG=loopback_catalog(tmp_path / "catalog.json", pages.url),
            AISTATUS_PROBES="false",
            AISTATUS_HTTP_PORT=str(ops_port),
            AISTATUS_LOG_LEVEL="DEBUG",
            AISTATUS_DATA_DIR=str(data),
        )
        base = f"http://127.0.0.1:{slack_port}"
        async with running_bot(env, tmp_path) as (proc, err, output), asyncio.timeout(60):
            await err.wait_for("Slack: HTTP mode on", within=30)
            async with s.get(base + "/slack/install", allow_redirects=False) as resp:
                page = await resp.text()
                cookie = resp.headers["Set-Cookie"].split(";", 1)[0]  # Secure: sent by hand
            state = re.search(r"state=([\w-]+)", page)
            assert state, page
            query = urlencode({"code": "code-1", "state": state.group(1)})
            redirect = f"{base}/slack/oauth_redirect?{query}"
            async with s.get(redirect, headers={"Cookie": cookie}) as resp:
                assert resp.status == 200, await resp.text()
            body = urlencode(command_form(api, "help", team="T0009"))
            headers = {**sign(body, secret=SECRET), "Content-Type": FORM}
            async with s.post(base + "/slack/events", data=body, headers=headers) as resp:
                assert resp.status == 200
            await api.wait_for("respond:cmd", within=10)
            redis = Redis.from_url(f"unix://{data / 'redis' / 'redis.sock'}")
            dumped = await _dump(redis)
            await redis.aclose()
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
    logs = "".join(output)
    assert proc.returncode == 0, logs[-3000:]
    assert "saved Slack installation of workspace T0009" in logs
    assert "oauth.v2.access" in logs, "slack_sdk's DEBUG output is in the log (redacted)"
    for secret in (INSTALLED, CLIENT_SECRET, SECRET, ENCRYPTION_KEY, API_KEY, "installedtoken"):
        assert secret not in logs, secret
        assert secret not in dumped, secret
    assert "T0009" in dumped and "fernet:" in dumped  # the installation is there, encrypted
    aof = list((data / "redis" / "appendonlydir").iterdir())
    assert aof and all(INSTALLED.encode() not in f.read_bytes() for f in aof)
    for path in [data / "redis", *(data / "redis").rglob("*")]:
        if path.is_socket():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


async def test_oauth_without_an_encryption_key_is_refused_naming_it(redis):
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        slack_client_id="111.222",
        slack_client_secret="shh",
        slack_signing_secret=SECRET,
        slack_mode="http",
    )

    async def handler(text: str, ctx: CommandContext) -> Reply:
        return Reply(text="")

    with pytest.raises(ConfigError) as e:
        await start_slack(settings, redis, handler, handler, Chat())  # type: ignore[arg-type]
    assert e.value.key == "AISTATUS_ENCRYPTION_KEY" and "Fernet.generate_key()" in str(e.value)


def test_a_bad_key_is_a_config_error_that_says_how_to_make_one():
    with pytest.raises(ConfigError, match="generate_key"):
        TokenCipher.from_setting("not-a-key")


async def test_keys_rotate_and_legacy_plaintext_is_re_encrypted(redis):
    old = Fernet.generate_key().decode()
    new = Fernet.generate_key().decode()
    await RedisInstallationStore(redis, TokenCipher([old])).async_save(
        installation("T1", INSTALLED)
    )
    key = keys.installation("T2")
    plain = json.dumps(vars(installation("T2", "xoxb-legacy-plain").to_bot()))
    await redis.hset(key, "bot", plain)  # what an older version stored
    store = RedisInstallationStore(redis, TokenCipher.from_setting(f"{new},{old}"))
    assert await store.bot_token("T1") == INSTALLED
    assert await store.bot_token("T2") == "xoxb-legacy-plain"
    dumped = await _dump(redis)
    assert INSTALLED not in dumped and "xoxb-legacy-plain" not in dumped
    only_new = RedisInstallationStore(redis, TokenCipher([new]))
    assert await only_new.bot_token("T1") == INSTALLED  # rewritten under the new key
    assert await only_new.bot_token("T2") == "xoxb-legacy-plain"


def test_the_filter_redacts_messages_arguments_and_tracebacks():
    redact = Redact(["configured-secret-value"])
    try:
        raise RuntimeError("token=xoxb-123-456-abc in a traceback")
    except RuntimeError:
        record = logging.LogRecord(
            "slack_sdk", logging.DEBUG, __file__, 1, "body %s %s", ("xapp-1-A", "x"), sys.exc_info()
        )
    record.msg = "body %s configured-secret-value %s"
    assert redact.filter(record)
    text = logging.Formatter().format(record)
    assert "xapp-1-A" not in text and "xoxb-123" not in text and "configured-secret" not in text
    assert "[redacted]" in text and "RuntimeError" in text
