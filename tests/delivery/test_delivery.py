"""The delivery engine end to end: real redis-server, real transitions committed by the surface
store, real subscriptions, and the real SlackSender and DiscordSender talking over real sockets to
the loopback Slack Web API and Discord REST servers (every scenario runs on both platforms).
Every assertion counts what the platform applied: each (alert, channel) exactly once, in order
per channel.

The stand-in (`StandIn`: ChatServer + HttpChatSender) runs only what the real ones cannot: a
storm of random 429s on every call reaching the engine (discord.py waits Discord's out itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
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
from bot.catalog_file import load_catalog
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
from tests.helpers import FAST, ROOT, make_transition
from tests.peers.chaos import Chaos
from tests.peers.platforms import DiscordPeer, Peer, SlackPeer, StandIn

CATALOG = load_catalog()
OUTAGE = "7g1qpkyz5gxh"  # the real incident id of the 2026-09-22 fixture
KIND = {
    TransitionKind.START: "start",
    TransitionKind.UPDATE: "update",
    TransitionKind.RECOVERY: "recovery",
}


# -- the rig --------------------------------------------------------------------------------------


@dataclass
class Rig:
    """Redis, a platform (its server and real sender), the stores, and a transition recorder.
    Every recorded transition quotes "Update number N."; `kinds[N]` is its kind."""

    redis: aioredis.Redis
    peer: Peer | StandIn
    clock: Any
    subs: SubscriptionStore = field(init=False)
    surfaces: SurfaceStore = field(init=False)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    versions: dict[str, int] = field(default_factory=dict)
    updates: int = 0
    kinds: dict[int, str] = field(default_factory=dict)
    metrics: DeliveryMetrics = field(init=False)
    _status: dict[str, Status] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.subs = SubscriptionStore(self.redis, claude_surfaces=CATALOG.claude_surfaces())
        self.surfaces = SurfaceStore(self.redis)
        self.metrics = DeliveryMetrics.create(self.registry)

    @property
    def platform(self) -> str:
        return str(self.peer.platform)

    def delivery(self, config: DeliveryConfig = FAST, *, consumer: str | None = None, rng=None):
        return Delivery(
            self.redis,
            {self.peer.platform: self.peer.sender},
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
            await self.subs.subscribe(
                c, surfaces, all_claude=False, user=self.peer.user, now=self.clock()
            )

    async def record(
        self,
        kind: TransitionKind,
        status: Status,
        *,
        surface: str = "api",
        reason: Reason | None = None,
        outage: str = OUTAGE,
        audience: tuple[str, ...] = (),
    ) -> Transition:
        """Commit one transition through the surface store, as a poll would; with `audience`,
        only those workspaces' channels hear of it (a crowd suspicion's scope)."""
        version = self.versions.get(surface, 0)
        prev = self._status.get(surface, Status.OPERATIONAL)
        self.updates += 1
        self.kinds[self.updates] = KIND[kind]
        incident = Incident(
            id=outage,
            name="Elevated errors for multiple models",
            # A recovery's incident is resolved: the recovery quotes its resolution update.
            status="resolved" if kind is TransitionKind.RECOVERY else "investigating",
            impact="major",
            update_id=f"u{self.updates}",
            update_body=f"Update number {self.updates}.",
            update_at=self.clock(),
        )
        now = self.clock()
        t = make_transition(
            surface,
            version=version + 1,
            kind=kind,
            reason=reason,
            status=status,
            prev=prev,
            outage_id=outage,
            incident=incident,
            at=now,
            started_at=now - timedelta(minutes=5),
            provider="claude",
        )
        t = replace(t, audience=audience)
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

    def kinds_in(self, channel: ChannelRef) -> list[str]:
        """The kinds of the messages the channel shows, in order."""
        return [self.kinds.get(m.update or 0, "?") for m in self.peer.shown(channel)]

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture(params=["slack", "discord"])
async def peer(request) -> AsyncIterator[Peer]:
    """The real sender of the platform, and the loopback server it talks to."""
    peer: Peer = await (SlackPeer() if request.param == "slack" else DiscordPeer()).start()
    yield peer
    await peer.stop()


@pytest.fixture
async def rig(redis, peer, clock) -> Rig:
    return Rig(redis, peer, clock)


def assert_threads(rig: Rig, chans: Sequence[ChannelRef], kinds: Sequence[str]) -> None:
    """Every channel got exactly one message per alert, in this order of kinds."""
    wrong = {c.key: rig.kinds_in(c) for c in chans if rig.kinds_in(c) != list(kinds)}
    assert not wrong, f"{len(wrong)} channels out of order or missing: {list(wrong.items())[:3]}"
    for c in chans:
        shown = [m.update for m in rig.peer.shown(c)]
        assert len(set(shown)) == len(shown), f"{c.key} shows an alert twice: {shown}"


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


def test_a_settled_flaps_end_adds_nothing_where_the_parent_already_shows_the_end():
    settled = {"has_parent": True, "parent_current": False, "quiet": True}
    assert plan_delivery(AlertKind.RECOVERY, **settled, parent_ended=True).steps == ()
    # the relapse between was shown: the parent reads "partial outage", so the end edits it
    # and is said in the thread, not broadcast (it was once already)
    shown = plan_delivery(AlertKind.RECOVERY, **settled, parent_ended=False)
    assert shown == Plan(EDIT_REPLY, False, "edit parent, reply")


# -- the happy path ---------------------------------------------------------------------------


async def test_an_outage_is_one_parent_per_channel_edited_with_updates_threaded_under_it(rig):
    chans = rig.peer.channels(4)
    code = chans.pop()
    await rig.subscribe(chans)
    await rig.subscribe([code], surfaces=("code",))
    delivery = rig.delivery()

    await rig.outage()  # update 1
    await delivery.drain(10)
    await rig.record(TransitionKind.UPDATE, Status.MAJOR_OUTAGE, reason=Reason.WORSENED)  # 2
    await delivery.drain(10)
    await rig.recover()  # 3
    await delivery.drain(10)

    assert_threads(rig, chans, ["start", "update", "recovery"])
    for c in chans:
        # (call, the update it shows, broadcast): the parent edited to each new state first
        assert rig.peer.ops(c) == [
            ("post", 1, False),
            ("edit", 2, False),
            ("reply", 2, False),
            ("edit", 3, False),
            ("reply", 3, True),
        ]
        parent = rig.peer.parent(c)
        assert rig.peer.edited(c) == {parent}
        ref = await MessageStore(rig.redis).get(c, OUTAGE)
        assert ref is not None and ref.ts == parent and ref.thread == parent
    assert rig.peer.shown(code) == []  # subscribed to another surface
    platform = rig.platform
    assert rig.sample("aistatus_deliveries_total", platform=platform, step="post") == 3
    assert rig.sample("aistatus_deliveries_total", platform=platform, step="edit") == 6
    assert rig.sample("aistatus_delivery_latency_seconds_count", platform=platform) == 9
    report = await deliveries_report(rig.redis)
    assert (report.queued, report.pending, report.retrying, report.dead) == (0, 0, (), ())


async def test_an_entry_redelivered_after_it_was_recorded_done_is_acknowledged_unsent(rig):
    """A crash between recording an entry done and its XACK leaves it pending; the consumer that
    reclaims it finds the channel's handled sequence number past it. That number is the whole
    proof: no per-(alert, channel) marker exists."""
    chans = rig.peer.channels(3)
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
    applied = rig.peer.applied()

    last = written[-1]  # the channel's newest entry: its number is the handled one
    assert last[b"n"] == await rig.redis.get(keys.handled_seq(last[b"c"].decode()))
    await rig.redis.xadd(keys.outbox(), last)  # the same channel, number and alert
    await rig.redis.xreadgroup("workers", "crashed", {keys.outbox(): ">"})  # pending, unacked
    await rig.delivery(consumer="survivor").drain(10)  # reclaims it after FAST.min_idle

    assert rig.peer.applied() == applied
    assert_threads(rig, chans, ["start", "update"])
    report = await deliveries_report(rig.redis)
    assert (report.queued, report.pending, report.dead) == (0, 0, ())
    assert await rig.redis.keys("*:done:*") == []


async def test_fan_out_run_again_after_a_crash_before_its_ack_writes_no_duplicate(rig):
    chans = rig.peer.channels(50)
    await rig.subscribe(chans)
    await rig.outage(1)
    delivery = rig.delivery()
    await delivery.drain(10)
    # A crash between writing the outbox entries and acknowledging the transitions: the group
    # forgets everything it read, so the next fan-out reads every transition again.
    await rig.redis.xgroup_setid(keys.transitions("claude"), "fanout", "0")
    await delivery.drain(10)

    assert await rig.redis.get(keys.outbox_seq(chans[0].key)) == b"2"
    assert_threads(rig, chans, ["start", "update"])


# -- crashes, restarts, replicas ----------------------------------------------------------------


async def test_1000_channels_get_each_alert_once_in_order_across_a_crashed_worker(rig):
    chans = rig.peer.channels(1000)
    await rig.subscribe(chans)
    await rig.outage(1)
    first = rig.delivery(consumer="worker-a")
    stop = asyncio.Event()
    task = asyncio.create_task(first.run(stop))
    await rig.peer.wait_applied(400, within=30)
    task.cancel()  # a crash: whatever it read and did not finish stays pending, unacknowledged
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert rig.peer.applied() < 2000

    await rig.delivery(consumer="worker-b").drain(60)

    assert_threads(rig, chans, ["start", "update"])
    assert sum(op == "post" for c in chans for op, _, _ in rig.peer.ops(c)) == 1000


WORKER = """
import asyncio, sys
from dataclasses import replace
from datetime import UTC, datetime
import aiohttp
from prometheus_client import CollectorRegistry
from slack_sdk.web.async_client import AsyncWebClient
from bot.chat.discord.sender import DiscordSender, configure_api_base, open_rest_client
from bot.chat.slack.sender import SlackSender
from bot.catalog_file import load_catalog
from bot.delivery.engine import Delivery, DeliveryMetrics
from bot.core.model import Platform
from bot.store.connect import connect
from bot.store.subscriptions import SubscriptionStore
from bot.store.surfaces import SurfaceStore
from tests.helpers import FAST
from tests.peers.discord_api import TOKEN as DISCORD_TOKEN
from tests.peers.platforms import SLACK_TOKEN

