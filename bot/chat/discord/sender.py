"""Discord delivery: `DiscordSender` posts, edits and threads alerts over REST, and the error
mapper `discord_error` turns a failed call into a DeliveryError. IO (discord.py's HTTPClient).

Rate limits: discord.py's HTTPClient already keeps per-route buckets and waits out short 429s;
with `max_ratelimit_timeout` set it raises `RateLimited` for longer ones, which becomes
`DeliveryError(retry_after=...)` here; the delivery engine owns every retry after a failure. The
one repeat made here is discord.py's own "connection reset" repeat, which it makes only for BSD
and Windows errnos: a request that cannot show twice whose answer was lost is sent again at once
(`_call`, `RESENDS`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import discord
from discord.http import HTTPClient, MultipartParameters, Route

from bot.alerting.alert import alert_id
from bot.chat.discord.render import (
    CONTENT_MAX,
    NO_MENTIONS,
    clip,
    thread_name,
    to_discord_message,
    to_discord_thread_update,
)
from bot.core.model import Alert, ChannelRef, MessageRef, Platform
from bot.errors import ConfigError, DeliveryError, ErrorKind

log = logging.getLogger(__name__)

MAX_RATELIMIT_TIMEOUT = 30.0  # discord.py's floor: shorter 429s are waited out inside the client
THREAD_ARCHIVE_MINUTES = 1440  # a thread goes quiet a day after its last update
NONCE_MAX = 25  # characters Discord allows in a message nonce
BUCKET_SWEEP_S = 60.0  # how often discord.py's idle rate-limit buckets are swept
RESENDS = 2  # repeats of a repeatable request whose answer was lost, within the one call

# Discord JSON error codes (https://discord.com/developers/docs/topics/opcodes-and-status-codes)
UNKNOWN_CHANNEL = 10003
UNKNOWN_GUILD = 10004
UNKNOWN_MESSAGE = 10008
MISSING_ACCESS = 50001
MISSING_PERMISSIONS = 50013
WRONG_CHANNEL_TYPE = 50024  # "Cannot execute action on this channel type" (no threads here)
ARCHIVED_THREAD = 50083
THREAD_EXISTS = 160004  # "A thread has already been created for this message"
THREAD_LOCKED = 160005
TOO_MANY_THREADS = 160006

PERMANENT = {
    UNKNOWN_CHANNEL: "unknown_channel",
    UNKNOWN_GUILD: "unknown_guild",
    MISSING_ACCESS: "missing_access",
    MISSING_PERMISSIONS: "missing_permissions",
}
# Thread creation refused for a reason that a plain reply in the channel avoids.
NO_THREADS = frozenset({WRONG_CHANNEL_TYPE, MISSING_PERMISSIONS, THREAD_LOCKED, TOO_MANY_THREADS})
# Posting into a thread we started failed, but the channel itself may be fine. Missing
# Permissions here is "Send Messages in Threads" denied while "Create Public Threads" is not.
THREAD_GONE = frozenset(
    {UNKNOWN_CHANNEL, MISSING_ACCESS, ARCHIVED_THREAD, THREAD_LOCKED, MISSING_PERMISSIONS}
)
# Refusals that hold for the whole channel: its later updates go straight to channel replies.
THREADLESS = frozenset({MISSING_PERMISSIONS, WRONG_CHANNEL_TYPE})


def configure_api_base(url: str) -> None:
    """Point discord.py (REST, interaction callbacks and webhooks alike) at `url`, e.g.
    `https://discord.com/api/v10` or a loopback server. Process-wide: discord.py builds every
    URL from the class attribute `Route.BASE`."""
    Route.BASE = url.rstrip("/")


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (HTTPS_PROXY / HTTP_PROXY, unless NO_PROXY
    covers its host; never for loopback): discord.py does not read the environment itself,
    unlike httpx and the Slack client."""
    host = urlsplit(url).hostname or ""
    loopback = host in ("localhost", "::1") or host.startswith("127.")
    if not host or loopback or urllib.request.proxy_bypass(host):
        return None
    return urllib.request.getproxies().get(urlsplit(url).scheme) or None


