"""Outgoing webhooks through the real pipeline: a loopback status page, the watcher, Redis, the
delivery engine and `WebhookSender` (httpx) to loopback receivers that verify the signature,
answer 429 / 500 / 410, and see a recorded incident as start, update and recovery."""

from __future__ import annotations

import io
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from bot.chat.webhook.sender import WebhookSender
from bot.chat.webhook.target import Webhook, WebhookFormat
from bot.cli import deliveries
from bot.core.model import Platform
from bot.delivery.engine import Delivery, deliveries_report
from bot.errors import ConfigError
from bot.ops.demo import timeline
from bot.ops.redisproc import RedisProcess
from bot.ops.statusserver import StatusServer
from bot.settings import Settings
from bot.store.crypto import TokenCipher
from bot.store.keys import webhook as webhook_key
from bot.store.subscriptions import SubscriptionStore
from bot.store.surfaces import SurfaceStore
from bot.store.webhooks import WebhookStore, new_webhook
from bot.watch.watcher import Watcher
from tests.conftest import ManualClock
from tests.helpers import FAST, Recorder, catalog_for, fixture_json, play
from tests.peers.webhook_receiver import WebhookReceiver, verified

START = datetime(2026, 9, 22, 0, 50, tzinfo=UTC)
KEY = Fernet.generate_key().decode()
INCIDENT = [
    ("00:50", fixture_json("claude/summary_all_operational.json")),
    ("01:01", fixture_json("claude/summary_incident_investigating.json")),
]


@dataclass
class Rig:
    page: StatusServer
    watcher: Watcher
    delivery: Delivery
    clock: ManualClock
    hooks: WebhookStore
    subs: SubscriptionStore
    redis: Any

    async def add(
        self, url: str, fmt: WebhookFormat = WebhookFormat.JSON, *, allow_private: bool = True
    ) -> Webhook:
        hook = new_webhook(url, fmt, allow_private=allow_private)  # receivers are on loopback
        await self.hooks.add(hook, ["api"], all_claude=False, min_severity=None, now=self.clock())
        return hook

    async def play(self, steps: list[tuple[str, dict]]) -> None:
        await play(steps, page=self.page, watcher=self.watcher, delivery=self.delivery,
                   clock=self.clock)  # fmt: skip


@pytest.fixture
async def rig(redis) -> AsyncIterator[Rig]:
    clock = ManualClock(START)
    async with StatusServer() as page, httpx.AsyncClient() as client:
        catalog = catalog_for(page.url)
        store = SurfaceStore(redis)
        subs = SubscriptionStore(redis, claude_surfaces=catalog.claude_surfaces())
        hooks = WebhookStore(redis, subs, TokenCipher([KEY]))
        sender = WebhookSender(client, hooks, timeout=httpx.Timeout(2.0), clock=clock)
        delivery = Delivery(
            redis, {Platform.WEBHOOK: sender}, store, subs, catalog,
            config=FAST, clock=clock, rng=random.Random(1),
        )  # fmt: skip
        watcher = Watcher(catalog, store, client, Recorder(), clock)
        yield Rig(page, watcher, delivery, clock, hooks, subs, redis)


async def test_a_receiver_verifies_the_signature_and_a_tampered_body_fails(rig: Rig) -> None:
    async with WebhookReceiver() as receiver:
        hook = await rig.add(receiver.url)
        await rig.play(INCIDENT)
    [got] = receiver.accepted
    assert verified(hook.secret, got.headers, got.body)
    assert not verified(hook.secret, got.headers, got.body.replace(b"api", b"apx", 1))
    assert not verified("whsec_wrong", got.headers, got.body)
    assert got.headers["X-Aistatus-Timestamp"] == str(int(rig.clock().timestamp()))
    assert got.headers["Idempotency-Key"] == got.json["id"]
    assert got.json["version"] == 1 and got.json["event"] == "start"
    assert got.json["outage_id"] == "7g1qpkyz5gxh"
    assert [s["id"] for s in got.json["surfaces"]] == ["api"]


async def test_a_429_is_waited_out_for_its_retry_after_and_delivered_once(rig: Rig) -> None:
    async with WebhookReceiver(answers=[(429, {"Retry-After": "1"})]) as receiver:
        await rig.add(receiver.url)
        await rig.play(INCIDENT)
    first, second = receiver.received
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.95  # Retry-After honoured (FAST's own backoff is 10 ms)
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert len(receiver.accepted) == 1


async def test_500s_are_retried_and_the_alert_is_delivered_once(rig: Rig) -> None:
    async with WebhookReceiver(answers=[(500, {})] * 3) as receiver:
        await rig.add(receiver.url)
        await rig.play(INCIDENT)
    assert [r.status for r in receiver.received] == [500, 500, 500, 200]
    assert len({r.headers["Idempotency-Key"] for r in receiver.received}) == 1
    report = await deliveries_report(rig.redis)
    assert report.dead_total == 0 and report.queued == 0


