"""One attempt: a lane's head entry -> the chat API. Book the call's pacing slot (no Redis while
waiting for it), take the channel's turn and lease, check the entry may go (decodable, channel
enabled, a sender), make the calls of its pure `plan_delivery`, record and acknowledge; a side
message (an announcement, a direct message) is one call and no parent. IO; failures go to
`bot.delivery.failure`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from functools import partial
from typing import TypeVar

from bot.alerting.alert import END_KINDS
from bot.chat.ports import ChatSender, SentFinder, SideFinder
from bot.core.model import ChannelRef, MessageRef, Platform, SideMessage
from bot.delivery.config import DeliveryConfig
from bot.delivery.failure import FailureHandler
from bot.delivery.lane import DONE, Lane, Next
from bot.delivery.lease import Leases
from bot.delivery.loop import InFlight, deadline, persist
from bot.delivery.pacing import Pacer, on_grid
from bot.delivery.plan import Plan, Step, plan_delivery
from bot.delivery.retry import Outcome
from bot.delivery.side import send_side
from bot.delivery.tally import Acks
from bot.errors import DeliveryError
from bot.ops.logs import context
from bot.ops.metrics import DeliveryMetrics
from bot.store.outbox import BadEntry, Begin, Entry, OutboxEntry, OutboxStore, SideEntry

log = logging.getLogger("bot.delivery")

T = TypeVar("T")


class Attempt:
    """The Worker of every lane (bot.delivery.lane). A cancelled lane still finishes, and
    records, a chat call already made (`inflight`): a stop never causes a repeat."""

    def __init__(
        self,
        senders: Mapping[Platform, ChatSender],
        outbox: OutboxStore,
        leases: Leases,
        pacer: Pacer,
        inflight: InFlight,
        acks: Acks,
        *,
        failure: FailureHandler,
        config: DeliveryConfig,
        metrics: DeliveryMetrics,
        clock: Callable[[], datetime],
    ) -> None:
        self._senders = senders
        self._outbox = outbox
        self._leases = leases
        self._pacer = pacer
        self._inflight = inflight
        self._acks = acks
        self._failure = failure
        self._config = config
        self._metrics = metrics
        self._clock = clock
        self._prune_at = 0.0  # loop time of the next pruning of full pacing buckets

    async def handle(self, lane: Lane, seq: int, entry: Entry) -> Next:
        """One look at the lane's head, inside a worker slot. Every line logged meanwhile
        (here, in the failure handler, in a sender) carries channel, alert_id and attempt."""
        tries = lane.tries.get(entry.id)
        attempt = 1 + (tries.transient + tries.rate_limited + tries.parent_gone if tries else 0)
        alert_id = entry.alert_id if not isinstance(entry, BadEntry) else None
        with context(channel=lane.channel.key, alert_id=alert_id, attempt=attempt):
            return await self._handle(lane, seq, entry)

    async def _handle(self, lane: Lane, seq: int, entry: Entry) -> Next:
        channel = lane.channel
        sender = self._senders.get(channel.platform)
        # A flip that a newer queued alert supersedes makes no call (plan rule 2): no wait.
        coalesced = (
            isinstance(entry, OutboxEntry) and entry.alert.flip and lane.newest(entry) is not entry
        )
        sends = not isinstance(entry, BadEntry) and lane.gone is None and sender is not None
        if sends and not coalesced and not lane.booked:
            # The pacer first, Redis second: a channel waiting for its turn costs no round trip
            # and holds no lease, and it wakes once, at its own turn (Pacer.reserve).
            wait, lane.booked = self._reserve(lane)
            if wait > 0:
                return Next(sleep=wait)
        begin = await self._outbox.begin(entry, seq, self._leases.token, self._leases.ttl_ms)
        if begin.verdict == "done":  # done elsewhere (another consumer, or before a crash)
            self._acks.add(entry)
            return DONE
        if begin.verdict == "wait":
            return Next(gate=begin.handled)
        if begin.verdict != "go":  # busy: another consumer is sending to this channel
            return Next(busy=True)
        # From here this consumer holds the channel's lease: give it back on every way out.
        try:
            if isinstance(entry, BadEntry):
                await self._failure.give_up(lane, entry, seq, entry.error, Outcome.GIVE_UP)
                return DONE
            if lane.gone is None and begin.disabled is not None:
                # Disabled in Redis by another lane or replica (this lane started afterwards).
                lane.gone = begin.disabled
            if lane.gone is not None:
                reason = f"channel disabled: {lane.gone}"
                await self._failure.give_up(lane, entry, seq, reason, Outcome.PERMANENT)
                return DONE
            if sender is None:
                reason = f"no sender for {channel.platform}"
                await self._failure.give_up(lane, entry, seq, reason, Outcome.GIVE_UP)
                return DONE
            if not coalesced:
                lane.booked = False  # this call uses the slot booked for it
        except BaseException:
            await asyncio.shield(
                self._leases.release_channel(channel, seq, unsent=not begin.unsure)
            )
            raise
        # Shielded: a cancelled worker still finishes (and records) a call already made.
        deliver = (
            self._deliver_side(lane, entry, sender, unsure=begin.unsure)
            if isinstance(entry, SideEntry)
            else self._deliver(lane, entry, sender, begin)
        )
        error = await asyncio.shield(self._inflight.spawn(deliver))
        if error is None:
            return DONE
        return await self._failure.after_error(lane, entry, seq, error)

    def _reserve(self, lane: Lane) -> tuple[float, bool]:
        """Book the lane's next call with the pacer: (seconds to sleep first, booked). The
        sleep ends on the `wake_grid`, with the other turns due by then."""
        now = asyncio.get_running_loop().time()
        if now >= self._prune_at:  # bounded memory with many channels
            self._pacer.prune(now)
            self._prune_at = now + self._config.min_idle / 4
        wait, booked = self._pacer.reserve(lane.channel, now)
        return on_grid(now, wait, self._config.wake_grid), booked

    async def _deliver(
        self, lane: Lane, entry: OutboxEntry, sender: ChatSender, begin: Begin
    ) -> DeliveryError | None:
        """Holding the channel's lease: send, record (releasing the lease), acknowledge.
        Returns the chat error (nothing recorded, the lease still held) or None (done)."""
        channel = entry.channel
        key = entry.alert.key
        newest = lane.newest(entry)
        parent = begin.parent
        plan = plan_delivery(
            entry.alert.kind,
            has_parent=parent is not None,
            parent_current=parent is not None and lane.shows.get(key) == newest.alert_id,
            superseded=entry.alert.flip and newest is not entry,
            quiet=entry.alert.quiet,
            parent_ended=parent is not None and key in lane.ended,
        )
        sent = await self._holding(
            channel,
            sender,
            self._send(lane, entry, sender, plan, parent, newest, unsure=begin.unsure),
        )
        if isinstance(sent, DeliveryError):
            return sent
        ref, first = sent
        within = self._config.redis_retry
        await persist(
            partial(
                self._outbox.complete,
                channel,
                entry.seq,
                outage=key,
                ref=ref,
                lease_token=self._leases.token,
            ),
            within=within,
        )
        platform = str(channel.platform)
        if first is not None:
            self._metrics.delivered.labels(platform, str(first)).inc()
            if entry.queued_at is not None:
                latency = (self._clock() - entry.queued_at).total_seconds()
                self._metrics.latency.labels(platform).observe(max(0.0, latency))
        tries = lane.tries.get(entry.id)
        # Acknowledged and counted with the next batch. Successes are DEBUG: the alert's one
        # INFO line is its summary (bot.delivery.tally).
        self._acks.add(entry, count=True, retried=tries is not None)
        if tries is None:
            log.debug(
                "delivered %s %s to %s (%s)", entry.alert.kind, entry.alert_id, channel.key,
                plan.reason,
            )  # fmt: skip
        else:
            log.debug(
                "delivered %s %s to %s (%s) after %d failed attempts, the last: %s",
                entry.alert.kind,
                entry.alert_id,
                channel.key,
                plan.reason,
                tries.transient + tries.rate_limited + tries.parent_gone,
                tries.last,
            )
        return None

    async def _deliver_side(
        self, lane: Lane, entry: SideEntry, sender: ChatSender, *, unsure: bool
    ) -> DeliveryError | None:
        """A side message's one call, holding its lane's lease; then record it done (no parent
        ref: side messages belong to no outage) and acknowledge. Returns the chat error, or None
        (done). `unsure`: as for `_send`, look first where the sender can (SideFinder)."""
        side = entry.side
        error = await self._holding(entry.channel, sender, self._send_side(sender, side, unsure))
        if isinstance(error, DeliveryError):
            return error
        within = self._config.redis_retry
        complete = partial(
            self._outbox.complete, entry.channel, entry.seq, lease_token=self._leases.token
        )
        await persist(complete, within=within)
        self._acks.add(entry)  # acknowledged with the next batch
        platform = str(entry.channel.platform)
        self._metrics.delivered.labels(platform, str(side.kind)).inc()
        if entry.queued_at is not None:
            latency = (self._clock() - entry.queued_at).total_seconds()
            self._metrics.latency.labels(platform).observe(max(0.0, latency))
        log.debug("delivered %s to %s", side.what, entry.channel.key)
        return None

    async def _holding(
        self, channel: ChannelRef, sender: ChatSender, calls: Awaitable[T]
    ) -> T | DeliveryError:
        """An entry's chat `calls` while the channel's lease is renewed (a slow call): their
        result, or the chat error (a sender bug counts as a transient one, logged)."""
        try:
            async with self._leases.keeping(channel):
                return await calls
        except DeliveryError as e:
            return e
        except Exception as e:  # a sender bug: log it, retry like a transient error
            log.exception("delivery: sender %s failed unexpectedly", type(sender).__name__)
            return DeliveryError(f"sender error: {type(e).__name__}")

    async def _send_side(self, sender: ChatSender, side: SideMessage, unsure: bool) -> None:
        """A side message's one call; `unsure`: look first where the sender can (SideFinder),
        and send nothing when it is there. Raises: DeliveryError."""
        if unsure and isinstance(sender, SideFinder) and await self._call(sender.find_side(side)):
            log.info("delivery: %s was already sent (an earlier answer was lost)", side.what)
            return
        await self._call(send_side(sender, side))

    async def _send(
        self,
        lane: Lane,
        entry: OutboxEntry,
        sender: ChatSender,
        plan: Plan,
        parent: MessageRef | None,
        newest: OutboxEntry,
        *,
        unsure: bool,
    ) -> tuple[MessageRef | None, Step | None]:
        """Make the plan's calls. `unsure`: an earlier attempt's outcome is unknown, so the
        message the plan creates (the post or the reply; edits repeat harmlessly) is looked for
        first, where the sender can (SentFinder), and not sent again when found. Returns (the
        parent ref to store, or None to keep it; the first step made). Raises: DeliveryError
        from the sender (a call past `call_timeout`: "timeout")."""
        key = entry.alert.key
        ref: MessageRef | None = None
        for step in plan.steps:
            if step is Step.POST:
                found = await self._find(sender, entry, None) if unsure else None
                ref = found or await self._call(sender.post(entry.channel, entry.alert))
                lane.show(key, entry.alert_id, ends=entry.alert.kind in END_KINDS)
            elif step is Step.EDIT:
                assert parent is not None
                await self._call(sender.edit(parent, newest.alert))
                lane.show(key, newest.alert_id, ends=newest.alert.kind in END_KINDS)
            else:
                assert parent is not None
                found = await self._find(sender, entry, parent) if unsure else None
                threaded = found or await self._call(
                    sender.reply(parent, entry.alert, broadcast=plan.broadcast)
                )
                if threaded != parent and threaded.channel == parent.channel:
                    ref = threaded
        return ref, plan.steps[0] if plan.steps else None

    async def _find(
        self, sender: ChatSender, entry: OutboxEntry, thread: MessageRef | None
    ) -> MessageRef | None:
        """The entry's message if an earlier attempt did send it (None: send it now)."""
        if not isinstance(sender, SentFinder):
            return None  # the platform dedups by itself (Discord's nonce)
        found = await self._call(sender.find_sent(entry.channel, entry.alert, thread=thread))
        if found is not None:
            log.info(
                "delivery: %s %s was already in %s (an earlier attempt's answer was lost): "
                "recorded, not sent again", entry.alert.kind, entry.alert_id, entry.channel.key,
            )  # fmt: skip
        return found

    async def _call(self, call: Awaitable[T]) -> T:
        """One whole chat call under a hard deadline: past `call_timeout` it is abandoned
        (whatever the library does with its cancellation) and counts as a transient error
        whose outcome is unknown. Raises: DeliveryError."""
        try:
            return await deadline(call, self._config.call_timeout)
        except TimeoutError:
            raise DeliveryError("timeout") from None