async def open_rest_client(
    token: str,
    *,
    max_ratelimit_timeout: float = MAX_RATELIMIT_TIMEOUT,
    proxy: str | None = None,
) -> HTTPClient:
    """A standalone REST client logged in with the bot token (alerts go out even while the
    gateway reconnects, or from replicas that run no gateway). Close it with `await .close()`.

    Raises: ConfigError when Discord rejects the token; DeliveryError when it cannot be reached.
    """
    http = HTTPClient(
        asyncio.get_running_loop(), max_ratelimit_timeout=max_ratelimit_timeout, proxy=proxy
    )
    try:
        await http.static_login(token)
    except discord.LoginFailure as e:
        await http.close()
        raise ConfigError("DISCORD_TOKEN was rejected by Discord", key="DISCORD_TOKEN") from e
    except (discord.HTTPException, aiohttp.ClientError, OSError) as e:
        await http.close()
        raise DeliveryError(f"discord login failed: {type(e).__name__}") from e
    return http


def sweep_buckets_on_a_timer(http: HTTPClient, every: float = BUCKET_SWEEP_S) -> None:
    """discord.py (2.7.1, pinned) keeps one rate-limit bucket per route and channel, and each
    time it makes a bucket it rescans them all for inactive ones (`_try_clear_expired_ratelimits`,
    once it holds 256): a fan-out to N new channels costs O(N^2) (measured: 26 % of the CPU with
    the limits off, bench delivery). Its buckets only become removable 300 s after their last
    request, so sweeping at most every `every` seconds keeps the same bounded memory. Idempotent."""
    sweep = type(http)._try_clear_expired_ratelimits
    if getattr(http, "_aistatus_sweep", None) is sweep:
        return
    last = [time.monotonic()]

    def throttled() -> None:
        now = time.monotonic()
        if now - last[0] >= every:
            last[0] = now
            sweep(http)

    http._try_clear_expired_ratelimits = throttled  # type: ignore[method-assign]
    http._aistatus_sweep = sweep  # type: ignore[attr-defined]


