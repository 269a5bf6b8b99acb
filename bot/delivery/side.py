"""Side messages (bot.core.model.SideMessage: announcements, direct messages) through the outbox:
`SideOutbox` queues them for the chat edges and the failure handler; `send_side` is the one call
that delivers one (bot.delivery.attempt). IO (the outbox; a chat sender).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bot.chat.ports import ChatSender
from bot.core.model import SideKind, SideMessage
from bot.delivery.loop import REDIS_ERRORS, persist
from bot.store.outbox import OutboxStore

log = logging.getLogger("bot.delivery")


class SideOutbox:
    """A `bot.chat.ports.SideQueue`: each message becomes one outbox entry in its lane (once per
    key), which the delivery engine sends like an alert. Never raises: a message that cannot be
    queued while Redis is away (past `within` seconds) is logged and lost, as the command that
    made it would have failed too."""

    def __init__(
        self, outbox: OutboxStore, *, clock: Callable[[], datetime], within: float = 5.0
    ) -> None:
        self._outbox = outbox
        self._clock = clock
        self._within = within

    async def __call__(self, message: SideMessage) -> None:
        try:
            await persist(
                lambda: self._outbox.enqueue_side(message, now=self._clock()), within=self._within
            )
        except REDIS_ERRORS as e:
            log.warning(
                "delivery: could not queue the %s for %s: %s", message.kind, message.to.key, e
            )


async def send_side(sender: ChatSender, message: SideMessage) -> None:
    """Send one side message: an announcement to its channel, a notice to its person's DM.
    Raises: DeliveryError."""
    if message.kind is SideKind.NOTICE:
        await sender.notify_user(message.to.workspace, message.user, message.text, key=message.key)
    else:
        await sender.notify(message.to, message.text, key=message.key)
