"""A loopback HTTP server that imitates a Statuspage host, probe targets and the two Anthropic API
endpoints the authenticated check calls. IO (aiohttp). Used by `aistatus demo`, the benchmarks and
the tests; its API is stable:

    async with StatusServer(expected_api_key="sk-test") as srv:
        srv.set_summary(fixture_json("claude/summary_all_operational.json"))
        srv.url                       # "http://127.0.0.1:PORT"
        srv.set_fault(status=503)     # an HTML 503 page on /api/v2/*; srv.clear_fault()
        srv.add_redirect("/api/v2/summary.json", other.url + "/api/v2/summary.json")
        srv.set_probe("claude-login", status=200, delay=0.0)   # GET /probe/claude-login
        await srv.play([(1.0, payload_a), (2.0, payload_b)])   # the demo's timeline
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import hmac
import json
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

from bot.watch.statuspage import INCIDENTS_PATH, SUMMARY_PATH

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
MAX_PLAY_DELAY = 600.0  # seconds: one step of `play` never waits longer than this
DRIP_CHUNK = 16  # bytes per write of a slow-drip body
DRIP_INTERVAL = 0.05  # seconds between drip writes when the fault names no delay
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
MODELS_PATH = "/v1/models"

Body = bytes | str | dict[str, Any] | list[Any]


@dataclass(frozen=True, slots=True)
class Fault:
    """How /api/v2/* misbehaves until `clear_fault()`.

    status: the HTTP status to answer (None: 200, or the document's own answer).
    body: the body to send (None: the document, or an HTML error page when status >= 400).
    content_type: None guesses text/html for bodies starting with `<`, else application/json.
    delay: seconds before the headers; with `drip`, seconds between body chunks instead.
    drip: send the body DRIP_CHUNK bytes at a time (a slow-drip server).
    size: pad the body with spaces to this many bytes, streamed without Content-Length.
    headers: extra response headers (`Retry-After` with a 429).
    """

    status: int | None = None
    body: bytes | None = None
    content_type: str | None = None
    delay: float = 0.0
    drip: bool = False
    size: int | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class _Document:
    body: bytes
    etag: str | None
    last_modified: str | None
    content_type: str


@dataclass(frozen=True, slots=True)
class _Probe:
    status: int
    delay: float
    body: bytes


def _as_bytes(body: Body) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


def _html_page(status: int) -> bytes:
    return (
        f"<!DOCTYPE html><html><head><title>{status} Error</title></head>"
        f"<body><h1>{status}</h1><p>Something went wrong on our end.</p></body></html>"
    ).encode()


def _etag_matches(header: str, etag: str) -> bool:
    wanted = etag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


class StatusServer:
    """A Statuspage imitation on 127.0.0.1 (port 0: the OS picks; read `url` after `start`).

    Counters (plain ints/lists, read them from tests):
    requests: every request on any path. conditional_hits: 304s served. hits: per path.
    api_keys_seen: the `x-api-key` header of each /v1/* call (None when absent).
    api_bodies: the JSON bodies posted to /v1/messages/count_tokens.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, expected_api_key: str | None = None
    ) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"StatusServer serves loopback only, not {host!r}")
        self.host = host
        self.port = port
        self.expected_api_key = expected_api_key
        self.requests = 0
        self.conditional_hits = 0
        self.hits: Counter[str] = Counter()
        self.api_keys_seen: list[str | None] = []
        self.api_bodies: list[Any] = []
        self._documents: dict[str, _Document] = {}
        self._redirects: dict[str, tuple[str, int]] = {}
        self._redirect_all: str | None = None
        self._redirect_all_status = 301
        self._probes: dict[str, _Probe] = {}
        self._fault: Fault | None = None
        self._api_status: int | None = None
        self._api_delay = 0.0
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._request_seen = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and serve. Raises: OSError when the address cannot be bound."""
        if self._runner is not None:
            return
        self._closing = asyncio.Event()
        self._request_seen = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]  # the port the OS picked for port 0
        log.debug("status server listening on %s", self.url)

    async def stop(self) -> None:
        """Stop serving; wakes any handler that is delaying or dripping."""
        self._closing.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> StatusServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:PORT (no trailing slash). Raises: RuntimeError before
        `start`."""
        if self._runner is None:
            raise RuntimeError("StatusServer is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # -- what it serves ----------------------------------------------------------------------------

    def set_document(
        self,
        path: str,
        body: Body,
        *,
        validators: bool = True,
        content_type: str = "application/json",
    ) -> None:
        """Serve `body` at `path` (dicts/lists as JSON). With `validators`, an ETag (sha1 of the
        body) and a Last-Modified are sent and a matching If-None-Match (or, without one, an equal
        If-Modified-Since) gets 304; without, the page sends none (like incident.io: fact 10)."""
        data = _as_bytes(body)
        self._documents[path] = _Document(
            body=data,
            etag=f'"{hashlib.sha1(data).hexdigest()}"' if validators else None,
            last_modified=email.utils.formatdate(time.time(), usegmt=True) if validators else None,
            content_type=content_type,
        )

    def set_summary(self, body: Body, *, validators: bool = True) -> None:
        """What /api/v2/summary.json serves."""
        self.set_document(SUMMARY_PATH, body, validators=validators)

    def set_incidents(self, body: Body, *, validators: bool = True) -> None:
        """What /api/v2/incidents.json serves."""
        self.set_document(INCIDENTS_PATH, body, validators=validators)

    def set_fault(
        self,
        status: int | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        delay: float = 0.0,
        drip: bool = False,
        size: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Make every /api/v2/* answer misbehave (see `Fault`) until `clear_fault()`."""
        extra = tuple((headers or {}).items())
        self._fault = Fault(status, body, content_type, max(0.0, delay), drip, size, extra)

    def clear_fault(self) -> None:
        self._fault = None

    def add_redirect(self, from_path: str, to_url: str, *, status: int = 301) -> None:
        """Answer `from_path` with a redirect to `to_url` (absolute, or a path on this server)."""
        self._redirects[from_path] = (to_url, status)

    def redirect_all(self, to_base: str | None, *, status: int = 301) -> None:
        """Redirect every path to the same path under `to_base` (status.anthropic.com ->
        status.claude.com); None stops it."""
        self._redirect_all = to_base.rstrip("/") if to_base else None
        self._redirect_all_status = status

    def set_probe(
        self, name: str, status: int = 200, delay: float = 0.0, body: bytes = b"ok"
    ) -> None:
        """Serve /probe/<name> with `status` after `delay` seconds."""
        self._probes[name] = _Probe(status, max(0.0, delay), body)

    def set_api(self, status: int | None = None, delay: float = 0.0) -> None:
        """Make /v1/* answer `status` (e.g. 529) whatever the key; None restores the key check."""
        self._api_status = status
        self._api_delay = max(0.0, delay)

    async def play(self, timeline: Sequence[tuple[float, Body]]) -> None:
        """Set each summary payload after its delay (seconds since the previous step, each capped
        at MAX_PLAY_DELAY); returns when the timeline is done or the server stops."""
        for delay, payload in timeline:
            await self._sleep(min(max(0.0, delay), MAX_PLAY_DELAY))
            if self._closing.is_set():
                return
            self.set_summary(payload)

    async def wait_for_requests(self, count: int, *, within: float = 5.0) -> None:
        """Wait until `requests >= count`. Raises: TimeoutError after `within` seconds."""
        async with asyncio.timeout(within):
            while self.requests < count:
                self._request_seen.clear()
                await self._request_seen.wait()

    # -- handlers ----------------------------------------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the server stops (no handler outlives `stop`)."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests += 1
        self.hits[path] += 1
        self._request_seen.set()
        if self._redirect_all:
            location = self._redirect_all + request.path_qs
            return web.Response(status=self._redirect_all_status, headers={"Location": location})
        if path in self._redirects:
            location, status = self._redirects[path]
            return web.Response(status=status, headers={"Location": location})
        if path.startswith("/probe/"):
            return await self._serve_probe(path.removeprefix("/probe/"))
        if path in (COUNT_TOKENS_PATH, MODELS_PATH):
            return await self._serve_api(request)
        doc = self._documents.get(path)
        if self._fault is not None and path.startswith("/api/"):
            return await self._serve_fault(request, self._fault, doc)
        if doc is None:
            return web.json_response({"error": "not found"}, status=404)
        return self._serve_document(request, doc)

    def _serve_document(self, request: web.Request, doc: _Document) -> web.Response:
        headers = {"Content-Type": doc.content_type}
        if doc.etag:
            headers["ETag"] = doc.etag
        if doc.last_modified:
            headers["Last-Modified"] = doc.last_modified
        inm = request.headers.get("If-None-Match")
        ims = request.headers.get("If-Modified-Since")
        if (doc.etag and inm and _etag_matches(inm, doc.etag)) or (
            inm is None and doc.last_modified and ims == doc.last_modified
        ):
            self.conditional_hits += 1
            del headers["Content-Type"]
            return web.Response(status=304, headers=headers)
        return web.Response(body=doc.body, headers=headers)

    async def _serve_fault(
        self, request: web.Request, fault: Fault, doc: _Document | None
    ) -> web.StreamResponse:
        if not fault.drip:
            await self._sleep(fault.delay)
        status = fault.status or 200
        if fault.body is not None:
            body = fault.body
        elif doc is not None and status < 400:
            body = doc.body
        else:
            body = _html_page(status)
        if fault.size is not None and len(body) < fault.size:
            body += b" " * (fault.size - len(body))
        ctype = fault.content_type or (
            "text/html; charset=utf-8" if body.lstrip().startswith(b"<") else "application/json"
        )
        headers = {"Content-Type": ctype, **dict(fault.headers)}
        if not (fault.drip or fault.size is not None):
            return web.Response(status=status, body=body, headers=headers)
        resp = web.StreamResponse(status=status, headers=headers)
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        step = DRIP_CHUNK if fault.drip else 65536
        with contextlib.suppress(ConnectionError):
            for start in range(0, len(body), step):
                if self._closing.is_set():
                    break
                await resp.write(body[start : start + step])
                if fault.drip:
                    await self._sleep(fault.delay or DRIP_INTERVAL)
            await resp.write_eof()
        return resp

    async def _serve_probe(self, name: str) -> web.Response:
        probe = self._probes.get(name)
        if probe is None:
            return web.Response(status=404, text="no such probe")
        await self._sleep(probe.delay)
        return web.Response(status=probe.status, body=probe.body)

    async def _serve_api(self, request: web.Request) -> web.Response:
        key = request.headers.get("x-api-key")
        self.api_keys_seen.append(key)
        expected_method = "POST" if request.path == COUNT_TOKENS_PATH else "GET"
        if request.method != expected_method:
            return web.json_response(_api_error("invalid_request_error", "method"), status=405)
        if request.method == "POST":
            try:
                self.api_bodies.append(await request.json())
            except ValueError:
                self.api_bodies.append(None)
        await self._sleep(self._api_delay)
        if self._api_status is not None and self._api_status != 200:
            kind = "overloaded_error" if self._api_status == 529 else "api_error"
            return web.json_response(_api_error(kind, "injected"), status=self._api_status)
        wanted = self.expected_api_key
        if key is None or wanted is None or not hmac.compare_digest(key.encode(), wanted.encode()):
            return web.json_response(
                _api_error("authentication_error", "invalid x-api-key"), status=401
            )
        if request.path == COUNT_TOKENS_PATH:
            return web.json_response({"input_tokens": 8})
        return web.json_response({"data": [], "has_more": False})


def _api_error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}
