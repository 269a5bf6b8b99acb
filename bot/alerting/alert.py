"""Alerts: recorded transitions grouped by outage into platform-neutral `Alert`s, narrowed per
channel, identified for idempotent delivery and rendered as plain text. Pure: no IO, no clock
reads (`now` is an argument).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from bot.core.catalog import Catalog
from bot.core.duration import humanize, lead_text
from bot.core.model import (
    Alert,
    AlertKind,
    Backup,
    Incident,
    Signal,
    Status,
    SurfaceState,
    Transition,
)
from bot.core.model import Reason as R
from bot.core.model import TransitionKind as TK
from bot.core.suggest import BACKUPS_HEADING, no_backups_text, suggest_many, unchecked_many
from bot.core.text import clock, shorten

UPDATE_TEXT_LIMIT = 600  # characters of the official update body kept in an alert
BACKUP_LIMIT = 5

# Kinds after which nothing is wrong any more: shown green, without backups or report buttons.
END_KINDS = frozenset(
    {AlertKind.RECOVERY, AlertKind.SUSPECTED_WITHDRAWN, AlertKind.MAINTENANCE_END}
)
# Kinds shown green, without backups or report buttons: the endings, and "recovering" (back up
# while the incident is still open: the outage is not over, nothing needs routing around).
CALM_KINDS = END_KINDS | {AlertKind.RECOVERING}
_START_KINDS = frozenset({AlertKind.START, AlertKind.SUSPECTED, AlertKind.MAINTENANCE_START})
_END_PRECEDENCE = (
    AlertKind.RECOVERY,
    AlertKind.MAINTENANCE_END,
    AlertKind.SUSPECTED_WITHDRAWN,
    AlertKind.RECOVERING,
)
ONGOING_AFTER = timedelta(minutes=30)  # a start first seen this late says "ongoing since 01:01"

# What each kind is called where a message says what changed (a thread reply's first line).
HEADLINES: Mapping[AlertKind, str] = {
    AlertKind.START: "Outage started",
    AlertKind.UPDATE: "Update",
    AlertKind.RECOVERY: "Resolved",
    AlertKind.MAINTENANCE_START: "Maintenance started",
    AlertKind.MAINTENANCE_END: "Maintenance ended",
    AlertKind.RECOVERING: "Recovering",
    AlertKind.SUSPECTED: "Suspected outage",
    AlertKind.SUSPECTED_WITHDRAWN: "Suspected outage withdrawn",
    AlertKind.CONFIRMED: "Confirmed on the official status page",
}
NOT_OFFICIAL_YET = "not on the official status page yet"  # what makes an outage "suspected"
NO_OFFICIAL_PAGE = "it has no official status page"  # ... of a surface that has none
RESOLVED_ON_PAGE = "The official status page shows it resolved."  # no resolution text to quote
MONITORING = "recovering — fix out, the page is monitoring"
SETTLING = "recovering — up again, watching that it holds"
OPEN_INCIDENT = "Open incident"  # the button linking to the official incident
AFFECTED_TOO = "I'm affected too"  # the button that reports the surface (`report <surface>`)
MUTE_FOR = "1h"  # the Mute button runs `mute 1h` in the channel it is pressed in
MUTE_LABEL = f"Mute {MUTE_FOR}"
_WHY_SUSPECTED = {
    Signal.PROBE: "our probes fail",
    Signal.CROWD: "users report problems",
}


def build_alerts(
    transitions: Sequence[Transition],
    states: Mapping[str, SurfaceState],
    catalog: Catalog,
    *,
    now: datetime,
    history: Mapping[str, Sequence[Transition]] | None = None,
) -> list[Alert]:
    """One Alert per outage among `transitions` (grouped by `outage_id`, first-seen order).

    Rules for the kind of one group (`states` are the live states after the transitions):
    1. Every transition ends something (recovered, withdrawn, maintenance ended) or is back up
       while the outage stays open (recovering): when no surface of the outage is still out in
       `states`, RECOVERING if any is recovering, else RECOVERY, MAINTENANCE_END or
       SUSPECTED_WITHDRAWN; otherwise UPDATE, with `ends` saying what its own surfaces did.
       A RECOVERY made only of settled flaps is `quiet` (its end was broadcast once already).
    2. Any transition confirms a suspected outage (reason CONFIRMED): CONFIRMED.
    3. Every transition starts something and no other surface of the outage was already out:
       MAINTENANCE_START (all maintenance), SUSPECTED (all suspected), else START.
    4. Anything else (worsened, improved, a new official update, a surface joining an ongoing
       outage, a mix): UPDATE.
    Backups (live alternatives of the surfaces still out) ride on every kind but those of
    rule 1, which have nothing left to route around. A RECOVERY quotes the incident's update
    only when it is the resolution; else the renderers say the page shows it resolved.
    """
    groups: dict[str, list[Transition]] = {}
    for t in transitions:
        groups.setdefault(t.outage_id, []).append(t)
    return [
        _build_one(key, group, states, catalog, now=now, history=history)
        for key, group in groups.items()
    ]


def for_channel(alert: Alert, surfaces: Collection[str] | None) -> Alert | None:
    """`alert` narrowed to the surfaces a channel covers; None when none of the surfaces that
    changed is covered. `surfaces=None` means the channel takes every surface of the alert.

    The kind, title, severity, backups and transition ids are re-derived for the narrowed set:
    a channel that only watches a surface that recovered while others are still out gets that
    surface's RECOVERY, not the outage's UPDATE.
    """
    if surfaces is None:
        return alert
    wanted = set(surfaces)
    changed = tuple(s for s in (alert.changed or alert.surfaces) if s in wanted)
    if not changed:
        return None
    keep = [i for i, s in enumerate(alert.surfaces) if s in wanted]
    if len(keep) == len(alert.surfaces):
        return alert
    statuses = tuple(alert.statuses[i] for i in keep) if alert.statuses else ()
    kind = alert.kind
    kept = {alert.surfaces[i] for i in keep}
    ends = alert.ends
    if ends is AlertKind.RECOVERING and alert.ends_else and not kept.intersection(alert.recovering):
        ends = alert.ends_else  # the surfaces still recovering are not this channel's
    if ends is not None and statuses and not any(_is_out(s) for s in statuses):
        kind = ends
        if kind is AlertKind.RECOVERY and alert.update_text and not alert.resolution:
            alert = replace(alert, update_text=None, update_at=None)
    if alert.starts is not None and kind is AlertKind.UPDATE and kept <= set(changed):
        kind = alert.starts  # the outage began elsewhere, but for this channel it starts now
    if statuses:
        out = {alert.surfaces[i] for i, st in zip(keep, statuses, strict=True) if _is_out(st)}
    else:  # an alert without per-surface statuses: every kept surface counts as out
        out = {alert.surfaces[i] for i in keep}

    def covered(items: tuple[Backup, ...]) -> tuple[Backup, ...]:
        if kind in CALM_KINDS:
            return ()
        return tuple(b for b in items if not b.backs_up or out.intersection(b.backs_up))

    narrowed = replace(
        alert,
        kind=kind,
        ends=ends,
        recovering=tuple(s for s in alert.recovering if s in kept),
        no_page=tuple(s for s in alert.no_page if s in kept),
        surfaces=tuple(alert.surfaces[i] for i in keep),
        surface_names=tuple(alert.surface_names[i] for i in keep),
        statuses=statuses,
        changed=changed,
        backups=covered(alert.backups),
        unchecked=covered(alert.unchecked),
        transition_ids=tuple(
            tid for tid in alert.transition_ids if _surface_of(tid) in wanted | {None}
        ),
    )
    return _finish(narrowed)


def alert_id(alert: Alert) -> str:
    """A short stable id for idempotent delivery: the same key, kind and transitions give the
    same id on every replica."""
    material = "\x1f".join((alert.key, str(alert.kind), *sorted(alert.transition_ids)))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:16]


def as_start(alert: Alert) -> Alert:
    """`alert` as a channel's first message about its outage: an update (or a confirmation)
    for a channel that has heard nothing yet reads as a start (a `--min major` channel first
    hears of an outage when it turns major). Other kinds are returned as they are."""
    if alert.kind not in (AlertKind.UPDATE, AlertKind.CONFIRMED):
        return alert
    if not any(_is_out(st) for st in alert.statuses):
        return alert
    kind = AlertKind.SUSPECTED if alert.suspected else AlertKind.START
    return _finish(replace(alert, kind=kind, changed=alert.surfaces, ends=None, starts=kind))


def alert_text(alert: Alert) -> str:
    """The alert as plain text: title, surfaces, official update, timing, backups, link."""
    lines = [f"{shown_status(alert).emoji} {alert.title}"]
    if alert.statuses:
        parts = [
            f"{name} ({status.label})"
            for name, status in zip(alert.surface_names, alert.statuses, strict=False)
        ]
        lines.append("Surfaces: " + ", ".join(parts))
    else:
        lines.append("Surfaces: " + ", ".join(alert.surface_names))
    if alert.incident_title:
        lines.append(f"Official incident: {alert.incident_title}")
    if alert.update_text:
        when = f", {clock(alert.update_at, alert.at)}" if alert.update_at else ""
        lines.append(f"Official update{when}:")
        lines.extend(f"> {line}" if line else ">" for line in alert.update_text.split("\n"))
    elif alert.kind is AlertKind.RECOVERY:
        lines.append(RESOLVED_ON_PAGE)
    lines.append(f"Started {clock(alert.started_at, alert.at)}, {alert.duration_text}")
    if alert.kind not in CALM_KINDS:
        if alert.backups:
            lines.append(f"{BACKUPS_HEADING}:")
            for b in alert.backups:
                bits = [b.name, *([b.note] if b.note else []), *([b.url] if b.url else [])]
                lines.append("• " + " — ".join(bits))
        else:
            lines.append(no_backups_text(alert.unchecked))
    if alert.url:
        lines.append(alert.url)
    return "\n".join(lines)


def why_suspected(alert: Alert) -> str:
    """Which of our own signals raised a suspected outage: 'our probes fail'."""
    why = _WHY_SUSPECTED.get(alert.source) if alert.source is not None else None
    return why or "our checks fail"


def suspicion_note(alert: Alert) -> str:
    """Why a suspicion is one: 'our probes fail; not on the official status page yet' — the
    second half only for surfaces that have an official page to be on."""
    if set(alert.surfaces) <= set(alert.no_page):
        return f"{why_suspected(alert)}; {NO_OFFICIAL_PAGE}"
    return f"{why_suspected(alert)}; {NOT_OFFICIAL_YET}"


def still_suspected(alert: Alert) -> bool:
    """An open suspicion: to be labelled "suspected" (a withdrawn one is over, not suspected)."""
    return alert.suspected and alert.kind not in CALM_KINDS


def shown_status(alert: Alert) -> Status:
    """The status a message shows for the alert: operational once it ended or while it is
    recovering, else its severity."""
    return Status.OPERATIONAL if alert.kind in CALM_KINDS else alert.severity


# -- building ------------------------------------------------------------------------------------


def _build_one(
    key: str,
    group: Sequence[Transition],
    states: Mapping[str, SurfaceState],
    catalog: Catalog,
    *,
    now: datetime,
    history: Mapping[str, Sequence[Transition]] | None,
) -> Alert:
    ordered = sorted(group, key=lambda t: t.at)  # stable: equal times keep their order
    latest = {t.surface: t for t in ordered}

    # A surface that changed is described as its transition says, not as it is now: fan-out can
    # run late, and a short outage that is already over must still be announced as it was (its
    # recovery follows as its own transition). Other surfaces of the outage: as they are now.
    def status_of(surface: str) -> Status:
        if surface in latest:
            return latest[surface].status
        return states[surface].status

    def suspected_of(surface: str) -> bool:
        if surface in latest:
            return latest[surface].suspected
        return states[surface].suspected

    others = [
        sid
        for sid, st in states.items()
        if st.outage_id == key and sid not in latest and _is_out(st.status)
    ]
    surfaces = _catalog_order([*latest, *others], catalog)
    statuses = tuple(status_of(s) for s in surfaces)
    out = [s for s, st in zip(surfaces, statuses, strict=True) if _is_out(st)]

    kinds = {_kind_of(t) for t in ordered}
    starts: AlertKind | None = None
    if kinds <= _START_KINDS:
        if kinds == {AlertKind.MAINTENANCE_START}:
            starts = AlertKind.MAINTENANCE_START
        elif kinds == {AlertKind.SUSPECTED}:
            starts = AlertKind.SUSPECTED
        else:
            starts = AlertKind.START
    ends = ends_else = next((k for k in _END_PRECEDENCE if k in kinds), None)
    if AlertKind.RECOVERING in kinds and kinds <= CALM_KINDS:
        ends = AlertKind.RECOVERING  # the outage is not over while one surface is recovering
    recovering = tuple(t.surface for t in ordered if _kind_of(t) is AlertKind.RECOVERING)
    if kinds <= CALM_KINDS:
        kind = (ends or AlertKind.RECOVERY) if not out else AlertKind.UPDATE
    elif AlertKind.CONFIRMED in kinds:
        kind = AlertKind.CONFIRMED
    elif kinds <= _START_KINDS and not others:
        kind = starts or AlertKind.START
    else:
        kind = AlertKind.UPDATE

    if kind is AlertKind.CONFIRMED:
        suspected = False
    elif out:
        suspected = all(suspected_of(s) for s in out)
    else:
        suspected = ends is AlertKind.SUSPECTED_WITHDRAWN

    incident = _incident(ordered, [states[s] for s in surfaces if s in states], key)
    started = [t.started_at for t in ordered] + [
        st.started_at for s in others if (st := states[s]).started_at is not None
    ]
    source = next((t.source for t in reversed(ordered) if t.source is not None), None)
    backups = (
        ()
        if kind in CALM_KINDS
        else suggest_many(out, states, catalog, now=now, history=history, limit=BACKUP_LIMIT)
    )
    # A recovery quotes the resolution, never an older update as if it were the latest.
    resolution = incident is not None and incident.resolved
    quoted = incident if incident and (resolution or kind is not AlertKind.RECOVERY) else None
    leads = [lead for t in ordered if (lead := t.official_lead) is not None]
    # Every unchecked alternative, even beside backups that are up and not just the first few:
    # `for_channel` keeps those of the channel's own surfaces (a channel of `api` must not read
    # "none up" because the Console is up for claude.ai); renderers name them only when no
    # backup is up, and then the first few (`unchecked_text`).
    unchecked = (
        ()
        if kind in CALM_KINDS
        else unchecked_many(out, states, catalog, limit=len(catalog.surfaces))
    )
    alert = Alert(
        key=key,
        kind=kind,
        surfaces=surfaces,
        surface_names=tuple(catalog.name_of(s) for s in surfaces),
        severity=Status.UNKNOWN,  # set by _finish
        title="",  # set by _finish
        incident_title=incident.name if incident else None,
        update_text=shorten(quoted.update_body, UPDATE_TEXT_LIMIT)
        if quoted and quoted.update_body
        else None,
        update_at=quoted.update_at if quoted else None,
        started_at=min(started),
        at=now,
        duration_text="",  # set by _finish
        url=incident.url if incident else None,
        backups=backups,
        suspected=suspected,
        transition_ids=tuple(t.id for t in ordered),
        statuses=statuses,
        changed=tuple(s for s in surfaces if s in latest),
        ends=ends,
        recovering=recovering if ends is AlertKind.RECOVERING else (),
        ends_else=ends_else if ends is AlertKind.RECOVERING else None,
        starts=starts,
        source=source,
        audience=_joint_audience(ordered),
        unchecked=unchecked,
        official_lead_s=max(leads).total_seconds() if leads else None,
        quiet=bool(ordered) and all(t.reason is R.SETTLED for t in ordered),
        flip=bool(ordered) and all(t.reason in (R.RECOVERING, R.RELAPSED) for t in ordered),
        no_page=tuple(
            s for s in surfaces if s in catalog.surfaces and not catalog.surfaces[s].official
        ),
        monitoring=incident is not None and incident.status == "monitoring",
        resolution=resolution,
    )
    return _finish(alert)


def _joint_audience(transitions: Sequence[Transition]) -> tuple[str, ...]:
    """Everyone when any transition is for everyone; else the union of their audiences."""
    if any(not t.audience for t in transitions):
        return ()
    return tuple(sorted({w for t in transitions for w in t.audience}))


def _kind_of(t: Transition) -> AlertKind:
    """What one transition means on its own."""
    if t.reason is R.WITHDRAWN:
        return AlertKind.SUSPECTED_WITHDRAWN
    if t.reason is R.MAINTENANCE_ENDED or (
        t.kind is TK.RECOVERY and t.prev_status is Status.MAINTENANCE
    ):
        return AlertKind.MAINTENANCE_END
    if t.kind is TK.RECOVERY or t.reason is R.RECOVERED:
        return AlertKind.RECOVERY
    if t.kind is TK.UPDATE and not _is_out(t.status):
        return AlertKind.RECOVERING
    if t.reason is R.MAINTENANCE_STARTED or (t.kind is TK.START and t.status is Status.MAINTENANCE):
        return AlertKind.MAINTENANCE_START
    if t.reason is R.CONFIRMED or (t.kind is TK.UPDATE and t.prev_suspected and not t.suspected):
        return AlertKind.CONFIRMED
    if t.kind is TK.START:
        return AlertKind.SUSPECTED if t.suspected else AlertKind.START
    return AlertKind.UPDATE


def _incident(
    ordered: Sequence[Transition], states: Sequence[SurfaceState], key: str
) -> Incident | None:
    """The newest incident the group's transitions carry, else one the live states carry."""
    for t in reversed(ordered):
        if t.incident is not None:
            return t.incident
    return next((s.incident for s in states if s.outage_id == key and s.incident), None)


