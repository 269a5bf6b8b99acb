"""From evidence to belief. Pure: no IO, no clock reads.

`official_observations` turns one status-page reading into an official Observation per surface;
`assess` combines the per-signal states of one surface into its Verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from bot.core.catalog import Catalog, Surface
from bot.core.model import Incident, Observation, Signal, SignalState, Status, Verdict
from bot.watch.statuspage import ComponentReading, PageReading

# Incident statuses that mean "still being worked on"; `monitoring` means a fix is out.
ACTIVE_INCIDENT = frozenset({"investigating", "identified"})
# Impacts that mean users notice something (impact `none` incidents never degrade a surface).
NOTICEABLE_IMPACT = frozenset({"minor", "major", "critical"})
_NEVER = datetime.min.replace(tzinfo=UTC)  # an incident with no time at all sorts first


@dataclass(frozen=True, slots=True)
class Staleness:
    """How long a signal's last good observation stays evidence (seconds). Past it the signal
    counts as unknown: a page we cannot read for 5 minutes no longer says "partial outage"."""

    limits: Mapping[Signal, float] = field(
        default_factory=lambda: {Signal.OFFICIAL: 300.0, Signal.PROBE: 600.0, Signal.CROWD: 600.0}
    )

    def fresh(self, signal: Signal, state: SignalState, now: datetime) -> bool:
        return (now - state.observed_at).total_seconds() <= self.limits.get(signal, 600.0)


def _component(reading: PageReading, surface: Surface) -> ComponentReading | None:
    official = surface.official
    if official is None:
        return None
    if official.component and official.component in reading.components:
        return reading.components[official.component]
    if official.component_name:
        wanted = official.component_name.casefold()
        for comp in reading.components.values():
            if comp.name.casefold() == wanted:
                return comp
    return None


def _mentions(incident: Incident, surface: Surface) -> bool:
    text = f"{incident.name} {incident.update_body or ''}".casefold()
    return any(k.casefold() in text for k in surface.keywords)


def _newest(incidents: Sequence[Incident]) -> Incident | None:
    if not incidents:
        return None
    return max(incidents, key=lambda i: i.update_at or i.started_at or _NEVER)


@dataclass(frozen=True, slots=True)
class Recall:
    """What the store remembers of one surface, for a page that no longer lists its component
    id (fact 12): the component's last known name, and the incident its open outage is about."""

    component_name: str | None = None
    incident: str | None = None


def _worst(statuses: Sequence[Status]) -> Status:
    return max(statuses, key=lambda st: st.rank, default=Status.OPERATIONAL)


def _vanished(
    reading: PageReading, surface: Surface, recall: Recall, *, observed_at: datetime
) -> Observation | ComponentReading:
    """A readable page without the surface's component id. Rules, first match wins:

    1. A component with the last known name: read it instead (returned, with a note).
    2. The incident the surface's outage is about is still open on the page: the surface
       follows it — the worst status of the incident's own components on the page, else
       degraded while it is active, else operational (monitoring: recovering).
    3. That incident resolved or vanished: operational — the outage ends, it never stays open.
    4. Nothing to go by: `unknown`, with the reason.
    """
    sid = surface.id
    wanted = (
        (surface.official.component or surface.official.component_name) if surface.official else "?"
    )
    gone = f"component {wanted} is not on the {reading.provider} status page"
    if recall.component_name:
        named = reading.component(None, recall.component_name)
        if named is not None:
            return named
    if recall.incident:
        incident = next((i for i in reading.incidents if i.id == recall.incident), None)
        if incident is not None and not incident.resolved:
            own = [
                reading.components[c].status for c in incident.components if c in reading.components
            ]
            status = _worst([st for st in own if st is not Status.UNKNOWN])
            if status is Status.OPERATIONAL and (
                incident.status in ACTIVE_INCIDENT and incident.impact in NOTICEABLE_IMPACT
            ):
                status = Status.DEGRADED
            note = f"{gone}; following its incident {incident.id}"
            return Observation(
                sid, Signal.OFFICIAL, status, observed_at, incident=incident, note=note
            )
        note = f"{gone} and its incident {recall.incident} is over: the outage ends"
        return Observation(
            sid, Signal.OFFICIAL, Status.OPERATIONAL, observed_at, incident=incident, note=note
        )
    return Observation(sid, Signal.OFFICIAL, Status.UNKNOWN, observed_at, error=gone, note=gone)


def official_observation(
    reading: PageReading,
    surface: Surface,
    *,
    observed_at: datetime,
    recall: Recall | None = None,
) -> Observation:
    """The official signal for one surface. Rules, first match wins:

    1. An unreadable page is `unknown` with the reason; a component missing from a readable
       page is re-matched or ends the outage (`_vanished`, with `recall`).
    2. A component that says anything but operational is believed as it is (the indicator is
       ignored: it can be milder than the incident, fact 1).
    3. An in-progress maintenance naming the component: under maintenance.
    4. An active incident (investigating/identified, impact minor or worse) that names the
       component, or names no component but mentions the surface's keywords, while the
       component still says operational: degraded (fact 1: incidents open before components move).
    5. Otherwise operational; an incident in `monitoring` or of impact `none` is attached for
       context but changes nothing.
    """
    sid = surface.id
    if not reading.ok:
        return Observation(sid, Signal.OFFICIAL, Status.UNKNOWN, observed_at, error=reading.error)
    comp = _component(reading, surface)
    note = None
    if comp is None:
        found = _vanished(reading, surface, recall or Recall(), observed_at=observed_at)
        if isinstance(found, Observation):
            return found
        comp = found
        wanted = surface.official.component if surface.official else "?"
        note = (
            f"component {wanted} is not on the page; re-matched by name {comp.name!r} ({comp.id})"
        )
    obs = _read_component(reading, surface, comp, observed_at=observed_at)
    return replace(obs, component_name=comp.name, note=note)


