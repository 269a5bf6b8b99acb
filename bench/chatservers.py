"""Loopback Slack Web API and Discord REST servers for the delivery benchmark, in a process of their
own (`python -m bench.chatservers`): aiohttp on 127.0.0.1, an added latency on every call, the
platforms' published rate limits enforced with 429s, and every accepted message counted per
channel. IO. The parent talks to it over a third (control) port and stops it by closing stdin.

Limits enforced (when `limits` is on), checked when a request arrives, answered after `latency`:
- Slack chat.postMessage: 1 message/s per channel with a burst of 3, and per workspace 5/s with a
  burst of 30 (Slack publishes only "several hundred per minute"; this is the figure
  bot.delivery.pacing.SLACK models). Exceeded: HTTP 429 `{"ok": false, "error": "ratelimited"}` with
  an integer `Retry-After` header, as Slack does.
- Discord: 50 requests per 1 s window, global per bot (every request counts); POST
  /channels/{id}/messages 5 per 5 s window per channel, announced in X-RateLimit-Limit /
  -Remaining / -Reset / -Reset-After / -Bucket on every answer. Exceeded: HTTP 429 with
  `{"message", "retry_after", "global"}`, Retry-After, X-RateLimit-Scope (and
  X-RateLimit-Global) and `Via`, the shape discord.py treats as a real rate limit.
Windows are fixed: one opens at the first request after the previous one closed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

HOST = "127.0.0.1"
DISCORD_PREFIX = "/api/v10"
SLACK_TOKEN_PREFIX = "xoxb-bench-"  # a bench bot token names its workspace: xoxb-bench-<team>
DISCORD_TOKEN = "bench-bot-token.not-a-secret"
BOT_ID = "1300000000000000002"
LIFETIME = 3600.0  # seconds: the process stops by itself after this long whatever happens


@dataclass(frozen=True, slots=True)
class Bucket:
    """`per_second` sustained, up to `burst` at once (a GCRA token bucket)."""

    per_second: float
    burst: int


@dataclass(frozen=True, slots=True)
class Window:
    """At most `limit` requests per fixed window of `seconds`."""

    limit: int
    seconds: float


SLACK_CHANNEL = Bucket(1.0, 3)
SLACK_WORKSPACE = Bucket(5.0, 30)
DISCORD_GLOBAL = Window(50, 1.0)
DISCORD_ROUTE = Window(5, 5.0)
DISCORD_BUCKET = "bench0post0message0hash"  # X-RateLimit-Bucket of POST /channels/{id}/messages


class Gcra:
    """Token buckets of one rate, one per key (generic cell rate algorithm)."""

    def __init__(self, bucket: Bucket) -> None:
        self.interval = 1.0 / bucket.per_second
        self.tolerance = (bucket.burst - 1) * self.interval
        self._tat: dict[str, float] = {}

    def wait(self, key: str, now: float) -> float:
        """Seconds until `key` has room (0.0: now). Takes nothing."""
        return max(0.0, self._tat.get(key, now) - self.tolerance - now)

    def take(self, key: str, now: float) -> None:
        self._tat[key] = max(self._tat.get(key, now), now) + self.interval


class Windows:
    """Fixed windows of one size, one per key."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self._open: dict[str, tuple[float, int]] = {}  # key -> (window start, requests in it)

    def state(self, key: str, now: float) -> tuple[int, float]:
        """(requests used in the current window, seconds until it closes)."""
        start, used = self._open.get(key, (now, 0))
        if now >= start + self.window.seconds:
            start, used = now, 0
        return used, start + self.window.seconds - now

    def take(self, key: str, now: float) -> tuple[int, float]:
        """Count one request; returns (requests left in the window, seconds until it closes)."""
        start, used = self._open.get(key, (now, 0))
        if now >= start + self.window.seconds:
            start, used = now, 0
        self._open[key] = (start, used + 1)
        return self.window.limit - used - 1, start + self.window.seconds - now


@dataclass
class Tally:
    """What one platform's server saw since the last reset (monotonic times, system-wide)."""

    accepted: Counter[str] = field(default_factory=Counter)  # channel id -> messages accepted
    requests: int = 0
    limited: Counter[str] = field(default_factory=Counter)  # which limit -> 429s answered
    first: float | None = None
    last: float | None = None

    def accept(self, channel: str) -> None:
        now = time.monotonic()
        self.accepted[channel] += 1
        self.first = now if self.first is None else self.first
        self.last = now

    def summary(self, *, channels: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "messages": sum(self.accepted.values()),
            "requests": self.requests,
            "limited": dict(self.limited),
            "first": self.first,
            "last": self.last,
        }
        if channels:
            out["channels"] = dict(self.accepted)
        return out


