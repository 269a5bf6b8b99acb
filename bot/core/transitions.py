"""Hysteresis and the transition decision. Pure: previous state and observations in, the next
state and at most one Transition out. The Redis commit script only makes it exactly-once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bot.core.assess import Staleness, assess
from bot.core.model import (
    Observation,
    Reason,
    Signal,
    SignalState,
    Status,
    SurfaceState,
    Transition,
    TransitionKind,
    Verdict,
)

MAX_BACKDATE = timedelta(days=2)  # an incident "started" longer ago than this is a re-saved old one


@dataclass(frozen=True, slots=True)
class Threshold:
    """Consecutive observations needed before a signal's effective status moves."""

    down: int = 1  # operational -> outage
    up: int = 1  # outage -> operational (and any other class change)


@dataclass(frozen=True, slots=True)
class Policy:
    """Official pages are believed at once; our probes need 3 failures to open and 2 successes to
    close (Gatus' defaults); crowd reports have their own distinct-user threshold upstream."""

    thresholds: Mapping[Signal, Threshold] = field(
        default_factory=lambda: {
            Signal.OFFICIAL: Threshold(1, 1),
            Signal.PROBE: Threshold(3, 2),
            Signal.CROWD: Threshold(1, 1),
        }
    )
    staleness: Staleness = field(default_factory=Staleness)
    # Out again this soon after an outage ended: the same outage reopened (in its thread).
    flap_window: timedelta = timedelta(minutes=15)
    # A reopened outage ends once operational has held this long (and its incident is gone).
    settle: timedelta = timedelta(minutes=5)

    @classmethod
    def with_probe_thresholds(cls, failures: int, successes: int) -> Policy:
        base = cls()
        thresholds = dict(base.thresholds)
        thresholds[Signal.PROBE] = Threshold(failures, successes)
        return cls(thresholds=thresholds)

    @classmethod
    def immediate(cls) -> Policy:
        """One observation is enough for every signal (`aistatus status`: a single poll)."""
        return cls(thresholds={s: Threshold(1, 1) for s in Signal})


@dataclass(frozen=True, slots=True)
class Decision:
    state: SurfaceState  # the next state (version bumped) — written even with no transition
    transition: Transition | None
    verdict: Verdict


def _klass(status: Status) -> str:
    return "outage" if status.is_outage else status.value


def settling(state: SignalState | None) -> bool:
    """The signal is on its way to a change: its latest observation is of another class
    (outage / operational / degraded / ...) than its effective status, so a streak toward the
    threshold is under way (`observe_signal` rule 3). `unknown` (monitoring blind) is never
    settling: our network being down is no reason to look faster."""
    if state is None or state.raw is Status.UNKNOWN:
        return False
    return _klass(state.raw) != _klass(state.effective)


def observe_signal(prev: SignalState | None, obs: Observation, threshold: Threshold) -> SignalState:
    """Hysteresis of one signal. Rules:

    1. `unknown` moves nothing: the effective status and the time of the last good observation
       stay (our blindness is not their outage, nor their recovery); only the error and when
       the failures began (`failing_since`) are kept. A known observation clears both.
    2. Observations of the same class (outage / operational / maintenance) extend the streak.
    3. The effective status changes once the streak reaches the threshold: `down` to enter an
       outage from anything else, `up` for every other change. Inside an outage the severity
       follows the latest observation.
    """
    if obs.status is Status.UNKNOWN:
        if prev is None:
            return SignalState(
                Status.UNKNOWN,
                1,
                Status.UNKNOWN,
                obs.observed_at,
                error=obs.error,
                failing_since=obs.observed_at,
            )
        failing = prev.raw is Status.UNKNOWN and prev.failing_since is not None
        streak = prev.streak + 1 if prev.raw is Status.UNKNOWN else 1
        since = prev.failing_since if failing else obs.observed_at
        return replace(
            prev, raw=Status.UNKNOWN, streak=streak, error=obs.error, failing_since=since
        )
    same_class = prev is not None and _klass(prev.raw) == _klass(obs.status)
    streak = prev.streak + 1 if (prev is not None and same_class) else 1
    effective = prev.effective if prev is not None else Status.UNKNOWN
    if _klass(effective) == _klass(obs.status):
        effective = obs.status  # severity inside the class follows the evidence
    else:
        needed = threshold.down if obs.status.is_outage else threshold.up
        if effective is Status.UNKNOWN and not obs.status.is_outage:
            needed = 1  # first sight of a healthy surface needs no streak
        if streak >= needed:
            effective = obs.status
    return SignalState(
        raw=obs.status,
        streak=streak,
        effective=effective,
        observed_at=obs.observed_at,
        incident=obs.incident,
        latency_ms=obs.latency_ms,
        error=obs.error,
        audience=obs.audience,
        component_name=obs.component_name or (prev.component_name if prev else None),
    )


def _outage_id(provider: str, surface: str, verdict: Verdict, now: datetime) -> str:
    if verdict.source is Signal.OFFICIAL and verdict.incident is not None:
        return verdict.incident.id
    # Surfaces that change in the same poll of the same signal share an id: one grouped alert.
    source = verdict.source.value if verdict.source else "unknown"
    return f"{source}-{provider}-{int(now.timestamp())}"


