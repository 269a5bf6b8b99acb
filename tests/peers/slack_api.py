"""A loopback Slack Web API for tests: aiohttp on 127.0.0.1:0 speaking the real shapes of the
methods the bot calls, recording every call, with scriptable failures and seeded chaos (429 +
Retry-After, 500, hangs, answers lost after the call was applied); message metadata kept and
served back by conversations.history / .replies; plus `response_url` endpoints and a Socket
Mode websocket. Point AsyncWebClient(base_url=SlackApi.base_url) at it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.peers.chaos import Chaos

JSON_PARAMS = ("blocks", "attachments", "view", "metadata")


@dataclass
class Call:
    """One request the bot made. `params` are parsed (JSON or form, JSON-valued form fields
    decoded); `headers` never include Authorization; `team` is the workspace of the bearer
    token (None when the token is unknown or missing); `at` the event loop's time when it came."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    team: str | None
    content_type: str
    at: float = 0.0


@dataclass
class _Failure:
    status: int
    error: str | None
    retry_after: str | None = None
    times: int | None = 1  # None: forever
    channel: str | None = None  # only calls naming this channel (None: every call)


@dataclass
class SlackApi:
    """The recording server. `tokens` maps bot tokens to their team ids; `app_tokens` are the
    xapp- tokens accepted by apps.connections.open."""

    tokens: Mapping[str, str] = field(default_factory=lambda: {"xoxb-test-token": "T0001"})
    app_tokens: frozenset[str] = frozenset({"xapp-test-token"})
    calls: list[Call] = field(default_factory=list)
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    deleted: set[tuple[str, str]] = field(default_factory=set)
    channel_errors: dict[str, str] = field(default_factory=dict)
    # Public channels the bot posts to unjoined (chat:write.public): their history and replies
    # answer not_in_channel until conversations.join. `private`: channels join refuses.
    outside: set[str] = field(default_factory=set)
    private: set[str] = field(default_factory=set)
    chaos: Chaos | None = None  # Chaos(methods=...) limits it to those Web API methods
    # The calls Slack applied (answered ok=true), in the order it answered them.
    accepted: list[Call] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)  # chaos answered, by kind
    # OAuth install codes oauth.v2.access exchanges: code -> (team id, the bot token it grants).
    oauth_codes: dict[str, tuple[str, str]] = field(default_factory=dict)
    port: int = 0

    def __post_init__(self) -> None:
        self._failures: dict[str, list[_Failure]] = {}
        self._closing = asyncio.Event()
        self._last_ts = 0.0
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._sockets: list[web.WebSocketResponse] = []
        self._socket_connected = asyncio.Event()
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._envelopes = itertools.count(1)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> SlackApi:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/respond/{name}", self._respond)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        self._closing.set()  # hung calls answer now, so the runner can finish
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> SlackApi:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"http://127.0.0.1:{self.port}/respond/{name}"

    # -- scripting -------------------------------------------------------------------------------

    def fail_channel(self, channel: str, error: str) -> None:
        """Every call naming `channel` answers HTTP 200 ok=false with `error`."""
        self.channel_errors[channel] = error

    def not_joined(self, channel: str, *, private: bool = False) -> None:
        """The bot is not a member of `channel`: posting works (chat:write.public), reading its
        history answers not_in_channel until the bot joins (a private one cannot be joined)."""
        self.outside.add(channel)
        if private:
            self.private.add(channel)

    def heal_channel(self, channel: str) -> None:
        """`channel` works again (the bot was added back): its calls succeed."""
        self.channel_errors.pop(channel, None)

    def delete_message(self, channel: str, ts: str) -> None:
        """The message is gone: chat.update says message_not_found, thread replies
        thread_not_found."""
        self.deleted.add((channel, ts))

    def rate_limit(
        self,
        method: str,
        retry_after: str = "7",
        times: int | None = 1,
        *,
        channel: str | None = None,
    ) -> None:
        """The next `times` calls of `method` ("*": any method), naming `channel` when given,
        get HTTP 429 with Retry-After."""
        self._failures.setdefault(method, []).append(
            _Failure(429, "ratelimited", retry_after=retry_after, times=times, channel=channel)
        )

    def server_error(
        self, method: str, status: int = 500, times: int | None = 1, *, channel: str | None = None
    ) -> None:
        """The next `times` calls of `method` ("*": any method), naming `channel` when given,
        get a bare HTTP `status` (text body)."""
        self._failures.setdefault(method, []).append(
            _Failure(status, None, times=times, channel=channel)
        )

    def refuse(self, method: str, error: str, times: int | None = None) -> None:
        """The next `times` calls of `method` (None: every one) answer HTTP 200 ok=false with
        `error`, as Slack does for a missing scope or a channel the bot is not in."""
        self._failures.setdefault(method, []).append(_Failure(200, error, times=times))

    # -- reading ----------------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def accepted_to(self, method: str, channel: str | None = None) -> list[Call]:
        """The calls of `method` Slack applied (optionally in one channel), in order."""
        return [
            c
            for c in self.accepted
            if c.method == method and (channel is None or c.params.get("channel") == channel)
        ]

    async def wait_until(self, predicate: Callable[[], bool], within: float = 3.0) -> None:
        """Until `predicate()` holds, checked after every request (at most `within` seconds).
        Raises: TimeoutError."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(predicate)

    async def wait_for(self, method: str, count: int = 1, within: float = 3.0) -> list[Call]:
        """The first `count` calls of `method`, waiting up to `within` seconds for them."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.calls_to(method)) >= count)
        return self.calls_to(method)[:count]

    # -- handlers ----------------------------------------------------------------------------------

    async def _record(self, call: Call) -> None:
        self.calls.append(call)
        async with self._changed:
            self._changed.notify_all()

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
        elif request.can_read_body:
            params.update(dict(await request.post()))
        for name in JSON_PARAMS:
            if isinstance(params.get(name), str):
                params[name] = json.loads(params[name])
        for name, value in list(params.items()):
            if value in ("true", "1") and name in (
                "reply_broadcast",
                "unfurl_links",
                "unfurl_media",
            ):
                params[name] = True
            elif value in ("false", "0") and name in (
                "reply_broadcast",
                "unfurl_links",
                "unfurl_media",
            ):
                params[name] = False
        return params

    def _token(self, request: web.Request, params: dict[str, Any]) -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth.removeprefix("Bearer ").strip()
        token = params.pop("token", None)
        return str(token) if token else None

    def _next_ts(self) -> str:
        # Slack's ts is its clock at posting, unique per channel: the wall clock, kept increasing
        # (the `oldest` bound of conversations.history compares it with the bot's clock).
        self._last_ts = max(round(time.time(), 6), round(self._last_ts + 0.000001, 6))
        return f"{self._last_ts:.6f}"

    def _take_failure(self, method: str, channel: str) -> _Failure | None:
        for queue in (self._failures.get(method) or [], self._failures.get("*") or []):
            failure = next((f for f in queue if f.channel in (None, channel)), None)
            if failure is None:
                continue
            if failure.times is not None:
                failure.times -= 1
                if failure.times <= 0:
                    queue.remove(failure)
            return failure
        return None

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        token = self._token(request, params)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        team = self.tokens.get(token or "")
        at = asyncio.get_running_loop().time()
        call = Call(method, params, headers, team, request.content_type, at)
        await self._record(call)

        failure = self._take_failure(method, str(params.get("channel", "")))
        if failure is None and self.chaos is not None and self.chaos.applies(method):
            fault = self.chaos.pick()
            if fault is not None:
                self.faults[fault] += 1
            if fault == "hang":  # the client times out; nothing is applied
                await self._closing.wait()
                return web.Response(status=503, text="shutting down")
            if fault == "lost" and method.startswith("chat."):
                await self._lose_answer(method, params, team, call, request)
            if fault == "429":
                failure = _Failure(429, "ratelimited", retry_after=str(self.chaos.retry_after))
            elif fault == "500":
                failure = _Failure(500, None)
        if failure is not None:
            if failure.error is None:
                return web.Response(status=failure.status, text="Internal Server Error")
            extra = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            return web.json_response(
                {"ok": False, "error": failure.error}, status=failure.status, headers=extra
            )

        if method == "apps.connections.open":
            if token not in self.app_tokens:
                return _error("invalid_auth")
            return web.json_response({"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"})
        if method == "oauth.v2.access":
            return self._oauth_access(params)
        if token is None:
            return _error("not_authed")
        if team is None:
            return _error("invalid_auth")
        channel = str(params.get("channel", ""))
        if channel and channel in self.channel_errors:
            return _error(self.channel_errors[channel])

        return await self._apply(method, params, team, call)

    async def _apply(
        self, method: str, params: dict[str, Any], team: str | None, call: Call
    ) -> web.Response:
        handler = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "views.publish": self._views_publish,
            "conversations.info": self._conversations_info,
            "conversations.history": self._history,
            "conversations.replies": self._replies,
            "conversations.join": self._join,
        }.get(method)
        if handler is None or team is None:
            return _error("unknown_method" if handler is None else "invalid_auth")
        response = handler(params, team)
        body = response.body if isinstance(response.body, bytes) else b"{}"
        if response.status == 200 and json.loads(body).get("ok") is True:
            self.accepted.append(call)
            async with self._changed:
                self._changed.notify_all()
        return response

    def _oauth_access(self, params: dict[str, Any]) -> web.Response:
        grant = self.oauth_codes.pop(str(params.get("code", "")), None)
        if grant is None:
            return _error("invalid_code")
        team, token = grant
        self.tokens = {**self.tokens, token: team}
        return web.json_response(
            {
                "ok": True,
                "app_id": "A0001",
                "authed_user": {"id": "U42"},
                "scope": "chat:write,chat:write.public,commands",
                "token_type": "bot",
                "access_token": token,
                "bot_user_id": f"U{team}BOT",
                "team": {"id": team, "name": f"Team {team}"},
                "enterprise": None,
                "is_enterprise_install": False,
            }
        )

    async def _lose_answer(
        self,
        method: str,
        params: dict[str, Any],
        team: str | None,
        call: Call,
        request: web.Request,
    ) -> None:
        """Apply the call, then drop the connection before answering (the answer is lost)."""
        self.faults["lost-applied"] += 1
        await self._apply(method, params, team, call)
        if request.transport is not None:
            request.transport.abort()
        raise ConnectionResetError("answer lost on purpose")

    def _auth_test(self, params: dict[str, Any], team: str) -> web.Response:
        return web.json_response(
            {
                "ok": True,
                "url": f"https://{team.lower()}.slack.com/",
                "team": f"Team {team}",
                "user": "aistatus",
                "team_id": team,
                "user_id": f"U{team}BOT",
                "bot_id": f"B{team}BOT",
                "is_enterprise_install": False,
            }
        )

    def _message(self, params: dict[str, Any], ts: str) -> dict[str, Any]:
        message = {
            "type": "message",
            "subtype": "bot_message",
            "text": params.get("text", ""),
            "ts": ts,
            "user": "UBOT",
            "bot_id": "BBOT",
        }
        for name in ("blocks", "attachments", "thread_ts", "metadata"):
            if name in params:
                message[name] = params[name]
        return message

    def _post_message(self, params: dict[str, Any], team: str) -> web.Response:
        channel = params.get("channel")
        if not channel:
            return _error("channel_not_found")
        if not (params.get("text") or params.get("blocks") or params.get("attachments")):
            return _error("no_text")
        thread = params.get("thread_ts")
        if thread and ((channel, thread) in self.deleted or (channel, thread) not in self.messages):
            return _error("thread_not_found")
        ts = self._next_ts()
        message = self._message(params, ts)
        self.messages[(channel, ts)] = message
        return web.json_response({"ok": True, "channel": channel, "ts": ts, "message": message})

    def _update(self, params: dict[str, Any], team: str) -> web.Response:
        key = (str(params.get("channel")), str(params.get("ts")))
        if key in self.deleted or key not in self.messages:
            return _error("message_not_found")
        message = self._message(params, key[1])
        self.messages[key] = message
        return web.json_response(
            {
                "ok": True,
                "channel": key[0],
                "ts": key[1],
                "text": message["text"],
                "message": message,
            }
        )

    def _listing(self, params: dict[str, Any], found: list[dict[str, Any]]) -> web.Response:
        """A conversations.history / .replies page: newest first for history, `limit` long,
        after `oldest`, metadata only with include_all_metadata (as Slack does)."""
        oldest = float(params.get("oldest") or 0)
        limit = int(params.get("limit") or 100)
        metadata = str(params.get("include_all_metadata", "")).lower() in {"true", "1"}
        page = [m for m in found if float(m["ts"]) > oldest][:limit]
        if not metadata:
            page = [{k: v for k, v in m.items() if k != "metadata"} for m in page]
        return web.json_response(
            {
                "ok": True,
                "messages": page,
                "has_more": False,
                "pin_count": 0,
                "response_metadata": {"next_cursor": ""},
            }
        )

    def _join(self, params: dict[str, Any], team: str) -> web.Response:
        channel = str(params.get("channel", ""))
        if channel in self.private:
            return _error("method_not_supported_for_channel_type")
        self.outside.discard(channel)
        return web.json_response({"ok": True, "channel": {"id": channel, "is_member": True}})

    def _history(self, params: dict[str, Any], team: str) -> web.Response:
        channel = str(params.get("channel", ""))
        if channel in self.outside:
            return _error("not_in_channel")
        found = [
            m
            for (c, ts), m in self.messages.items()
            if c == channel and (c, ts) not in self.deleted
            and m.get("thread_ts") in (None, ts)
        ]  # fmt: skip
        found.sort(key=lambda m: float(m["ts"]), reverse=True)
        return self._listing(params, found)

    def _replies(self, params: dict[str, Any], team: str) -> web.Response:
        channel, thread = str(params.get("channel", "")), str(params.get("ts", ""))
        if channel in self.outside:
            return _error("not_in_channel")
        if (channel, thread) not in self.messages or (channel, thread) in self.deleted:
            return _error("thread_not_found")
        found = [
            m
            for (c, ts), m in self.messages.items()
            if c == channel and (ts == thread or m.get("thread_ts") == thread)
        ]
        found.sort(key=lambda m: float(m["ts"]))
        return self._listing(params, found)

    def _views_publish(self, params: dict[str, Any], team: str) -> web.Response:
        view = params.get("view")
        if not params.get("user_id") or not isinstance(view, dict):
            return _error("invalid_arguments")
        if view.get("type") != "home" or len(view.get("blocks", [])) > 100:
            return _error("invalid_arguments")
        return web.json_response({"ok": True, "view": {"id": "V0001", "team_id": team, **view}})

    def _conversations_info(self, params: dict[str, Any], team: str) -> web.Response:
        channel = str(params.get("channel", ""))
        return web.json_response(
            {
                "ok": True,
                "channel": {"id": channel, "name": channel.lower(), "is_archived": False},
            }
        )

    async def _respond(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        name = request.match_info["name"]
        await self._record(Call(f"respond:{name}", params, headers, None, request.content_type))
        return web.Response(text="ok")

    # -- Socket Mode -------------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1})
        self._socket_connected.set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                future = self._acks.pop(str(data.get("envelope_id")), None)
                if future is not None and not future.done():
                    future.set_result(data)
        finally:
            self._sockets.remove(ws)
        return ws

    async def send_envelope(
        self, kind: str, payload: dict[str, Any], within: float = 3.0
    ) -> dict[str, Any]:
        """Push a Socket Mode envelope (`slash_commands`, `interactive`, `events_api`) to the
        connected app and return its acknowledgement."""
        async with asyncio.timeout(within):
            await self._socket_connected.wait()
            envelope_id = f"env-{next(self._envelopes)}"
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._acks[envelope_id] = future
            await self._sockets[-1].send_json(
                {
                    "envelope_id": envelope_id,
                    "type": kind,
                    "payload": payload,
                    "accepts_response_payload": kind != "events_api",
                }
            )
            return await future


def _error(code: str) -> web.Response:
    """Slack's usual failure: HTTP 200 with ok=false."""
    return web.json_response({"ok": False, "error": code})
