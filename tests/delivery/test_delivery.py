"""The delivery engine end to end: real redis-server, real transitions committed by the surface
store, real subscriptions, and a loopback chat server over real sockets. Every assertion counts
what the chat server accepted: each (alert, channel) exactly once, in order per channel.

The `chat` fixture is parametrised by sender: add a param that returns (recording server, sender)
to run every scenario against another ChatSender (the Slack and Discord adapters).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from bot.alerting.subscription import Skip
from bot.core.catalog import load_catalog
from bot.core.model import (
    AlertKind,
    ChannelRef,
    Incident,
    Platform,
    Reason,
    Signal,
    Status,
    SurfaceState,
    Transition,
    TransitionKind,
)
from bot.delivery.engine import Delivery, DeliveryConfig, DeliveryMetrics, deliveries_report
from bot.delivery.plan import Plan, Step, plan_delivery
from bot.delivery.retry import RetryPolicy
from bot.store import keys
from bot.store.messages import MessageStore
from bot.store.subscriptions import SubscriptionStore
from bot.store.surfaces import SurfaceStore, Write
from tests.helpers import FAST, ROOT
from tests.peers.chaos import Chaos
from tests.peers.chatserver import ChatServer, HttpChatSender, channels

CATALOG = load_catalog()
# Generous timeouts: on a loaded test machine a timed-out call the server did apply would be sent
# twice (the one window no chat API lets us close), and that is not what these tests measure.
OUTAGE = "7g1qpkyz5gxh"  # the real incident id of the 2026-09-22 fixture


# -- the rig --------------------------------------------------------------------------------------


@dataclass
class Rig:
    """Redis, the chat server and its sender, the stores, and a transition recorder."""

    redis: aioredis.Redis
    server: ChatServer
    sender: Any
    clock: Any
    subs: SubscriptionStore = field(init=False)
    surfaces: SurfaceStore = field(init=False)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    versions: dict[str, int] = field(default_factory=dict)
    updates: int = 0
    metrics: DeliveryMetrics = field(init=False)
    _status: dict[str, Status] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.subs = SubscriptionStore(self.redis, claude_surfaces=CATALOG.claude_surfaces())
        self.surfaces = SurfaceStore(self.redis)
        self.metrics = DeliveryMetrics.create(self.registry)

    def delivery(self, config: DeliveryConfig = FAST, *, consumer: str | None = None, rng=None):
        return Delivery(
            self.redis,
            {Platform.SLACK: self.sender},
            self.surfaces,
            self.subs,
            CATALOG,
            config=config,
            clock=self.clock,
            consumer=consumer,
            metrics=self.metrics,
            rng=rng or random.Random(1),
        )

    async def subscribe(self, chans: Sequence[ChannelRef], surfaces=("api",)) -> None:
        for c in chans:
            await self.subs.subscribe(c, surfaces, all_claude=False, user="U1", now=self.clock())

    async def record(
        self,
        kind: TransitionKind,
        status: Status,
        *,
        surface: str = "api",
        reason: Reason | None = None,
        outage: str = OUTAGE,
    ) -> Transition:
        """Commit one transition through the surface store, as a poll would."""
        version = self.versions.get(surface, 0)
        prev = self._status.get(surface, Status.OPERATIONAL)
        self.updates += 1
        incident = Incident(
            id=outage,
            name="Elevated errors for multiple models",
            status="investigating",
            impact="major",
            update_id=f"u{self.updates}",
            update_body=f"Update number {self.updates}.",
            update_at=self.clock(),
        )
        now = self.clock()
        t = Transition(
            id=f"{surface}@{version + 1}",
            surface=surface,
            provider="claude",
            kind=kind,
            reason=reason
            or {
                TransitionKind.START: Reason.STARTED,
                TransitionKind.UPDATE: Reason.OFFICIAL_UPDATE,
                TransitionKind.RECOVERY: Reason.RECOVERED,
            }[kind],
            status=status,
            prev_status=prev,
            source=Signal.OFFICIAL,
            suspected=False,
            prev_suspected=False,
            outage_id=outage,
            incident=incident,
            started_at=now - timedelta(minutes=5),
            at=now,
        )
        state = SurfaceState(
            surface,
            status=status,
            source=Signal.OFFICIAL,
            incident=incident if status.is_outage else None,
            outage_id=outage if status.is_outage else None,
            started_at=t.started_at if status.is_outage else None,
            since=now,
            version=version + 1,
        )
        recorded = await self.surfaces.commit("claude", [Write(surface, version, state, t)])
        assert recorded == [t]
        self.versions[surface] = version + 1
        self._status[surface] = status
        self.clock.advance(60)  # the next commit is a separate one
        return t

    async def outage(self, *updates: int) -> None:
        """Record a start, then `len(updates)` official updates (the outage stays open)."""
        await self.record(TransitionKind.START, Status.PARTIAL_OUTAGE)
        for _ in updates:
            await self.record(TransitionKind.UPDATE, Status.PARTIAL_OUTAGE)

    async def recover(self, surface: str = "api") -> None:
        await self.record(TransitionKind.RECOVERY, Status.OPERATIONAL, surface=surface)

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture(params=["http"])
async def chat(request) -> AsyncIterator[tuple[ChatServer, Any]]:
    """(recording chat server, a ChatSender talking to it over loopback)."""
    server = await ChatServer().start()
    sender = HttpChatSender(server.url, timeout=20.0)
    yield server, sender
    await sender.aclose()
    await server.stop()


@pytest.fixture
async def rig(redis, chat, clock) -> Rig:
    server, sender = chat
    return Rig(redis, server, sender, clock)


def assert_threads(server: ChatServer, chans: Sequence[ChannelRef], kinds: Sequence[str]) -> None:
    """Every channel got exactly one message per alert, in this order of kinds."""
    per = server.per_channel()
    wrong = {
        c.key: [m.kind for m in per.get(c.key, [])]
        for c in chans
        if [m.kind for m in per.get(c.key, [])] != list(kinds)
    }
    assert not wrong, f"{len(wrong)} channels out of order or missing: {list(wrong.items())[:3]}"
    assert server.duplicates() == []


async def until_idle(*deliveries: Delivery, within: float) -> None:
    async with asyncio.timeout(within):
        while not all([await d.idle() for d in deliveries]):  # noqa: ASYNC110
            await asyncio.sleep(0.02)


# -- the pure plan ------------------------------------------------------------------------------


POST = Plan((Step.POST,), False, "new parent")
EDIT_REPLY = (Step.EDIT, Step.REPLY)


@pytest.mark.parametrize(
    ("kind", "has_parent", "current", "plan"),
    [
        (AlertKind.START, False, False, POST),
        (AlertKind.UPDATE, False, False, POST),
        (AlertKind.UPDATE, True, False, Plan(EDIT_REPLY, False, "edit parent, reply")),
        (AlertKind.UPDATE, True, True, Plan((Step.REPLY,), False, "reply, parent current")),
        (AlertKind.RECOVERY, True, False, Plan(EDIT_REPLY, True, "edit parent, reply")),
        (AlertKind.MAINTENANCE_END, True, False, Plan(EDIT_REPLY, False, "edit parent, reply")),
        (AlertKind.START, True, False, Plan(EDIT_REPLY, True, "edit parent, reply")),
    ],
    ids=[
        "start-posts-parent",
        "update-without-parent-becomes-parent",
        "update-edits-and-replies",
        "update-with-current-parent-only-replies",
        "recovery-replies-broadcast",
        "maintenance-end-not-broadcast",
        "reopened-outage-is-broadcast",
    ],
)
def test_the_plan_for_one_entry(kind, has_parent, current, plan):
    assert plan_delivery(kind, has_parent=has_parent, parent_current=current) == plan


# -- the happy path ---------------------------------------------------------------------------


async def test_an_outage_is_one_parent_per_channel_edited_with_updates_threaded_under_it(rig):
    chans = channels(3)
    await rig.subscribe(chans)
    await rig.subscribe([ChannelRef(Platform.SLACK, "T1", "CODE")], surfaces=("code",))
    delivery = rig.delivery()

    await rig.outage()
    await delivery.drain(10)
    await rig.record(TransitionKind.UPDATE, Status.MAJOR_OUTAGE, reason=Reason.WORSENED)
    await delivery.drain(10)
    await rig.recover()
    await delivery.drain(10)

    assert_threads(rig.server, chans, ["start", "update", "recovery"])
    for c in chans:
        calls = [call for call in rig.server.calls if call.channel == c.key]
        assert [call.op for call in calls] == ["post", "edit", "reply", "edit", "reply"]
        parent = calls[0].ts
        assert {call.ts for call in calls if call.op == "edit"} == {parent}
        assert [call.broadcast for call in calls if call.op == "reply"] == [False, True]
        ref = await MessageStore(rig.redis).get(c, OUTAGE)
        assert ref is not None and ref.ts == parent and ref.thread == parent
    assert "slack:T1:CODE" not in rig.server.per_channel()  # subscribed to another surface
    assert rig.sample("aistatus_deliveries_total", platform="slack", step="post") == 3
    assert rig.sample("aistatus_deliveries_total", platform="slack", step="edit") == 6
    assert rig.sample("aistatus_delivery_latency_seconds_count", platform="slack") == 9
    report = await deliveries_report(rig.redis)
    assert (report.queued, report.pending, report.retrying, report.dead) == (0, 0, (), ())


async def test_an_entry_redelivered_after_it_was_recorded_done_is_acknowledged_unsent(rig):
    """A crash between recording an entry done and its XACK leaves it pending; the consumer that
    reclaims it finds the channel's handled sequence number past it. That number is the whole
    proof: no per-(alert, channel) marker exists."""
    chans = channels(3)
    await rig.subscribe(chans)
    await rig.outage(1)
    delivery = rig.delivery()
    stop = asyncio.Event()
    fanning = asyncio.create_task(delivery.fanout.run(stop))  # only the fan-out, no workers
    async with asyncio.timeout(10):
        while await rig.redis.xlen(keys.outbox()) < 6:  # noqa: ASYNC110 (a Redis condition)
            await asyncio.sleep(0.02)
    stop.set()
    await fanning
    written = [fields for _, fields in await rig.redis.xrange(keys.outbox())]
    await delivery.drain(10)
    sent = len(rig.server.calls)

    last = written[-1]  # the channel's newest entry: its number is the handled one
    assert last[b"n"] == await rig.redis.get(keys.handled_seq(last[b"c"].decode()))
    await rig.redis.xadd(keys.outbox(), last)  # the same channel, number and alert
    await rig.redis.xreadgroup("workers", "crashed", {keys.outbox(): ">"})  # pending, unacked
    await rig.delivery(consumer="survivor").drain(10)  # reclaims it after FAST.min_idle

    assert len(rig.server.calls) == sent
    assert_threads(rig.server, chans, ["start", "update"])
    report = await deliveries_report(rig.redis)
    assert (report.queued, report.pending, report.dead) == (0, 0, ())
    assert await rig.redis.keys("*:done:*") == []


async def test_fan_out_run_again_after_a_crash_before_its_ack_writes_no_duplicate(rig):
    chans = channels(50)
    await rig.subscribe(chans)
    await rig.outage(1)
    delivery = rig.delivery()
    await delivery.drain(10)
    # A crash between writing the outbox entries and acknowledging the transitions: the group
    # forgets everything it read, so the next fan-out reads every transition again.
    await rig.redis.xgroup_setid(keys.transitions("claude"), "fanout", "0")
    await delivery.drain(10)

    assert await rig.redis.get(keys.outbox_seq(chans[0].key)) == b"2"
    assert_threads(rig.server, chans, ["start", "update"])


# -- crashes, restarts, replicas ----------------------------------------------------------------


async def test_1000_channels_get_each_alert_once_in_order_across_a_crashed_worker(rig):
    chans = channels(1000)
    await rig.subscribe(chans)
    await rig.outage(1)
    first = rig.delivery(consumer="worker-a")
    stop = asyncio.Event()
    task = asyncio.create_task(first.run(stop))
    async with asyncio.timeout(30):
        await rig.server.wait_for_messages(400)
    task.cancel()  # a crash: whatever it read and did not finish stays pending, unacknowledged
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert len(rig.server.messages()) < 2000

    await rig.delivery(consumer="worker-b").drain(60)

    assert_threads(rig.server, chans, ["start", "update"])
    assert len(rig.server.ops("post")) == 1000


WORKER = """
import asyncio, sys
from datetime import UTC, datetime
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from bot.alerting.subscription import Skip
from bot.core.catalog import load_catalog
from bot.delivery.engine import Delivery, DeliveryMetrics
from bot.core.model import Platform
from bot.store.subscriptions import SubscriptionStore
from bot.store.surfaces import SurfaceStore
from tests.peers.chatserver import HttpChatSender
from tests.helpers import FAST

