"""One read of a status page, the step the watcher and `aistatus status` share: fetch (conditional
when a copy is cached) -> parse -> the resolution text of incidents that just vanished -> one
official observation per surface. IO, thin: what the page means is `statuspage` and `assess`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

import httpx

from bot.core.assess import Recall, official_observations
from bot.core.catalog import Catalog
from bot.core.model import Observation
from bot.errors import ProbeError
from bot.store.surfaces import PageCache
from bot.watch.fetch import Validators, fetch_incidents, fetch_summary
from bot.watch.statuspage import INCIDENTS_PATH, PageReading, parse_incidents, parse_summary

log = logging.getLogger(__name__)

Outcome = Literal["ok", "not_modified", "unreadable", "malformed"]


@dataclass(frozen=True, slots=True)
class PageRead:
    """What one read of a provider's page gave.

    outcome: `unreadable` (no usable answer) and `malformed` (an answer that does not parse) leave
    every surface of the page `unknown`, with `reading.error` saying why.
    cache: the page to keep for the next conditional GET: set after a fresh 200 that parsed,
    None otherwise (a 304 keeps the cached copy; a broken page must not replace it).
    """

    reading: PageReading
    observations: tuple[Observation, ...]
    outcome: Outcome
    cache: PageCache | None = None
    retry_after: float | None = None  # the page asked us to wait this long (429 Retry-After)

    @property
    def failed(self) -> bool:
        return self.outcome in ("unreadable", "malformed")


@dataclass
class EndpointBackoff:
    """Endpoints that keep answering 404 (incidents.json on incident.io pages, fact 10) are not
    asked again until their wait is over; the wait doubles from `first` up to `longest`. Kept
    per process: the worst a restart costs is one more 404."""

    first: timedelta = timedelta(minutes=10)
    longest: timedelta = timedelta(hours=6)
    _until: dict[str, datetime] = field(default_factory=dict)
    _wait: dict[str, timedelta] = field(default_factory=dict)

    def open(self, url: str, now: datetime) -> bool:
        """Whether `url` may be asked at `now`."""
        until = self._until.get(url)
        return until is None or now >= until

    def missing(self, url: str, now: datetime) -> bool:
        """`url` answered 404 at `now`: wait longer. True the first time (the problem starts)."""
        wait = self._wait.get(url)
        self._wait[url] = self.first if wait is None else min(wait * 2, self.longest)
        self._until[url] = now + self._wait[url]
        return wait is None

    def answered(self, url: str) -> bool:
        """`url` answered: no more waiting. True when it had been missing (the problem ends)."""
        self._until.pop(url, None)
        return self._wait.pop(url, None) is not None


async def read_page(
    client: httpx.AsyncClient,
    catalog: Catalog,
    provider: str,
    *,
    now: datetime,
    cache: PageCache | None = None,
    held: Collection[str] = (),
    recall: Mapping[str, Recall] | None = None,
    backoff: EndpointBackoff | None = None,
    max_bytes: int,
    deadline: float | None,
) -> PageRead:
    """Read `provider`'s page once and assess it. `cache` is the copy from the last read (its
    validators make the GET conditional); `held` are the ids of incidents the caller's surfaces
    are out on: one that vanished from summary.json has its resolution text fetched (unless
    `backoff` says incidents.json keeps answering 404); `recall` is what the store remembers of
    each surface (a vanished component id is re-matched with it). Never raises for a bad page:
    it reads as `unreadable` or `malformed`."""
    base_url = catalog.providers[provider].statuspage
    assert base_url is not None  # the catalog guarantees a page for surfaces with `official`
    cached = cache if cache is not None and cache.body else None
    new_cache: PageCache | None = None
    try:
        fetched = await fetch_summary(
            client,
            base_url,
            validators=Validators(cached.etag, cached.last_modified) if cached else None,
            max_bytes=max_bytes,
            deadline=deadline,
        )
    except ProbeError as e:
        reading = PageReading(provider, now, ok=False, error=e.reason)
        outcome: Outcome = "unreadable"
        wait = e.retry_after
    else:
        wait = None
        body = cached.body if fetched.not_modified and cached else fetched.body
        reading = parse_summary(body or b"", provider=provider, observed_at=now, base_url=base_url)
        if not reading.ok:
            outcome = "malformed"
        elif fetched.not_modified:
            outcome = "not_modified"
        else:
            outcome = "ok"
            new_cache = PageCache(
                fetched.validators.etag, fetched.validators.last_modified, fetched.body
            )
    if reading.ok:
        held = set(held) | {r.incident for r in (recall or {}).values() if r.incident}
        reading = await _with_resolutions(
            client,
            base_url,
            reading,
            held,
            now,
            backoff=backoff or EndpointBackoff(),
            max_bytes=max_bytes,
            deadline=deadline,
        )
    observations = official_observations(reading, catalog, observed_at=now, recall=recall)
    return PageRead(reading, tuple(observations), outcome, new_cache, wait)


async def _with_resolutions(
    client: httpx.AsyncClient,
    base_url: str,
    reading: PageReading,
    held: Collection[str],
    now: datetime,
    *,
    backoff: EndpointBackoff,
    max_bytes: int,
    deadline: float | None,
) -> PageReading:
    """A resolved incident vanishes from summary.json (fact 2); its resolution text is only in
    incidents.json. Fetched only when an incident we hold has just vanished (rare), so the
    recovery alert can quote the resolution. Failure costs nothing but that quote."""
    gone = set(held) - {i.id for i in reading.incidents} - {m.id for m in reading.maintenances}
    url = base_url.rstrip("/") + INCIDENTS_PATH
    if not gone or not backoff.open(url, now):
        return reading
    try:
        body = await fetch_incidents(client, base_url, max_bytes=max_bytes, deadline=deadline)
    except ProbeError as e:
        if e.reason == "HTTP 404":
            if backoff.missing(url, now):
                log.warning(
                    "%s incidents.json answers 404: not asked again for a while (recoveries"
                    " say the page shows them resolved, without its resolution text)",
                    reading.provider,
                )
            return reading
        log.info(
            "%s incidents.json unreadable (%s): recovery without resolution text",
            reading.provider,
            e.reason,
        )
        return reading
    if backoff.answered(url):
        log.warning("%s incidents.json answers again", reading.provider)
    found = [
        i
        for i in parse_incidents(
            body, provider=reading.provider, observed_at=now, base_url=base_url
        )
        if i.id in gone
    ]
    return replace(reading, incidents=reading.incidents + tuple(found))
