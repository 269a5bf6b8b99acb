"""The interfaces between the pipeline and the outside: where transitions go (`Sink`) and how an
alert reaches a chat channel (`ChatSender`). Pure: protocols only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, runtime_checkable

from bot.core.model import (
    Alert,
    ChannelRef,
    CommandContext,
    MessageRef,
    Platform,
    Reply,
    SideMessage,
    Transition,
)

CommandHandler = Callable[[str, CommandContext], Awaitable[Reply]]
"""Runs one `/aistatus` command text in a context: `bot.chat.actions.handle` bound to its services.
What the Slack and Discord adapters call for every command, button and autocomplete-free verb;
it answers every failure with a Reply and never raises."""

HomeProvider = Callable[[str], Awaitable[Reply]]
"""The live board plus one workspace's subscriptions (by Slack team id), for the App Home."""

SideQueue = Callable[[SideMessage], Awaitable[None]]
"""Queues one side message (an announcement, a direct message) in the outbox, where the delivery
engine sends it like an alert: paced, retried, dead-lettered (bot.delivery.side.SideOutbox).
Never raises: a message it could not queue is logged."""


class Sink(Protocol):
    """Receives every recorded transition exactly once (console, or the delivery outbox)."""

    async def publish(self, transitions: Sequence[Transition]) -> None: ...


class ChatSender(Protocol):
    """One chat platform's thin send layer. Every method raises DeliveryError on failure, its
    `kind` saying what happened: PERMANENT for a channel that is gone / no access / token revoked
    (the subscription gets disabled), RATE_LIMITED with `retry_after` for 429s, TRANSIENT for
    the rest (backoff and retry), PARENT_GONE for a parent message that was deleted (the delivery
    layer then posts a new parent).
    """

    platform: Platform

    async def post(self, channel: ChannelRef, alert: Alert) -> MessageRef:
        """Post a new parent message for an alert."""
        ...

    async def edit(self, ref: MessageRef, alert: Alert) -> None:
        """Edit the parent message to the alert's current state."""
        ...

    async def reply(self, parent: MessageRef, alert: Alert, *, broadcast: bool) -> MessageRef:
        """Post an update under the parent (Slack: thread reply, broadcast for recovery;
        Discord: in a thread started from the parent, or a reply). Returns the parent's ref with
        `thread` filled in, so later replies reuse the thread."""
        ...

    async def notify(self, channel: ChannelRef, text: str, *, key: str = "") -> None:
        """A plain message to a channel (an announcement), `text` rendered for the platform
        already. `key`, when given, makes a repeat findable or a no-op (Slack: metadata;
        Discord: the nonce)."""
        ...

    async def notify_user(self, workspace: str, user_id: str, text: str, *, key: str = "") -> None:
        """A direct message from the bot to one person (whoever subscribed a channel whose
        alerts had to stop). Slack: the app's Messages tab; Discord: a DM channel. `key` as for
        `notify`."""
        ...


@runtime_checkable
class SentFinder(Protocol):
    """A ChatSender that can look in a channel for a message it may have sent already (Slack:
    the delivery key in the message's metadata). The delivery engine asks it before sending
    again an entry whose earlier attempt's outcome is unknown (a kill, a lost answer, a
    timeout). Senders whose platform dedups by itself (Discord: the nonce) need not be one."""

    async def find_sent(
        self, channel: ChannelRef, alert: Alert, *, thread: MessageRef | None
    ) -> MessageRef | None:
        """The message of `alert` in `channel` (None: a parent) or in `thread`'s replies, as
        post / reply would have returned it; None when it is not there. Raises: DeliveryError."""
        ...


@runtime_checkable
class SideFinder(Protocol):
    """A ChatSender that can look for a side message it may have sent already (Slack: the key
    in an announcement's metadata). Asked, like SentFinder, before a side message whose earlier
    attempt's outcome is unknown is sent again."""

    async def find_side(self, message: SideMessage) -> bool:
        """Is `message` there already? False when it is not, or the sender cannot tell.
        Raises: DeliveryError."""
        ...
