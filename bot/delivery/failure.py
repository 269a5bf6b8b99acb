"""The failure handler: a failed attempt -> what follows (the pure `retry.next_step`): wait out a
429 on that channel alone, back off, repost a deleted parent, or dead-letter the entry, disabling
the channel on a permanent error and telling its subscriber (a direct message queued in the
outbox, bot.delivery.side). A side message that fails for good is dead-lettered and disables
nothing. IO (stores).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial

from bot.alerting.subscription import Subscription
from bot.chat.ports import ChatSender
from bot.core.model import Platform, SideMessage
from bot.delivery.config import DeliveryConfig
from bot.delivery.lane import AGAIN, DONE, Lane, Next
from bot.delivery.lease import Leases
from bot.delivery.loop import persist
from bot.delivery.pacing import Pacer
from bot.delivery.retry import Outcome, Tries, next_step
from bot.delivery.tally import Acks
from bot.errors import DeliveryError, ErrorKind
from bot.ops.metrics import DeliveryMetrics
from bot.store.messages import MessageStore
from bot.store.outbox import Entry, OutboxEntry, OutboxStore, SideEntry
from bot.store.subscriptions import SubscriptionStore

log = logging.getLogger("bot.delivery")

# Reasons that mean our token itself is dead: no direct message can go out with it either.
TOKEN_DEAD = frozenset(
    {
        "token_revoked",
        "account_inactive",
        "invalid_auth",
        "not_authed",
        "not_installed",
        "unauthorized",
    }
)


class FailureHandler:
    """What follows a failed or impossible attempt. Called holding the channel's lease; every
    way out gives it back (directly, or by recording the entry done)."""

    def __init__(
        self,
        outbox: OutboxStore,
        messages: MessageStore,
        subscriptions: SubscriptionStore,
        senders: Mapping[Platform, ChatSender],
        leases: Leases,
        pacer: Pacer,
        acks: Acks,
        *,
        config: DeliveryConfig,
        metrics: DeliveryMetrics,
        clock: Callable[[], datetime],
        rng: random.Random,
    ) -> None:
        self._acks = acks
        self._outbox = outbox
        self._messages = messages
        self._subs = subscriptions
        self._senders = senders
        self._leases = leases
        self._pacer = pacer
        self._config = config
        self._metrics = metrics
        self._clock = clock
        self._rng = rng

    async def after_error(
        self, lane: Lane, entry: OutboxEntry | SideEntry, seq: int, error: DeliveryError
    ) -> Next:
        """Decide and record what follows a failed attempt. A retry is logged only when its
        error differs from the entry's previous one."""
        channel = entry.channel
        platform = str(channel.platform)
        before = lane.tries.get(entry.id, Tries())
        tries = lane.tries[entry.id] = before.after(error)
        changed = before.last != error.reason
        decision = next_step(error, tries=tries, policy=self._config.retry, rng=self._rng)
        if decision.outcome in (Outcome.PERMANENT, Outcome.GIVE_UP):
            await self.give_up(lane, entry, seq, decision.reason, decision.outcome)
            return DONE
        # A 429 or a missing parent was not applied; anything else may have been (a lost
        # answer, a timeout): the next attempt checks the channel first.
        unsent = error.kind in (ErrorKind.RATE_LIMITED, ErrorKind.PARENT_GONE)
        await self._leases.release_channel(channel, seq, unsent=unsent)
        self._metrics.retried.labels(platform, str(decision.outcome)).inc()
        if decision.outcome is Outcome.PARENT_GONE and isinstance(entry, OutboxEntry):
            if changed:
                log.info(
                    "delivery: parent of %s in %s was deleted (%s); posting a new one",
                    entry.alert.key,
                    channel.key,
                    decision.reason,
                )
            await self._messages.drop(channel, entry.alert.key)
            lane.forget(entry.alert.key)
            return Next(sleep=decision.delay) if decision.delay > 0 else AGAIN
        await persist(
            partial(
                self._outbox.note_retry,
                entry.id,
                channel,
                entry.alert_id,
                tries.transient,
                decision.reason,
            ),
            within=self._config.redis_retry,
        )
        if decision.outcome is Outcome.RETRY_AFTER:
            # Only this channel waits, exactly as long as asked; the pacer holds it.
            self._pacer.block(channel, asyncio.get_running_loop().time() + decision.delay)
            if changed:
                log.info(
                    "delivery: %s rate limited, retrying after %.2fs", channel.key, decision.delay
                )
            return AGAIN
        if changed:
            log.info(
                "delivery: %s failed (%s), attempt %d, retrying in %.2fs",
                channel.key,
                decision.reason,
                tries.transient,
                decision.delay,
            )
        return Next(sleep=decision.delay)

    async def give_up(
        self, lane: Lane, entry: Entry, seq: int, reason: str, outcome: Outcome
    ) -> None:
        """Dead-letter the entry (disabling the channel on a permanent error), move the
        channel's order past it, acknowledge."""
        channel = lane.channel
        now = self._clock()
        within = self._config.redis_retry
        attempts = lane.tries.get(entry.id, Tries()).transient
        if isinstance(entry, SideEntry):  # disables no channel, tells no one: a dead letter
            log.warning("delivery: giving up on %s to %s: %s", entry.side.what, channel.key, reason)
        elif outcome is Outcome.PERMANENT and lane.gone is None:
            lane.gone = reason
            log.warning(
                "delivery: %s refused permanently (%s): disabling its subscription",
                channel.key,
                reason,
            )
            before = await persist(lambda: self._subs.get(channel), within=within)
            await persist(lambda: self._subs.disable(channel, reason, now), within=within)
            if before is not None and before.disabled_reason is None:  # not on a redelivery
                await self._tell_subscriber(before, reason, cause=entry.id, now=now)
        else:
            log.warning("delivery: giving up on %s to %s: %s", entry.id, channel.key, reason)
        await persist(
            lambda: self._outbox.dead_letter(entry, error=reason, attempts=attempts, now=now),
            within=within,
        )
        await persist(
            partial(
                self._outbox.complete,
                channel,
                seq,
                lease_token=self._leases.token,
            ),
            within=within,
        )
        self._acks.add(entry, count=True, retried=attempts > 0, dead=True)
        self._metrics.dead.labels(str(channel.platform), str(outcome)).inc()

    async def _tell_subscriber(
        self, sub: Subscription, reason: str, *, cause: str, now: datetime
    ) -> None:
        """Where possible, tell whoever subscribed the channel that its alerts stopped, and why:
        a direct message queued in the outbox (its own lane: paced, retried, dead-lettered), once
        per entry that disabled the channel. Not with a dead token (no message can go out with
        it), nor to a webhook (its owner is the operator: the log and `aistatus deliveries`)."""
        channel = sub.channel
        platform = channel.platform
        if platform not in self._senders or platform is Platform.WEBHOOK:
            return
        if not sub.created_by or reason in TOKEN_DEAD:
            return
        text = (
            f"aistatus stopped posting alerts to <#{channel.channel}>: the chat platform "
            f"answered `{reason}`. Add the bot to that channel again, or run `/aistatus "
            "subscribe` in a channel it can post to."
        )
        notice = SideMessage.notice(
            platform, channel.workspace, sub.created_by, text,
            key=f"gone:{channel.key}:{cause}", at=now, about=f"{channel.key} disabled",
        )  # fmt: skip
        await persist(
            partial(self._outbox.enqueue_side, notice, now=now), within=self._config.redis_retry
        )
