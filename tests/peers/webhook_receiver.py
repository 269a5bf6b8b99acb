"""A loopback webhook receiver: an aiohttp server on 127.0.0.1 that records every POST (headers,
raw body, loop time), answers a scripted list of statuses first (429 with Retry-After, 500, 410)
and 200 after, and verifies our HMAC signature the way a receiver would (README "Webhooks")."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Received:
    """One POST and what the receiver answered."""

    headers: dict[str, str]
    body: bytes
    at: float  # loop time it arrived
    status: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The README's receiver check: HMAC-SHA256 of `v1:<timestamp>:<body>`, compared in
    constant time."""
    base = b"v1:" + headers["X-Aistatus-Timestamp"].encode() + b":" + body
    want = "v1=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, headers.get("X-Aistatus-Signature", ""))


@dataclass
class WebhookReceiver:
    """`answers`: (status, headers) for the first requests, in order; 200 after. `secret`:
    when set, a POST whose signature does not verify is answered 401 (a receiver's refusal)."""

    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    secret: str | None = None
    received: list[Received] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def __aenter__(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post("/hook/{rest:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook/T0/B0/x"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300]

    async def wait_for(self, n: int, *, within: float = 10.0) -> list[Received]:
        """Until `n` requests were accepted (bounded)."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.accepted) >= n)
        return self.accepted

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        status, extra = self.answers.pop(0) if self.answers else (200, {})
        if self.secret is not None and not verified(self.secret, headers, body):
            status, extra = 401, {}
        at = asyncio.get_running_loop().time()
        self.received.append(Received(headers, body, at, status))
        async with self._changed:
            self._changed.notify_all()
        return web.Response(status=status, headers=extra, text="ok" if status < 300 else "no")