def _start(verdict: Verdict, now: datetime) -> datetime:
    """When the outage began: the official incident's start when it is earlier than our first
    sight of it (the page lags users; durations should not), else now."""
    incident = verdict.incident
    official = verdict.source is Signal.OFFICIAL and incident is not None
    if (
        official
        and incident
        and incident.started_at
        and now - MAX_BACKDATE <= incident.started_at <= now
    ):
        return incident.started_at
    return now


def _audience(state: SurfaceState) -> tuple[str, ...]:
    """Who may hear of a surface's current outage: a crowd-only suspicion's workspaces."""
    if state.suspected and state.source is Signal.CROWD:
        crowd = state.signals.get(Signal.CROWD.value)
        return crowd.audience if crowd is not None else ()
    return ()


def _widened(before: tuple[str, ...], after: tuple[str, ...]) -> bool:
    """A scoped suspicion now reaches workspaces it did not (or everyone)."""
    return bool(before) and (not after or not set(after) <= set(before))


def _reason(prev: SurfaceState, verdict: Verdict) -> Reason | None:
    """Why a still-out surface changed, or None when nothing a reader cares about changed."""
    if prev.suspected and not verdict.suspected:
        return Reason.CONFIRMED
    if verdict.suspected and _widened(_audience(prev), verdict.audience):
        return Reason.WORSENED  # more teams report it: the newly reached ones hear of it
    if verdict.status.rank > prev.status.rank:
        return Reason.WORSENED
    if verdict.status.rank < prev.status.rank:
        return Reason.IMPROVED
    new, old = verdict.incident, prev.incident
    if (
        new is not None
        and new.update_id
        and (old is None or old.id != new.id or old.update_id != new.update_id)
    ):
        return Reason.OFFICIAL_UPDATE
    return None


def _still_open(prev: SurfaceState, verdict: Verdict) -> bool:
    """The official page still lists the incident the outage is about, unresolved (it is in
    `monitoring`: a fix is out, the page has not said it is over)."""
    incident = verdict.incident
    if verdict.source is not Signal.OFFICIAL or incident is None:
        return False
    if incident.resolved or incident.is_maintenance:
        return False
    held = {prev.outage_id, prev.incident.id if prev.incident else None}
    return incident.id in held


def _relapse_of(prev: SurfaceState, verdict: Verdict, now: datetime, policy: Policy) -> bool:
    """Out again soon after an official outage ended: the same outage, not a new one."""
    return (
        prev.last_outage_id is not None
        and prev.last_ended_at is not None
        and now - prev.last_ended_at <= policy.flap_window
        and verdict.status is not Status.MAINTENANCE
        and not verdict.suspected
    )


def only_polled(prev: SurfaceState, new: SurfaceState, policy: Policy) -> bool:
    """True when `new` (decided from `prev`) differs only in what every poll of an unchanged
    page moves: the official signal's observation time, and its streak once past the signal's
    thresholds (more of the same class changes no decision). Such a state need not be stored
    again: the poll time is recorded once per page instead (bot.store.surfaces `with_seen`)."""
    if replace(new, version=prev.version, signals=prev.signals) != prev:
        return False
    if new.signals.keys() != prev.signals.keys():
        return False
    official = Signal.OFFICIAL.value
    threshold = policy.thresholds.get(Signal.OFFICIAL, Threshold(1, 1))
    for name, b in new.signals.items():
        a = prev.signals[name]
        if a == b:
            continue
        if name != official or b.raw is Status.UNKNOWN or a.raw != b.raw:
            return False
        if a.streak < max(threshold.down, threshold.up):
            return False
        if replace(b, observed_at=a.observed_at, streak=a.streak) != a:
            return False
    return True


