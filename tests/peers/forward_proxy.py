"""A loopback forward HTTP proxy for tests: aiohttp on 127.0.0.1:0 taking absolute-form
requests (`GET http://host/path`), recording each URL it was asked for and passing the request
on. Point a client's `proxy=` (or HTTP_PROXY) at `ForwardProxy.url`."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web

_HOP_BY_HOP = frozenset({"host", "proxy-connection", "proxy-authorization", "connection"})


class ForwardProxy:
    def __init__(self) -> None:
        self.asked: list[str] = []  # every URL it forwarded, in order
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> ForwardProxy:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._session = aiohttp.ClientSession()
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        self.asked.append(str(request.url))
        headers: dict[str, Any] = {
            k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP
        }
        async with self._session.request(
            request.method, str(request.url), data=await request.read(), headers=headers
        ) as resp:
            body = await resp.read()
            kept = {k: v for k, v in resp.headers.items() if k.lower() in ("content-type",)}
            return web.Response(status=resp.status, body=body, headers=kept)
