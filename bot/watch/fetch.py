"""Fetching a status page: conditional GET (ETag / If-Modified-Since), bounded redirects, a size cap
and a whole-call deadline. IO, thin: the bytes it returns are read by `bot.watch.statuspage`.
"""

from __future__ import annotations

import asyncio
import email.utils
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from bot.errors import ProbeError
from bot.watch.http import deadline_reason, transport_reason
from bot.watch.redirects import is_internal_host, redirect_problem
from bot.watch.statuspage import INCIDENTS_PATH, SUMMARY_PATH


@dataclass(frozen=True, slots=True)
class Validators:
    """HTTP cache validators from the last 200, sent back as If-None-Match / If-Modified-Since."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """One conditional GET. `body` is None when the page answered 304 (not_modified)."""

    not_modified: bool
    body: bytes | None
    validators: Validators
    final_url: str  # after redirects (status.anthropic.com -> status.claude.com)
    status_code: int
    elapsed_ms: float


MAX_REDIRECTS = 5
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


async def fetch_summary(
    client: httpx.AsyncClient,
    base_url: str,
    *,
    validators: Validators | None = None,
    max_bytes: int = 2_000_000,
    path: str = SUMMARY_PATH,
    deadline: float | None = None,
    max_redirects: int = MAX_REDIRECTS,
) -> FetchResult:
    """GET `base_url + path`, conditionally when `validators` are given; follows up to
    `max_redirects` redirects; reads at most `max_bytes`. Connect/read timeouts come from the
    client; `deadline` bounds the whole call (a slow-drip body cannot hold a poll forever).

    Raises: ProbeError with a short reason ("HTTP 503", "read timeout", "connection refused",
    "response larger than N bytes", "too many redirects", "no answer within N s").
    """
    headers = {"Accept": "application/json"}
    if validators is not None:
        if validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
    return await _get(
        client,
        base_url.rstrip("/") + path,
        headers=headers,
        max_bytes=max_bytes,
        deadline=deadline,
        max_redirects=max_redirects,
        sent=validators,
    )


async def fetch_incidents(
    client: httpx.AsyncClient,
    base_url: str,
    *,
    max_bytes: int = 2_000_000,
    path: str = INCIDENTS_PATH,
    deadline: float | None = None,
    max_redirects: int = MAX_REDIRECTS,
) -> bytes:
    """The body of incidents.json (every recent incident, resolved ones included).

    Raises: ProbeError, as `fetch_summary`.
    """
    result = await _get(
        client,
        base_url.rstrip("/") + path,
        headers={"Accept": "application/json"},
        max_bytes=max_bytes,
        deadline=deadline,
        max_redirects=max_redirects,
        sent=None,
    )
    return result.body or b""


async def _get(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: Mapping[str, str],
    max_bytes: int,
    deadline: float | None,
    max_redirects: int,
    sent: Validators | None,
) -> FetchResult:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(deadline):
            return await _get_following(
                client, url, headers, max_bytes, max_redirects, sent, started
            )
    except TimeoutError:
        raise ProbeError(deadline_reason(deadline)) from None
    except httpx.HTTPError as e:
        raise ProbeError(transport_reason(e)) from None


async def resolved(url: str) -> list[str]:
    """Every address the URL's host resolves to (empty for an IP literal or no host).
    Raises: OSError when the name does not resolve."""
    host = urlsplit(url).hostname
    if not host:
        return []
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


async def checked_redirect(
    origin: str, target: str, *, with_credentials: bool = False
) -> str | None:
    """`redirect_problem` with the target's addresses: from a public origin, a target name is
    resolved, so a public-looking name that points inside is refused like an internal IP
    literal (a name that does not resolve is left to the request to fail)."""
    addresses: list[str] = []
    if not is_internal_host(urlsplit(origin).hostname or ""):
        try:
            addresses = await resolved(target)
        except OSError:
            addresses = []
    return redirect_problem(
        origin, target, with_credentials=with_credentials, target_addresses=addresses
    )


async def _get_following(
    client: httpx.AsyncClient,
    url: str,
    headers: Mapping[str, str],
    max_bytes: int,
    max_redirects: int,
    sent: Validators | None,
    started: float,
) -> FetchResult:
    target = httpx.URL(url)
    for _hop in range(max_redirects + 1):
        async with client.stream("GET", target, headers=headers, follow_redirects=False) as resp:
            code = resp.status_code
            if code == 304:
                return FetchResult(
                    not_modified=True,
                    body=None,
                    validators=_validators(resp, fallback=sent),
                    final_url=str(resp.url),
                    status_code=code,
                    elapsed_ms=(time.perf_counter() - started) * 1000,
                )
            if code in _REDIRECT_CODES:
                location = resp.headers.get("Location")
                if not location:
                    raise ProbeError(f"HTTP {code} without a Location")
                following = resp.url.join(location)
                problem = await checked_redirect(str(resp.url), str(following))
                if problem is not None:
                    raise ProbeError(problem)
                target = following
                continue
            if code >= 300:
                wait = retry_after(resp.headers.get("Retry-After"), now=time.time())
                raise ProbeError(f"HTTP {code}", retry_after=wait if code in (429, 503) else None)
            body = await _read_capped(resp, max_bytes)
            return FetchResult(
                not_modified=False,
                body=body,
                validators=_validators(resp, fallback=None),
                final_url=str(resp.url),
                status_code=code,
                elapsed_ms=(time.perf_counter() - started) * 1000,
            )
    raise ProbeError("too many redirects")


async def _read_capped(resp: httpx.Response, max_bytes: int) -> bytes:
    too_large = ProbeError(f"response larger than {max_bytes} bytes")
    declared = resp.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.aiter_bytes():  # decoded: the cap also stops a gzip bomb
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


MAX_RETRY_AFTER = 3600.0  # a page asking for longer is polled again after an hour anyway


def retry_after(value: str | None, *, now: float) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date, capped at MAX_RETRY_AFTER); None
    when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return min(max(0.0, when.timestamp() - now), MAX_RETRY_AFTER)


def _validators(resp: httpx.Response, *, fallback: Validators | None) -> Validators:
    etag = resp.headers.get("ETag") or (fallback.etag if fallback else None)
    modified = resp.headers.get("Last-Modified") or (fallback.last_modified if fallback else None)
    return Validators(etag=etag, last_modified=modified)
