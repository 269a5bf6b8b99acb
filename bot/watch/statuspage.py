"""Statuspage v2 (and incident.io-compatible) pages. `parse_summary` / `parse_incidents` are the
pure twin (bytes in, values out, never raise); `fetch_summary` / `fetch_incidents` are the thin
httpx edge (conditional GET, bounded redirects, size cap, deadline).
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict

import httpx  # the IO twin lives here, beside its pure parser

from bot.core.model import Incident, Status
from bot.errors import ProbeError
from bot.watch.redirects import redirect_problem

log = logging.getLogger(__name__)

SUMMARY_PATH = "/api/v2/summary.json"
INCIDENTS_PATH = "/api/v2/incidents.json"

# -- raw JSON at the edge (what the page sends; any key may be missing or null in practice) -----


class RawPage(TypedDict, total=False):
    id: str
    name: str
    url: str
    time_zone: str
    updated_at: str


class RawPageStatus(TypedDict, total=False):
    indicator: str  # none|minor|major|critical (NOT the incident impact: fact 1)
    description: str


class RawComponent(TypedDict, total=False):
    id: str
    name: str
    status: str
    group: bool
    group_id: str | None
    position: int
    created_at: str
    updated_at: str


class RawAffectedComponent(TypedDict, total=False):
    code: str  # the component id
    name: str
    old_status: str
    new_status: str


class RawIncidentUpdate(TypedDict, total=False):
    id: str
    status: str
    body: str
    created_at: str
    updated_at: str
    display_at: str  # may be back-dated (fact 4)
    affected_components: list[RawAffectedComponent] | None


class RawIncident(TypedDict, total=False):
    id: str
    name: str
    status: str
    impact: str
    shortlink: str | None  # null on incident.io pages
    created_at: str
    updated_at: str
    started_at: str
    resolved_at: str | None
    components: list[RawComponent] | None  # may be [] or absent (facts 1, 10)
    incident_updates: list[RawIncidentUpdate] | None
    scheduled_for: str
    scheduled_until: str


class RawSummary(TypedDict):
    page: NotRequired[RawPage]
    status: NotRequired[RawPageStatus]
    components: NotRequired[list[RawComponent]]
    incidents: NotRequired[list[RawIncident] | None]
    scheduled_maintenances: NotRequired[list[RawIncident] | None]  # absent on incident.io


# -- values ----------------------------------------------------------------------------------------

RESOLVED_STATUSES = frozenset({"resolved", "postmortem", "completed"})
ACTIVE_MAINTENANCE_STATUSES = frozenset({"in_progress", "verifying"})
_STATUS_VALUES = {s.value for s in Status if s is not Status.UNKNOWN}


@dataclass(frozen=True, slots=True)
class ComponentReading:
    """One component as the page shows it. `raw_status` keeps the page's string; an unknown value
    maps to Status.UNKNOWN (never an outage)."""

    id: str
    name: str
    status: Status
    raw_status: str


@dataclass(frozen=True, slots=True)
class PageReading:
    """One read of a status page.

    ok: False when the payload as a whole is unusable (not JSON, no `components` list); then
    `error` says why in a few words and every surface it feeds should be `unknown`.
    problems: parts that were skipped (a malformed component or incident) while the rest was read.
    """

    provider: str
    observed_at: datetime
    ok: bool
    error: str | None = None
    components: Mapping[str, ComponentReading] = field(default_factory=dict)  # by component id
    incidents: tuple[Incident, ...] = ()  # unresolved incidents only
    maintenances: tuple[Incident, ...] = ()  # in-progress / verifying maintenances only
    indicator: str | None = None
    page_url: str | None = None
    problems: tuple[str, ...] = ()

    def component(
        self, component_id: str | None, name: str | None = None
    ) -> ComponentReading | None:
        """The component with this id; else the first whose name matches, ignoring case."""
        if component_id and component_id in self.components:
            return self.components[component_id]
        if name:
            wanted = name.casefold().strip()
            for comp in self.components.values():
                if comp.name.casefold().strip() == wanted:
                    return comp
        return None


# -- pure parsing ----------------------------------------------------------------------------------


def parse_summary(
    payload: bytes | str,
    *,
    provider: str,
    observed_at: datetime,
    base_url: str | None = None,
) -> PageReading:
    """Read a summary.json payload. Never raises: bad input gives ok=False and an `error`.

    Rules:
    1. The payload must be a JSON object with a `components` list holding at least one usable
       component, else ok=False.
    2. A malformed component or incident is skipped and named in `problems`.
    3. Incidents whose status is resolved/postmortem are dropped (posted already resolved).
    4. Only in_progress/verifying scheduled maintenances are kept (missing/null list = none).
    `base_url` is the page URL to use when the payload names none (incident links).
    """
    data, error = _load_json(payload)
    if error is not None:
        return PageReading(provider=provider, observed_at=observed_at, ok=False, error=error)
    if not isinstance(data, dict):
        return PageReading(
            provider=provider, observed_at=observed_at, ok=False, error="not a JSON object"
        )
    problems: list[str] = []
    page_url = _page_url(data, base_url)
    status = data.get("status")
    indicator = _text(status.get("indicator")) if isinstance(status, dict) else None

    incidents = tuple(
        inc
        for inc in _incidents(data.get("incidents"), "incidents", page_url, problems, False)
        if inc.status not in RESOLVED_STATUSES
    )
    maintenances = tuple(
        inc
        for inc in _incidents(
            data.get("scheduled_maintenances"), "scheduled_maintenances", page_url, problems, True
        )
        if inc.status in ACTIVE_MAINTENANCE_STATUSES
    )

    raw_components = data.get("components")
    error = None
    components: dict[str, ComponentReading] = {}
    if not isinstance(raw_components, list):
        error = "missing 'components'" if raw_components is None else "'components' is not a list"
    else:
        components = _components(raw_components, problems)
        if not components:
            error = "no usable components"
    return PageReading(
        provider=provider,
        observed_at=observed_at,
        ok=error is None,
        error=error,
        components=components,
        incidents=incidents,
        maintenances=maintenances,
        indicator=indicator,
        page_url=page_url,
        problems=tuple(problems),
    )


def parse_incidents(
    payload: bytes | str,
    *,
    provider: str,
    observed_at: datetime,
    base_url: str | None = None,
) -> tuple[Incident, ...]:
    """Every incident in an incidents.json payload, resolved ones included (their last update is
    the resolution text). Never raises: an unreadable payload gives (); problems are logged."""
    data, error = _load_json(payload)
    if error is None and not isinstance(data, dict):
        error = "not a JSON object"
    if error is not None:
        log.warning("%s incidents.json unreadable at %s: %s", provider, observed_at, error)
        return ()
    problems: list[str] = []
    out = tuple(
        _incidents(data.get("incidents"), "incidents", _page_url(data, base_url), problems, False)
    )
    for problem in problems:
        log.warning("%s incidents.json: %s", provider, problem)
    return out


def parse_time(value: object) -> datetime | None:
    """An ISO-8601 timestamp with any offset (`Z`, `-08:00`, with or without fractional seconds)
    as an aware UTC datetime; None when absent or unreadable. A timestamp without an offset is
    taken as UTC (Statuspage always sends one)."""
    if not isinstance(value, str) or not 10 <= len(value) <= 64:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python 3.11 accepts up to 6 fraction digits; some producers send 7-9 (or 1-2).
    text = re.sub(r"(\.\d{1,6})\d*", r"\1", text, count=1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


_BREAK_TAGS = re.compile(r"<\s*(?:br\s*/?|/\s*(?:p|div|h[1-6]|tr|blockquote|pre))\s*>", re.I)
_LIST_ITEM = re.compile(r"<\s*li\b[^>]*>", re.I)
# Only real HTML tag names are stripped: `a < b` and Markdown autolinks `<https://...>` survive.
_TAG = re.compile(
    r"<\s*/?\s*(?:a|abbr|b|blockquote|br|code|del|div|em|h[1-6]|hr|i|img|ins|li|ol|p|pre|s|small|"
    r"span|strike|strong|sub|sup|table|tbody|td|th|thead|tr|u|ul)\b[^<>]*>",
    re.I,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def normalise_body(text: str) -> str:
    """An update body as plain text: HTML tags stripped (link text kept), entities unescaped,
    `\\r\\n` -> `\\n`, runs of spaces collapsed, at most one blank line in a row. Markdown and
    Unicode (curly quotes, U+2236, emoji) are kept as they are."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _BREAK_TAGS.sub("\n", text)
    text = _LIST_ITEM.sub("\n- ", text)
    text = _TAG.sub("", text)
    text = html.unescape(text)
    text = _CONTROL.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


