"""Uptime figures from a surface's recorded transitions: percentages, per-day figures and text
bars for `history`. Pure: transitions and the window in, numbers and strings out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from bot.core.model import Status, Transition
from bot.core.model import TransitionKind as Kind

BAR_WIDTH = 10
FULL, HALF, EMPTY = "█", "▒", "░"
NO_DATA_CELL = "·"
NO_DATA_TEXT = "no data"


def status_at(
    transitions: Sequence[Transition], when: datetime, *, initial: Status = Status.OPERATIONAL
) -> Status:
    """The surface's status at `when`: that of the newest transition at or before it; before the
    oldest one, that transition's `prev_status`; `initial` when there are no transitions."""
    ordered = sorted(transitions, key=lambda t: t.at)
    current = ordered[0].prev_status if ordered else initial
    for t in ordered:
        if t.at > when:
            break
        current = t.status
    return current


def downtime(
    transitions: Sequence[Transition],
    *,
    start: datetime,
    end: datetime,
    initial: Status = Status.OPERATIONAL,
) -> timedelta:
    """How long the surface was in an outage (degraded or worse) within [start, end)."""
    if end <= start:
        return timedelta(0)
    ordered = sorted(transitions, key=lambda t: t.at)
    current = status_at(ordered, start, initial=initial)
    cursor, down = start, timedelta(0)
    for t in ordered:
        if t.at <= start:
            continue
        if t.at >= end:
            break
        if current.is_outage:
            down += t.at - cursor
        cursor, current = t.at, t.status
    if current.is_outage:
        down += end - cursor
    return down


def uptime(
    transitions: Sequence[Transition],
    *,
    start: datetime,
    end: datetime,
    initial: Status = Status.OPERATIONAL,
) -> float:
    """Percentage (0-100) of [start, end) the surface was not in an outage. Maintenance and
    unknown count as up. `transitions` may come newest first (as stored) or in any order; the
    status before the oldest one is its `prev_status` (`initial` when the list is empty).
    An empty window is 100%."""
    total = (end - start).total_seconds()
    if total <= 0:
        return 100.0
    down = downtime(transitions, start=start, end=end, initial=initial).total_seconds()
    return max(0.0, min(100.0, 100.0 * (1.0 - down / total)))


def observed_from(
    transitions: Sequence[Transition], first_seen: datetime | None
) -> datetime | None:
    """Since when the bot watched the surface: its first known decision, or its oldest recorded
    transition when that is older (state written before `first_seen` existed)."""
    times = [t.at for t in transitions] + ([first_seen] if first_seen is not None else [])
    return min(times) if times else None


def observed_uptime(
    transitions: Sequence[Transition],
    *,
    start: datetime,
    end: datetime,
    since: datetime | None,
) -> float | None:
    """Uptime over the part of [start, end) the bot watched (from `since` on); None when it
    watched none of it: days before it ran are no data, never "100 %"."""
    if since is None:
        return None
    lo = max(start, since)
    if end <= lo:
        return None
    return uptime(transitions, start=lo, end=end)


def daily_bars(
    transitions: Sequence[Transition],
    *,
    days: int,
    end: datetime,
    initial: Status = Status.OPERATIONAL,
    since: datetime | None = None,
) -> list[tuple[date, float | None]]:
    """Uptime per UTC day for the `days` days ending with `end`'s day, oldest first; the last
    day counts from midnight up to `end` only. With `since`, each day counts only from it (a
    day wholly before it is None: no data)."""
    end = end.astimezone(UTC)
    last = end.date()
    out: list[tuple[date, float | None]] = []
    for back in range(max(days, 0) - 1, -1, -1):
        day = last - timedelta(days=back)
        day_start = datetime.combine(day, time(0), tzinfo=UTC)
        day_end = min(day_start + timedelta(days=1), end)
        if since is None:
            out.append((day, uptime(transitions, start=day_start, end=day_end, initial=initial)))
        else:
            pct = observed_uptime(transitions, start=day_start, end=day_end, since=since)
            out.append((day, pct))
    return out


@dataclass(frozen=True, slots=True)
class OutageSpan:
    """One outage as `history` lists it: its recorded transitions across surfaces, folded."""

    id: str
    started_at: datetime
    ended_at: datetime | None  # None: still open
    title: str | None  # the official incident's title, when it had one
    surfaces: tuple[str, ...]  # first-seen order
    worst: Status
    suspected: bool  # never on the official page (withdrawn, or still suspected)
    official_lead: timedelta | None  # how long before the page aistatus saw it


def outages(transitions: Iterable[Transition]) -> list[OutageSpan]:
    """Transitions grouped by outage, newest start first. An outage has ended when the last
    transition of each of its surfaces is a recovery."""
    groups: dict[str, list[Transition]] = {}
    for t in sorted(transitions, key=lambda t: t.at):
        groups.setdefault(t.outage_id, []).append(t)
    spans = []
    for key, ts in groups.items():
        last = {t.surface: t for t in ts}
        ended = all(t.kind is Kind.RECOVERY for t in last.values())
        out = [t for t in ts if t.kind is not Kind.RECOVERY]
        titles = [t.incident.name for t in ts if t.incident is not None]
        leads = [lead for t in ts if (lead := t.official_lead) is not None]
        spans.append(
            OutageSpan(
                id=key,
                started_at=min(t.started_at for t in ts),
                ended_at=max(t.at for t in ts) if ended else None,
                title=titles[-1] if titles else None,
                surfaces=tuple(last),
                worst=max((t.status for t in out), key=lambda s: s.rank, default=Status.UNKNOWN),
                suspected=all(t.suspected for t in out) if out else ts[0].prev_suspected,
                official_lead=max(leads) if leads else None,
            )
        )
    return sorted(spans, key=lambda o: o.started_at, reverse=True)


def bar(pct: float | None) -> str:
    """A 10-cell text bar: one █ per full 10%, ▒ for a remaining 5% or more, ░ for the rest.
    Only 100% is all █, so any outage shows; no data (None) is all `·`."""
    if pct is None:
        return NO_DATA_CELL * BAR_WIDTH
    pct = max(0.0, min(100.0, pct))
    full = min(BAR_WIDTH, int(pct // 10))
    half = 1 if full < BAR_WIDTH and pct - full * 10 >= 5 else 0
    return FULL * full + HALF * half + EMPTY * (BAR_WIDTH - full - half)


def percent(pct: float | None) -> str:
    """'100%' for a clean record, else one decimal rounded down: '99.9%', never a false
    '100.0%'; 'no data' for time the bot did not watch."""
    if pct is None:
        return NO_DATA_TEXT
    if pct >= 100.0:
        return "100%"
    return f"{math.floor(pct * 10) / 10:.1f}%"
