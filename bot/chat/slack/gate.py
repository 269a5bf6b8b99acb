"""The door in front of Bolt in HTTP mode: unsigned, stale or malformed requests get a quick 4xx
with one short log line (never the body), and anonymous `GET /slack/install` (each one writes an
OAuth state to Redis) has a bounded budget. IO (aiohttp middleware).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from aiohttp import web

log = logging.getLogger(__name__)

MAX_SKEW_S = 300  # Slack's own rule: a timestamp more than five minutes away is a replay
INSTALLS_PER_MINUTE = 60  # per process: OAuth states written for anonymous visitors
COMMAND_FIELDS = ("team_id", "channel_id", "user_id")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class _Rejections:
    """One log line when a kind of rejection starts, then one a minute with the count."""

    every_s: float = 60.0
    _since: dict[str, tuple[float, int]] = field(default_factory=dict)

    def note(self, reason: str, now: float) -> None:
        first, n = self._since.get(reason, (0.0, 0))
        if n == 0 or now - first >= self.every_s:
            more = f" ({n} more since the last line)" if n > 1 else ""
            log.info("rejected a Slack request: %s%s", reason, more)
            self._since[reason] = (now, 1)
        else:
            self._since[reason] = (first, n + 1)


@dataclass
class _Budget:
    """A token bucket: `per_minute` requests, refilled continuously."""

    per_minute: int
    _tokens: float = -1.0
    _at: float = 0.0

    def take(self, now: float) -> bool:
        if self._tokens < 0:
            self._tokens, self._at = float(self.per_minute), now
        self._tokens = min(self.per_minute, self._tokens + (now - self._at) * self.per_minute / 60)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


def signature_problem(secret: str, headers: dict[str, str], body: bytes, now: float) -> str | None:
    """Why a request is not Slack's (None when its v0 signature is valid and fresh)."""
    ts, sig = headers.get("x-slack-request-timestamp", ""), headers.get("x-slack-signature", "")
    if not ts or not sig:
        return "unsigned"
    if not ts.isdigit() or len(ts) > 12:
        return "bad timestamp"
    if abs(now - int(ts)) > MAX_SKEW_S:
        return "stale timestamp"
    mac = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    if not hmac.compare_digest("v0=" + mac.hexdigest(), sig):
        return "bad signature"
    return None


def _malformed(content_type: str, body: bytes) -> str | None:
    """Why a signed body is not one Bolt can handle (None when it is)."""
    if content_type == "application/json":
        try:
            json.loads(body)
        except ValueError:
            return "body is not JSON"
        return None
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=False)
    except UnicodeDecodeError:
        return "body is not UTF-8"
    if "command" in form and any(not form.get(f, [""])[0] for f in COMMAND_FIELDS):
        return "slash command without team_id, channel_id or user_id"
    return None


def slack_gate(
    signing_secret: str,
    *,
    events_path: str = "/slack/events",
    install_path: str = "/slack/install",
    installs_per_minute: int = INSTALLS_PER_MINUTE,
    clock: Callable[[], float] = time.time,
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """Middleware for the Slack HTTP app (after the inbound deadlines, before Bolt)."""
    rejections = _Rejections()
    installs = _Budget(installs_per_minute)

    @web.middleware
    async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
        now = clock()
        if request.method == "GET" and request.path == install_path:
            if not installs.take(now):
                rejections.note("install page over its budget", now)
                return web.Response(status=429, text="too many install requests; try later")
            return await handler(request)
        if request.path != events_path or request.method != "POST":
            return await handler(request)
        body = await request.read()  # already read (bounded) by the inbound deadlines
        headers = {k.lower(): v for k, v in request.headers.items()}
        problem = signature_problem(signing_secret, headers, body, now)
        if problem is not None:
            rejections.note(problem, now)
            return web.Response(status=401, text="invalid request")
        problem = _malformed(request.content_type, body)
        if problem is not None:
            rejections.note(problem, now)
            return web.Response(status=400, text="malformed request")
        return await handler(request)

    return gate