class ChatServers:
    """The Slack and Discord servers and the control endpoints, on one event loop."""

    def __init__(self) -> None:
        self.latency = 0.05
        self.limits = True
        self.slack = Tally()
        self.discord = Tally()
        self._reset_limits()
        self._ids = itertools.count(1_300_000_000_000_000_000)
        self._runners: list[web.AppRunner] = []
        self.urls: dict[str, str] = {}

    def _reset_limits(self) -> None:
        self._slack_channel = Gcra(SLACK_CHANNEL)
        self._slack_workspace = Gcra(SLACK_WORKSPACE)
        self._discord_global = Windows(DISCORD_GLOBAL)
        self._discord_route = Windows(DISCORD_ROUTE)

    async def start(self) -> None:
        slack = web.Application()
        slack.router.add_post("/api/{method}", self._slack_api)
        discord = web.Application()
        discord.router.add_get(DISCORD_PREFIX + "/users/@me", self._discord_me)
        discord.router.add_post(DISCORD_PREFIX + "/channels/{channel}/messages", self._discord_post)
        control = web.Application()
        control.router.add_post("/config", self._config)
        control.router.add_get("/stats", self._stats)
        for name, app in (("slack", slack), ("discord", discord), ("control", control)):
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, HOST, 0, backlog=1024)
            await site.start()
            self._runners.append(runner)
            port = runner.addresses[0][1]
            self.urls[name] = f"http://{HOST}:{port}"
        self.urls["slack"] += "/api/"
        self.urls["discord"] += DISCORD_PREFIX

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()

    # -- control ----------------------------------------------------------------------------------

    async def _config(self, request: web.Request) -> web.Response:
        """Set `latency` (seconds) and `limits` (bool), and reset every count and bucket."""
        body = await request.json()
        self.latency = float(body.get("latency", self.latency))
        self.limits = bool(body.get("limits", self.limits))
        self.slack, self.discord = Tally(), Tally()
        self._reset_limits()
        return web.json_response({"ok": True})

    async def _stats(self, request: web.Request) -> web.Response:
        channels = request.query.get("channels") == "1"
        return web.json_response(
            {
                "slack": self.slack.summary(channels=channels),
                "discord": self.discord.summary(channels=channels),
                "cpu": time.process_time(),
            }
        )

    # -- Slack -------------------------------------------------------------------------------------

    async def _slack_api(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        self.slack.requests += 1
        body = await request.json() if request.content_type == "application/json" else {}
        auth = request.headers.get("Authorization", "")
        team = auth.removeprefix("Bearer ").removeprefix(SLACK_TOKEN_PREFIX)
        channel = str(body.get("channel", ""))
        if request.match_info["method"] != "chat.postMessage":
            answer = _slack_error("unknown_method")
        elif not auth.startswith("Bearer " + SLACK_TOKEN_PREFIX):
            answer = _slack_error("invalid_auth")
        elif not channel or not (body.get("text") or body.get("blocks")):
            answer = _slack_error("invalid_arguments")
        else:
            answer = self._slack_limit(team, channel, now)
        await asyncio.sleep(self.latency)
        if answer is not None:
            return answer
        self.slack.accept(channel)
        ts = f"{int(time.time())}.{next(self._ids) % 1_000_000:06d}"
        message = {"type": "message", "text": body.get("text", ""), "ts": ts, "bot_id": "BBENCH"}
        return web.json_response({"ok": True, "channel": channel, "ts": ts, "message": message})

    def _slack_limit(self, team: str, channel: str, now: float) -> web.Response | None:
        if not self.limits:
            return None
        waits = {
            "slack channel 1/s": self._slack_channel.wait(channel, now),
            "slack workspace 5/s": self._slack_workspace.wait(team, now),
        }
        worst = max(waits, key=lambda k: waits[k])
        if waits[worst] > 0:
            self.slack.limited[worst] += 1
            retry_after = str(max(1, math.ceil(waits[worst])))  # Slack sends whole seconds
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": retry_after},
            )
        self._slack_channel.take(channel, now)
        self._slack_workspace.take(team, now)
        return None

    # -- Discord -----------------------------------------------------------------------------------

    async def _discord_me(self, request: web.Request) -> web.Response:
        self.discord.requests += 1
        if request.headers.get("Authorization") != f"Bot {DISCORD_TOKEN}":
            return _discord_json({"message": "401: Unauthorized", "code": 0}, status=401)
        if self.limits:
            self._discord_global.take("bot", time.monotonic())
        await asyncio.sleep(self.latency)
        user = {"id": BOT_ID, "username": "aistatus-bench", "discriminator": "0", "bot": True}
        return _discord_json({**user, "global_name": None, "avatar": None, "flags": 0})

    async def _discord_post(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        self.discord.requests += 1
        channel = request.match_info["channel"]
        body = await request.json()
        if request.headers.get("Authorization") != f"Bot {DISCORD_TOKEN}":
            answer: web.Response | None = _discord_json(
                {"message": "401: Unauthorized", "code": 0}, status=401
            )
        else:
            answer = self._discord_limit(channel, now)
        await asyncio.sleep(self.latency)
        if answer is not None:
            return answer
        _, route_headers = self._route_headers(channel, time.monotonic(), take=False)
        self.discord.accept(channel)
        message = {
            "id": str(next(self._ids)),
            "channel_id": channel,
            "type": 0,
            "content": body.get("content") or "",
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "author": {"id": BOT_ID, "username": "aistatus-bench", "bot": True},
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
            "edited_timestamp": None,
        }
        return _discord_json(message, headers=route_headers)

    def _route_headers(self, channel: str, now: float, *, take: bool) -> tuple[int, dict[str, str]]:
        if take:
            left, reset_after = self._discord_route.take(channel, now)
        else:
            used, reset_after = self._discord_route.state(channel, now)
            left = DISCORD_ROUTE.limit - used
        headers = {
            "X-RateLimit-Limit": str(DISCORD_ROUTE.limit),
            "X-RateLimit-Remaining": str(max(0, left)),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": DISCORD_BUCKET,
        }
        return left, headers

    def _discord_limit(self, channel: str, now: float) -> web.Response | None:
        if not self.limits:
            self._discord_route.take(channel, now)  # the headers stay truthful
            return None
        used, reset_after = self._discord_global.state("bot", now)
        if used >= DISCORD_GLOBAL.limit:
            self.discord.limited["discord global 50/s"] += 1
            return _discord_429(reset_after, is_global=True, headers={})
        self._discord_global.take("bot", now)
        used, reset_after = self._discord_route.state(channel, now)
        if used >= DISCORD_ROUTE.limit:
            self.discord.limited["discord route 5/5s"] += 1
            _, headers = self._route_headers(channel, now, take=False)
            return _discord_429(reset_after, is_global=False, headers=headers)
        self._discord_route.take(channel, now)
        return None


def _slack_error(code: str) -> web.Response:
    return web.json_response({"ok": False, "error": code})


def _discord_json(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """JSON as Discord sends it: exactly `application/json` (discord.py compares the header)."""
    return web.Response(
        body=json.dumps(data).encode("utf-8"),
        status=status,
        headers={**(headers or {}), "Content-Type": "application/json", "Via": "1.1 google"},
    )


def _discord_429(retry_after: float, *, is_global: bool, headers: dict[str, str]) -> web.Response:
    extra = {
        **headers,
        "Retry-After": str(max(1, math.ceil(retry_after))),
        "X-RateLimit-Scope": "global" if is_global else "user",
    }
    if is_global:
        extra["X-RateLimit-Global"] = "true"
    body = {"message": "You are being rate limited.", "retry_after": round(retry_after, 3)}
    body["global"] = is_global
    return _discord_json(body, status=429, headers=extra)


async def _serve(lifetime: float) -> None:
    servers = ChatServers()
    await servers.start()
    print(json.dumps(servers.urls), flush=True)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    try:
        async with asyncio.timeout(lifetime):
            while await stdin.readline():  # until the parent closes our stdin (or dies)
                pass
    except TimeoutError:
        print("chatservers: lifetime over, stopping", file=sys.stderr, flush=True)
    finally:
        await servers.stop()


def main(argv: list[str] | None = None) -> int:
    """Serve until stdin closes or `--lifetime` seconds pass; prints the URLs as one JSON line."""
    args = argv if argv is not None else sys.argv[1:]
    lifetime = float(args[args.index("--lifetime") + 1]) if "--lifetime" in args else LIFETIME
    asyncio.run(_serve(lifetime))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
