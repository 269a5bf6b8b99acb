"""Slack HTTP mode's door and its uninstall handling against a running Slack side: malformed,
unsigned and replayed requests get a quick 4xx and one short log line without the body; the
anonymous install page has a budget; a signed app_uninstalled event deletes the installation and
disables the workspace's subscriptions; operator endpoints have their own host."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

import aiohttp
import pytest

from bot.app import Chat, start_slack
from bot.core.model import ChannelRef, CommandContext, Platform, Reply
from bot.ops.redisproc import free_port
from bot.settings import Settings
from bot.store import keys
from bot.store.installations import RedisInstallationStore
from bot.store.subscriptions import SubscriptionStore
from tests.helpers import CIPHER, ENCRYPTION_KEY, SECRET, command_form, installation, sign
from tests.peers.slack_api import SlackApi

FORM = "application/x-www-form-urlencoded"
TEAM, BOT_TOKEN = "T0009", "xoxb-workspace-nine"
BIG = "Z" * 200_000  # a body that must never reach the log


async def _handler(text: str, ctx: CommandContext) -> Reply:
    return Reply(text="All good")


@pytest.fixture
async def slack(redis, api_with_team):
    api = api_with_team
    port = free_port()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        slack_client_id="111.222",
        slack_client_secret="shh-client-secret",
        slack_signing_secret=SECRET,
        slack_mode="http",
        slack_port=port,
        slack_api_url=api.base_url,
        encryption_key=ENCRYPTION_KEY,
    )
    await RedisInstallationStore(redis, CIPHER).async_save(installation(TEAM, BOT_TOKEN))
    chat = Chat()
    await start_slack(settings, redis, _handler, _handler, chat)  # type: ignore[arg-type]
    try:
        async with aiohttp.ClientSession() as session:
            yield api, f"http://127.0.0.1:{port}", session
    finally:
        await chat.stop()


@pytest.fixture
async def api_with_team():
    async with SlackApi(tokens={BOT_TOKEN: TEAM}) as api:
        yield api


async def _post(session, url, body: bytes, headers: dict[str, str]) -> tuple[int, float]:
    started = time.monotonic()
    async with asyncio.timeout(3), session.post(url, data=body, headers=headers) as resp:
        await resp.read()
        return resp.status, time.monotonic() - started


def _signed(body: str, content_type: str = FORM) -> dict[str, str]:
    return {**sign(body, secret=SECRET), "Content-Type": content_type}


@pytest.mark.parametrize(
    ("name", "headers", "status"),
    [
        (
            "non-numeric timestamp",
            {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=1"},
            401,
        ),
        ("unsigned JSON that is not JSON", {"Content-Type": "application/json"}, 401),
        ("stale", sign("x=1", secret=SECRET, timestamp=int(time.time()) - 3600), 401),
        ("wrong secret", sign("x=1", secret="not-the-secret"), 401),
    ],
)
async def test_unsigned_and_malformed_requests_get_a_quick_4xx_and_one_short_line(
    slack, caplog: pytest.LogCaptureFixture, name, headers, status
):
    _api, base, session = slack
    caplog.set_level(logging.DEBUG)
    body = ("{not json " + BIG).encode() if "JSON" in name else f"x=1&{BIG}".encode()
    got, took = await _post(session, base + "/slack/events", body, headers)
    assert got == status and took < 1.0
    assert BIG[:100] not in caplog.text and "Traceback" not in caplog.text
    assert len([r for r in caplog.records if "rejected a Slack request" in r.getMessage()]) == 1


async def test_a_signed_command_without_team_or_channel_is_a_quick_400(slack, caplog):
    api, base, session = slack
    form = command_form(api, "status", team=TEAM)
    del form["channel_id"]
    body = urlencode(form)
    got, took = await _post(session, base + "/slack/events", body.encode(), _signed(body))
    assert got == 400 and took < 1.0
    assert "KeyError" not in caplog.text


async def test_a_signed_body_that_is_not_json_is_a_400(slack):
    _api, base, session = slack
    body = "{not json"
    got, _ = await _post(
        session, base + "/slack/events", body.encode(), _signed(body, "application/json")
    )
    assert got == 400


async def test_a_signed_command_still_works(slack):
    api, base, session = slack
    body = urlencode(command_form(api, "status", team=TEAM))
    got, _ = await _post(session, base + "/slack/events", body.encode(), _signed(body))
    assert got == 200
    await api.wait_for("respond:cmd", within=5)


async def test_the_anonymous_install_page_writes_a_bounded_number_of_states(slack, redis):
    _api, base, session = slack
    statuses = []
    for _ in range(100):
        async with session.get(base + "/slack/install", allow_redirects=False) as resp:
            statuses.append(resp.status)
    assert statuses.count(200) <= 61 and statuses[-1] == 429
    assert len(await redis.keys(keys.oauth_state("*"))) <= 61


async def test_a_signed_uninstall_deletes_the_installation_and_disables_subscriptions(
    slack, redis, caplog: pytest.LogCaptureFixture
):
    _api, base, session = slack
    caplog.set_level(logging.INFO, "bot.app")
    subs = SubscriptionStore(redis)
    where = ChannelRef(Platform.SLACK, TEAM, "C0001")
    await subs.subscribe(where, (), all_claude=True, user="U42", now=datetime.now(UTC))
    event = {
        "token": "legacy",
        "team_id": TEAM,
        "api_app_id": "A0001",
        "type": "event_callback",
        "event_id": "Ev9",
        "event_time": int(time.time()),
        "event": {"type": "app_uninstalled"},
    }
    body = json.dumps(event)
    got, _ = await _post(
        session, base + "/slack/events", body.encode(), _signed(body, "application/json")
    )
    assert got == 200
    async with asyncio.timeout(5):
        while await redis.exists(keys.installation(TEAM)):  # noqa: ASYNC110 (Bolt acks first)
            await asyncio.sleep(0.02)
    async with asyncio.timeout(5):
        while "uninstalled the app" not in caplog.text:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    sub = await subs.get(where)
    assert sub is not None and sub.disabled_reason == "the app was uninstalled"
    assert caplog.text.count("uninstalled the app") == 1


def test_operator_endpoints_keep_loopback_when_slack_is_exposed():
    s = Settings(_env_file=None, http_host="0.0.0.0", http_port=9000)  # type: ignore[call-arg]
    assert (s.ops_host, s.operator_port) == ("127.0.0.1", 9000)
    s = Settings(_env_file=None, ops_host="10.0.0.5", ops_port=9100)  # type: ignore[call-arg]
    assert (s.ops_host, s.operator_port, s.http_host) == ("10.0.0.5", 9100, "127.0.0.1")