async def main(redis_url, chat_url):
    r = aioredis.Redis.from_url(redis_url)
    catalog = load_catalog()
    delivery = Delivery(
        r, {Platform.SLACK: HttpChatSender(chat_url, timeout=20.0)}, SurfaceStore(r),
        SubscriptionStore(r, claude_surfaces=catalog.claude_surfaces()), catalog, config=FAST,
        clock=lambda: datetime.now(UTC), consumer="doomed",
        metrics=DeliveryMetrics.create(CollectorRegistry()),
    )
    await delivery.run(asyncio.Event())

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_a_worker_process_killed_mid_delivery_loses_nothing(rig, redis_server):
    chans = channels(300)
    await rig.subscribe(chans)
    await rig.outage(1)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WORKER, redis_server.url, rig.server.url,
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        async with asyncio.timeout(30):
            await rig.server.wait_for_messages(150)
    finally:
        proc.kill()  # SIGKILL: no cleanup, no finishing of calls in flight
        await proc.wait()
    killed_at = len(rig.server.messages())
    assert killed_at < 600

    await rig.delivery(consumer="survivor").drain(60)

    per = rig.server.per_channel()
    for c in chans:
        alerts = [m.alert for m in per[c.key]]
        kinds = [m.kind for m in per[c.key]]
        firsts = [k for i, k in enumerate(kinds) if alerts[i] not in alerts[:i]]
        assert firsts == ["start", "update"], c.key
    # The one window no chat API lets us close: a call the server applied whose answer died
    # with the process is sent again. At most the calls that were in flight.
    assert len(rig.server.duplicates()) <= FAST.workers, rig.server.duplicates()


