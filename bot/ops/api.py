"""The read-only JSON API and the web board on the operator listener: `/api/v1/status`,
`/api/v1/status/{surface}`, `/api/v1/history`, `/api/v1/route` and `/`. IO (aiohttp + the store);
the documents come from the pure bot.ops.board / route / web modules."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.core.assess import Staleness
from bot.core.catalog import Catalog
from bot.core.model import SurfaceState, Transition, encode, encode_json
from bot.ops.board import MAX_HISTORY_DAYS, Board, build_board, build_history
from bot.ops.route import route
from bot.ops.web import render_board
from bot.store.surfaces import SurfaceStore

HISTORY_LIMIT = 1000  # transitions read per surface (the stored list is capped too)
DEFAULT_DAYS = 7
MAX_AGE_S = 5  # clients may reuse an answer this long; then they revalidate with the ETag
ALLOW = "GET, HEAD"


@dataclass(frozen=True, slots=True)
class BoardSource:
    """What the routes read: the committed states (through the store), the catalog, the clock,
    and whether monitoring is blind right now (the watcher's canary guard)."""

    store: SurfaceStore
    catalog: Catalog
    providers: Mapping[str, Sequence[str]]  # provider -> its surfaces, for `read_all`
    clock: Callable[[], datetime]
    blind: Callable[[], bool]
    staleness: Staleness | None = None

    async def states(self) -> dict[str, SurfaceState]:
        return await self.store.read_all(self.providers)

    async def board(self) -> tuple[Board, datetime]:
        """The board of the committed states now, and that `now`."""
        now = self.clock()
        states = await self.states()
        doc = build_board(
            states, self.catalog, now=now, blind=self.blind(), staleness=self.staleness
        )
        return doc, now

    async def transitions(self, surfaces: Sequence[str]) -> dict[str, list[Transition]]:
        found = await asyncio.gather(
            *(
                self.store.history(self.catalog.surfaces[s].provider, s, limit=HISTORY_LIMIT)
                for s in surfaces
            )
        )
        return dict(zip(surfaces, found, strict=True))


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison against a list of entity tags (or `*`)."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def api_routes(source: BoardSource, *, token: str | None = None) -> list[web.RouteDef]:
    """The routes to add to the operator app. Rules:

    1. Read-only: GET and HEAD; any other method is 405 with `Allow`.
    2. With `token` set, every route needs `Authorization: Bearer <token>` (compared in
       constant time), else 401 with `WWW-Authenticate`.
    3. Every answer has an ETag (of its body) and Cache-Control; a matching If-None-Match is a
       304 with no body.
    4. An unknown surface is a 404 JSON naming the known ones; a bad `days` is a 400.
    """
    expected = token.encode() if token else None
    cache = f"{'private' if expected else 'public'}, max-age={MAX_AGE_S}, must-revalidate"

    def guard(handler: Callable[[web.Request], Any]) -> Callable[[web.Request], Any]:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if request.method not in {"GET", "HEAD"}:
                resp = _error(405, "read-only: use GET")
                resp.headers["Allow"] = ALLOW
                return resp
            if expected is not None:
                auth = request.headers.get("Authorization", "")
                given = auth.removeprefix("Bearer ").encode() if auth.startswith("Bearer ") else b""
                if not hmac.compare_digest(given, expected):
                    resp = _error(401, "a bearer token is needed (AISTATUS_API_TOKEN)")
                    resp.headers["WWW-Authenticate"] = 'Bearer realm="aistatus"'
                    return resp
            return await handler(request)

        return guarded

    def answer(request: web.Request, body: bytes, content_type: str) -> web.Response:
        etag = _etag(body)
        headers = {"ETag": etag, "Cache-Control": cache}
        if expected is not None:
            headers["Vary"] = "Authorization"
        if _matches(request.headers.get("If-None-Match"), etag):
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type=content_type, charset="utf-8", headers=headers)

    def unknown(surface: str) -> web.Response:
        return _error(404, "unknown surface", surface=surface, known=list(source.catalog.surfaces))

    async def board_json(request: web.Request) -> web.Response:
        doc, _ = await source.board()
        return answer(request, encode_json(doc), "application/json")

    async def surface_json(request: web.Request) -> web.Response:
        surface = request.match_info["surface"]
        if surface not in source.catalog.surfaces:
            return unknown(surface)
        doc, _ = await source.board()
        view = next(v for v in doc.surfaces if v.id == surface)
        body = {"version": doc.version, "monitoring_blind": doc.monitoring_blind, **encode(view)}
        return answer(request, json.dumps(body).encode(), "application/json")

    async def history_json(request: web.Request) -> web.Response:
        surface = request.query.get("surface") or None
        if surface is not None and surface not in source.catalog.surfaces:
            return unknown(surface)
        try:
            days = int(request.query.get("days", DEFAULT_DAYS))
        except ValueError:
            days = 0
        if not 1 <= days <= MAX_HISTORY_DAYS:
            return _error(400, f"days must be a whole number from 1 to {MAX_HISTORY_DAYS}")
        shown = [surface] if surface else source.catalog.claude_surfaces()
        states = await source.states()
        doc = build_history(
            await source.transitions(shown),
            source.catalog,
            days=days,
            now=source.clock(),
            first_seen={s: st.first_seen for s, st in states.items()},
        )
        return answer(request, encode_json(doc), "application/json")

    async def route_json(request: web.Request) -> web.Response:
        surface = request.query.get("for", "api")
        if surface not in source.catalog.surfaces:
            return unknown(surface)
        doc = route(
            surface, await source.states(), source.catalog, now=source.clock(), blind=source.blind()
        )
        return answer(request, encode_json(doc), "application/json")

    async def page(request: web.Request) -> web.Response:
        doc, now = await source.board()
        return answer(request, render_board(doc, now=now).encode(), "text/html")

    return [
        web.route("*", "/api/v1/status", guard(board_json)),
        web.route("*", "/api/v1/status/{surface}", guard(surface_json)),
        web.route("*", "/api/v1/history", guard(history_json)),
        web.route("*", "/api/v1/route", guard(route_json)),
        web.route("*", "/", guard(page)),
    ]
