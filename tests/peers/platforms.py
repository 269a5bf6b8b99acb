"""The real Slack and Discord senders against their loopback servers, behind one view for the
delivery scenarios: channels of the platform, faults per channel (429 + Retry-After, a 5xx, a
channel gone, a revoked token, a deleted parent) and what each channel shows, as the platform
applied it. Messages are told apart by the "Update number N." the tests' incidents quote.
`StandIn` is the same view of the ChatServer stand-in, for the tests that need what only it
records (alert ids per message) or only it can do at scale.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from discord.http import HTTPClient, Route
from slack_sdk.web.async_client import AsyncWebClient

from bot.chat.discord.sender import DiscordSender, configure_api_base, open_rest_client
from bot.chat.slack.sender import SlackSender
from bot.core.model import ChannelRef, Platform
from tests.peers.chaos import Chaos
from tests.peers.chatserver import ChatServer, HttpChatSender, channels
from tests.peers.discord_api import TOKEN as DISCORD_TOKEN
from tests.peers.discord_api import Call as DiscordCall
from tests.peers.discord_api import DiscordAPI
from tests.peers.slack_api import SlackApi

SLACK_TOKEN = "xoxb-test-token"
UPDATE = re.compile(r"Update number (\d+)\.")


@dataclass(frozen=True, slots=True)
class Shown:
    """One message people see in a channel, as it was first posted. `update`: the number of the
    official update it quotes; `reply`: in the outage's thread; `broadcast`: also in the
    channel (Slack reply_broadcast; Discord a reply beside the thread post)."""

    update: int | None
    reply: bool
    broadcast: bool = False


Op = tuple[str, int | None, bool]
"""(post | edit | reply, the update number it shows, broadcast) of one applied call."""


def quoted(payload: Any) -> int | None:
    found = UPDATE.search(json.dumps(payload))
    return int(found.group(1)) if found else None


class _Applied:
    """The ops of each channel, indexed from a server's list of applied calls as it grows
    (tests ask often, with thousands of calls). A platform says which list, and what one call
    adds (`_add`: False when it is no chat message call)."""

    def __init__(self) -> None:
        self._seen = 0  # applied calls indexed so far
        self._per: dict[str, list[Op]] = {}
        self._count = 0

    def _calls(self) -> Sequence[Any]:
        raise NotImplementedError

    def _add(self, call: Any) -> bool:
        raise NotImplementedError

    def _index(self) -> dict[str, list[Op]]:
        calls = self._calls()
        for call in calls[self._seen :]:
            self._count += self._add(call)
        self._seen = len(calls)
        return self._per

    def ops(self, channel: ChannelRef) -> list[Op]:
        """The applied calls about the channel, in order."""
        return list(self._index().get(channel.channel, []))

    def shown(self, channel: ChannelRef) -> list[Shown]:
        return [Shown(u, op == "reply", b) for op, u, b in self.ops(channel) if op != "edit"]

    def applied(self) -> int:
        """Chat message calls the platform applied, in every channel."""
        self._index()
        return self._count


class SlackPeer(_Applied):
    """SlackSender (one workspace, one token) on a loopback SlackApi."""

    platform = Platform.SLACK
    workspace = "T1"
    user = "U1"  # who subscribes the channels
    server_error_reason = "HTTP 500"
    gone_reason = "channel_not_found"
    revoked_reason = "token_revoked"

    def __init__(self) -> None:
        self.api = SlackApi()
        self._session: aiohttp.ClientSession | None = None
        self.sender: SlackSender
        super().__init__()

    async def start(self) -> SlackPeer:
        await self.api.start()
        self._session = aiohttp.ClientSession()
        client = AsyncWebClient(
            token=SLACK_TOKEN,
            base_url=self.api.base_url,
            timeout=20,
            retry_handlers=[],
            session=self._session,
        )
        self.sender = SlackSender(client)
        return self

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        await self.api.stop()

    @property
    def url(self) -> str:
        """What a SlackSender's client takes as base_url."""
        return self.api.base_url

    def channels(self, n: int) -> list[ChannelRef]:
        return [ChannelRef(self.platform, self.workspace, f"C{i:05d}") for i in range(n)]

    # -- what happened -------------------------------------------------------------------------

    def _calls(self) -> Sequence[Any]:
        return self.api.accepted

    def _add(self, call: Any) -> bool:
        if not call.method.startswith("chat."):
            return False
        if call.method == "chat.update":
            op = "edit"
        else:
            op = "reply" if "thread_ts" in call.params else "post"
        row = (op, quoted(call.params), bool(call.params.get("reply_broadcast")))
        self._per.setdefault(str(call.params.get("channel")), []).append(row)
        return True

    def requests(self, channel: ChannelRef) -> list[float]:
        """When each chat call about the channel came, refused ones included."""
        return [
            c.at
            for c in self.api.calls
            if c.method.startswith("chat.") and c.params.get("channel") == channel.channel
        ]

    async def wait_applied(self, n: int, within: float) -> None:
        """Until `n` chat calls were applied. Raises: TimeoutError."""
        await self.api.wait_until(lambda: self.applied() >= n, within)

    async def wait_asked(self, channels: Sequence[ChannelRef], within: float) -> None:
        """Until every one of `channels` got a chat call, answered or not. Raises:
        TimeoutError."""
        await self.api.wait_until(lambda: all(self.requests(c) for c in channels), within)

    def edited(self, channel: ChannelRef) -> set[str]:
        """The messages edits went to."""
        edits = self.api.accepted_to("chat.update", channel.channel)
        return {str(c.params["ts"]) for c in edits}

    def notes(self) -> list[str]:
        """Direct messages to the subscriber."""
        return [
            str(c.params.get("text")) for c in self.api.accepted_to("chat.postMessage", self.user)
        ]

    def texts(self, channel: ChannelRef) -> list[str]:
        """The plain-text messages (announcements, direct messages) the channel shows."""
        posts = self.api.accepted_to("chat.postMessage", channel.channel)
        return [str(c.params.get("text")) for c in posts if "blocks" not in c.params]

    async def dm(self) -> ChannelRef:
        """Where the direct messages to the subscriber go (Slack: to the user id), to script
        faults in it and read it."""
        return ChannelRef(self.platform, self.workspace, self.user)

    def parent(self, channel: ChannelRef) -> str:
        """The first parent message posted in the channel."""
        return min(
            ts
            for (ch, ts), m in self.api.messages.items()
            if ch == channel.channel and "thread_ts" not in m
        )

    # -- faults ----------------------------------------------------------------------------------

    def rate_limit(self, channel: ChannelRef, retry_after: float) -> float:
        """The channel's next call gets a 429; returns the wait the platform asks for."""
        self.api.rate_limit("*", str(retry_after), channel=channel.channel)
        return retry_after

    def server_error(self, channel: ChannelRef, times: int = 1) -> None:
        self.api.server_error("*", 500, times, channel=channel.channel)

    def gone(self, channel: ChannelRef) -> None:
        self.api.fail_channel(channel.channel, "channel_not_found")

    def heal(self, channel: ChannelRef) -> None:
        self.api.heal_channel(channel.channel)

    def revoke(self, channel: ChannelRef) -> None:
        self.api.fail_channel(channel.channel, "token_revoked")

    def delete(self, channel: ChannelRef, message: str) -> None:
        self.api.delete_message(channel.channel, message)