async def test_three_deliveries_running_together_share_the_work_exactly_once(rig):
    chans = channels(100)
    await rig.subscribe(chans)
    workers = [rig.delivery(consumer=f"replica-{i}") for i in range(3)]
    stops = [asyncio.Event() for _ in workers]
    tasks = [asyncio.create_task(w.run(s)) for w, s in zip(workers, stops, strict=True)]
    try:
        await rig.outage(1, 2)
        await until_idle(*workers, within=30)
        await rig.recover()
        await until_idle(*workers, within=30)
    finally:
        for s in stops:
            s.set()
        await asyncio.gather(*tasks)

    assert_threads(rig.server, chans, ["start", "update", "update", "recovery"])


async def test_a_redis_restart_mid_delivery_loses_and_repeats_nothing(
    chat, clock, own_redis, caplog
):
    server, sender = chat
    caplog.set_level(logging.INFO, logger="bot.delivery")
    client = aioredis.Redis.from_url(own_redis.url)
    rig = Rig(client, server, sender, clock)
    chans = channels(100)
    await rig.subscribe(chans)
    await rig.outage()
    delivery = rig.delivery()
    stop = asyncio.Event()
    task = asyncio.create_task(delivery.run(stop))
    try:
        async with asyncio.timeout(20):
            await server.wait_for_messages(20)
        assert len(server.messages()) < len(chans)  # mid-way
        own_redis.stop()  # fan-out and workers now meet connection errors
        await asyncio.sleep(0.3)  # let them run into the outage
        own_redis.start()
        await rig.record(TransitionKind.UPDATE, Status.MAJOR_OUTAGE, reason=Reason.WORSENED)
        await until_idle(delivery, within=30)
    finally:
        stop.set()
        await task
        await client.aclose()

    assert_threads(server, chans, ["start", "update"])
    # The outage is a line when it starts (and when its error changes) per loop, not one per
    # retry or per channel; and one line each when it ends.
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.delivery"]
    down = [m for m in lines if "redis unavailable" in m]
    assert 1 <= len(down) <= 12, down  # 3 loops (fan-out, reading, lanes) x a few errors
    assert 1 <= len([m for m in lines if "working again" in m]) <= 3