class DiscordSender:
    """ChatSender for Discord over REST (a logged-in discord.py HTTPClient: the bot's
    `client.http` or `open_rest_client`). Updates go into a thread started from the parent
    message; where threads are refused they become replies to the parent in the channel."""

    platform = Platform.DISCORD

    def __init__(
        self, http: HTTPClient, *, thread_archive_minutes: int = THREAD_ARCHIVE_MINUTES
    ) -> None:
        self.http = http
        sweep_buckets_on_a_timer(http)
        self.thread_archive_minutes = thread_archive_minutes
        # Channels where threads are refused (permission, channel type), learned from Discord's
        # answers: their updates are channel replies without asking again. Per process; a
        # restart asks once more.
        self.threadless: set[str] = set()

    async def post(self, channel: ChannelRef, alert: Alert) -> MessageRef:
        """Post the parent message. Raises: DeliveryError."""
        payload = {**to_discord_message(alert), **once(alert, channel.channel, "parent")}
        data = await self._call(
            lambda: self.http.send_message(channel.channel, params=_params(payload)), again=True
        )
        return MessageRef(channel=channel, ts=str(data["id"]))

    async def edit(self, ref: MessageRef, alert: Alert) -> None:
        """Edit the parent to the alert's state (recovery removes the report button).
        Raises: DeliveryError (PARENT_GONE when the parent was deleted)."""
        payload = to_discord_message(alert)
        await self._call(
            lambda: self.http.edit_message(ref.channel.channel, ref.ts, params=_params(payload)),
            message=True,
            again=True,
        )

    async def reply(self, parent: MessageRef, alert: Alert, *, broadcast: bool) -> MessageRef:
        """Post an update in the parent's thread, starting it the first time; with `broadcast`
        (recovery) also post it in the channel. Returns the parent ref with `thread` set, or
        unset when the update became a reply in the channel. Raises: DeliveryError."""
        update = to_discord_thread_update(alert)
        where = parent.channel.channel
        if where in self.threadless:
            thread = None
        else:
            thread = parent.thread or await self._start_thread(parent, alert)
        if thread is not None:
            in_thread = {**update, **once(alert, where, "thread")}
            try:
                await self._call(
                    lambda: self.http.send_message(thread, params=_params(in_thread)),
                    codes=THREAD_GONE,
                    again=True,
                )
            except _Refused as e:
                log.info("thread %s unusable (discord %s): replying in the channel", thread, e.code)
                thread = None
                self._learn(parent.channel, e.code)
        if thread is None or broadcast:
            await self._reply_in_channel(parent, {**update, **once(alert, where, "reply")})
        return MessageRef(channel=parent.channel, ts=parent.ts, thread=thread)

    async def notify(self, channel: ChannelRef, text: str, *, key: str = "") -> None:
        """A plain message to a channel, mentioning no one; with `key`, its enforced nonce (a
        repeat within minutes is the same message, so a lost answer is repeated at once).
        Raises: DeliveryError."""
        payload: dict[str, Any] = {
            "content": clip(text, CONTENT_MAX),
            "allowed_mentions": NO_MENTIONS,
        }
        if key:
            payload |= _nonce(f"side:{key}:{channel.channel}")
        await self._call(
            lambda: self.http.send_message(channel.channel, params=_params(payload)),
            again=bool(key),
        )

    async def notify_user(self, workspace: str, user_id: str, text: str, *, key: str = "") -> None:
        """A direct message: open (or find) the DM channel with the user, then post in it.
        Raises: DeliveryError."""
        dm = await self._call(lambda: self.http.start_private_message(int(user_id)), again=True)
        await self.notify(ChannelRef(Platform.DISCORD, workspace, str(dm["id"])), text, key=key)

    async def _start_thread(self, parent: MessageRef, alert: Alert) -> str | None:
        """The new thread's id, or None where threads are refused. A thread started from a
        message has the message's id, so "already created" (a redelivery) reuses it."""
        try:
            data = await self._call(
                lambda: self.http.start_thread_with_message(
                    parent.channel.channel,
                    parent.ts,
                    name=thread_name(alert),
                    auto_archive_duration=self.thread_archive_minutes,  # type: ignore[arg-type]
                ),
                message=True,
                codes=NO_THREADS | {THREAD_EXISTS},
                again=True,  # a repeat answers THREAD_EXISTS: the thread it made
            )
        except _Refused as e:
            if e.code == THREAD_EXISTS:
                return parent.ts
            log.info("no thread in %s (discord %s): replying instead", parent.channel.key, e.code)
            self._learn(parent.channel, e.code)
            return None
        return str(data["id"])

    def _learn(self, channel: ChannelRef, code: int) -> None:
        if code in THREADLESS and channel.channel not in self.threadless:
            self.threadless.add(channel.channel)
            log.info(
                "%s refuses threads (discord %s): updates are channel replies", channel.key, code
            )

    async def _reply_in_channel(self, parent: MessageRef, payload: dict[str, Any]) -> None:
        reference = {
            "message_id": parent.ts,
            "channel_id": parent.channel.channel,
            "fail_if_not_exists": False,  # the update still lands if the parent was deleted
        }
        body = {**payload, "message_reference": reference}
        await self._call(
            lambda: self.http.send_message(parent.channel.channel, params=_params(body)),
            again=True,
        )

    async def _call(
        self,
        request: Callable[[], Awaitable[Any]],
        *,
        message: bool = False,
        codes: frozenset[int] = frozenset(),
        again: bool = False,
    ) -> Any:
        """Make one discord.py request, translating its errors into DeliveryError (or
        `_Refused` for the JSON codes in `codes`, which the caller handles). `again`: repeating
        the request cannot show anything twice (an enforced nonce, an edit, a thread start), so
        a connection dropped before the answer is repeated at once, up to `RESENDS` times."""
        for resend in range(RESENDS + 1):
            try:
                return await self._request(request, message=message, codes=codes)
            except _AnswerLost as e:
                if not again or resend == RESENDS:
                    raise DeliveryError(f"network: {e.name}") from e.__cause__
        raise AssertionError("unreachable")

    async def _request(
        self, request: Callable[[], Awaitable[Any]], *, message: bool, codes: frozenset[int]
    ) -> Any:
        try:
            return await request()
        except asyncio.CancelledError:
            _reopen_global_limit(self.http)
            raise
        except discord.RateLimited as e:
            raise DeliveryError(
                "rate_limited", ErrorKind.RATE_LIMITED, retry_after=e.retry_after
            ) from e
        except discord.HTTPException as e:
            if e.code in codes:
                raise _Refused(e.code) from e
            raise discord_error(e, message=message) from e
        except (aiohttp.ServerDisconnectedError, ConnectionResetError) as e:
            raise _AnswerLost(type(e).__name__) from e
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            raise DeliveryError(f"network: {type(e).__name__}") from e