# -- parsing helpers -------------------------------------------------------------------------------


def _load_json(payload: bytes | str) -> tuple[Any, str | None]:
    """(data, None) or (None, a short reason). Never raises."""
    try:
        if isinstance(payload, bytes | bytearray | memoryview):
            try:
                text = bytes(payload).decode("utf-8-sig")
            except UnicodeDecodeError:
                return None, "not UTF-8 text"
        elif isinstance(payload, str):
            text = payload.removeprefix("\ufeff")
        else:
            return None, "no payload"
        stripped = text.strip()
        if not stripped:
            return None, "empty body"
        if stripped.startswith("<"):
            return None, "not JSON (HTML error page?)"
        try:
            return json.loads(stripped), None
        except json.JSONDecodeError as e:
            if e.pos >= len(stripped) or e.msg.startswith("Unterminated string"):
                return None, "truncated JSON"
            return None, "not JSON"
    except (ValueError, RecursionError, MemoryError):  # huge ints, absurd nesting
        return None, "not JSON"


def _text(value: object) -> str | None:
    """A non-empty stripped string, else None."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def _lower(value: object) -> str | None:
    text = _text(value)
    return text.lower() if text else None


def _page_url(data: Mapping[str, Any], base_url: str | None) -> str | None:
    page = data.get("page")
    url = _text(page.get("url")) if isinstance(page, dict) else None
    url = url or _text(base_url)
    return url.rstrip("/") if url else None


def _components(raw: list[Any], problems: list[str]) -> dict[str, ComponentReading]:
    out: dict[str, ComponentReading] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            problems.append(f"component #{i}: not an object")
            continue
        cid = _text(item.get("id"))
        if cid is None:
            problems.append(f"component #{i}: no 'id'")
            continue
        if cid in out:
            problems.append(f"component {cid}: listed twice (first kept)")
            continue
        raw_status = item.get("status")
        if not isinstance(raw_status, str):
            problems.append(f"component {cid}: no 'status'")
            raw_status = ""
        clean = raw_status.strip().lower()
        status = Status(clean) if clean in _STATUS_VALUES else Status.UNKNOWN
        if raw_status and status is Status.UNKNOWN:
            problems.append(f"component {cid}: unknown status {raw_status[:40]!r}")
        out[cid] = ComponentReading(
            id=cid, name=_text(item.get("name")) or cid, status=status, raw_status=raw_status
        )
    return out


def _incidents(
    raw: object, key: str, page_url: str | None, problems: list[str], maintenance: bool
) -> Iterable[Incident]:
    if raw is None:  # absent or null on incident.io pages (fact 10)
        return
    if not isinstance(raw, list):
        problems.append(f"'{key}' is not a list")
        return
    for i, item in enumerate(raw):
        try:
            incident, why = _incident(item, page_url, maintenance)
        except (TypeError, ValueError, AttributeError, OverflowError) as e:  # belt and braces
            incident, why = None, f"unreadable ({type(e).__name__})"
        if incident is None:
            problems.append(f"{key} #{i}: {why}")
        else:
            yield incident


def _incident(item: object, page_url: str | None, maintenance: bool) -> tuple[Incident | None, str]:
    if not isinstance(item, dict):
        return None, "not an object"
    iid = _text(item.get("id"))
    if iid is None:
        return None, "no 'id'"
    newest = _newest_update(item.get("incident_updates"))
    status = _text(item.get("status")) or (newest and _text(newest.get("status"))) or "unknown"
    impact = _text(item.get("impact")) or ("maintenance" if maintenance else "unknown")
    url = _text(item.get("shortlink"))
    if url is None and page_url:
        url = f"{page_url}/incidents/{iid}"
    update_body = None
    update_at = None
    if newest is not None:
        body = newest.get("body")
        update_body = normalise_body(body) if isinstance(body, str) else None
        update_at = parse_time(newest.get("display_at")) or parse_time(newest.get("created_at"))
    return (
        Incident(
            id=iid,
            name=normalise_body(item["name"]) if isinstance(item.get("name"), str) else iid,
            status=status.lower(),
            impact=impact.lower(),
            url=url,
            components=_incident_components(item),
            update_id=_text(newest.get("id")) if newest else None,
            update_status=_lower(newest.get("status")) if newest else None,
            update_body=update_body or None,
            update_at=update_at,
            started_at=parse_time(item.get("started_at")) or parse_time(item.get("created_at")),
            is_maintenance=maintenance,
        ),
        "",
    )


def _updates(raw: object) -> list[dict[str, Any]]:
    return [u for u in raw if isinstance(u, dict)] if isinstance(raw, list) else []


_NEVER = datetime.min.replace(tzinfo=UTC)


def _newest_update(raw: object) -> dict[str, Any] | None:
    """The newest update, by this rule (fact 4):
    1. by `created_at` (when it was really posted; `display_at` can be back-dated);
    2. then by `display_at`, for updates without `created_at` or posted in the same instant;
    3. then by list position (the page lists newest first), for updates with no time at all.
    """
    updates = _updates(raw)
    if not updates:
        return None

    def key(pair: tuple[int, dict[str, Any]]) -> tuple[datetime, datetime, int]:
        i, u = pair
        created = parse_time(u.get("created_at"))
        shown = parse_time(u.get("display_at"))
        return (created or shown or _NEVER, shown or created or _NEVER, -i)

    return max(enumerate(updates), key=key)[1]


def _incident_components(item: Mapping[str, Any]) -> tuple[str, ...]:
    """Ids named by the incident, then the codes its updates touched, oldest update first
    (components are added mid-way: fact 6)."""
    ids: list[str] = []
    raw = item.get("components")
    if isinstance(raw, list):
        for comp in raw:
            cid = _text(comp.get("id")) if isinstance(comp, dict) else _text(comp)
            if cid:
                ids.append(cid)
    updates = _updates(item.get("incident_updates"))
    for update in reversed(updates):
        affected = update.get("affected_components")
        if isinstance(affected, list):
            for comp in affected:
                code = _text(comp.get("code")) if isinstance(comp, dict) else None
                if code:
                    ids.append(code)
    return tuple(dict.fromkeys(ids))


# -- IO twin ---------------------------------------------------------------------------------------


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
                problem = redirect_problem(str(resp.url), str(following))
                if problem is not None:
                    raise ProbeError(problem)
                target = following
                continue
            if code >= 300:
                raise ProbeError(f"HTTP {code}")
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


def _validators(resp: httpx.Response, *, fallback: Validators | None) -> Validators:
    etag = resp.headers.get("ETag") or (fallback.etag if fallback else None)
    modified = resp.headers.get("Last-Modified") or (fallback.last_modified if fallback else None)
    return Validators(etag=etag, last_modified=modified)


def deadline_reason(deadline: float | None) -> str:
    """The reason given when a whole call ran past its `deadline` (seconds)."""
    return f"no answer within {deadline:g} s" if deadline is not None else "timeout"


def transport_reason(exc: BaseException) -> str:
    """A short, secret-free reason for an httpx error (never the exception text, which may carry
    a URL with a query string)."""
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect timeout"
    if isinstance(exc, httpx.ReadTimeout):
        return "read timeout"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.TooManyRedirects):
        return "too many redirects"
    if isinstance(exc, httpx.ConnectError):
        return _connect_reason(exc)
    if isinstance(exc, httpx.RemoteProtocolError):
        return "connection closed mid-answer"
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return "connection lost"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return "invalid URL"
    if isinstance(exc, httpx.DecodingError):
        return "undecodable body"
    return f"HTTP client error ({type(exc).__name__})"


def _connect_reason(exc: BaseException) -> str:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(seen) < 8:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    for e in seen:
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
    text = " ".join(str(e) for e in seen).lower()
    if "refused" in text:
        return "connection refused"
    if "name or service" in text or "nodename" in text or "getaddrinfo" in text:
        return "DNS lookup failed"
    if "ssl" in text or "certificate" in text:
        return "TLS handshake failed"
    return "connection failed"
