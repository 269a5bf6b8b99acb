"""Backups that are up right now for an affected surface, ranked from the catalog's alternatives
and the live states. Pure: no IO, no clock reads (`now` is an argument).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.catalog import Catalog
from bot.core.model import Backup, Status, SurfaceState, Transition

BACKUPS_HEADING = "Backups up now"  # the heading of every list of backups, on every platform
NO_BACKUPS_TEXT = "No backups are up right now."
STABILITY_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class _Candidate:
    surface: str
    fit: int  # best (lowest) position in the affected surfaces' `alternatives` lists
    first_seen: int  # order of first appearance: the last, deterministic tie-break
    note: str
    backs_up: tuple[str, ...]


def suggest(
    surface: str,
    states: Mapping[str, SurfaceState],
    catalog: Catalog,
    *,
    now: datetime,
    history: Mapping[str, Sequence[Transition]] | None = None,
    limit: int = 5,
) -> tuple[Backup, ...]:
    """The alternatives of `surface` that are operational now, best first (see `suggest_many`)."""
    return suggest_many((surface,), states, catalog, now=now, history=history, limit=limit)


def suggest_many(
    surfaces: Sequence[str],
    states: Mapping[str, SurfaceState],
    catalog: Catalog,
    *,
    now: datetime,
    history: Mapping[str, Sequence[Transition]] | None = None,
    limit: int = 5,
) -> tuple[Backup, ...]:
    """The alternatives of all `surfaces` that are operational now, merged and best first.

    Rules:
    1. Candidates are the catalog `alternatives` of each affected surface; the affected surfaces
       themselves are never suggested, and each candidate appears once.
    2. Only a candidate whose state is OPERATIONAL is suggested: degraded, out, under maintenance
       and unknown (never observed, no signal) alternatives are left out, never shown as "up".
    3. The sort key is `(not same_model, fit, recent_transitions, first_seen)`:
       same_model - the candidate is a route to Claude itself (catalog `claude: true`);
       fit - its best position in the affected surfaces' alternatives lists (catalog order);
       recent_transitions - its transitions in `history` within the 24 h before `now` (fewer is
       steadier); first_seen - order of first appearance, so equal keys keep catalog order.
    4. At most `limit` backups; an empty tuple when nothing is up (render `NO_BACKUPS_TEXT`).
    """
    affected = set(surfaces)
    candidates: dict[str, _Candidate] = {}
    for sid in surfaces:
        spec = catalog.surfaces.get(sid)
        if spec is None:
            continue
        for fit, alt in enumerate(spec.alternatives):
            if alt.surface in affected:
                continue
            seen = candidates.get(alt.surface)
            if seen is None:
                candidates[alt.surface] = _Candidate(
                    alt.surface, fit, len(candidates), alt.note, (sid,)
                )
                continue
            better = fit < seen.fit
            candidates[alt.surface] = _Candidate(
                alt.surface,
                min(fit, seen.fit),
                seen.first_seen,
                alt.note if (better and alt.note) or not seen.note else seen.note,
                (*seen.backs_up, sid) if sid not in seen.backs_up else seen.backs_up,
            )

    ranked: list[tuple[tuple[bool, int, int, int], Backup]] = []
    for c in candidates.values():
        state = states.get(c.surface)
        if state is None or state.status is not Status.OPERATIONAL:
            continue
        spec = catalog.surfaces.get(c.surface)
        if spec is None:
            continue
        key = (not spec.claude, c.fit, _recent(history, c.surface, now), c.first_seen)
        backup = Backup(
            surface=c.surface,
            name=spec.name,
            url=spec.url,
            status=Status.OPERATIONAL,
            same_model=spec.claude,
            note=c.note,
            backs_up=c.backs_up,
        )
        ranked.append((key, backup))
    ranked.sort(key=lambda kb: kb[0])
    return tuple(b for _, b in ranked[: max(0, limit)])


def _recent(history: Mapping[str, Sequence[Transition]] | None, surface: str, now: datetime) -> int:
    """How many transitions `surface` had in the 24 h before `now`."""
    if not history:
        return 0
    since = now - STABILITY_WINDOW
    return sum(1 for t in history.get(surface, ()) if since <= t.at <= now)
