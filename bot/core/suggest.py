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
UNCHECKED_LABEL = "couldn't check"  # alternatives whose state is unknown: not "down", not "up"
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
    4. At most `limit` backups; an empty tuple when nothing is up (render `no_backups_text`,
       which names the alternatives `unchecked_many` finds: unknown is not down).
    """
    ranked: list[tuple[tuple[bool, int, int, int], Backup]] = []
    for c in _candidates(surfaces, catalog).values():
        state = states.get(c.surface)
        if state is None or state.status is not Status.OPERATIONAL:
            continue
        spec = catalog.surfaces[c.surface]
        key = (not spec.claude, c.fit, _recent(history, c.surface, now), c.first_seen)
        ranked.append((key, _backup(c, catalog, Status.OPERATIONAL)))
    ranked.sort(key=lambda kb: kb[0])
    return tuple(b for _, b in ranked[: max(0, limit)])


def unchecked_many(
    surfaces: Sequence[str],
    states: Mapping[str, SurfaceState],
    catalog: Catalog,
    *,
    limit: int = 5,
) -> tuple[Backup, ...]:
    """The alternatives of `surfaces` we could not check (never observed, or `unknown` now), in
    catalog fit order, status UNKNOWN: shown as "couldn't check", never as up nor as down."""
    found = [
        c
        for c in _candidates(surfaces, catalog).values()
        if (st := states.get(c.surface)) is None or st.status is Status.UNKNOWN
    ]
    found.sort(key=lambda c: (not catalog.surfaces[c.surface].claude, c.fit, c.first_seen))
    return tuple(_backup(c, catalog, Status.UNKNOWN) for c in found[: max(0, limit)])


UNCHECKED_SHOWN = 5  # names listed; the rest are counted


def unchecked_text(unchecked: Sequence[Backup]) -> str:
    """ "couldn't check: Gemini, Perplexity" (at most UNCHECKED_SHOWN names, then "and 2 more")."""
    names = ", ".join(b.name for b in unchecked[:UNCHECKED_SHOWN])
    more = len(unchecked) - UNCHECKED_SHOWN
    return f"{UNCHECKED_LABEL}: {names}" + (f" and {more} more" if more > 0 else "")


def no_backups_text(unchecked: Sequence[Backup] = ()) -> str:
    """What a message says when no backup is up: NO_BACKUPS_TEXT only when every alternative is
    known not to be up; else it names the ones we could not check."""
    if not unchecked:
        return NO_BACKUPS_TEXT
    return f"No backup we could check is up right now ({unchecked_text(unchecked)})."


def _backup(c: _Candidate, catalog: Catalog, status: Status) -> Backup:
    spec = catalog.surfaces[c.surface]
    return Backup(
        surface=c.surface,
        name=spec.name,
        url=spec.url,
        status=status,
        same_model=spec.claude,
        note=c.note,
        backs_up=c.backs_up,
    )


def _candidates(surfaces: Sequence[str], catalog: Catalog) -> dict[str, _Candidate]:
    """Every alternative of `surfaces` (rule 1 of `suggest_many`), once, with its best fit."""
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
    return {sid: c for sid, c in candidates.items() if sid in catalog.surfaces}


def _recent(history: Mapping[str, Sequence[Transition]] | None, surface: str, now: datetime) -> int:
    """How many transitions `surface` had in the 24 h before `now`."""
    if not history:
        return 0
    since = now - STABILITY_WINDOW
    return sum(1 for t in history.get(surface, ()) if since <= t.at <= now)
