"""Side messages through the outbox, end to end: a channel announcement and a subscriber's direct
message queued as the chat apps and the failure handler queue them, sent by the real delivery
engine through the real SlackSender and DiscordSender over loopback sockets (every scenario on
both platforms). Asserted on what the platform applied: each message once, after Retry-After;
dead letters where `aistatus deliveries` shows them; no repeat across a worker restart.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from bot.catalog_file import load_catalog
from bot.cli import deliveries
from bot.clock import utcnow
from bot.core.model import AlertKind, ChannelRef, SideMessage
from bot.delivery.engine import Delivery, deliveries_report
from bot.delivery.side import SideOutbox, send_side
from bot.ops.redisproc import RedisProcess
from bot.settings import Settings
from bot.store import keys
from bot.store.messages import MessageStore
from bot.store.outbox import OutboxStore, SideEntry
from bot.store.subscriptions import SubscriptionStore
from tests.helpers import delivery_engine, make_alert
from tests.peers.platforms import DiscordPeer, Peer, SlackPeer

CATALOG = load_catalog()


@pytest.fixture(params=["slack", "discord"])
async def peer(request) -> AsyncIterator[Peer]:
    peer: Peer = await (SlackPeer() if request.param == "slack" else DiscordPeer()).start()
    yield peer
    await peer.stop()


def engine(
    redis: aioredis.Redis, peer: Peer, registry: CollectorRegistry, *, consumer: str = "one"
) -> Delivery:
    senders = {peer.platform: peer.sender}
    return delivery_engine(redis, senders, consumer=consumer, registry=registry)


def announcement(channel: ChannelRef, n: int = 1) -> SideMessage:
    text = f"maria subscribed this channel to api ({n})"
    return SideMessage.announcement(
        channel, text, key=f"test:{channel.key}:{n}", at=utcnow(), about="subscribe by U42"
    )


def notice(peer: Peer, text: str = "aistatus stopped posting alerts to <#C9>") -> SideMessage:
    return SideMessage.notice(
        peer.platform, peer.workspace, peer.user, text, key="gone:test", at=utcnow(),
        about="C9 disabled",
    )  # fmt: skip


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def cli_deliveries(redis_server: RedisProcess) -> tuple[int, str]:
    out = io.StringIO()
    settings = Settings(_env_file=None, redis_url=redis_server.url)  # type: ignore[call-arg]
    code = await deliveries(settings, out, err=out)
    return code, out.getvalue()


async def test_an_announcement_survives_a_429_and_is_posted_once_after_retry_after(redis, peer):
    (channel,) = peer.channels(1)
    asked = peer.rate_limit(channel, 0.4)
    registry = CollectorRegistry()
    await SideOutbox(OutboxStore(redis), clock=utcnow)(announcement(channel))

    await engine(redis, peer, registry).drain(20)

    assert peer.texts(channel) == ["maria subscribed this channel to api (1)"]
    first, second = peer.requests(channel)
    assert second - first >= asked - 0.01  # waited what the platform asked
    platform = str(peer.platform)
    assert sample(registry, "aistatus_delivery_retries_total", platform=platform,
                  outcome="retry_after") == 1  # fmt: skip
    assert sample(registry, "aistatus_deliveries_total", platform=platform, step="announce") == 1
    assert await redis.keys(keys.message(channel.key, "*")) == []  # no parent bookkeeping
    report = await deliveries_report(redis)
    assert (report.queued, report.side, report.dead) == (0, (), ())


async def test_a_subscriber_dm_survives_a_429_in_its_own_lane(redis, peer):
    """The DM's lane is the person, not a channel: a 429 on it holds back only the DM, and the
    channel's announcement queued after it goes at once."""
    dm = await peer.dm()
    (channel,) = peer.channels(1)
    asked = peer.rate_limit(dm, 0.4)
    side = SideOutbox(OutboxStore(redis), clock=utcnow)
    await side(notice(peer))
    await side(announcement(channel))
    registry = CollectorRegistry()

    await engine(redis, peer, registry).drain(20)

    assert peer.notes() == ["aistatus stopped posting alerts to <#C9>"]
    first, second = peer.requests(dm)
    assert second - first >= asked - 0.01
    assert peer.requests(channel)[0] < second  # the channel did not wait for the person
    assert sample(registry, "aistatus_deliveries_total", platform=str(peer.platform),
                  step="notice") == 1  # fmt: skip


async def test_permanently_refused_side_messages_are_dead_letters_that_deliveries_lists(
    redis, redis_server, peer
):
    (channel,) = peer.channels(1)
    dm = await peer.dm()
    peer.gone(channel)
    peer.gone(dm)
    subs = SubscriptionStore(redis, claude_surfaces=CATALOG.claude_surfaces())
    await subs.subscribe(channel, ("api",), all_claude=False, user=peer.user, now=utcnow())
    side = SideOutbox(OutboxStore(redis), clock=utcnow)
    await side(announcement(channel))
    await side(notice(peer))

    await engine(redis, peer, CollectorRegistry()).drain(20)

    assert peer.texts(channel) == [] and peer.notes() == []
    sub = await subs.get(channel)
    assert sub is not None and sub.disabled_reason is None  # a side message disables nothing
    code, out = await cli_deliveries(redis_server)
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "queued: 0  in flight or retrying: 0  dead: 2"
    # Each by its lane (a DM's is the person), its kind and its last error.
    dead = sorted((d[0], d[2], d[3], d[-1]) for d in (line.split() for line in lines[1:]))
    assert dead == sorted(
        [
            ("dead", channel.key, "announcement", peer.gone_reason),
            ("dead", notice(peer).to.key, "DM", peer.gone_reason),
        ]
    )
    assert '(subscribe by U42): "maria subscribed this channel to api (1)"' in out

    # Once the cause is fixed, --retry queues them again and the bot sends each once.
    peer.heal(channel)
    peer.heal(dm)
    settings = Settings(_env_file=None, redis_url=redis_server.url)  # type: ignore[call-arg]
    assert await deliveries(settings, io.StringIO(), retry="all") == 0
    await engine(redis, peer, CollectorRegistry()).drain(20)
    assert peer.texts(channel) == ["maria subscribed this channel to api (1)"]
    assert peer.notes() == ["aistatus stopped posting alerts to <#C9>"]