# -- faults from the chat API -------------------------------------------------------------------


async def test_429s_500s_and_timeouts_still_deliver_every_alert_once_in_order(redis, clock):
    server = await ChatServer(
        chaos=Chaos(rate_limited=0.2, server_error=0.1, hang=0.05, retry_after=0.05, seed=7)
    ).start()
    sender = HttpChatSender(server.url, timeout=1.0)
    rig = Rig(redis, server, sender, clock)
    try:
        chans = channels(100)
        await rig.subscribe(chans)
        delivery = rig.delivery()
        await rig.outage(1)
        await delivery.drain(60)
        await rig.recover()
        await delivery.drain(60)
    finally:
        await sender.aclose()
        await server.stop()

    assert_threads(server, chans, ["start", "update", "recovery"])
    assert server.faults["429"] > 20 and server.faults["500"] > 10 and server.faults["hang"] > 5
    assert (
        rig.sample("aistatus_delivery_retries_total", platform="slack", outcome="retry_after") > 0
    )
    assert rig.sample("aistatus_delivery_retries_total", platform="slack", outcome="backoff") > 0
    assert (await deliveries_report(redis)).dead == ()


async def test_a_429_holds_back_that_channel_exactly_retry_after_and_no_other(rig):
    slow, other = channels(2)
    await rig.subscribe([slow, other])
    rig.server.retry_after = 0.4
    rig.server.script[slow.key] = ["429"]
    await rig.outage()
    await rig.delivery().drain(10)

    times = {c.key: [t for op, ch, t in rig.server.requests if ch == c.key] for c in (slow, other)}
    assert len(times[slow.key]) == 2
    assert times[slow.key][1] - times[slow.key][0] >= 0.4 - 0.01  # waited what was asked
    assert times[other.key][0] < times[slow.key][1]  # the other channel did not wait
    assert_threads(rig.server, [slow, other], ["start"])
    assert (
        rig.sample("aistatus_delivery_retries_total", platform="slack", outcome="retry_after") == 1
    )


