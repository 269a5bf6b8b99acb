"""Webhook delivery: `WebhookSender` POSTs each alert, rendered and signed by
`bot.chat.webhook.render`, to the webhook's URL through the one shared httpx client, and
`webhook_error` turns an answer into a DeliveryError. IO (httpx, the webhook store)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import httpx

from bot.chat.webhook.render import delivery_key, to_webhook_request
from bot.chat.webhook.target import Webhook, url_problem
from bot.core.model import Alert, ChannelRef, MessageRef, Platform
from bot.errors import ConfigError, DeliveryError, ErrorKind
from bot.store.webhooks import WebhookStore
from bot.watch.fetch import resolved, retry_after

log = logging.getLogger(__name__)


def webhook_error(status: int, retry_after_header: str | None, *, now: float) -> DeliveryError:
    """The DeliveryError for a non-2xx answer. Rules, first match wins:

    1. 429: RATE_LIMITED, retry_after = Retry-After (seconds or an HTTP date; 1 s if absent);
    2. 408 and 5xx: TRANSIENT, the engine backs off and tries again;
    3. anything else (4xx, and 3xx: redirects are not followed): PERMANENT, the webhook's
       subscription is disabled and the entry dead-lettered, like a deleted chat channel.
    """
    reason = f"webhook HTTP {status}"
    if status == 429:
        wait = retry_after(retry_after_header, now=now)
        return DeliveryError(
            reason, ErrorKind.RATE_LIMITED, retry_after=1.0 if wait is None else wait
        )
    if status == 408 or status >= 500:
        return DeliveryError(reason)
    return DeliveryError(reason, ErrorKind.PERMANENT)


async def check_target(webhook: Webhook) -> None:
    """Before each POST of a webhook added without --allow-private: its host must still
    resolve to public addresses only (a name re-pointed at an inside address after it was
    added is refused). Raises: DeliveryError (PERMANENT when refused, TRANSIENT when the
    name does not resolve right now)."""
    if webhook.allow_private:
        return
    try:
        addresses = await resolved(webhook.url)
    except OSError as e:
        raise DeliveryError(f"webhook host does not resolve: {e.strerror or e}") from None
    problem = url_problem(webhook.url, addresses, allow_private=False)
    if problem is not None:  # the host, never the URL: its path may be the credential
        raise DeliveryError(f"webhook refused: {problem}", ErrorKind.PERMANENT)


class WebhookSender:
    """ChatSender for outgoing webhooks. A webhook has no message to edit or thread under:
    `post` and `reply` each POST the alert (its `outage_id` lets a receiver thread or edit),
    `edit` does nothing. Every POST carries `Idempotency-Key` (the delivery key), so a
    receiver can drop the repeat of an attempt whose answer we never saw.

    timeout: per POST (connect and read); clock: wall time for the signature's timestamp.
    """

    platform = Platform.WEBHOOK

    def __init__(
        self,
        client: httpx.AsyncClient,
        store: WebhookStore,
        *,
        timeout: httpx.Timeout,
        clock: Callable[[], datetime],
    ) -> None:
        self._client = client
        self._store = store
        self._timeout = timeout
        self._clock = clock

    async def post(self, channel: ChannelRef, alert: Alert) -> MessageRef:
        """POST the alert to the webhook. Raises: DeliveryError."""
        try:
            webhook = await self._store.get(channel.channel)
        except ConfigError as e:  # no key decrypts it: retried, dead-lettered, never disabled
            raise DeliveryError(f"webhook unreadable: {e}") from None
        except Exception as e:  # the store is down: retry later, never disable the webhook
            raise DeliveryError(f"webhook lookup failed: {type(e).__name__}") from e
        if webhook is None:
            raise DeliveryError("webhook removed", ErrorKind.PERMANENT)
        await check_target(webhook)
        now = self._clock()
        request = to_webhook_request(webhook, alert, timestamp=int(now.timestamp()))
        try:
            resp = await self._client.post(
                webhook.url, content=request.body, headers=request.headers, timeout=self._timeout
            )
        except httpx.TimeoutException as e:
            raise DeliveryError(f"webhook timeout: {type(e).__name__}") from None
        except httpx.HTTPError as e:  # never the URL: it may carry the receiver's secret
            raise DeliveryError(f"webhook connection failed: {type(e).__name__}") from None
        if not resp.is_success:
            header = resp.headers.get("Retry-After")
            raise webhook_error(resp.status_code, header, now=now.timestamp())
        return MessageRef(channel=channel, ts=delivery_key(channel, alert))

    async def edit(self, ref: MessageRef, alert: Alert) -> None:
        """Nothing: a webhook's receiver edits on its side, keyed on the outage id."""

    async def reply(self, parent: MessageRef, alert: Alert, *, broadcast: bool) -> MessageRef:
        """POST the update like any alert; the parent's ref stays the outage's.
        Raises: DeliveryError."""
        await self.post(parent.channel, alert)
        return parent

    async def notify(self, channel: ChannelRef, text: str, *, key: str = "") -> None:
        """Nothing: a webhook receives alerts only, in its documented format."""

    async def notify_user(self, workspace: str, user_id: str, text: str, *, key: str = "") -> None:
        """Nothing: a webhook's owner is the operator, told by the log and `aistatus
        deliveries`."""
        log.debug("webhook owner %s not messaged (no channel for it)", workspace)