class DiscordPeer(_Applied):
    """DiscordSender over a logged-in REST client on a loopback DiscordAPI. Route.BASE is
    process-wide: `stop` puts it back."""

    platform = Platform.DISCORD
    workspace = "1100000000000000001"
    user = "1100000000000000555"
    server_error_reason = "discord 503 0: Server error"  # 500/502/504 discord.py retries itself
    gone_reason = "unknown_channel"
    revoked_reason = "unauthorized"

    def __init__(self) -> None:
        self.api = DiscordAPI()
        self._base = Route.BASE
        self._http: HTTPClient | None = None
        self.sender: DiscordSender
        self._nonces: set[str] = set()
        super().__init__()

    async def start(self) -> DiscordPeer:
        await self.api.start()
        configure_api_base(self.api.url)
        self._http = await open_rest_client(DISCORD_TOKEN)
        self.sender = DiscordSender(self._http)
        return self

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
        await self.api.close()
        Route.BASE = self._base

    @property
    def url(self) -> str:
        """What `configure_api_base` takes."""
        return self.api.url

    def channels(self, n: int) -> list[ChannelRef]:
        return [
            ChannelRef(self.platform, self.workspace, f"12000000000000{i:05d}") for i in range(n)
        ]

    # -- what happened -------------------------------------------------------------------------

    def _where(self, call: DiscordCall) -> tuple[str, str] | None:
        """(channel id, 'channel' | 'thread') of a message route, else None."""
        parts = call.path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "channels" or parts[2] != "messages":
            return None
        target = parts[1]
        thread = self.api.threads.get(target)
        if thread is not None and len(parts) == 3:
            return str(thread["parent_id"]), "thread"
        return target, "channel"

    def _calls(self) -> Sequence[Any]:
        return self.api.applied

    def _add(self, call: Any) -> bool:
        """As Slack would say it: a thread post and the channel reply beside it are one
        broadcast reply; repeats of an enforced nonce (Discord answers them with the message it
        made before) are left out; starting a thread is no message."""
        where = self._where(call)
        if where is None or call.path.endswith("/threads"):
            return False
        body = call.json if isinstance(call.json, dict) else {}
        nonce = body.get("nonce")
        if nonce is not None:
            if nonce in self._nonces:
                return False
            self._nonces.add(nonce)
        out = self._per.setdefault(where[0], [])
        update = quoted(body)
        if call.method == "PATCH":
            out.append(("edit", update, False))
        elif where[1] == "thread" or "message_reference" not in body:
            out.append(("reply" if where[1] == "thread" else "post", update, False))
        elif out and out[-1][:2] == ("reply", update):
            out[-1] = ("reply", update, True)  # the broadcast beside the thread post
        else:
            out.append(("reply", update, False))  # no thread here: a reply in the channel
        return True

    def requests(self, channel: ChannelRef) -> list[float]:
        """When each message call about the channel came, refused ones included."""
        return [
            c.at
            for c in self.api.calls
            if (w := self._where(c)) is not None and w[0] == channel.channel
        ]

    async def wait_asked(self, channels: Sequence[ChannelRef], within: float) -> None:
        """Until every one of `channels` got a message call, answered or not. Raises:
        TimeoutError."""
        await self.api.wait_for(lambda _: all(self.requests(c) for c in channels), within)

    async def wait_applied(self, n: int, within: float) -> None:
        """Until `n` message calls were applied. Raises: TimeoutError."""
        async with asyncio.timeout(within):
            while self.applied() < n:
                self.api.answered.clear()
                await self.api.answered.wait()

    def edited(self, channel: ChannelRef) -> set[str]:
        """The messages edits went to."""
        edits = [c for c in self.api.applied if c.method == "PATCH"]
        return {
            c.path.rsplit("/", 1)[1]
            for c in edits
            if self._where(c) == (channel.channel, "channel")
        }

    def notes(self) -> list[str]:
        """Direct messages to the subscriber."""
        dm = self.api.dms.get(self.user)
        return [str(m.get("content")) for m in self.api.posted(dm)] if dm else []

    def texts(self, channel: ChannelRef) -> list[str]:
        """The plain-text messages (announcements, direct messages) the channel shows."""
        return [str(m["content"]) for m in self.api.posted(channel.channel) if not m.get("embeds")]

    async def dm(self) -> ChannelRef:
        """The DM channel with the subscriber (opened as the sender opens it), to script faults
        in it and read it."""
        assert self._http is not None
        opened = await self._http.start_private_message(int(self.user))
        return ChannelRef(self.platform, self.workspace, str(opened["id"]))

    def parent(self, channel: ChannelRef) -> str:
        """The first parent message posted in the channel."""
        posted = self.api.posted(channel.channel)
        return next(str(m["id"]) for m in posted if "message_reference" not in m)

    # -- faults ----------------------------------------------------------------------------------

    def rate_limit(self, channel: ChannelRef, retry_after: float) -> float:
        """The channel's next call gets a 429 that reaches the engine (a Cloudflare-style one:
        discord.py waits out the others itself); returns the wait it asks for (whole seconds)."""
        self.api.rate_limit(channel.channel, retry_after, via=False)
        return float(math.ceil(retry_after))

    def server_error(self, channel: ChannelRef, times: int = 1) -> None:
        self.api.fail(channel.channel, 0, status=503, times=times)

    def gone(self, channel: ChannelRef) -> None:
        self.api.fail(channel.channel, 10003, times=None)

    def heal(self, channel: ChannelRef) -> None:
        self.api.heal(channel.channel)

    def revoke(self, channel: ChannelRef) -> None:
        self.api.fail(channel.channel, 0, status=401, times=None)

    def delete(self, channel: ChannelRef, message: str) -> None:
        self.api.delete_message(channel.channel, message)


class StandIn:
    """The ChatServer and its HttpChatSender (a Slack-like platform): it records the alert id
    and kind of every call, so it can count duplicates exactly, and it is cheap at scale."""

    platform = Platform.SLACK
    workspace = "T1"
    user = "U1"

    def __init__(self, *, chaos: Chaos | None = None, timeout: float = 20.0) -> None:
        self.server = ChatServer(chaos=chaos)
        self._timeout = timeout
        self.sender: HttpChatSender

    async def start(self) -> StandIn:
        await self.server.start()
        self.sender = HttpChatSender(self.server.url, timeout=self._timeout)
        return self

    async def stop(self) -> None:
        await self.sender.aclose()
        await self.server.stop()

    def channels(self, n: int) -> list[ChannelRef]:
        return channels(n, workspace=self.workspace)

    def shown(self, channel: ChannelRef) -> list[Shown]:
        return [
            Shown(quoted(alert.update_text), op == "reply")
            for op, where, alert in self.server.alerts
            if where == channel.key and op in ("post", "reply")
        ]


Peer = SlackPeer | DiscordPeer
