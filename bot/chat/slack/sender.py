"""Slack delivery: `SlackSender` (chat.postMessage / chat.update for the delivery engine) and the
error mappers that turn a failed call into a DeliveryError (`slack_error`, `slack_api_error`). IO
(slack_sdk); rendering is `bot.chat.slack.render` (pure)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.alerting.alert import alert_id
from bot.chat.slack.render import (
    SlackMessage,
    to_slack_parent,
    to_slack_thread_reply,
)
from bot.core.model import Alert, ChannelRef, MessageRef, Platform, SideKind, SideMessage
from bot.errors import DeliveryError, ErrorKind
from bot.settings import Settings

log = logging.getLogger(__name__)

TokenLookup = Callable[[str], Awaitable[str | None]]
"""The bot token of a workspace (team id), or None when the app is not installed there."""


# -- error mapping (pure) --------------------------------------------------------------------------

# Retrying cannot help: the channel is gone or closed to us, or the token is. The subscription is
# disabled and the channel told why (when it still can be).
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "invalid_auth",
        "not_authed",
        "missing_scope",
        "no_permission",
        "team_access_not_granted",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "ekm_access_denied",
        "not_installed",  # our own: no installation for the channel's workspace
    }
)
# The message we meant to edit or thread under was deleted: the delivery layer posts a new parent.
GONE_ON_EDIT = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
GONE_ON_REPLY = frozenset({"thread_not_found", "message_not_found"})
# The history read that checks for a lost answer was refused, but posting may still work: an app
# from an older manifest without channels:history / groups:history, or a public channel the bot
# posts to (chat:write.public) without being a member that it could not join (no channels:join).
# Then the check is skipped, never the alert.
UNCHECKABLE = frozenset({"missing_scope", "not_in_channel"})
# conversations.join refusals no retry changes (beside PERMANENT_ERRORS such as missing_scope).
JOIN_REFUSED = frozenset({"method_not_supported_for_channel_type", "user_is_restricted"})


def _retry_after(value: str | None) -> float:
    try:
        seconds = float(value) if value is not None else 1.0
    except ValueError:
        seconds = 1.0
    return seconds if seconds >= 0 else 1.0


def slack_error(
    status: int | None,
    error: str | None,
    retry_after: str | None = None,
    *,
    gone: Collection[str] = (),
) -> DeliveryError:
    """The DeliveryError for a failed Slack call (its HTTP status, `error` code and Retry-After
    header). Rules, first match wins:

    1. HTTP 429 or `ratelimited`: RATE_LIMITED, retry_after = the Retry-After header (1 s if
       absent or bad).
    2. an error in `gone` (the call's deleted-message codes): PARENT_GONE.
    3. a PERMANENT_ERRORS code: PERMANENT.
    4. anything else (5xx, `internal_error`, unknown codes): TRANSIENT, the engine backs off.
    """
    if status == 429 or error == "ratelimited":
        return DeliveryError(
            "ratelimited", ErrorKind.RATE_LIMITED, retry_after=_retry_after(retry_after)
        )
    if error and error in gone:
        return DeliveryError(error, ErrorKind.PARENT_GONE)
    if error in PERMANENT_ERRORS:
        return DeliveryError(str(error), ErrorKind.PERMANENT)
    if error:
        return DeliveryError(f"{error} (HTTP {status})" if status and status != 200 else error)
    return DeliveryError(f"HTTP {status}" if status else "no response")


def slack_api_error(e: SlackApiError, *, gone: Collection[str] = ()) -> DeliveryError:
    """`slack_error` of the answer a SlackApiError carries."""
    response = e.response
    status = getattr(response, "status_code", None)
    data = getattr(response, "data", None)
    error = data.get("error") if isinstance(data, dict) else None
    headers = getattr(response, "headers", None) or {}
    return slack_error(status, error, headers.get("Retry-After"), gone=gone)


# -- exactly once (pure) --------------------------------------------------------------------------

EVENT_TYPE = "aistatus_alert"
SIDE_EVENT_TYPE = "aistatus_side"  # an announcement or direct message: its side message key
LOOK_BACK = 50  # recent messages searched for a delivery whose answer was lost
SKEW = timedelta(minutes=10)  # the history searched starts this long before the alert was made


def delivery_metadata(alert: Alert) -> dict[str, Any]:
    """The metadata every alert message carries: its delivery key (the alert's stable id, one
    message per (alert, channel)), so a re-send can find it first."""
    return {"event_type": EVENT_TYPE, "event_payload": {"delivery": alert_id(alert)}}


def side_metadata(key: str) -> dict[str, Any]:
    """The metadata a side message carries: its key, so a re-send can find it first."""
    return {"event_type": SIDE_EVENT_TYPE, "event_payload": {"delivery": key}}


def find_delivery(
    messages: object, alert: Alert | None, *, key: str = "", event_type: str = EVENT_TYPE
) -> str | None:
    """The ts of the message in a conversations.history / .replies page carrying the alert's
    delivery key (or `key` of `event_type`), else None."""
    key = alert_id(alert) if alert is not None else key
    for message in messages if isinstance(messages, list) else []:
        meta = message.get("metadata") if isinstance(message, dict) else None
        payload = meta.get("event_payload") if isinstance(meta, dict) else None
        if (
            isinstance(payload, dict)
            and meta.get("event_type") == event_type
            and payload.get("delivery") == key
        ):
            return str(message.get("ts"))
    return None


# -- the sender ------------------------------------------------------------------------------------


def slack_web_client(
    settings: Settings, token: str | None = None, *, session: aiohttp.ClientSession | None = None
) -> AsyncWebClient:
    """An AsyncWebClient on settings.slack_api_url that never retries on its own: the delivery
    engine owns retries and 429 waits (one place, not two). Pass one long-lived `session` in
    production: without it slack_sdk opens a new connection (and TLS handshake) per call."""
    if token is None and settings.slack_bot_token is not None:
        token = settings.slack_bot_token.get_secret_value()
    timeout = max(1, round(settings.connect_timeout + settings.read_timeout))
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=timeout,
        retry_handlers=[],
        session=session,
    )


class SlackSender:
    """ChatSender for Slack: chat.postMessage / chat.update with the renderings of slack_render.

    One workspace: the client's own token. Many: `tokens` looks up the bot token of the channel's
    workspace for every call (a missing installation is a permanent "not_installed").
    """

    platform = Platform.SLACK

    def __init__(self, client: AsyncWebClient, *, tokens: TokenLookup | None = None) -> None:
        self._client = client
        self._tokens = tokens
        self._unchecked: set[tuple[str, str]] = set()  # (workspace, reason) already logged
        self._joined: set[str] = set()  # channels this process joined (or tried to) to read

    async def _auth(self, channel: ChannelRef) -> dict[str, str]:
        if self._tokens is None:
            return {}
        try:
            token = await self._tokens(channel.workspace)
        except Exception as e:  # the store is down: retry later, never disable the channel
            log.warning("bot token lookup for %s failed: %s", channel.workspace, type(e).__name__)
            raise DeliveryError(f"token lookup failed: {type(e).__name__}") from e
        if not token:
            raise DeliveryError("not_installed", ErrorKind.PERMANENT)
        return {"token": token}

    async def _call(
        self, call: Awaitable[AsyncSlackResponse], *, gone: Collection[str] = ()
    ) -> AsyncSlackResponse:
        try:
            return await call
        except SlackApiError as e:
            raise slack_api_error(e, gone=gone) from e
        except (aiohttp.ClientError, TimeoutError) as e:
            raise DeliveryError(f"connection failed: {type(e).__name__}") from e

    async def post(self, channel: ChannelRef, alert: Alert) -> MessageRef:
        """Post a new parent message. Raises: DeliveryError."""
        message = to_slack_parent(alert)
        resp = await self._call(
            self._client.chat_postMessage(
                channel=channel.channel,
                **message.kwargs(),
                metadata=delivery_metadata(alert),
                unfurl_links=False,
                unfurl_media=False,
                **await self._auth(channel),
            )
        )
        return MessageRef(channel=channel, ts=str(resp["ts"]))

    async def find_sent(
        self, channel: ChannelRef, alert: Alert, *, thread: MessageRef | None
    ) -> MessageRef | None:
        """The alert's message, if a post (thread None: the channel's recent history) or a reply
        (the thread's replies) whose answer was lost did make it. Raises: DeliveryError."""
        messages = await self._recent(
            channel, alert.at, thread=(thread.thread or thread.ts) if thread else None
        )
        ts = find_delivery(messages, alert)
        if ts is None:
            return None
        if thread is None:
            return MessageRef(channel=channel, ts=ts)
        return MessageRef(channel=thread.channel, ts=thread.ts, thread=thread.thread or thread.ts)

    async def _recent(
        self, channel: ChannelRef, since: datetime, *, thread: str | None = None
    ) -> object:
        """The channel's recent messages (or the thread's replies) from SKEW before `since`,
        with their metadata; None when Slack refuses the read for a reason no retry fixes
        (UNCHECKABLE: logged once). A public channel the bot posts to without being a member
        (`not_in_channel`) is joined first (`conversations.join`, once per process), then read.
        Raises: DeliveryError."""
        oldest = f"{(since - SKEW).timestamp():.6f}"
        auth = await self._auth(channel)
        joining: str | None = None  # why the join was refused, when it was
        reason = ""
        for _ in range(2):
            try:
                if thread is None:
                    resp = await self._call(
                        self._client.conversations_history(
                            channel=channel.channel, limit=LOOK_BACK, oldest=oldest,
                            include_all_metadata=True, **auth,
                        )
                    )  # fmt: skip
                else:
                    resp = await self._call(
                        self._client.conversations_replies(
                            channel=channel.channel, ts=thread, limit=LOOK_BACK, oldest=oldest,
                            include_all_metadata=True, **auth,
                        )
                    )  # fmt: skip
                return resp.get("messages")
            except DeliveryError as e:
                if e.reason not in UNCHECKABLE:
                    raise
                reason = e.reason
            if reason != "not_in_channel" or channel.key in self._joined:
                break
            joining = await self._join(channel, auth)
            if joining is not None:
                break
        self._cannot_check(channel, reason, joining)
        return None

    async def _join(self, channel: ChannelRef, auth: dict[str, str]) -> str | None:
        """Join a public channel the bot posts to unjoined, so its history can be read: None
        when joined, else Slack's refusal (`missing_scope`: an app without channels:join; a
        private channel). Raises: DeliveryError for a failure a retry may fix."""
        self._joined.add(channel.key)
        try:
            await self._call(self._client.conversations_join(channel=channel.channel, **auth))
        except DeliveryError as e:
            if e.kind is ErrorKind.PERMANENT or e.reason in JOIN_REFUSED:
                return e.reason
            self._joined.discard(channel.key)  # a 5xx, a 429, the network: try again next time
            raise
        log.info("Slack: joined %s to check its history before re-sending", channel.key)
        return None

    def _cannot_check(self, channel: ChannelRef, reason: str, joining: str | None) -> None:
        """Logged once per workspace and reason: the lost answer is re-sent unchecked."""
        if (channel.workspace, reason) in self._unchecked:
            return
        self._unchecked.add((channel.workspace, reason))
        if reason == "missing_scope":
            why = "add the channels:history and groups:history scopes and reinstall the app"
        elif joining == "missing_scope":
            why = "add the channels:join scope and reinstall the app, or /invite @aistatus"
        else:
            why = "invite the bot to the channel (/invite @aistatus)"
        refused = f"; joining it: {joining}" if joining else ""
        log.warning(
            "Slack workspace %s: cannot look for a message whose answer was lost (%s in %s%s), "
            "so it is sent again and may show twice; %s",
            channel.workspace, reason, channel.channel, refused, why,
        )  # fmt: skip

    async def edit(self, ref: MessageRef, alert: Alert) -> None:
        """Edit the parent to the alert's current state. Raises: DeliveryError (PARENT_GONE
        when the parent was deleted)."""
        message = to_slack_parent(alert)
        await self._call(
            self._client.chat_update(
                channel=ref.channel.channel,
                ts=ref.ts,
                **message.kwargs(),
                **await self._auth(ref.channel),
            ),
            gone=GONE_ON_EDIT,
        )

    async def reply(self, parent: MessageRef, alert: Alert, *, broadcast: bool) -> MessageRef:
        """Post what changed in the parent's thread (broadcast to the channel for recovery).
        Raises: DeliveryError (PARENT_GONE when the thread's parent was deleted)."""
        message: SlackMessage = to_slack_thread_reply(alert)
        thread = parent.thread or parent.ts
        await self._call(
            self._client.chat_postMessage(
                channel=parent.channel.channel,
                thread_ts=thread,
                reply_broadcast=broadcast,
                **message.kwargs(),
                metadata=delivery_metadata(alert),
                unfurl_links=False,
                unfurl_media=False,
                **await self._auth(parent.channel),
            ),
            gone=GONE_ON_REPLY,
        )
        return MessageRef(channel=parent.channel, ts=parent.ts, thread=thread)

    async def notify_user(self, workspace: str, user_id: str, text: str, *, key: str = "") -> None:
        """A direct message in the app's Messages tab: chat.postMessage to the user's id. The
        text is ours (it may mention a channel as <#C…>), so it is not escaped.
        Raises: DeliveryError."""
        await self.notify(ChannelRef(Platform.SLACK, workspace, user_id), text, key=key)

    async def notify(self, channel: ChannelRef, text: str, *, key: str = "") -> None:
        """A plain message to a channel (or a user id: a direct message), `text` already
        rendered (bot.chat.slack.render escapes it), with `key` in its metadata.
        Raises: DeliveryError."""
        meta = {"metadata": side_metadata(key)} if key else {}
        await self._call(
            self._client.chat_postMessage(
                channel=channel.channel,
                text=text,
                unfurl_links=False,
                **meta,
                **await self._auth(channel),
            )
        )

    async def find_side(self, message: SideMessage) -> bool:
        """Did an announcement whose answer was lost make it (its key in the channel's recent
        history)? A direct message cannot be looked for (that would need the `im:history`
        scope): False, so it is sent again. Raises: DeliveryError."""
        if message.kind is not SideKind.ANNOUNCE:
            return False
        messages = await self._recent(message.to, message.at)
        found = find_delivery(messages, None, key=message.key, event_type=SIDE_EVENT_TYPE)
        return found is not None