async def test_updates_queued_while_a_channel_waits_edit_the_parent_once_but_each_gets_a_reply(
    rig,
):
    (chan,) = channels(1)
    await rig.subscribe([chan])
    await rig.outage()
    delivery = rig.delivery()
    await delivery.drain(10)
    rig.server.retry_after = 0.3
    rig.server.script[chan.key] = ["429"]  # the channel waits while three updates queue up
    updates = [await rig.record(TransitionKind.UPDATE, Status.PARTIAL_OUTAGE) for _ in range(3)]
    await delivery.drain(10)

    edits = rig.server.ops("edit")
    replies = rig.server.ops("reply")
    newest = [c.alert for c in replies][-1]
    assert [e.alert for e in edits] == [newest]  # one edit, straight to the newest state
    assert len(replies) == 3 and len({r.alert for r in replies}) == 3
    assert [r.alert for r in replies] == [r.alert for r in sorted(replies, key=lambda r: int(r.ts))]
    assert len(updates) == 3


async def test_a_deleted_channel_is_disabled_and_dead_lettered_and_the_others_carry_on(rig):
    chans = channels(5)
    gone = chans[2]
    await rig.subscribe(chans)
    await rig.outage()
    delivery = rig.delivery()
    await delivery.drain(10)
    rig.server.gone.add(gone.key)
    since = len(rig.server.requests)
    await rig.record(TransitionKind.UPDATE, Status.MAJOR_OUTAGE, reason=Reason.WORSENED)
    await rig.recover()
    await delivery.drain(10)

    others = [c for c in chans if c != gone]
    assert_threads(rig.server, others, ["start", "update", "recovery"])
    assert [m.kind for m in rig.server.per_channel()[gone.key]] == ["start"]
    to_gone = [r for r in rig.server.requests[since:] if r[1] == gone.key]
    assert len(to_gone) == 1  # one refusal, then nothing more is tried there
    # Nobody to tell in a channel that is gone: whoever subscribed it hears, once, directly.
    [told] = rig.server.ops("notify")
    assert told.channel == "user:T1:U1"
    assert gone.channel in rig.server.notes[0] and "channel_not_found" in rig.server.notes[0]
    sub = await rig.subs.get(gone)
    assert sub is not None and sub.disabled_reason == "channel_not_found"
    report = await deliveries_report(rig.redis)
    assert report.dead and {d.channel for d in report.dead} == {gone.key}
    assert report.dead[-1].error == "channel_not_found"
    assert rig.sample("aistatus_delivery_dead_total", platform="slack", outcome="permanent") >= 1


