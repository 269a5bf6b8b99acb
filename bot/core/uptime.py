"""Uptime figures from a surface's recorded transitions: percentages, per-day figures and text
bars for `history`. Pure: transitions and the window in, numbers and strings out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

from bot.core.model import Status, Transition

BAR_WIDTH = 10
FULL, HALF, EMPTY = "█", "▒", "░"


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


def daily_bars(
    transitions: Sequence[Transition],
    *,
    days: int,
    end: datetime,
    initial: Status = Status.OPERATIONAL,
) -> list[tuple[date, float]]:
    """Uptime per UTC day for the `days` days ending with `end`'s day, oldest first; the last
    day counts from midnight up to `end` only."""
    end = end.astimezone(UTC)
    last = end.date()
    out: list[tuple[date, float]] = []
    for back in range(max(days, 0) - 1, -1, -1):
        day = last - timedelta(days=back)
        day_start = datetime.combine(day, time(0), tzinfo=UTC)
        day_end = min(day_start + timedelta(days=1), end)
        out.append((day, uptime(transitions, start=day_start, end=day_end, initial=initial)))
    return out


def bar(pct: float) -> str:
    """A 10-cell text bar: one █ per full 10%, ▒ for a remaining 5% or more, ░ for the rest.
    Only 100% is all █, so any outage shows."""
    pct = max(0.0, min(100.0, pct))
    full = min(BAR_WIDTH, int(pct // 10))
    half = 1 if full < BAR_WIDTH and pct - full * 10 >= 5 else 0
    return FULL * full + HALF * half + EMPTY * (BAR_WIDTH - full - half)


def percent(pct: float) -> str:
    """'100%' for a clean record, else one decimal rounded down: '99.9%', never a false
    '100.0%'."""
    if pct >= 100.0:
        return "100%"
    return f"{math.floor(pct * 10) / 10:.1f}%"