def _reopen_global_limit(http: HTTPClient) -> None:
    """discord.py closes its global rate-limit gate while one request sleeps out a global 429,
    and reopens it only when that sleep ends. A request cancelled mid-sleep (the delivery
    engine's call timeout) would leave every later request waiting forever: reopen it. At worst
    a request meets another 429, which discord.py waits out as usual."""
    gate = getattr(http, "_global_over", None)
    if isinstance(gate, asyncio.Event) and not gate.is_set():
        gate.set()


class _AnswerLost(Exception):
    """The connection closed after the request went out and before its answer: Discord may
    have applied it. discord.py repeats such a request itself only for the BSD and Windows
    "connection reset" errno values (54, 10054), never for Linux's nor for aiohttp's
    ServerDisconnectedError, so without this each lost answer cost the entry one of its
    attempts, and an alert of four calls (edit, thread, thread post, reply) ran out of them."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)


class _Refused(Exception):
    def __init__(self, code: int) -> None:
        self.code = code
        super().__init__(code)


def discord_error(error: discord.HTTPException, *, message: bool = False) -> DeliveryError:
    """The DeliveryError for a Discord HTTP error. Rules, first match wins:

    1. 429 that reached us (a Cloudflare block: no `Via` header): RATE_LIMITED, Retry-After.
    2. Unknown Message (10008) on an edit or thread start (`message`): PARENT_GONE.
    3. Unknown Channel/Guild, Missing Access, Missing Permissions, or 401: PERMANENT.
    4. Anything else (5xx, a payload Discord rejects): TRANSIENT, retried with backoff.
    """
    if error.status == 429:
        header = error.response.headers.get("Retry-After", "60")
        try:
            retry_after = float(header)
        except ValueError:
            retry_after = 60.0
        return DeliveryError("rate_limited", ErrorKind.RATE_LIMITED, retry_after=retry_after)
    if error.code == UNKNOWN_MESSAGE and message:
        return DeliveryError("unknown_message", ErrorKind.PARENT_GONE)
    if error.code in PERMANENT:
        return DeliveryError(PERMANENT[error.code], ErrorKind.PERMANENT)
    if error.status == 401:
        return DeliveryError("unauthorized", ErrorKind.PERMANENT)
    return DeliveryError(f"discord {error.status} {error.code}: {clip(error.text, 200)}")


def once(alert: Alert, channel: str, role: str) -> dict[str, Any]:
    """Discord's idempotency for one message: a nonce made of the alert, the channel and the
    message's role (parent, thread, reply), enforced. Discord answers a repeat made within a few
    minutes with the message it already made, so a retried post (a broadcast whose second call
    failed, a call that timed out after Discord applied it) is never shown twice."""
    return _nonce(f"{alert_id(alert)}:{channel}:{role}")


def _nonce(material: str) -> dict[str, Any]:
    """An enforced nonce made of `material` (Discord keeps at most NONCE_MAX characters)."""
    return {
        "nonce": hashlib.sha256(material.encode("utf-8")).hexdigest()[:NONCE_MAX],
        "enforce_nonce": True,
    }


def _params(payload: dict[str, Any]) -> MultipartParameters:
    return MultipartParameters(payload=payload, multipart=None, files=None)