async def test_a_deleted_parent_message_is_replaced_by_a_new_parent(rig):
    chans = channels(2)
    await rig.subscribe(chans)
    await rig.outage()
    delivery = rig.delivery()
    await delivery.drain(10)
    first_parent = next(c.ts for c in rig.server.ops("post") if c.channel == chans[0].key)
    rig.server.deleted.add(first_parent)
    await rig.record(TransitionKind.UPDATE, Status.MAJOR_OUTAGE, reason=Reason.WORSENED)
    await delivery.drain(10)
    await rig.recover()
    await delivery.drain(10)

    assert_threads(rig.server, chans, ["start", "update", "recovery"])
    ops = [c.op for c in rig.server.calls if c.channel == chans[0].key]
    assert ops == ["post", "post", "edit", "reply"]  # the update became the new parent
    ref = await MessageStore(rig.redis).get(chans[0], OUTAGE)
    assert ref is not None and ref.ts != first_parent


async def test_after_max_attempts_an_entry_is_dead_lettered_and_the_next_alert_opens_a_parent(
    rig, redis_server
):
    (chan,) = channels(1)
    await rig.subscribe([chan])
    rig.server.script[chan.key] = ["500", "500", "500"]
    delivery = rig.delivery(replace(FAST, retry=RetryPolicy(max_attempts=3, base=0.01, cap=0.02)))
    start = await rig.record(TransitionKind.START, Status.PARTIAL_OUTAGE)
    await delivery.drain(10)
    report = await deliveries_report(rig.redis)
    assert [(d.channel, d.error, d.attempts) for d in report.dead] == [
        (chan.key, "http 500 (after 3 attempts)", 3)
    ]
    assert start.id  # recorded, yet never shown

    await rig.record(TransitionKind.UPDATE, Status.MAJOR_OUTAGE, reason=Reason.WORSENED)
    await delivery.drain(10)
    assert [(c.op, c.kind) for c in rig.server.calls] == [("post", "update")]

    # What an operator sees: `aistatus deliveries` lists it and exits 1.
    env = {**os.environ, "REDIS_URL": redis_server.url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--env-file", os.devnull, "deliveries",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=ROOT,
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, _ = await proc.communicate()
    text = out.decode()
    assert proc.returncode == 1
    assert "dead: 1" in text and chan.key in text and "http 500 (after 3 attempts)" in text


async def test_the_report_lists_an_entry_waiting_for_its_next_attempt(rig):
    (chan,) = channels(1)
    await rig.subscribe([chan])
    rig.server.script[chan.key] = ["500"]
    slow = replace(FAST, retry=RetryPolicy(base=60.0, cap=60.0))
    delivery = rig.delivery(slow, rng=random.Random(3))  # a backoff of tens of seconds
    await rig.outage()
    stop = asyncio.Event()
    task = asyncio.create_task(delivery.run(stop))
    try:
        async with asyncio.timeout(10):
            while not (report := await deliveries_report(rig.redis)).retrying:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        await task
    assert [(r.channel, r.attempts, r.error) for r in report.retrying] == [
        (chan.key, 1, "http 500")
    ]
    assert report.queued == 1 and report.dead == ()


async def test_a_malformed_outbox_entry_is_dead_lettered_and_the_channel_goes_on(rig):
    (chan,) = channels(1)
    await rig.subscribe([chan])
    seq = await rig.redis.incr(keys.outbox_seq(chan.key))
    await rig.redis.xadd(keys.outbox(), {"c": chan.key, "n": seq, "a": "x", "alert": "{not json"})
    await rig.outage()
    await rig.delivery().drain(10)

    assert_threads(rig.server, [chan], ["start"])
    report = await deliveries_report(rig.redis)
    assert len(report.dead) == 1 and report.dead[0].error.startswith("malformed outbox entry")


async def test_an_entry_for_a_platform_without_a_sender_is_dead_lettered(rig):
    discord = ChannelRef(Platform.DISCORD, "G1", "C1")
    await rig.subscribe([discord, *channels(1)])
    await rig.outage()
    await rig.delivery().drain(10)

    report = await deliveries_report(rig.redis)
    assert [(d.channel, d.error) for d in report.dead] == [(discord.key, "no sender for discord")]
    assert_threads(rig.server, channels(1), ["start"])


async def test_a_channel_waiting_for_an_entry_that_no_longer_exists_goes_on_after_a_while(
    rig, caplog
):
    (chan,) = channels(1)
    await rig.subscribe([chan])
    await rig.redis.incr(keys.outbox_seq(chan.key))  # entry #1 was lost (say, a flushed stream)
    await rig.outage()
    await rig.delivery(replace(FAST, gate_stall=0.3)).drain(10)

    assert_threads(rig.server, [chan], ["start"])
    assert "no longer exist" in caplog.text


async def test_updates_wait_while_the_start_is_being_retried(rig):
    (chan,) = channels(1)
    await rig.subscribe([chan])
    rig.server.script[chan.key] = ["500", "500"]  # the start needs three attempts
    await rig.outage(1, 2)
    await rig.delivery().drain(10)

    assert_threads(rig.server, [chan], ["start", "update", "update"])


async def test_a_channel_hears_only_the_part_of_a_grouped_outage_it_subscribed_to(rig):
    web = ChannelRef(Platform.SLACK, "T1", "WEB")
    strict = ChannelRef(Platform.SLACK, "T1", "STRICT")
    api = ChannelRef(Platform.SLACK, "T1", "API")
    await rig.subscribe([web], surfaces=("claude.ai",))
    await rig.subs.subscribe(
        strict,
        ("claude.ai",),
        all_claude=False,
        min_severity=Status.MAJOR_OUTAGE,
        user="U1",
        now=rig.clock(),
    )
    await rig.subscribe([api], surfaces=("api",))
    delivery = rig.delivery()
    await rig.record(TransitionKind.START, Status.PARTIAL_OUTAGE, surface="claude.ai")
    await rig.record(TransitionKind.START, Status.PARTIAL_OUTAGE, surface="api")
    await delivery.drain(10)
    await rig.recover(surface="claude.ai")  # the API is still out
    await delivery.drain(10)

    per = rig.server.per_channel()
    assert [m.kind for m in per[web.key]] == ["start", "recovery"]
    assert [m.kind for m in per[api.key]] == ["start"]
    assert strict.key not in per, "never told of the start, so never told of the end"
    skipped = {r: rig.sample("aistatus_fanout_skipped_total", reason=r) for r in Skip}
    assert {r: n for r, n in skipped.items() if n} == {
        Skip.BELOW_MIN: 1,  # the strict channel, at claude.ai's start
        Skip.NO_PARENT: 1,  # ... and at claude.ai's recovery
        # the API channel at claude.ai's start and recovery, both claude.ai ones at the API's
        Skip.NOT_COVERED: 4,
    }


async def test_fan_out_counts_and_logs_why_each_channel_was_skipped(rig, caplog):
    wanted, disabled, muted = channels(3)
    await rig.subscribe([wanted, disabled, muted])
    await rig.subs.disable(disabled, "channel_not_found", rig.clock())
    await rig.subs.mute(muted, rig.clock() + timedelta(hours=1), now=rig.clock())
    caplog.set_level(logging.INFO, logger="bot.delivery")
    await rig.outage()
    await rig.delivery().drain(10)

    assert list(rig.server.per_channel()) == [wanted.key]
    assert rig.sample("aistatus_fanout_skipped_total", reason="disabled") == 1
    assert rig.sample("aistatus_fanout_skipped_total", reason="muted") == 1
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("fan-out:")]
    assert line.endswith("-> 1 channels (1 new entries); skipped: 1 disabled, 1 muted")


async def test_a_revoked_token_disables_the_channel_without_trying_to_tell_anyone(rig):
    [channel] = channels(1)
    await rig.subscribe([channel])
    rig.server.revoked.add(channel.key)
    await rig.outage()
    await rig.delivery().drain(10)
    sub = await rig.subs.get(channel)
    assert sub is not None and sub.disabled_reason == "token_revoked"
    assert rig.server.ops("notify") == [], "a dead token cannot send a direct message either"