async def test_a_410_disables_the_webhook_and_dead_letters_it_for_aistatus_deliveries(
    rig: Rig, redis_server: RedisProcess
) -> None:
    async with WebhookReceiver(answers=[(410, {})]) as receiver:
        hook = await rig.add(receiver.url)
        await rig.play(INCIDENT)
    assert [r.status for r in receiver.received] == [410]
    sub = await rig.subs.get(hook.channel)
    assert sub is not None and sub.disabled_reason == "webhook HTTP 410"
    out = io.StringIO()
    assert await deliveries(Settings(redis_url=redis_server.url), out) == 1
    [dead] = [line for line in out.getvalue().splitlines() if "dead " in line]
    assert f"webhook:cli:{hook.id}" in dead and "webhook HTTP 410" in dead


@pytest.mark.parametrize("fmt", list(WebhookFormat), ids=str)
async def test_each_format_posts_its_body(rig: Rig, fmt: WebhookFormat) -> None:
    async with WebhookReceiver() as receiver:
        hook = await rig.add(receiver.url, fmt)
        await rig.play(INCIDENT)
    [got] = receiver.accepted
    assert verified(hook.secret, got.headers, got.body)  # every format is signed
    body = got.json
    if fmt is WebhookFormat.SLACK:
        assert set(body) == {"text", "blocks"} and body["blocks"][0]["type"] == "header"
        assert "Claude API" in body["text"] or "api" in body["text"].lower()
        assert all(b["type"] != "actions" or len(b["elements"]) == 1 for b in body["blocks"])
    elif fmt is WebhookFormat.TEAMS:
        [attachment] = body["attachments"]
        assert body["type"] == "message"
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
        card = attachment["content"]
        assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
        assert card["actions"][0]["type"] == "Action.OpenUrl"
    else:
        assert body["version"] == 1 and body["incident"]["title"]


async def test_a_recorded_incident_reaches_a_webhook_as_start_update_recovery(rig: Rig) -> None:
    async with WebhookReceiver() as receiver:
        hook = await rig.add(receiver.url)
        for step in timeline():
            rig.clock.now = step.at
            rig.page.set_summary(step.claude)
            if step.incidents is not None:
                rig.page.set_incidents(step.incidents)
            assert (await rig.watcher.poll_page("claude")).claimed
            await rig.delivery.drain(20)
    bodies = [r.json for r in receiver.accepted]
    assert [b["event"] for b in bodies] == ["start", "update", "recovery"]
    assert {b["outage_id"] for b in bodies} == {"7g1qpkyz5gxh"}
    assert len({b["id"] for b in bodies}) == 3
    assert all(verified(hook.secret, r.headers, r.body) for r in receiver.accepted)
    assert bodies[2]["backups"] == bodies[2]["unchecked"] == []  # a recovery offers none
    assert bodies[2]["incident"]["update"]["text"]  # the resolution, quoted


async def test_the_url_and_secret_are_kept_encrypted_and_a_plaintext_one_is_re_encrypted(
    rig: Rig,
) -> None:
    url = "http://127.0.0.1:9/hooks/T000/B000/sekritpath"
    hook = await rig.add(url)
    key = webhook_key(hook.channel.key)
    stored = await rig.redis.hgetall(key)
    raw = b" ".join(stored.values())
    assert b"sekrit" not in raw and hook.secret.encode() not in raw and b"127.0.0.1" not in raw
    assert (await rig.hooks.get(hook.id)) == hook

    await rig.redis.hset(key, mapping={"url": url, "secret": hook.secret})  # an older version's
    assert (await rig.hooks.get(hook.id)) == hook
    again = await rig.redis.hgetall(key)
    assert again[b"url"].startswith(b"fernet:") and again[b"secret"].startswith(b"fernet:")
    with pytest.raises(ConfigError, match="AISTATUS_ENCRYPTION_KEY"):
        await WebhookStore(rig.redis, rig.subs, None).get(hook.id)
    other = TokenCipher([Fernet.generate_key().decode()])
    with pytest.raises(ConfigError, match="no key in AISTATUS_ENCRYPTION_KEY decrypts"):
        await WebhookStore(rig.redis, rig.subs, other).get(hook.id)


async def test_a_host_that_resolves_inside_by_the_time_of_sending_is_refused_and_disabled(
    rig: Rig,
) -> None:
    """Added as a public URL (say, a name later re-pointed at 127.0.0.1: DNS rebinding): each
    POST checks the host again, so nothing reaches the inside address."""
    async with WebhookReceiver() as receiver:
        hook = await rig.add(receiver.url.replace("127.0.0.1", "localhost"), allow_private=False)
        await rig.play(INCIDENT)
    assert receiver.received == []
    sub = await rig.subs.get(hook.channel)
    assert sub is not None and sub.disabled_reason is not None
    assert "localhost is this machine" in sub.disabled_reason
    report = await deliveries_report(rig.redis)
    assert report.dead_total == 1 and report.queued == 0
