"""The versioned board document behind `GET /api/v1/status`, the web board and `aistatus status
--json`, and the history document behind `GET /api/v1/history`. Pure: committed states, the
catalog and `now` in, frozen values out (`bot.core.model.encode` makes them JSON)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from bot.chat.replies import board as board_reply
from bot.chat.replies import one_line, outage_line, page_healths, state_label
from bot.core.assess import Staleness
from bot.core.catalog import Catalog
from bot.core.freshness import monitoring_blind, page_line
from bot.core.model import Backup, Incident, Signal, Status, SurfaceState, Transition
from bot.core.suggest import suggest, suggest_many
from bot.core.text import plain
from bot.core.uptime import daily_bars, observed_from, observed_uptime, outages, percent
from bot.ops.table import StatusRow

VERSION = 1
TITLE_CHARS = 200  # an incident title is cut to this many characters
MAX_HISTORY_DAYS = 90
ENDED = frozenset({"resolved", "postmortem", "completed"})  # incident statuses that are over


@dataclass(frozen=True, slots=True)
class IncidentView:
    """An active official incident as the board shows it: its newest update's text is plain
    (tags dropped, entities decoded), never HTML."""

    id: str
    title: str
    status: str  # investigating|identified|monitoring|... (in_progress for maintenance)
    impact: str
    url: str | None
    started_at: datetime | None
    update_status: str | None
    update_text: str | None
    update_at: datetime | None
    maintenance: bool
    surfaces: tuple[str, ...]  # the board's surfaces it is shown on


@dataclass(frozen=True, slots=True)
class Freshness:
    """How old the evidence behind a surface is: the deciding signal's last good observation
    (the newest of any signal while nothing decides); `stale` once it is past assess's limit."""

    signal: Signal | None
    observed_at: datetime | None
    stale: bool


@dataclass(frozen=True, slots=True)
class SurfaceView:
    """One surface on the board."""

    id: str
    name: str
    provider: str
    claude: bool  # a Claude surface (the others are backups)
    url: str | None
    status: Status
    label: str  # "partial outage", "suspected major outage", "unknown (no data yet)"
    source: Signal | None
    suspected: bool  # probe- or crowd-only: not (yet) on the official page
    since: datetime | None  # when the status last changed
    started_at: datetime | None  # when the current outage began
    freshness: Freshness
    incident: IncidentView | None
    backups: tuple[Backup, ...]  # alternatives up now, ranked (same-model routes first)


@dataclass(frozen=True, slots=True)
class SourceView:
    """A status page behind the board: when it last answered, and since when it has not."""

    provider: str
    name: str
    answering: bool  # False after a few failed polls in a row (bot.core.freshness)
    answered_at: datetime | None  # the newest readable answer
    failing_since: datetime | None  # the first failed poll of the current run
    error: str | None  # "HTTP 500", "timed out after 10 s", ...
    text: str  # the line the chat board shows for it


@dataclass(frozen=True, slots=True)
class Board:
    """The whole board: `monitoring_blind` first, because then every state may be old."""

    version: int
    monitoring_blind: bool
    headline: str
    updated_at: datetime | None  # the newest observation behind any surface
    sources: tuple[SourceView, ...]  # the status pages behind it, Claude's first
    surfaces: tuple[SurfaceView, ...]  # Claude surfaces first, then the backups (catalog order)
    incidents: tuple[IncidentView, ...]  # distinct active incidents
    backups: tuple[Backup, ...]  # up now for every troubled Claude surface, ranked


def freshness(state: SurfaceState, now: datetime, staleness: Staleness) -> Freshness:
    """The deciding signal's age; with no deciding signal, the newest signal's."""
    timed: list[tuple[Signal, datetime]] = []
    for name, st in state.signals.items():
        try:
            timed.append((Signal(name), st.observed_at))
        except ValueError:
            continue
    chosen = next((t for t in timed if t[0] is state.source), None)
    if chosen is None and timed:
        chosen = max(timed, key=lambda t: t[1])
    if chosen is None:
        return Freshness(None, None, stale=True)
    sig, at = chosen
    return Freshness(sig, at, stale=not staleness.fresh(sig, state.signals[sig.value], now))