async def main(redis_url, platform, url, lease_ttl=None):
    if platform == "slack":
        client = AsyncWebClient(
            token=SLACK_TOKEN, base_url=url, timeout=20, retry_handlers=[],
            session=aiohttp.ClientSession(),
        )
        sender = SlackSender(client)
    else:
        configure_api_base(url)
        sender = DiscordSender(await open_rest_client(DISCORD_TOKEN))
    r = connect(redis_url)
    catalog = load_catalog()
    config = FAST if lease_ttl is None else replace(
        FAST, lease_ttl=float(lease_ttl), beat=0.2, beat_ttl=1.0
    )
    delivery = Delivery(
        r, {Platform(platform): sender}, SurfaceStore(r),
        SubscriptionStore(r, claude_surfaces=catalog.claude_surfaces()), catalog, config=config,
        clock=lambda: datetime.now(UTC), consumer="doomed",
        metrics=DeliveryMetrics.create(CollectorRegistry()),
    )
    await delivery.run(asyncio.Event())

asyncio.run(main(*sys.argv[1:]))
"""


async def test_a_worker_process_killed_mid_delivery_loses_nothing(rig, redis_server):
    chans = rig.peer.channels(300)
    await rig.subscribe(chans)
    await rig.outage(1)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WORKER, redis_server.url, rig.platform, rig.peer.url,
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        await rig.peer.wait_applied(150, within=30)
    finally:
        proc.kill()  # SIGKILL: no cleanup, no finishing of calls in flight
        await proc.wait()
    assert rig.peer.applied() < 600

    await rig.delivery(consumer="survivor").drain(60)

    # A call the platform applied whose answer died with the process is not sent again: the
    # survivor checks the channel first (Slack: the delivery key in the message's metadata;
    # Discord: the nonce turns a repeated post into the same message).
    assert_threads(rig, chans, ["start", "update"])


async def test_a_killed_workers_leases_are_broken_once_its_heartbeat_is_gone(rig, redis_server):
    # Every call of the doomed worker hangs (never applied), so it dies holding the lease of
    # each of its channels (and the fan-out lease, when it had not acknowledged its fan-out
    # yet), leases that would last a minute. Once its heartbeat is gone the survivor breaks
    # them (the channels' as it takes their entries over): it delivers all well within it.
    chans = rig.peer.channels(FAST.workers - 2)  # every one of them in flight at once
    await rig.subscribe(chans)
    await rig.outage(1)
    rig.peer.api.chaos = Chaos(hang=1.0)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WORKER, redis_server.url, rig.platform, rig.peer.url, "60",
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        await rig.peer.wait_asked(chans, within=30)  # each channel's first call, hung
    finally:
        proc.kill()
        await proc.wait()
    assert rig.peer.applied() == 0
    rig.peer.api.chaos = None

    await rig.delivery(consumer="survivor").drain(20)

    assert_threads(rig, chans, ["start", "update"])


async def test_hung_calls_and_answers_lost_after_the_platform_applied_them_duplicate_nothing(
    rig,
):
    # Some chat calls hang forever (never applied); others are applied and then the connection
    # drops before the answer: each attempt's outcome is unknown, and the retry must not show
    # the message twice (Slack: the delivery key looked up in history; Discord: the nonce, and
    # edits and thread starts that repeat harmlessly).
    slack = rig.peer.platform is Platform.SLACK
    methods = frozenset({"chat.postMessage"}) if slack else None  # Discord: posts, edits, threads
    rig.peer.api.chaos = Chaos(hang=0.05, lost=0.25, seed=5, methods=methods)
    chans = rig.peer.channels(60)
    if slack:  # half of them public channels it posts to unjoined: it joins them to look
        for c in chans[::2]:
            rig.peer.api.not_joined(c.channel)
    await rig.subscribe(chans)
    delivery = rig.delivery(replace(FAST, call_timeout=0.5))
    await rig.outage(1)
    await delivery.drain(60)
    await rig.recover()
    await delivery.drain(60)

    assert_threads(rig, chans, ["start", "update", "recovery"])
    faults = rig.peer.api.faults
    assert faults["hang"] > 3 and faults["lost-applied"] > 10, faults
    if slack:  # some lost answers were in unjoined channels: joined once, then looked at
        joined = [c.params["channel"] for c in rig.peer.api.calls_to("conversations.join")]
        assert joined and len(joined) == len(set(joined))
        assert set(joined) <= {c.channel for c in chans[::2]}
    assert (await deliveries_report(rig.redis)).dead == ()


async def test_three_deliveries_running_together_share_the_work_exactly_once(rig):
    chans = rig.peer.channels(100)
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

    assert_threads(rig, chans, ["start", "update", "update", "recovery"])


async def test_a_redis_restart_mid_delivery_loses_and_repeats_nothing(
    peer, clock, own_redis, caplog
):
    caplog.set_level(logging.INFO, logger="bot.delivery")
    client = aioredis.Redis.from_url(own_redis.url)
    rig = Rig(client, peer, clock)
    chans = peer.channels(100)
    await rig.subscribe(chans)
    await rig.outage()
    delivery = rig.delivery()
    stop = asyncio.Event()
    task = asyncio.create_task(delivery.run(stop))
    try:
        await peer.wait_applied(20, within=20)
        assert peer.applied() < len(chans)  # mid-way
        own_redis.stop()  # fan-out and workers now meet connection errors
        await asyncio.sleep(0.3)  # let them run into the outage
        own_redis.start()
        await rig.record(TransitionKind.UPDATE, Status.MAJOR_OUTAGE, reason=Reason.WORSENED)
        await until_idle(delivery, within=30)
    finally:
        stop.set()
        await task
        await client.aclose()

    assert_threads(rig, chans, ["start", "update"])
    # The outage is a line when it starts (and when its error changes) per loop, not one per
    # retry or per channel; and one line each when it ends.
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.delivery"]
    down = [m for m in lines if "redis unavailable" in m]
    assert 1 <= len(down) <= 12, down  # 3 loops (fan-out, reading, lanes) x a few errors
    assert 1 <= len([m for m in lines if "working again" in m]) <= 3


# -- faults from the chat API -------------------------------------------------------------------


async def test_429s_500s_and_timeouts_still_deliver_every_alert_once_in_order(redis, clock):
    # The stand-in: random faults on every call of every kind, 429s included (discord.py waits
    # out the 429s Discord sends before they reach the engine).
    chaos = Chaos(rate_limited=0.2, server_error=0.1, hang=0.05, retry_after=0.05, seed=7)
    peer = await StandIn(chaos=chaos, timeout=1.0).start()
    rig = Rig(redis, peer, clock)
    server = peer.server
    try:
        chans = peer.channels(100)
        await rig.subscribe(chans)
        # 35 % of calls fail here, so 8 attempts give up on an entry with p = 0.35^8 = 2e-4:
        # ~7 % of runs lost one of the 300 (seen once). 30 attempts: 2e-14 an entry.
        delivery = rig.delivery(
            replace(FAST, retry=RetryPolicy(max_attempts=30, base=0.01, cap=0.05))
        )
        await rig.outage(1)
        await delivery.drain(60)
        await rig.recover()
        await delivery.drain(60)
    finally:
        await peer.stop()

    assert_threads(rig, chans, ["start", "update", "recovery"])
    assert server.duplicates() == []
    assert server.faults["429"] > 20 and server.faults["500"] > 10 and server.faults["hang"] > 5
    assert (
        rig.sample("aistatus_delivery_retries_total", platform="slack", outcome="retry_after") > 0
    )
    assert rig.sample("aistatus_delivery_retries_total", platform="slack", outcome="backoff") > 0
    assert (await deliveries_report(redis)).dead == ()


async def test_a_429_holds_back_that_channel_exactly_retry_after_and_no_other(rig):
    slow, other = rig.peer.channels(2)
    await rig.subscribe([slow, other])
    asked = rig.peer.rate_limit(slow, 0.4)
    await rig.outage()
    await rig.delivery().drain(10)

    times = {c.key: rig.peer.requests(c) for c in (slow, other)}
    assert len(times[slow.key]) == 2
    assert times[slow.key][1] - times[slow.key][0] >= asked - 0.01  # waited what was asked
    assert times[other.key][0] < times[slow.key][1]  # the other channel did not wait
    assert_threads(rig, [slow, other], ["start"])
    assert (
        rig.sample("aistatus_delivery_retries_total", platform=rig.platform, outcome="retry_after")
        == 1
    )


async def test_updates_queued_while_a_channel_waits_edit_the_parent_once_but_each_gets_a_reply(
    rig,
):
    (chan,) = rig.peer.channels(1)
    await rig.subscribe([chan])
    await rig.outage()  # update 1
    delivery = rig.delivery()
    await delivery.drain(10)
    rig.peer.rate_limit(chan, 0.3)  # the channel waits while three updates queue up
    for _ in range(3):  # updates 2, 3, 4
        await rig.record(TransitionKind.UPDATE, Status.PARTIAL_OUTAGE)
    await delivery.drain(10)

    ops = rig.peer.ops(chan)
    assert [u for op, u, _ in ops if op == "edit"] == [4]  # one edit, straight to the newest
    assert [u for op, u, _ in ops if op == "reply"] == [2, 3, 4]  # each its reply, in order


async def test_a_deleted_channel_is_disabled_and_dead_lettered_and_the_others_carry_on(rig):
    chans = rig.peer.channels(5)
    gone = chans[2]
    await rig.subscribe(chans)
    await rig.outage()
    delivery = rig.delivery()
    await delivery.drain(10)
    rig.peer.gone(gone)
    since = len(rig.peer.requests(gone))
    await rig.record(TransitionKind.UPDATE, Status.MAJOR_OUTAGE, reason=Reason.WORSENED)
    await rig.recover()
    await delivery.drain(10)

    others = [c for c in chans if c != gone]
    assert_threads(rig, others, ["start", "update", "recovery"])
    assert rig.kinds_in(gone) == ["start"]
    assert len(rig.peer.requests(gone)) - since == 1  # one refusal, then nothing more is tried
    # Nobody to tell in a channel that is gone: whoever subscribed it hears, once, directly.
    reason = rig.peer.gone_reason
    [told] = rig.peer.notes()
    assert gone.channel in told and reason in told
    sub = await rig.subs.get(gone)
    assert sub is not None and sub.disabled_reason == reason
    report = await deliveries_report(rig.redis)
    assert report.dead and {d.channel for d in report.dead} == {gone.key}
    assert report.dead[-1].error == reason
    platform = rig.platform
    assert rig.sample("aistatus_delivery_dead_total", platform=platform, outcome="permanent") >= 1


async def test_a_deleted_parent_message_is_replaced_by_a_new_parent(rig):
    chans = rig.peer.channels(2)
    await rig.subscribe(chans)
    await rig.outage()
    delivery = rig.delivery()
    await delivery.drain(10)
    first_parent = rig.peer.parent(chans[0])
    rig.peer.delete(chans[0], first_parent)
    await rig.record(TransitionKind.UPDATE, Status.MAJOR_OUTAGE, reason=Reason.WORSENED)
    await delivery.drain(10)
    await rig.recover()
    await delivery.drain(10)

    assert_threads(rig, chans, ["start", "update", "recovery"])
    ops = [op for op, _, _ in rig.peer.ops(chans[0])]
    assert ops == ["post", "post", "edit", "reply"]  # the update became the new parent
    ref = await MessageStore(rig.redis).get(chans[0], OUTAGE)
    assert ref is not None and ref.ts != first_parent
    parent_gone = {"platform": rig.platform, "outcome": "parent_gone"}
    assert rig.sample("aistatus_delivery_retries_total", **parent_gone) == 1


async def test_transient_errors_are_retried_and_the_alert_goes_out_once(rig):
    (chan,) = rig.peer.channels(1)
    await rig.subscribe([chan])
    rig.peer.server_error(chan, times=2)  # the start needs three attempts
    await rig.outage(1, 2)
    await rig.delivery().drain(10)

    assert_threads(rig, [chan], ["start", "update", "update"])  # and the updates waited
    backoff = {"platform": rig.platform, "outcome": "backoff"}
    assert rig.sample("aistatus_delivery_retries_total", **backoff) == 2


async def test_after_max_attempts_an_entry_is_dead_lettered_and_the_next_alert_opens_a_parent(
    rig, redis_server
):
    (chan,) = rig.peer.channels(1)
    await rig.subscribe([chan])
    rig.peer.server_error(chan, times=3)
    delivery = rig.delivery(replace(FAST, retry=RetryPolicy(max_attempts=3, base=0.01, cap=0.02)))
    start = await rig.record(TransitionKind.START, Status.PARTIAL_OUTAGE)
    await delivery.drain(10)
    report = await deliveries_report(rig.redis)
    error = f"{rig.peer.server_error_reason} (after 3 attempts)"
    assert [(d.channel, d.error, d.attempts) for d in report.dead] == [(chan.key, error, 3)]
    assert start.id  # recorded, yet never shown

    await rig.record(TransitionKind.UPDATE, Status.MAJOR_OUTAGE, reason=Reason.WORSENED)
    await delivery.drain(10)
    assert [(op, rig.kinds[u or 0]) for op, u, _ in rig.peer.ops(chan)] == [("post", "update")]

    # What an operator sees: `aistatus deliveries` lists it and exits 1.
    code, text, _ = await aistatus_deliveries(redis_server.url)
    assert code == 1
    assert "dead: 1" in text and chan.key in text and error in text


async def aistatus_deliveries(url: str, *args: str) -> tuple[int, str, str]:
    """`aistatus deliveries ARGS` as an operator runs it: (exit code, stdout, stderr)."""
    env = {**os.environ, "REDIS_URL": url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--env-file", os.devnull, "deliveries", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=ROOT,
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_a_retried_dead_letter_arrives_once_after_the_cause_is_fixed(rig, redis_server):
    chans = rig.peer.channels(2)
    gone = chans[0]
    await rig.subscribe(chans)
    rig.peer.gone(gone)
    delivery = rig.delivery()
    stop = asyncio.Event()
    running = asyncio.create_task(delivery.run(stop))  # the bot keeps running throughout
    try:
        await rig.record(TransitionKind.START, Status.PARTIAL_OUTAGE)
        await until_idle(delivery, within=10)
        [dead] = (await deliveries_report(rig.redis)).dead
        code, out, _ = await aistatus_deliveries(redis_server.url)
        assert code == 1
        assert f"{dead.id}  {gone.key}  start of {OUTAGE} (api)" in out, out

        code, _, err = await aistatus_deliveries(redis_server.url, "--retry", "1-999")
        assert (code, err.strip()) == (
            2,
            "aistatus: no dead letter 1-999 (ids are listed by `aistatus deliveries`)",
        )
        rig.peer.heal(gone)  # the bot was added back to the channel
        code, out, _ = await aistatus_deliveries(redis_server.url, "--retry", dead.id)
        assert code == 0 and f"retried   {dead.id}  {gone.key}  start of {OUTAGE}" in out
        assert f"enabled   {gone.key} again" in out
        await until_idle(delivery, within=10)
        # Its old sequence number is handled already: it went in with the next one, sent once.
        code, out, _ = await aistatus_deliveries(redis_server.url, "--retry", dead.id)
        assert code == 2  # retried already: gone from the dead letters
        await rig.recover()
        await until_idle(delivery, within=10)
    finally:
        stop.set()
        await running
    assert_threads(rig, chans, ["start", "recovery"])
    assert (await deliveries_report(rig.redis)).dead_total == 0
    sub = await rig.subs.get(gone)
    assert sub is not None and sub.disabled_reason is None


async def test_dropped_dead_letters_are_gone_and_the_channel_hears_nothing(rig, redis_server):
    chans = rig.peer.channels(3)
    await rig.subscribe(chans)
    for c in chans:
        rig.peer.gone(c)
    await rig.record(TransitionKind.START, Status.PARTIAL_OUTAGE)
    await rig.delivery().drain(10)
    first, *rest = (await deliveries_report(rig.redis)).dead

    code, out, _ = await aistatus_deliveries(redis_server.url, "--drop", first.id)
    assert code == 0 and f"dropped   {first.id}  {first.channel}  start of {OUTAGE}" in out
    assert {d.id for d in (await deliveries_report(rig.redis)).dead} == {d.id for d in rest}
    code, out, _ = await aistatus_deliveries(redis_server.url, "--drop", "all")
    assert code == 0 and "dropped 2 dead letters" in out
    code, out, _ = await aistatus_deliveries(redis_server.url)
    assert code == 0 and "dead: 0" in out
    code, _, err = await aistatus_deliveries(redis_server.url, "--drop", "no-such-id")
    assert code == 2 and "no dead letter no-such-id" in err


async def test_the_report_lists_an_entry_waiting_for_its_next_attempt(rig):
    (chan,) = rig.peer.channels(1)
    await rig.subscribe([chan])
    rig.peer.server_error(chan)
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
        (chan.key, 1, rig.peer.server_error_reason)
    ]
    assert report.queued == 1 and report.dead == ()


async def test_a_50_channel_fan_out_logs_one_summary_and_no_line_per_delivered_channel(rig, caplog):
    chans = rig.peer.channels(50)
    await rig.subscribe(chans)
    flaky = chans[:2]
    for c in flaky:
        rig.peer.server_error(c)  # one failed attempt each, then delivered
    caplog.set_level(logging.DEBUG, logger="bot")
    await rig.outage()
    await rig.delivery().drain(20)

    assert_threads(rig, chans, ["start"])
    info = [r for r in caplog.records if r.name == "bot.delivery" and r.levelno >= logging.INFO]
    summaries = [r.getMessage() for r in info if r.getMessage().startswith("start of")]
    assert summaries == [f"start of {OUTAGE}: 50 channels in 0 s, 2 retried, 0 dead"]
    naming = {c.key for r in info for c in chans if c.key in r.getMessage()}
    assert naming == {c.key for c in flaky}, "only the failures are INFO, never a success"
    assert all("delivered" not in r.getMessage() for r in info)


async def test_a_delivery_failure_line_in_json_names_its_channel_alert_and_attempt(rig):
    from bot.ops.logs import JsonFormatter

    (chan,) = rig.peer.channels(1)
    await rig.subscribe([chan])
    rig.peer.server_error(chan, times=2)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("bot.delivery")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        await rig.outage()
        await rig.delivery().drain(10)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    failed = [d for d in lines if d["message"].startswith(f"delivery: {chan.key} failed")]
    assert [d["attempt"] for d in failed] == [1], lines  # logged when the error starts
    [line] = failed
    assert line["channel"] == chan.key and line["alert_id"] and line["level"] == "INFO"


async def test_a_malformed_outbox_entry_is_dead_lettered_and_the_channel_goes_on(rig):
    (chan,) = rig.peer.channels(1)
    await rig.subscribe([chan])
    seq = await rig.redis.incr(keys.outbox_seq(chan.key))
    await rig.redis.xadd(keys.outbox(), {"c": chan.key, "n": seq, "a": "x", "alert": "{not json"})
    await rig.outage()
    await rig.delivery().drain(10)

    assert_threads(rig, [chan], ["start"])
    report = await deliveries_report(rig.redis)
    assert len(report.dead) == 1 and report.dead[0].error.startswith("malformed outbox entry")


async def test_an_entry_for_a_platform_without_a_sender_is_dead_lettered(rig):
    other = Platform.DISCORD if rig.peer.platform is Platform.SLACK else Platform.SLACK
    elsewhere = ChannelRef(other, "W1", "100")
    [chan] = rig.peer.channels(1)
    await rig.subscribe([elsewhere, chan])
    await rig.outage()
    await rig.delivery().drain(10)

    report = await deliveries_report(rig.redis)
    assert [(d.channel, d.error) for d in report.dead] == [
        (elsewhere.key, f"no sender for {other}")
    ]
    assert_threads(rig, [chan], ["start"])


async def test_a_channel_waiting_for_an_entry_that_no_longer_exists_goes_on_after_a_while(
    rig, caplog
):
    (chan,) = rig.peer.channels(1)
    await rig.subscribe([chan])
    await rig.redis.incr(keys.outbox_seq(chan.key))  # entry #1 was lost (say, a flushed stream)
    await rig.outage()
    await rig.delivery(replace(FAST, gate_stall=0.3)).drain(10)

    assert_threads(rig, [chan], ["start"])
    assert "no longer exist" in caplog.text


async def test_a_channel_hears_only_the_part_of_a_grouped_outage_it_subscribed_to(rig):
    web, strict, api = rig.peer.channels(3)
    await rig.subscribe([web], surfaces=("claude.ai",))
    await rig.subs.subscribe(
        strict,
        ("claude.ai",),
        all_claude=False,
        min_severity=Status.MAJOR_OUTAGE,
        user=rig.peer.user,
        now=rig.clock(),
    )
    await rig.subscribe([api], surfaces=("api",))
    delivery = rig.delivery()
    await rig.record(TransitionKind.START, Status.PARTIAL_OUTAGE, surface="claude.ai")
    await rig.record(TransitionKind.START, Status.PARTIAL_OUTAGE, surface="api")
    await delivery.drain(10)
    await rig.recover(surface="claude.ai")  # the API is still out
    await delivery.drain(10)

    assert rig.kinds_in(web) == ["start", "recovery"]
    assert rig.kinds_in(api) == ["start"]
    assert rig.peer.shown(strict) == [], "never told of the start, so never told of the end"
    skipped = {r: rig.sample("aistatus_fanout_skipped_total", reason=r) for r in Skip}
    assert {r: n for r, n in skipped.items() if n} == {
        Skip.BELOW_MIN: 1,  # the strict channel, at claude.ai's start
        Skip.NO_PARENT: 1,  # ... and at claude.ai's recovery
        # the API channel at claude.ai's start and recovery, both claude.ai ones at the API's
        Skip.NOT_COVERED: 4,
    }


async def test_fan_out_counts_and_logs_why_each_channel_was_skipped(rig, caplog):
    wanted, disabled, muted = rig.peer.channels(3)
    await rig.subscribe([wanted, disabled, muted])
    await rig.subs.disable(disabled, "channel_not_found", rig.clock())
    await rig.subs.mute(muted, rig.clock() + timedelta(hours=1), now=rig.clock())
    caplog.set_level(logging.INFO, logger="bot.delivery")
    await rig.outage()
    await rig.delivery().drain(10)

    assert rig.kinds_in(wanted) == ["start"]
    assert rig.peer.shown(disabled) == rig.peer.shown(muted) == []
    assert rig.sample("aistatus_fanout_skipped_total", reason="disabled") == 1
    assert rig.sample("aistatus_fanout_skipped_total", reason="muted") == 1
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("fan-out:")]
    assert line.endswith("-> 1 channels (1 new entries); skipped: 1 disabled, 1 muted")


async def test_fan_out_skips_channels_outside_the_alert_audience_and_counts_them(rig, caplog):
    mine = f"{rig.peer.platform}:{rig.peer.workspace}"
    here, there = rig.peer.channels(2)
    await rig.subscribe([here, there])
    caplog.set_level(logging.INFO, logger="bot.delivery")
    delivery = rig.delivery()
    await rig.record(TransitionKind.START, Status.PARTIAL_OUTAGE, audience=("slack:elsewhere",))
    await delivery.drain(10)

    assert rig.peer.shown(here) == rig.peer.shown(there) == []
    assert rig.sample("aistatus_fanout_skipped_total", reason="not_in_audience") == 2
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("fan-out:")]
    assert line.endswith("-> 0 channels (0 new entries); skipped: 2 not_in_audience")

    await rig.record(
        TransitionKind.START, Status.PARTIAL_OUTAGE, outage="o2", audience=(mine, "slack:x")
    )
    await delivery.drain(10)
    assert len(rig.peer.shown(here)) == len(rig.peer.shown(there)) == 1


async def test_a_revoked_token_disables_the_channel_without_trying_to_tell_anyone(rig):
    [channel] = rig.peer.channels(1)
    await rig.subscribe([channel])
    rig.peer.revoke(channel)
    await rig.outage()
    await rig.delivery().drain(10)
    sub = await rig.subs.get(channel)
    assert sub is not None and sub.disabled_reason == rig.peer.revoked_reason
    assert rig.peer.notes() == [], "a dead token cannot send a direct message either"