# -- deriving the wording --------------------------------------------------------------------------


def _finish(alert: Alert) -> Alert:
    """Severity, title and duration derived from the alert's structural fields."""
    statuses = alert.statuses or (alert.severity,)
    names = dict(zip(alert.surfaces, alert.surface_names, strict=True))
    pairs = [
        (names[s], st) for s, st in zip(alert.surfaces, alert.statuses, strict=False) if _is_out(st)
    ]
    if not alert.statuses:  # an alert built elsewhere: every surface counts as out
        pairs = [(n, alert.severity) for n in alert.surface_names]
    out = [n for n, _ in pairs]
    recovered = [
        names[s]
        for s, st in zip(alert.surfaces, alert.statuses, strict=False)
        if s in alert.changed and not _is_out(st)
    ]
    if alert.kind in CALM_KINDS:
        severity = Status.OPERATIONAL
    else:
        severity = max(statuses, key=lambda st: st.rank)
    elapsed = alert.at - alert.started_at
    kind = alert.kind
    label = severity.label
    all_names = _join(list(alert.surface_names))
    grouped = _grouped(pairs) or f"{all_names}: {label}"
    has_page = not set(alert.surfaces) <= set(alert.no_page)
    if kind is AlertKind.START:
        title = grouped
    elif kind is AlertKind.SUSPECTED:
        what = _join(out) or all_names
        title = f"Suspected outage: {what} ({suspicion_note(alert)})"
    elif kind is AlertKind.CONFIRMED and len({st for _, st in pairs}) > 1:
        title = f"Confirmed: {grouped} (now on the official status page)"
    elif kind is AlertKind.CONFIRMED:
        title = f"Confirmed {label}: {_join(out) or all_names} (now on the official status page)"
    elif kind is AlertKind.UPDATE and recovered:
        still = [n for n in out if n not in recovered]
        back = "Recovering" if alert.ends is AlertKind.RECOVERING else "Recovered"
        title = f"{back}: {_join(recovered)}; still out: {_join(still) or 'none'}"
    elif kind is AlertKind.UPDATE:
        what = "suspected outage of " if alert.suspected else ""
        title = f"Update on {what}{grouped}"
    elif kind is AlertKind.RECOVERING:
        title = f"{all_names}: {MONITORING if alert.monitoring else SETTLING}"
    elif kind is AlertKind.RECOVERY:
        title = f"Resolved: {all_names} after {humanize(elapsed)}"
    elif kind is AlertKind.SUSPECTED_WITHDRAWN and has_page:
        title = f"All clear: {all_names} working again (never on the official status page)"
    elif kind is AlertKind.SUSPECTED_WITHDRAWN:
        title = f"All clear: {all_names} working again (the suspected outage is withdrawn)"
    elif kind is AlertKind.MAINTENANCE_START:
        title = f"Scheduled maintenance: {_join(out) or all_names}"
    else:  # MAINTENANCE_END
        title = f"{HEADLINES[AlertKind.MAINTENANCE_END]}: {all_names}"
    duration = _duration(kind, elapsed, since=alert.started_at, at=alert.at)
    if kind is AlertKind.CONFIRMED and alert.official_lead_s is not None:
        duration += f" · {lead_text(timedelta(seconds=alert.official_lead_s))}"
    return replace(alert, severity=severity, title=title, duration_text=duration)