def decide(
    prev: SurfaceState,
    observations: Sequence[Observation],
    *,
    provider: str,
    now: datetime,
    policy: Policy | None = None,
) -> Decision:
    """The next state of one surface after new observations. Rules:

    1. Each observation moves its signal's hysteresis (`observe_signal`); then `assess` combines.
    2. An `unknown` verdict never opens or closes an outage.
    3. Operational -> outage or maintenance: START (outage id: the official incident's id, else
       one shared by every surface that changed in this poll) — unless an official outage of
       the surface ended less than `flap_window` ago: then that outage is reopened, an UPDATE
       (RELAPSED) in its thread, never a second start (flapping is damped).
    4. Outage -> operational while the outage's incident is still open on the page (monitoring),
       or in an outage that relapsed: UPDATE (RECOVERING); the outage stays open ("recovering").
    5. Outage or maintenance -> operational otherwise: RECOVERY (WITHDRAWN when it was only ever
       suspected, MAINTENANCE_ENDED after maintenance).
    6. Recovering -> out again: UPDATE (RELAPSED), same outage id, same thread. Recovering and
       still operational: RECOVERY once the incident is gone or resolved and, in a reopened
       outage, operational has held for `settle` (SETTLED: its end was already broadcast once).
    7. Still out: UPDATE when the severity changes, a suspicion is confirmed, or the official
       incident has a new update (keyed on update ids: a re-saved incident is no news, fact 5).
       The outage id stays, so a confirmation threads under the suspected alert.
    8. First sight of a healthy surface (unknown -> operational) is recorded, not announced.
    9. A crowd-only suspicion carries its audience (the reporting workspaces) into the
       transition; one that widens to more workspaces, or to everyone, is an UPDATE.
    """
    policy = policy or Policy()
    signals = dict(prev.signals)
    for obs in observations:
        key = obs.signal.value
        threshold = policy.thresholds.get(obs.signal, Threshold())
        signals[key] = observe_signal(signals.get(key), obs, threshold)
    verdict = assess(prev.surface, signals, now=now, staleness=policy.staleness)
    version = prev.version + 1
    seen = prev.first_seen or (now if verdict.status is not Status.UNKNOWN else None)
    base = replace(prev, signals=signals, version=version, first_seen=seen)

    if verdict.status is Status.UNKNOWN:
        return Decision(base, None, verdict)

    recovering = prev.recovering
    was_out = prev.status.rank >= Status.MAINTENANCE.rank
    is_out = verdict.status.rank >= Status.MAINTENANCE.rank
    reopened = prev.reopened
    held_id, held_start = prev.outage_id, prev.started_at
    outage_id = held_id or f"unknown-{prev.surface}"
    started_at = held_start or now

    if recovering and is_out:
        kind, reason = TransitionKind.UPDATE, Reason.RELAPSED
    elif recovering:
        settling = reopened and now - (prev.since or now) < policy.settle
        if _still_open(prev, verdict) or settling:
            new = verdict.incident
            old = prev.incident
            if not (new and new.update_id and (old is None or old.update_id != new.update_id)):
                state = replace(base, incident=verdict.incident or prev.incident)
                return Decision(state, None, verdict)
            kind, reason = TransitionKind.UPDATE, Reason.RECOVERING  # news while monitoring
        else:
            kind = TransitionKind.RECOVERY
            reason = Reason.SETTLED if reopened else Reason.RECOVERED
    elif not was_out and not is_out:
        since = prev.since if prev.status is Status.OPERATIONAL else now
        state = replace(
            base,
            status=Status.OPERATIONAL,
            source=verdict.source,
            suspected=False,
            incident=verdict.incident,
            since=since,
        )
        return Decision(state, None, verdict)
    elif not was_out and _relapse_of(prev, verdict, now, policy):
        kind, reason = TransitionKind.UPDATE, Reason.RELAPSED
        outage_id = prev.last_outage_id or outage_id
        started_at = prev.last_started_at or now
        reopened = True
    elif not was_out:
        kind, reason = (
            TransitionKind.START,
            (
                Reason.MAINTENANCE_STARTED
                if verdict.status is Status.MAINTENANCE
                else Reason.STARTED
            ),
        )
        outage_id, started_at = (
            _outage_id(provider, prev.surface, verdict, now),
            _start(verdict, now),
        )
        reopened = False
    elif not is_out:
        if prev.status is Status.MAINTENANCE:
            kind, reason = TransitionKind.RECOVERY, Reason.MAINTENANCE_ENDED
        elif prev.suspected:
            kind, reason = TransitionKind.RECOVERY, Reason.WITHDRAWN
        elif _still_open(prev, verdict) or reopened:
            kind, reason = TransitionKind.UPDATE, Reason.RECOVERING
        else:
            kind, reason = TransitionKind.RECOVERY, Reason.RECOVERED
    else:
        maybe = _reason(prev, verdict)
        if maybe is None:
            state = replace(base, incident=verdict.incident or prev.incident)
            return Decision(state, None, verdict)
        kind, reason = TransitionKind.UPDATE, maybe

    incident = verdict.incident or (prev.incident if kind is not TransitionKind.START else None)
    if kind is TransitionKind.RECOVERY:
        audience = _audience(prev)  # a withdrawn suspicion ends where it was shown
    else:
        audience = verdict.audience if verdict.suspected else ()
    transition = Transition(
        id=f"{prev.surface}@{version}",
        surface=prev.surface,
        provider=provider,
        kind=kind,
        reason=reason,
        status=verdict.status,
        prev_status=prev.status,
        source=verdict.source,
        suspected=verdict.suspected,
        prev_suspected=prev.suspected,
        outage_id=outage_id,
        incident=incident,
        started_at=started_at,
        at=now,
        audience=audience,
    )
    ended = kind is TransitionKind.RECOVERY
    remembered = ended and reason in (Reason.RECOVERED, Reason.SETTLED)
    state = replace(
        base,
        status=verdict.status,
        source=verdict.source,
        suspected=verdict.suspected,
        incident=None if ended else incident,
        outage_id=None if ended else outage_id,
        started_at=None if ended else started_at,
        since=now if verdict.status is not prev.status else prev.since,
        reopened=False if ended else reopened,
        last_outage_id=outage_id if remembered else prev.last_outage_id,
        last_started_at=started_at if remembered else prev.last_started_at,
        last_ended_at=now if remembered else prev.last_ended_at,
    )
    return Decision(state, transition, verdict)