async def test_deliveries_lists_side_messages_pending_and_waiting_with_their_kind(
    redis, redis_server, peer
):
    (channel,) = peer.channels(1)
    outbox = OutboxStore(redis)
    await outbox.enqueue_side(announcement(channel), now=utcnow())
    entry_id = await outbox.enqueue_side(notice(peer), now=utcnow())
    assert entry_id is not None
    await outbox.note_retry(entry_id, (await peer.dm()), "gone:test", 2, "ratelimited")

    code, out = await cli_deliveries(redis_server)

    assert code == 0
    _, pending, waiting = out.splitlines()
    assert pending.split()[:3] == ["pending", channel.key, "announcement"]
    assert waiting.split()[0] == "waiting" and " DM to " in waiting
    assert waiting.endswith("2 attempts: ratelimited")


async def test_a_side_message_is_queued_once_per_key(redis, peer):
    (channel,) = peer.channels(1)
    outbox = OutboxStore(redis)
    message = announcement(channel)
    assert await outbox.enqueue_side(message, now=utcnow()) is not None
    assert await outbox.enqueue_side(message, now=utcnow()) is None  # the same request again

    await engine(redis, peer, CollectorRegistry()).drain(20)

    assert peer.texts(channel) == ["maria subscribed this channel to api (1)"]


async def test_nothing_is_sent_twice_across_a_worker_restart(redis, peer):
    """One worker delivers and stops; a restarted one (same name, as after a deploy) and a new
    one find every side message done and send nothing."""
    (channel,) = peer.channels(1)
    side = SideOutbox(OutboxStore(redis), clock=utcnow)
    for n in (1, 2, 3):
        await side(announcement(channel, n))
    await side(notice(peer))
    await engine(redis, peer, CollectorRegistry(), consumer="a").drain(20)
    applied = (peer.texts(channel), peer.notes())

    await engine(redis, peer, CollectorRegistry(), consumer="a").drain(20)
    await engine(redis, peer, CollectorRegistry(), consumer="b").drain(20)

    assert applied == (
        [f"maria subscribed this channel to api ({n})" for n in (1, 2, 3)],
        ["aistatus stopped posting alerts to <#C9>"],
    )
    assert (peer.texts(channel), peer.notes()) == applied


async def test_an_announcement_sent_by_a_worker_killed_before_recording_it_is_not_repeated(
    redis, peer
):
    """The state a kill -9 leaves between the chat call and its record: the entry pending for
    a consumer with no heartbeat, its `sending` marker set, the message in the channel. The
    survivor takes it over, sees the outcome is unknown and looks before sending (Slack: the
    key in the message's metadata; Discord: the same nonce returns the same message)."""
    (channel,) = peer.channels(1)
    outbox = OutboxStore(redis)
    message = announcement(channel)
    await outbox.enqueue_side(message, now=utcnow())
    await outbox.ensure_group()
    [entry] = await outbox.read("killed", count=10, block_ms=None)
    assert isinstance(entry, SideEntry)
    begun = await outbox.begin(entry, entry.seq, "killed-token", 100)  # its lease soon lapses
    assert begun.verdict == "go" and not begun.unsure
    await send_side(peer.sender, message)  # applied; then the process died

    await engine(redis, peer, CollectorRegistry(), consumer="survivor").drain(20)

    assert peer.texts(channel) == ["maria subscribed this channel to api (1)"]
    report = await deliveries_report(redis)
    assert (report.queued, report.dead) == (0, ())


async def test_an_announcement_between_alerts_leaves_the_outage_thread_alone(redis, peer):
    """Queued in the channel's lane between an outage's start and its update: it is posted in
    its turn, and the update still edits the outage's parent and replies under it."""
    (channel,) = peer.channels(1)
    outbox = OutboxStore(redis)
    start = make_alert(transition_ids=("claude.ai@7",))
    update = make_alert(kind=AlertKind.UPDATE, title="worse", transition_ids=("claude.ai@8",))
    await outbox.enqueue([(start, "a7", channel)], now=utcnow())
    await outbox.enqueue_side(announcement(channel), now=utcnow())
    await outbox.enqueue([(update, "a8", channel)], now=utcnow())

    await engine(redis, peer, CollectorRegistry()).drain(20)

    assert [op for op, _, _ in peer.ops(channel)] == ["post", "post", "edit", "reply"]
    assert peer.texts(channel) == ["maria subscribed this channel to api (1)"]
    parent = peer.parent(channel)
    assert peer.edited(channel) == {parent}
    ref = await MessageStore(redis).get(channel, start.key)
    assert ref is not None and ref.ts == parent
