"""One read of a status page, the step the watcher and `aistatus status` share: fetch (conditional
when a copy is cached) -> parse -> the resolution text of incidents that just vanished -> one
official observation per surface. IO, thin: what the page means is `statuspage` and `assess`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

import httpx

from bot.core.assess import official_observations
from bot.core.catalog import Catalog
from bot.core.model import Observation
from bot.errors import ProbeError
from bot.store.surfaces import PageCache
from bot.watch.fetch import Validators, fetch_incidents, fetch_summary
from bot.watch.statuspage import PageReading, parse_incidents, parse_summary

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

    @property
    def failed(self) -> bool:
        return self.outcome in ("unreadable", "malformed")


async def read_page(
    client: httpx.AsyncClient,
    catalog: Catalog,
    provider: str,
    *,
    now: datetime,
    cache: PageCache | None = None,
    held: Collection[str] = (),
    max_bytes: int,
    deadline: float | None,
) -> PageRead:
    """Read `provider`'s page once and assess it. `cache` is the copy from the last read (its
    validators make the GET conditional); `held` are the ids of incidents the caller's surfaces
    are out on: one that vanished from summary.json has its resolution text fetched. Never
    raises for a bad page: it reads as `unreadable` or `malformed`."""
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
    else:
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
        reading = await _with_resolutions(
            client, base_url, reading, held, now, max_bytes=max_bytes, deadline=deadline
        )
    observations = official_observations(reading, catalog, observed_at=now)
    return PageRead(reading, tuple(observations), outcome, new_cache)


async def _with_resolutions(
    client: httpx.AsyncClient,
    base_url: str,
    reading: PageReading,
    held: Collection[str],
    now: datetime,
    *,
    max_bytes: int,
    deadline: float | None,
) -> PageReading:
    """A resolved incident vanishes from summary.json (fact 2); its resolution text is only in
    incidents.json. Fetched only when an incident we hold has just vanished (rare), so the
    recovery alert can quote the resolution. Failure costs nothing but that quote."""
    gone = set(held) - {i.id for i in reading.incidents} - {m.id for m in reading.maintenances}
    if not gone:
        return reading
    try:
        body = await fetch_incidents(client, base_url, max_bytes=max_bytes, deadline=deadline)
    except ProbeError as e:
        log.info(
            "%s incidents.json unreadable (%s): recovery without resolution text",
            reading.provider,
            e.reason,
        )
        return reading
    found = [
        i
        for i in parse_incidents(
            body, provider=reading.provider, observed_at=now, base_url=base_url
        )
        if i.id in gone
    ]
    return replace(reading, incidents=reading.incidents + tuple(found))