def _incident(inc: Incident, surfaces: tuple[str, ...]) -> IncidentView:
    return IncidentView(
        id=inc.id,
        title=one_line(inc.name, TITLE_CHARS),
        status=inc.status,
        impact=inc.impact,
        url=inc.url,
        started_at=inc.started_at,
        update_status=inc.update_status,
        update_text=one_line(inc.update_body) if inc.update_body else None,
        update_at=inc.update_at,
        maintenance=inc.is_maintenance,
        surfaces=surfaces,
    )


def _shows_incident(state: SurfaceState) -> bool:
    """An incident is shown while the surface is not (yet) back: "recovering" still shows it."""
    return state.incident is not None and (
        state.status is not Status.OPERATIONAL or state.incident.status not in ENDED
    )


def build_board(
    states: Mapping[str, SurfaceState],
    catalog: Catalog,
    *,
    now: datetime,
    blind: bool = False,
    staleness: Staleness | None = None,
) -> Board:
    """Every catalog surface with its committed state. Rules:

    1. Claude surfaces first, then the backups, each in catalog order; a surface never stored
       is `unknown (no data yet)`, never assumed up.
    2. Each surface carries its backups up now (suggest's ranking); the board's own `backups`
       are those for all troubled Claude surfaces together (suggest_many).
    3. An incident is listed once, with every surface it is shown on, while a surface still
       carries it (an operational surface whose incident is still open reads "recovering").
    4. `monitoring_blind` (`blind`, or every stored probe signal says so) makes BLIND_TEXT the
       headline: our blindness is not their outage.
    5. `sources` say when each status page last answered, or since when it has not.
    """
    staleness = staleness or Staleness()
    claude = catalog.claude_surfaces()
    order = [*claude, *(s for s in catalog.surfaces if s not in claude)]
    full = {s: states.get(s) or SurfaceState(s) for s in order}
    by_incident: dict[str, tuple[Incident, list[str]]] = {}
    for sid in order:
        st = full[sid]
        if st.incident is not None and _shows_incident(st):
            by_incident.setdefault(st.incident.id, (st.incident, []))[1].append(sid)
    incidents = {iid: _incident(inc, tuple(ids)) for iid, (inc, ids) in by_incident.items()}
    views = []
    for sid in order:
        st, spec = full[sid], catalog.surfaces[sid]
        fresh = freshness(st, now, staleness)
        shown = incidents.get(st.incident.id) if st.incident and _shows_incident(st) else None
        views.append(
            SurfaceView(
                id=sid,
                name=spec.name,
                provider=spec.provider,
                claude=sid in claude,
                url=spec.url,
                status=st.status,
                label=state_label(st),
                source=st.source,
                suspected=st.suspected,
                since=st.since if st.status is not Status.UNKNOWN else None,
                started_at=st.started_at,
                freshness=fresh,
                incident=shown,
                backups=suggest(sid, full, catalog, now=now),
            )
        )
    troubled = [s for s in claude if full[s].status.is_outage]
    blind = blind or monitoring_blind(full)
    headline = plain(board_reply(full, catalog, now, blind=blind).sections[0].title or "")
    seen = [v.freshness.observed_at for v in views if v.freshness.observed_at is not None]
    sources = tuple(
        SourceView(
            h.provider,
            h.name,
            h.answering,
            h.answered_at,
            h.failing_since,
            h.error,
            page_line(h, now),
        )
        for h in page_healths(full, catalog)
    )
    return Board(
        version=VERSION,
        monitoring_blind=blind,
        headline=headline,
        updated_at=max(seen) if seen else None,
        sources=sources,
        surfaces=tuple(views),
        incidents=tuple(incidents.values()),
        backups=suggest_many(troubled, full, catalog, now=now) if troubled else (),
    )


def board_of_rows(
    rows: Sequence[StatusRow], catalog: Catalog, *, now: datetime, blind: bool = False
) -> Board:
    """`aistatus status --json`: the board of one poll's decided states. One poll has no
    history, so `since` is what the table shows (the incident's start, when known)."""
    states = {r.surface: replace(r.state, since=r.since) for r in rows if r.state is not None}
    return build_board(states, catalog, now=now, blind=blind)