def _read_component(
    reading: PageReading, surface: Surface, comp: ComponentReading, *, observed_at: datetime
) -> Observation:
    """Rules 2-5 of `official_observation` for the component found."""
    sid = surface.id
    naming = [i for i in reading.incidents if comp.id in i.components]
    unnamed = [i for i in reading.incidents if not i.components and _mentions(i, surface)]
    incident = _newest(naming) or _newest(unnamed)
    if comp.status is Status.UNKNOWN:
        return Observation(
            sid,
            Signal.OFFICIAL,
            Status.UNKNOWN,
            observed_at,
            incident=incident,
            error=f"component status {comp.raw_status!r} is not one we know",
        )
    if comp.status is not Status.OPERATIONAL:
        maint = _newest([m for m in reading.maintenances if comp.id in m.components])
        chosen = incident or (maint if comp.status is Status.MAINTENANCE else None)
        return Observation(sid, Signal.OFFICIAL, comp.status, observed_at, incident=chosen)
    maint = _newest([m for m in reading.maintenances if comp.id in m.components])
    if maint is not None:
        return Observation(sid, Signal.OFFICIAL, Status.MAINTENANCE, observed_at, incident=maint)
    active = [
        i
        for i in (naming + unnamed)
        if i.status in ACTIVE_INCIDENT and i.impact in NOTICEABLE_IMPACT
    ]
    if active:
        return Observation(
            sid, Signal.OFFICIAL, Status.DEGRADED, observed_at, incident=_newest(active)
        )
    return Observation(sid, Signal.OFFICIAL, Status.OPERATIONAL, observed_at, incident=incident)


def official_observations(
    reading: PageReading,
    catalog: Catalog,
    *,
    observed_at: datetime,
    recall: Mapping[str, Recall] | None = None,
) -> list[Observation]:
    """One official observation per surface of the reading's provider that reads the page."""
    recall = recall or {}
    return [
        official_observation(reading, s, observed_at=observed_at, recall=recall.get(s.id))
        for s in catalog.surfaces_of(reading.provider)
        if s.official is not None
    ]


def assess(
    surface: str,
    signals: Mapping[str, SignalState],
    *,
    now: datetime,
    staleness: Staleness | None = None,
) -> Verdict:
    """Combine one surface's signal states (after hysteresis) into a Verdict. Rules:

    1. Stale or unknown signals are ignored, except crowd reports: aged out, they say
       "nobody reports a problem now" (operational).
    2. The official page, when it says anything but operational, decides (not suspected).
    3. An official maintenance is never overridden by probes or crowd reports; neither is an
       official "operational, incident in monitoring" (a fix is out; reports lag behind it).
    4. Else a failing probe, then a crowd threshold, is a *suspected* outage.
    5. Else operational if any signal is known, unknown if none is.
    """
    staleness = staleness or Staleness()
    known: dict[Signal, SignalState] = {}
    for name, st in signals.items():
        try:
            sig = Signal(name)
        except ValueError:
            continue
        if st.effective is Status.UNKNOWN:
            continue
        if staleness.fresh(sig, st, now):
            known[sig] = st
        elif sig is Signal.CROWD:
            # Reports that aged out of the window are not blindness: nobody reports it now.
            known[sig] = replace(st, effective=Status.OPERATIONAL)
    official = known.get(Signal.OFFICIAL)
    if official is not None and official.effective is not Status.OPERATIONAL:
        why = f"official page: {official.effective.label}"
        return Verdict(
            surface, official.effective, Signal.OFFICIAL, False, official.incident, why, now
        )
    shielded = official is not None and official.incident is not None
    for sig in (Signal.PROBE, Signal.CROWD):
        st = known.get(sig)
        if st is None or not st.effective.is_outage:
            continue
        if sig is Signal.CROWD and shielded:
            continue  # crowd reports add evidence to `status`, they never override the page
        if (
            sig is Signal.PROBE
            and shielded
            and official is not None
            and official.incident
            and (official.incident.status == "monitoring" or official.incident.is_maintenance)
        ):
            continue
        why = (
            f"our probes: {st.error or st.effective.label}"
            if sig is Signal.PROBE
            else "reports from channel members"
        )
        incident = official.incident if official is not None else None
        audience = st.audience if sig is Signal.CROWD else ()
        return Verdict(surface, st.effective, sig, True, incident, why, now, audience)
    if known:
        source = Signal.OFFICIAL if official is not None else next(iter(known))
        incident = official.incident if official is not None else None
        return Verdict(surface, Status.OPERATIONAL, source, False, incident, "operational", now)
    reasons = [st.error for st in signals.values() if st.error]
    why = reasons[0] if reasons else "no fresh evidence"
    return Verdict(surface, Status.UNKNOWN, None, False, None, why, now)