def _grouped(pairs: Sequence[tuple[str, Status]]) -> str:
    """Names grouped by their own severity, in order: 'claude.ai, Code: partial outage · API:
    major outage' (never the worst severity for all of them)."""
    groups: dict[Status, list[str]] = {}
    for name, status in pairs:
        groups.setdefault(status, []).append(name)
    return " · ".join(f"{_join(group)}: {status.label}" for status, group in groups.items())


def _duration(kind: AlertKind, elapsed: timedelta, *, since: datetime, at: datetime) -> str:
    if kind is AlertKind.RECOVERY:
        return f"resolved after {humanize(elapsed)}"
    if kind is AlertKind.MAINTENANCE_END:
        return f"ended after {humanize(elapsed)}"
    if kind is AlertKind.SUSPECTED_WITHDRAWN:
        return f"cleared after {humanize(elapsed)}"
    if elapsed < timedelta(minutes=1):
        return "just started"
    if kind in _START_KINDS and elapsed >= ONGOING_AFTER:
        return f"ongoing since {clock(since, at)}"  # first seen late: not "just started"
    return f"for {humanize(elapsed)}"


# -- small helpers ---------------------------------------------------------------------------------


def _is_out(status: Status) -> bool:
    """Still affected: an outage (degraded or worse) or maintenance. Unknown is not out."""
    return status.is_outage or status is Status.MAINTENANCE


def _catalog_order(surfaces: Sequence[str], catalog: Catalog) -> tuple[str, ...]:
    order = {sid: i for i, sid in enumerate(catalog.surfaces)}
    unique = dict.fromkeys(surfaces)
    return tuple(sorted(unique, key=lambda s: (order.get(s, len(order)), s)))


def _join(names: Sequence[str]) -> str:
    return ", ".join(names)


def _surface_of(transition_id: str) -> str | None:
    """The surface of a transition id '<surface>@<version>', None for another shape."""
    surface, at, _ = transition_id.rpartition("@")
    return surface if at else None