# -- history ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """One recorded transition, as the history document lists it."""

    id: str
    kind: str  # start | update | recovery
    reason: str
    status: Status
    prev_status: Status
    source: Signal | None
    suspected: bool
    outage_id: str
    incident_title: str | None
    started_at: datetime
    at: datetime


@dataclass(frozen=True, slots=True)
class DayUptime:
    day: date  # a UTC day
    uptime_percent: float | None  # None: aistatus did not watch that day


@dataclass(frozen=True, slots=True)
class SurfaceHistory:
    surface: str
    name: str
    observed_since: datetime | None  # uptime counts only from here (None: never watched)
    uptime_percent: float | None
    uptime_text: str  # "100%", "99.9%" (never a false "100.0%"), "no data"
    daily: tuple[DayUptime, ...]  # oldest first, one per UTC day
    changes: tuple[Change, ...]  # newest first, within the window


@dataclass(frozen=True, slots=True)
class OutageView:
    """One outage in the window: its span, title, surfaces and duration."""

    id: str
    started_at: datetime
    ended_at: datetime | None  # None: still open
    title: str | None
    surfaces: tuple[str, ...]
    worst: Status
    suspected: bool
    official_lag_seconds: float | None  # how long before the status page aistatus saw it
    text: str  # the line `/aistatus history` shows


@dataclass(frozen=True, slots=True)
class History:
    version: int
    days: int
    start: datetime
    end: datetime
    surfaces: tuple[SurfaceHistory, ...]
    outages: tuple[OutageView, ...]  # newest first, every surface above together


def build_history(
    transitions: Mapping[str, Sequence[Transition]],
    catalog: Catalog,
    *,
    days: int,
    now: datetime,
    first_seen: Mapping[str, datetime | None] | None = None,
) -> History:
    """Uptime over `days` (whole window and per UTC day, from bot.core.uptime) and the changes
    within it, for each surface of `transitions` in its order.
    Raises: ValueError when `days` is outside 1..MAX_HISTORY_DAYS."""
    if not 1 <= days <= MAX_HISTORY_DAYS:
        raise ValueError(f"days must be 1..{MAX_HISTORY_DAYS}")
    start = now - timedelta(days=days)
    seen = first_seen or {}
    out = []
    for surface, ts in transitions.items():
        since = observed_from(ts, seen.get(surface))
        pct = observed_uptime(ts, start=start, end=now, since=since)
        changes = sorted((t for t in ts if start <= t.at <= now), key=lambda t: t.at, reverse=True)
        out.append(
            SurfaceHistory(
                surface=surface,
                name=catalog.name_of(surface),
                observed_since=since,
                uptime_percent=None if pct is None else round(pct, 4),
                uptime_text=percent(pct),
                daily=tuple(
                    DayUptime(d, None if p is None else round(p, 4))
                    for d, p in daily_bars(ts, days=days, end=now, since=since)
                ),
                changes=tuple(
                    Change(
                        id=t.id,
                        kind=t.kind.value,
                        reason=t.reason.value,
                        status=t.status,
                        prev_status=t.prev_status,
                        source=t.source,
                        suspected=t.suspected,
                        outage_id=t.outage_id,
                        incident_title=one_line(t.incident.name, TITLE_CHARS)
                        if t.incident
                        else None,
                        started_at=t.started_at,
                        at=t.at,
                    )
                    for t in changes
                ),
            )
        )
    spans = tuple(
        OutageView(
            id=o.id,
            started_at=o.started_at,
            ended_at=o.ended_at,
            title=one_line(o.title, TITLE_CHARS) if o.title else None,
            surfaces=o.surfaces,
            worst=o.worst,
            suspected=o.suspected,
            official_lag_seconds=o.official_lead.total_seconds() if o.official_lead else None,
            text=outage_line(o, catalog, now),
        )
        for o in outages(t for ts in transitions.values() for t in ts)
        if o.ended_at is None or o.ended_at >= start
    )
    return History(VERSION, days, start, now, tuple(out), spans)
