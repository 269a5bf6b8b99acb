"""A loopback Discord REST server for tests (aiohttp on 127.0.0.1, port 0): real paths and JSON
shapes for login, command sync, messages, threads, interaction callbacks and followups. It
records every call and can be scripted per channel to answer Discord's JSON errors (50001,
10003, 50013, 10008, 50024, ...) or 429s with `retry_after`, rate-limit headers and `global`;
`chaos` adds random faults to the message routes (post, edit, thread), answers lost after the
call was applied among them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.peers.chaos import Chaos

PREFIX = "/api/v10"
LOSE_ANSWER = web.RequestKey("lose_answer", bool)  # apply the call, then drop its answer
TOKEN = "test-bot-token.not-a-secret"
APP_ID = "1200000000000000001"
BOT_ID = "1200000000000000002"
OWNER_ID = "1200000000000000003"

# JSON error code -> (HTTP status, Discord's message)
ERRORS: dict[int, tuple[int, str]] = {
    10003: (404, "Unknown Channel"),
    10004: (404, "Unknown Guild"),
    10008: (404, "Unknown Message"),
    10062: (404, "Unknown interaction"),
    50001: (403, "Missing Access"),
    50013: (403, "Missing Permissions"),
    50024: (400, "Cannot execute action on this channel type"),
    50035: (400, "Invalid Form Body"),
    50083: (400, "Operation cannot be performed on an archived thread"),
    160004: (400, "A thread has already been created for this message"),
    160005: (400, "Thread is locked"),
    160006: (400, "Maximum number of active threads reached"),
}

BOT_USER: dict[str, Any] = {
    "id": BOT_ID,
    "username": "aistatus",
    "discriminator": "0",
    "global_name": None,
    "avatar": None,
    "bot": True,
    "flags": 0,
    "public_flags": 0,
}


@dataclass
class Call:
    """One request the server received (path without the /api/v10 prefix)."""

    method: str
    path: str
    json: Any
    query: dict[str, str]
    authorized: bool
    status: int | None = None  # what a message route answered (None: not answered, or hung)
    at: float = 0.0  # the event loop's time when it came

    @property
    def route(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Scripted:
    """An answer to give instead of success, `times` times (None: forever)."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    on: str = "any"  # any | post | edit | thread
    times: int | None = 1


