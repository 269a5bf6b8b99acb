"""A loopback stand-in "chat API": an aiohttp server on 127.0.0.1 that records every call with
the whole Alert it carries and answers seeded random faults (429 + Retry-After, 500, a hang) on
any call, and `HttpChatSender`, a small ChatSender talking HTTP to it with httpx. For what the
real Slack and Discord peers cannot show: the Alert values sent, and 429s on every call reaching
the engine (discord.py waits Discord's out itself).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
from aiohttp import web

from bot.alerting.alert import alert_id
from bot.core.model import Alert, ChannelRef, MessageRef, Platform, decode, encode
from bot.errors import DeliveryError, ErrorKind
from tests.peers.chaos import Chaos


@dataclass(frozen=True, slots=True)
class Call:
    """One request the server answered. `accepted`: it answered 2xx (the message exists)."""

    op: str  # post | edit | reply | notify
    channel: str
    alert: str  # alert id (or "" for notify)
    kind: str
    key: str  # outage id
    ts: str  # the message posted (post/reply) or edited (edit)
    status: int
    broadcast: bool = False


class ChatServer:
    """The recording server; `chaos` applies random faults to every request."""

    def __init__(self, *, chaos: Chaos | None = None) -> None:
        self.calls: list[Call] = []
        self.alerts: list[tuple[str, str, Alert]] = []  # (op, channel, alert) of accepted calls
        self.chaos = chaos
        self.faults: Counter[str] = Counter()  # faults answered, by kind
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self.url = ""

    async def start(self) -> ChatServer:
        app = web.Application()
        app.router.add_post("/{op}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        op = request.match_info["op"]
        body: dict[str, Any] = await request.json()
        channel = str(body.get("channel", ""))
        fault = self.chaos.pick() if self.chaos is not None else None
        if fault is not None:
            self.faults[fault] += 1
        if fault == "hang":
            await self._closing.wait()  # the client times out; nothing is applied
            return web.json_response({"ok": False, "error": "shutting_down"}, status=503)
        if fault == "429":
            assert self.chaos is not None
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(self.chaos.retry_after)},
            )
        if fault == "500":
            return web.json_response({"ok": False, "error": "internal_error"}, status=500)
        parent = str(body.get("parent", ""))
        ts = parent if op == "edit" else f"{next(self._ts)}"
        if "content" in body:
            self.alerts.append((op, channel, decode(Alert, body["content"])))
        self.calls.append(
            Call(
                op,
                channel,
                str(body.get("alert", "")),
                str(body.get("kind", "")),
                str(body.get("key", "")),
                ts,
                200,
                bool(body.get("broadcast", False)),
            )
        )
        return web.json_response({"ok": True, "ts": ts, "thread": parent or None})

    # -- what the tests assert on -------------------------------------------------------------

    def messages(self) -> list[Call]:
        """Posts and replies: the messages people see (edits change one in place)."""
        return [c for c in self.calls if c.op in ("post", "reply")]

    def duplicates(self) -> list[tuple[str, str]]:
        """(channel, alert id) pairs that became more than one message."""
        counts = Counter((c.channel, c.alert) for c in self.messages())
        return sorted(pair for pair, n in counts.items() if n > 1)


class HttpChatSender:
    """A ChatSender over HTTP to the ChatServer, mapping its faults like the real adapters: 429
    -> RATE_LIMITED with the header's retry_after; 5xx, timeouts, connection errors and any
    other refusal -> TRANSIENT."""

    def __init__(
        self, url: str, *, platform: Platform = Platform.SLACK, timeout: float = 0.5
    ) -> None:
        self.platform = platform
        self._client = httpx.AsyncClient(base_url=url, timeout=timeout)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            resp = await self._client.post(f"/{op}", json=body)
        except httpx.TimeoutException:
            raise DeliveryError("timeout") from None
        except httpx.TransportError as e:
            raise DeliveryError(f"network: {type(e).__name__}") from None
        data: dict[str, Any] = resp.json() if resp.content else {}
        if resp.status_code == 429:
            retry_after = float(resp.headers.get("Retry-After", "1"))
            raise DeliveryError("rate_limited", ErrorKind.RATE_LIMITED, retry_after=retry_after)
        if resp.status_code >= 500:
            raise DeliveryError(f"http {resp.status_code}")
        if not data.get("ok"):
            raise DeliveryError(f"http {resp.status_code} {data.get('error')}")
        return data

    @staticmethod
    def _body(channel: ChannelRef, alert: Alert) -> dict[str, Any]:
        return {
            "channel": channel.key,
            "alert": alert_id(alert),
            "kind": str(alert.kind),
            "key": alert.key,
            "content": encode(alert),  # the whole alert, for tests that read what was said
        }

    async def post(self, channel: ChannelRef, alert: Alert) -> MessageRef:
        data = await self._call("post", self._body(channel, alert))
        return MessageRef(channel, str(data["ts"]))

    async def edit(self, ref: MessageRef, alert: Alert) -> None:
        await self._call("edit", {**self._body(ref.channel, alert), "parent": ref.ts})

    async def reply(self, parent: MessageRef, alert: Alert, *, broadcast: bool) -> MessageRef:
        body = {**self._body(parent.channel, alert), "parent": parent.ts, "broadcast": broadcast}
        await self._call("reply", body)
        return MessageRef(parent.channel, parent.ts, thread=parent.ts)

    async def notify(self, channel: ChannelRef, text: str) -> None:
        await self._call("notify", {"channel": channel.key, "text": text})

    async def notify_user(self, workspace: str, user_id: str, text: str) -> None:
        await self._call("notify", {"channel": f"user:{workspace}:{user_id}", "text": text})


def channels(
    n: int, *, workspace: str = "T1", platform: Platform = Platform.SLACK
) -> list[ChannelRef]:
    """`n` distinct channels of one workspace."""
    return [ChannelRef(platform, workspace, f"C{i:05d}") for i in range(n)]