class DiscordAPI:
    """The server. `url` is what `configure_api_base` takes. `chaos` adds random faults to the
    message routes; `faults` counts the faults answered, by kind."""

    def __init__(self, *, chaos: Chaos | None = None) -> None:
        self.chaos = chaos
        self.faults: Counter[str] = Counter()
        self.nonces: dict[str, dict[str, Any]] = {}  # enforced nonce -> the message it made
        self.dms: dict[str, str] = {}  # user id -> their DM channel id with the bot
        self._closing = asyncio.Event()
        self.calls: list[Call] = []
        self.applied: list[Call] = []  # the calls of routes that answer it, applied, in order
        self.answered = asyncio.Event()  # set by every applied call (tests wait on it)
        self.messages: dict[str, dict[str, dict[str, Any]]] = {}  # channel -> id -> message
        self.threads: dict[str, dict[str, Any]] = {}  # thread id -> channel object
        self.originals: dict[str, dict[str, Any]] = {}  # interaction token -> original response
        self.commands: list[dict[str, Any]] = []  # the last synced command JSON
        self._scripts: dict[str, list[Scripted]] = {}
        self._ids = itertools.count(1_300_000_000_000_000_000)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0
        # The websocket gateway: refuse the next `gateway_refusals` connections (HTTP 503 at the
        # upgrade), close each identified session with `gateway_close_code` when set, or send
        # `gateway_bad_event` (a dispatch its parser cannot read) once after READY.
        self.gateway_refusals = 0
        self.gateway_url: str | None = None  # what /gateway/bot names instead of the websocket
        self.gateway_close_code: int | None = None
        self.gateway_bad_event: dict[str, Any] | None = None
        self.gateway_attempts = 0
        self.gateway_ready = 0  # sessions that got READY or RESUMED
        self._sockets: list[web.WebSocketResponse] = []

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> DiscordAPI:
        app = web.Application()
        r = app.router
        r.add_get(PREFIX + "/users/@me", self._me)
        r.add_get(PREFIX + "/oauth2/applications/@me", self._app_info)
        r.add_get(PREFIX + "/gateway", self._gateway)
        r.add_get(PREFIX + "/gateway/bot", self._gateway)
        r.add_put(PREFIX + "/applications/{app}/commands", self._sync)
        r.add_put(PREFIX + "/applications/{app}/guilds/{guild}/commands", self._sync)
        r.add_post(PREFIX + "/users/@me/channels", self._open_dm)
        r.add_post(PREFIX + "/channels/{channel}/messages", self._post_message)
        r.add_patch(PREFIX + "/channels/{channel}/messages/{message}", self._edit_message)
        r.add_post(PREFIX + "/channels/{channel}/messages/{message}/threads", self._start_thread)
        r.add_post(PREFIX + "/interactions/{interaction}/{token}/callback", self._callback)
        r.add_post(PREFIX + "/webhooks/{app}/{token}", self._followup)
        r.add_patch(PREFIX + "/webhooks/{app}/{token}/messages/{message}", self._edit_original)
        r.add_get(PREFIX + "/webhooks/{app}/{token}/messages/{message}", self._get_original)
        r.add_get("/gateway/ws", self._gateway_ws)
        r.add_route("*", "/{tail:.*}", self._not_found)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        self._closing.set()  # hung requests answer now, so the server can stop
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PREFIX}"

    # -- scripting ---------------------------------------------------------------------------------

    def fail(
        self,
        channel: str,
        code: int,
        *,
        on: str = "any",
        times: int | None = 1,
        status: int | None = None,
    ) -> None:
        """Answer requests about `channel` (or a message in it) with Discord JSON error `code`."""
        default_status, message = ERRORS.get(code, (status or 500, "Server error"))
        body = {"message": message, "code": code}
        self._script(channel, Scripted(status or default_status, body, on=on, times=times))

    def rate_limit(
        self,
        channel: str,
        retry_after: float,
        *,
        is_global: bool = False,
        on: str = "any",
        times: int | None = 1,
        via: bool = True,
    ) -> None:
        """Answer 429 with Discord's body and headers. `via=False` imitates a Cloudflare block
        (no `Via` header), which discord.py does not treat as a normal rate limit."""
        headers = {
            "Retry-After": str(math.ceil(retry_after)),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
            "X-RateLimit-Bucket": f"bucket-{channel}",
            "X-RateLimit-Scope": "global" if is_global else "user",
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        if via:
            headers["Via"] = "1.1 google"
        body = {"message": "You are being rate limited.", "retry_after": retry_after}
        body["global"] = is_global
        self._script(channel, Scripted(429, body, headers, on=on, times=times))

    def delete_message(self, channel: str, message: str) -> None:
        """As if someone deleted the message: edits and thread starts get 10008."""
        self.messages.get(channel, {}).pop(message, None)

    def heal(self, channel: str) -> None:
        """`channel` works again: every scripted answer for it is forgotten."""
        self._scripts.pop(channel, None)

    def _script(self, channel: str, s: Scripted) -> None:
        self._scripts.setdefault(channel, []).append(s)

    async def _scripted(self, request: web.Request, channel: str, op: str) -> web.Response | None:
        """The scripted answer for this request, else a chaos fault, else None (succeed). A
        "lost" fault succeeds, marked on `request`: the call is applied, then `_answered` drops
        the connection instead of answering."""
        for s in self._scripts.get(channel, []):
            if s.on not in ("any", op):
                continue
            if s.times is not None:
                s.times -= 1
                if s.times <= 0:
                    self._scripts[channel].remove(s)
            return _json(s.body, status=s.status, headers=s.headers)
        chaos = self.chaos
        fault = chaos.pick() if chaos is not None and chaos.applies(op) else None
        if fault is None:
            return None
        self.faults[fault] += 1
        if fault == "lost":
            request[LOSE_ANSWER] = True
            return None
        if fault == "hang":  # the client times out; nothing is applied
            await self._closing.wait()
            return _json({"message": "503: Service Unavailable", "code": 0}, status=503)
        if fault == "500":
            return _json({"message": "500: Internal Server Error", "code": 0}, status=500)
        assert self.chaos is not None
        is_global = fault == "429-global"
        retry_after = self.chaos.retry_after
        headers = {
            "Retry-After": str(math.ceil(retry_after)),
            "X-RateLimit-Scope": "global" if is_global else "user",
            "Via": "1.1 google",
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        else:
            headers.update(
                {
                    "X-RateLimit-Limit": "5",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                    "X-RateLimit-Bucket": "ok",
                }
            )
        body = {"message": "You are being rate limited.", "retry_after": retry_after}
        body["global"] = is_global
        return _json(body, status=429, headers=headers)

    # -- reading what happened ---------------------------------------------------------------------

    def routes(self) -> list[str]:
        return [c.route for c in self.calls]

    def find(self, method: str, path_start: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path.startswith(path_start)]

    def posted(self, channel: str) -> list[dict[str, Any]]:
        """Messages currently in `channel` (or thread), oldest first."""
        return list(self.messages.get(channel, {}).values())

    def callbacks(self) -> list[Call]:
        return [c for c in self.calls if c.path.startswith("/interactions/")]

    async def wait_for(self, pred: Callable[[DiscordAPI], Any], within: float = 2.0) -> Any:
        """Wait (bounded) until `pred(self)` is truthy; returns its value."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: pred(self))
        return pred(self)

    # -- handlers ----------------------------------------------------------------------------------

    def _answered(
        self, call: Call, response: web.Response, request: web.Request | None = None
    ) -> web.Response:
        """Record what a message route answers. Raises: ConnectionResetError when a "lost"
        fault picked for `request` drops the answer of the call just applied."""
        call.status = response.status
        if response.status in (200, 201):
            self.applied.append(call)
            self.answered.set()
            if request is not None and request.get(LOSE_ANSWER):
                self.faults["lost-applied"] += 1
                if request.transport is not None:
                    request.transport.abort()
                raise ConnectionResetError("answer lost on purpose")
        return response

    async def _record(self, request: web.Request) -> Call:
        body: Any = None
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                body = await request.text()
        call = Call(
            method=request.method,
            path=request.path.removeprefix(PREFIX),
            json=body,
            query=dict(request.query),
            authorized=request.headers.get("Authorization") == f"Bot {TOKEN}",
            at=asyncio.get_running_loop().time(),
        )
        self.calls.append(call)
        async with self._changed:
            self._changed.notify_all()
        return call

    def _ok(self, data: Any, status: int = 200) -> web.Response:
        headers = {
            "X-RateLimit-Limit": "50",
            "X-RateLimit-Remaining": "49",
            "X-RateLimit-Reset-After": "1.000",
            "X-RateLimit-Bucket": "ok",
        }
        if status == 204:
            return web.Response(status=204, headers=headers)
        return _json(data, status=status, headers=headers)

    @staticmethod
    def _unauthorized() -> web.Response:
        return _json({"message": "401: Unauthorized", "code": 0}, status=401)

    async def _me(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        return self._ok(BOT_USER) if call.authorized else self._unauthorized()

    async def _app_info(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        if not call.authorized:
            return self._unauthorized()
        owner = {**BOT_USER, "id": OWNER_ID, "username": "owner", "bot": False}
        return self._ok(
            {
                "id": APP_ID,
                "name": "aistatus",
                "description": "",
                "icon": None,
                "bot_public": False,
                "bot_require_code_grant": False,
                "owner": owner,
                "verify_key": "0" * 64,
                "flags": 0,
                "summary": "",
                "rpc_origins": [],
                "bot": BOT_USER,
            }
        )

    async def _gateway(self, request: web.Request) -> web.Response:
        await self._record(request)
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        url = self.gateway_url or f"ws://127.0.0.1:{self.port}/gateway/ws"
        return self._ok({"url": url, "shards": 1, "session_start_limit": limit})

    async def drop_sessions(self, code: int) -> None:
        """Close every open gateway session with `code` (as Discord does on a reset token)."""
        for ws in list(self._sockets):
            await ws.close(code=code, message=b"scripted")

    async def _gateway_ws(self, request: web.Request) -> web.StreamResponse:
        """Discord's gateway protocol, the part a bot needs: HELLO, IDENTIFY -> READY (or
        RESUME -> RESUMED), heartbeats acknowledged; plain JSON text frames."""
        async with self._changed:
            self.gateway_attempts += 1
            self._changed.notify_all()
        if self.gateway_refusals > 0:
            self.gateway_refusals -= 1
            return web.Response(status=503, text="gateway unavailable")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        seq = 0
        try:
            await ws.send_json({"op": 10, "d": {"heartbeat_interval": 40000}})
            async for msg in ws:
                frame = json.loads(msg.data)
                op = frame.get("op")
                if op == 1:
                    await ws.send_json({"op": 11})
                elif op in (2, 6):
                    if self.gateway_close_code is not None:
                        await ws.close(code=self.gateway_close_code, message=b"scripted")
                        break
                    seq += 1
                    if op == 2:
                        ready = {
                            "v": 10,
                            "user": BOT_USER,
                            "guilds": [],
                            "session_id": "session-1",
                            "resume_gateway_url": f"ws://127.0.0.1:{self.port}/gateway/ws",
                            "application": {"id": APP_ID, "flags": 0},
                        }
                        await ws.send_json({"op": 0, "t": "READY", "s": seq, "d": ready})
                    else:
                        await ws.send_json({"op": 0, "t": "RESUMED", "s": seq, "d": {}})
                    async with self._changed:
                        self.gateway_ready += 1
                        self._changed.notify_all()
                    if self.gateway_bad_event is not None:
                        bad, self.gateway_bad_event = self.gateway_bad_event, None
                        seq += 1
                        await ws.send_json({"op": 0, "s": seq, **bad})
        finally:
            self._sockets.remove(ws)
        return ws

    async def _sync(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        if not call.authorized:
            return self._unauthorized()
        guild = request.match_info.get("guild")
        self.commands = list(call.json)
        out = []
        for cmd in call.json:
            out.append(
                {
                    **cmd,
                    "id": str(next(self._ids)),
                    "application_id": APP_ID,
                    "version": str(next(self._ids)),
                    **({"guild_id": guild} if guild else {}),
                }
            )
        return self._ok(out)

    async def _open_dm(self, request: web.Request) -> web.Response:
        """POST /users/@me/channels {recipient_id}: the DM channel with that user (type 1)."""
        call = await self._record(request)
        if not call.authorized:
            return self._unauthorized()
        user = str((call.json or {}).get("recipient_id", ""))
        dm = self.dms.setdefault(user, str(9_100_000_000_000_000_000 + len(self.dms)))
        channel = {"id": dm, "type": 1, "last_message_id": None}
        channel["recipients"] = [{"id": user, "username": "someone", "discriminator": "0"}]
        return self._answered(call, self._ok(channel))

    async def _post_message(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        channel = request.match_info["channel"]
        if not call.authorized:
            return self._unauthorized()
        if (answer := await self._scripted(request, channel, "post")) is not None:
            return self._answered(call, answer)
        body = call.json or {}
        nonce = body.get("nonce") if body.get("enforce_nonce") else None
        if nonce is not None and str(nonce) in self.nonces:
            # Discord: a message with the same enforced nonce was made recently: return it.
            return self._answered(call, self._ok(self.nonces[str(nonce)]), request)
        message = self._message(channel, body)
        self.messages.setdefault(channel, {})[message["id"]] = message
        if nonce is not None:
            self.nonces[str(nonce)] = message
        return self._answered(call, self._ok(message), request)

    async def _edit_message(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        channel, mid = request.match_info["channel"], request.match_info["message"]
        if not call.authorized:
            return self._unauthorized()
        if (answer := await self._scripted(request, channel, "edit")) is not None:
            return self._answered(call, answer)
        old = self.messages.get(channel, {}).get(mid)
        if old is None:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        new = {**old, **call.json, "edited_timestamp": _now()}
        self.messages[channel][mid] = new
        return self._answered(call, self._ok(new), request)

    async def _start_thread(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        channel, mid = request.match_info["channel"], request.match_info["message"]
        if not call.authorized:
            return self._unauthorized()
        if (answer := await self._scripted(request, channel, "thread")) is not None:
            return self._answered(call, answer)
        if mid not in self.messages.get(channel, {}):
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        if mid in self.threads:
            code = 160004
            return _json({"message": ERRORS[code][1], "code": code}, status=400)
        thread = {
            "id": mid,  # a thread started from a message has the message's id
            "type": 11,
            "guild_id": "1",
            "parent_id": channel,
            "name": call.json["name"],
            "owner_id": BOT_ID,
            "message_count": 0,
            "member_count": 1,
            "rate_limit_per_user": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": call.json["auto_archive_duration"],
                "archive_timestamp": _now(),
                "locked": False,
            },
            "total_message_sent": 0,
        }
        self.threads[mid] = thread
        return self._answered(call, self._ok(thread, status=201), request)

    async def _callback(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        token = request.match_info["token"]
        body = call.json or {}
        kind = body.get("type")
        data = body.get("data") or {}
        message = None
        if kind in (4, 5, 7):  # a message (or the "thinking" placeholder of a deferral)
            message = self._message("interaction", data, webhook=True)
            self.originals[token] = message
        if call.query.get("with_response") not in ("1", "true", "True"):
            return self._ok(None, status=204)
        interaction: dict[str, Any] = {
            "id": request.match_info["interaction"],
            "type": 2,
            "response_message_loading": kind == 5,
            "response_message_ephemeral": bool(int(data.get("flags", 0) or 0) & 64),
        }
        resource: dict[str, Any] = {"type": kind}
        if message is not None:
            interaction["response_message_id"] = message["id"]
            resource["message"] = message
        return self._ok({"interaction": interaction, "resource": resource})

    async def _followup(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        message = self._message("interaction", call.json or {}, webhook=True)
        return self._ok(message)

    async def _edit_original(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        token = request.match_info["token"]
        old = self.originals.get(token) or self._message("interaction", {}, webhook=True)
        new = {**old, **(call.json or {}), "edited_timestamp": _now()}
        self.originals[token] = new
        return self._ok(new)

    async def _get_original(self, request: web.Request) -> web.Response:
        await self._record(request)
        message = self.originals.get(request.match_info["token"])
        if message is None:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        return self._ok(message)

    async def _not_found(self, request: web.Request) -> web.Response:
        await self._record(request)
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    def _message(
        self, channel: str, body: dict[str, Any], *, webhook: bool = False
    ) -> dict[str, Any]:
        reference = body.get("message_reference")
        message: dict[str, Any] = {
            "id": str(next(self._ids)),
            "channel_id": channel,
            "type": 19 if reference else 0,
            "content": body.get("content") or "",
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "author": BOT_USER,
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "pinned": False,
            "flags": int(body.get("flags", 0) or 0),
        }
        if reference:
            message["message_reference"] = {"type": 0, **reference}
        if webhook:
            message["webhook_id"] = APP_ID
            message["application_id"] = APP_ID
        return message


def _json(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON as Discord sends it: exactly `application/json` (discord.py compares the header)."""
    return web.Response(
        body=json.dumps(data).encode("utf-8"),
        status=status,
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


def _now() -> str:
    return datetime.now(UTC).isoformat()
