"""The watch loop's work for one tick: read (fetch, parse, assess), decide, commit, publish. IO,
thin: the decisions are `assess` and `transitions.decide`; the exactly-once is the store's commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import httpx
from pydantic import SecretStr

from bot.chat.ports import Sink
from bot.core.assess import Recall
from bot.core.catalog import Catalog, ProbeSpec
from bot.core.model import Observation, Signal, Status, SurfaceState, Transition
from bot.core.problem import Phase, Problems
from bot.core.transitions import Policy, decide, only_polled, settling
from bot.ops import metrics
from bot.store.surfaces import Claim, Held, PageCache, SurfaceStore, Write
from bot.watch.probe import BLIND, recheck_due
from bot.watch.probe_run import run_probes
from bot.watch.read import EndpointBackoff, read_page
from bot.watch.statuspage import PageReading

log = logging.getLogger(__name__)

MAX_CAS_ATTEMPTS = 3  # a conflict means another job moved the surface: re-read and decide again
HINT_WINDOW = 1.0  # seconds: hinted polls of one page are claimed per window (at most one each)


@dataclass(frozen=True, slots=True)
class PollReport:
    """What one poll of one status page did, for logs, tests and the benchmark."""

    provider: str
    claimed: bool
    reading: PageReading | None = None
    not_modified: bool = False
    transitions: tuple[Transition, ...] = ()
    states: Mapping[str, SurfaceState] = field(default_factory=dict)


@dataclass
class Watcher:
    """Polls status pages and probes; records transitions; publishes them to the sink."""

    catalog: Catalog
    store: SurfaceStore
    client: httpx.AsyncClient
    # Where recorded transitions go besides the transition stream the same commit appends to
    # (which delivery reads): the console when no chat platform is configured, else None.
    sink: Sink | None
    clock: Callable[[], datetime]
    policy: Policy = field(default_factory=Policy)
    poll_interval: float = 15.0
    probe_interval: float = 20.0  # the base round: every probed surface, one small GET each
    recheck_interval: float = 5.0  # the fast path: only surfaces whose probe signal is settling
    max_response_bytes: int = 2_000_000
    api_key: str | SecretStr | None = None  # enables the authenticated API check
    read_deadline: float | None = 30.0
    blind: bool = False  # every probe and canary failed in the last probe run
    # incidents.json that keeps answering 404 (incident.io pages) is not asked every poll.
    backoff: EndpointBackoff = field(default_factory=EndpointBackoff)
    # A page that answered 429 with Retry-After is not polled before this (per process).
    held_until: dict[str, datetime] = field(default_factory=dict)
    # The note of each surface whose component id vanished: logged when it starts and ends.
    notes: dict[str, str] = field(default_factory=dict)
    # Surfaces whose probe signal is on its way to a change, as this replica last saw them: the
    # fast path's work list. In memory only: a replica that did not see the failure leaves the
    # re-checks to the one that did; the claim's fresh states drop the ones settled meanwhile.
    _settling: set[str] = field(default_factory=set, init=False, repr=False)
    # Page problems open on this replica (unreadable, skipped parts): logged on change only.
    _problems: Problems = field(default_factory=Problems, init=False, repr=False)

    def interval_of(self, provider: str) -> float:
        return self.catalog.providers[provider].poll_interval or self.poll_interval

    # -- status pages ------------------------------------------------------------------------

    async def poll_page(self, provider: str, *, hinted: bool = False) -> PollReport:
        """One poll of a provider's status page: claim the slot, read, decide, commit, publish.
        Two Redis round trips whatever the number of surfaces (one more per rare CAS conflict).
        `hinted`: a webhook said the page changed; its own short slot (HINT_WINDOW), so it runs
        even when the scheduled poll of this interval has run, and N replicas hinted at once
        poll once."""
        started = time.perf_counter()
        now = self.clock()
        until = self.held_until.get(provider)
        if until is not None and now < until:  # the page asked us to wait (429 Retry-After)
            metrics.POLLS.labels(provider, "held").inc()
            return PollReport(provider, claimed=False)
        job, interval = ("hint", HINT_WINDOW) if hinted else ("page", self.interval_of(provider))
        slot = int(now.timestamp() // interval)
        surfaces = [s.id for s in self.catalog.surfaces_of(provider) if s.official]
        claim = await self.store.claim(
            provider, job, slot, max(1, int(interval * 1000)), surfaces, with_page=True, now=now
        )
        if isinstance(claim, Held):  # another replica met the page's 429: wait like it does
            self.held_until[provider] = claim.until
            metrics.POLLS.labels(provider, "held").inc()
            return PollReport(provider, claimed=False)
        if claim is None:
            metrics.POLLS.labels(provider, "skipped").inc()
            return PollReport(provider, claimed=False)
        read = await read_page(
            self.client,
            self.catalog,
            provider,
            now=now,
            cache=claim.page,
            held={st.incident.id for st in claim.states.values() if st.incident},
            recall={sid: _recall(st) for sid, st in claim.states.items()},
            backoff=self.backoff,
            max_bytes=self.max_response_bytes,
            deadline=self.read_deadline,
        )
        reading = read.reading
        await self._hold(provider, now, read.retry_after)
        self._log_notes(read.observations)
        failure = f"{read.outcome}: {reading.error}" if read.failed else None
        self._log_problem(provider, "unreadable", failure, now)
        skipped = "; ".join(reading.problems) if not read.failed and reading.problems else None
        self._log_problem(provider, "skipped parts", skipped, now)
        transitions, states = await self._commit(
            provider, claim.states, read.observations, now, read.cache
        )
        metrics.POLLS.labels(provider, "error" if read.failed else read.outcome).inc()
        if not read.failed:
            metrics.LAST_POLL.labels(provider).set(now.timestamp())
        metrics.POLL_SECONDS.labels(provider).observe(time.perf_counter() - started)
        not_modified = read.outcome == "not_modified"
        return PollReport(provider, True, reading, not_modified, tuple(transitions), states)

    async def _hold(self, provider: str, now: datetime, retry_after: float | None) -> None:
        """Honour a Retry-After: no poll of the page before it, by any replica (the hold is
        kept in Redis beside the page cache; logged when a hold starts and when it ends)."""
        if retry_after is None:
            if self.held_until.pop(provider, None) is not None:
                log.warning("%s status page: polled again after its Retry-After", provider)
            return
        if provider not in self.held_until:
            log.warning(
                "%s status page asked us to wait %.0f s (Retry-After): not polled before", provider,
                retry_after,
            )  # fmt: skip
        self.held_until[provider] = now + timedelta(seconds=retry_after)
        await self.store.hold(provider, self.held_until[provider])

    def _log_notes(self, observations: Iterable[Observation]) -> None:
        """A vanished component id is logged once when it starts and once when it ends."""
        for obs in observations:
            before = self.notes.get(obs.surface)
            if obs.note == before:
                continue
            if obs.note is None:
                del self.notes[obs.surface]
                log.warning("%s: its component is on the status page again", obs.surface)
            else:
                self.notes[obs.surface] = obs.note
                log.warning("%s: %s", obs.surface, obs.note)

    # -- probes --------------------------------------------------------------------------------

    async def run_probe_round(self) -> list[Transition]:
        """Every synthetic check at once (the canary guard needs them together), then one
        claim-free decide/commit per provider. Probe slots are claimed per provider first so that
        N replicas probe once per interval."""
        return await self._probe("probe", self.probe_interval, self.catalog.probe_specs())

    async def recheck_probes(self) -> list[Transition]:
        """The fast path, every `recheck_interval`: re-probe only the surfaces whose probe signal
        is settling (failing toward the failure threshold, or passing toward the success
        threshold; `recheck_due`), with the canary guard on the same checks, so a real outage
        is suspected within seconds and our own network failing is still told apart. Nothing to
        re-check (the usual case): no request and no Redis round trip. Claimed per provider and
        slot like the base round, so N replicas re-check once."""
        if not self._settling:
            return []
        specs = self.catalog.probe_specs()
        wanted = {s: specs[s] for s in sorted(self._settling) if s in specs}
        return await self._probe("recheck", self.recheck_interval, wanted, fast=True)

    async def _probe(
        self,
        job: str,
        every: float,
        specs: Mapping[str, Sequence[ProbeSpec]],
        *,
        fast: bool = False,
    ) -> list[Transition]:
        """Claim this slot of `job` per provider, run the checks of the claimed surfaces (on the
        fast path only those still due by the states the claim read), decide and commit."""
        now = self.clock()
        slot = int(now.timestamp() // every)
        by_provider: dict[str, list[str]] = {}
        for surface in specs:
            by_provider.setdefault(self.catalog.surfaces[surface].provider, []).append(surface)
        claimed: dict[str, dict[str, SurfaceState]] = {}
        for provider, surfaces in by_provider.items():
            claim = await self.store.claim(provider, job, slot, max(1, int(every * 1000)), surfaces)
            if not isinstance(claim, Claim):
                continue
            states = claim.states
            if fast:
                self._track(states)  # another replica may have settled them meanwhile
                states = {
                    s: st
                    for s, st in states.items()
                    if recheck_due(st.signals.get(Signal.PROBE.value), now, every)
                }
            if states:
                claimed[provider] = states
        wanted = {s: specs[s] for states in claimed.values() for s in states}
        if not wanted:
            return []
        observations = await run_probes(
            self.client, wanted, self.catalog.canaries, api_key=self.api_key, now=now
        )
        self._see(bool(observations) and all(o.error == BLIND for o in observations))
        recorded: list[Transition] = []
        for provider, states in claimed.items():
            obs = [o for o in observations if o.surface in states]
            transitions, current = await self._commit(provider, states, obs, now, None)
            self._track({s: current[s] for s in states if s in current})
            recorded.extend(transitions)
        return recorded

    def _track(self, states: Mapping[str, SurfaceState]) -> None:
        """Keep the set of surfaces the fast path re-checks in step with their probe signal."""
        for surface, st in states.items():
            if settling(st.signals.get(Signal.PROBE.value)):
                self._settling.add(surface)
            else:
                self._settling.discard(surface)

    def _log_problem(self, provider: str, what: str, reason: str | None, now: datetime) -> None:
        """A page problem is one line when it starts, one reminder, one when it ends."""
        change = self._problems.see(f"{provider} status page {what}", reason, now)
        extra = {"provider": provider}
        if change is None:
            return
        if change.phase is Phase.STARTED:
            log.warning("%s: %s", change.key, change.reason, extra=extra)
        elif change.phase is Phase.STILL:
            log.warning(
                "%s still, after %s: %s", change.key, change.lasted(now), change.reason, extra=extra
            )
        else:
            log.info(
                "%s no more, after %s (was: %s)",
                change.key, change.lasted(now), change.reason, extra=extra,
            )  # fmt: skip

    def _see(self, blind: bool) -> None:
        """Record whether the last probe run was blind; log when blindness starts and ends."""
        if blind and not self.blind:
            log.warning("monitoring is blind: every probe and canary failed (our network?)")
        elif self.blind and not blind:
            log.warning("monitoring can see again: probes answer")
        self.blind = blind
        metrics.BLIND.set(1 if blind else 0)

    # -- any signal ----------------------------------------------------------------------------

    async def observe(self, observations: Sequence[Observation]) -> list[Transition]:
        """Feed observations that arrive outside a poll (crowd reports) into the same path."""
        now = self.clock()
        recorded: list[Transition] = []
        by_provider: dict[str, list[Observation]] = {}
        for obs in observations:
            surface = self.catalog.surfaces.get(obs.surface)
            if surface is not None:
                by_provider.setdefault(surface.provider, []).append(obs)
        for provider, obs in by_provider.items():
            states = await self.store.read(provider, sorted({o.surface for o in obs}))
            transitions, _ = await self._commit(provider, states, obs, now, None)
            recorded.extend(transitions)
        return recorded

    async def reassess(self) -> list[Transition]:
        """Decide again, with no new evidence, every surface out on a suspicion: crowd reports
        and probe results age, and a surface with no status page (or with probes off) has no
        poll that would notice. One read per provider; commits only where something changed."""
        now = self.clock()
        recorded: list[Transition] = []
        for provider, surfaces in self.catalog.surfaces_by_provider().items():
            states = await self.store.read(provider, surfaces)
            stale = {
                sid: st
                for sid, st in states.items()
                if st.suspected and st.status.rank >= Status.MAINTENANCE.rank
            }
            if not stale:
                continue
            transitions, _ = await self._commit(provider, stale, [], now, None, again=stale)
            recorded.extend(transitions)
        return recorded

    async def on_crowd(self, observation: Observation) -> None:
        await self.observe([observation])

    async def _commit(
        self,
        provider: str,
        states: Mapping[str, SurfaceState],
        observations: Sequence[Observation],
        now: datetime,
        page: PageCache | None,
        *,
        again: Iterable[str] = (),
    ) -> tuple[list[Transition], dict[str, SurfaceState]]:
        """Decide every surface that has observations (and those in `again`, with none), commit
        them in one script, retry the surfaces another job moved meanwhile, and publish what was
        recorded."""
        by_surface: dict[str, list[Observation]] = {surface: [] for surface in again}
        for obs in observations:
            by_surface.setdefault(obs.surface, []).append(obs)
        current = dict(states)
        recorded: list[Transition] = []
        pending = sorted(by_surface)
        for _attempt in range(MAX_CAS_ATTEMPTS):
            writes: list[Write] = []
            seen: datetime | None = None  # the poll time of surfaces left unwritten
            for surface in pending:
                prev = current.get(surface) or SurfaceState(surface)
                d = decide(
                    prev, by_surface[surface], provider=provider, now=now, policy=self.policy
                )
                if not by_surface[surface] and d.transition is None:
                    continue  # re-decided with no new evidence and nothing changed: no write
                if d.transition is None and only_polled(prev, d.state, self.policy):
                    # Only the poll time moved: write that once for the page, not the state.
                    at = d.state.signals[Signal.OFFICIAL.value].observed_at
                    seen = at if seen is None else max(seen, at)
                    current[surface] = replace(d.state, version=prev.version)
                    continue
                writes.append(Write(surface, prev.version, d.state, d.transition))
            if not writes and page is None and seen is None:
                break
            applied, ok = await self.store.commit_applied(provider, writes, page=page, seen=seen)
            page = None
            recorded.extend(applied)
            current.update({w.surface: w.state for w, good in zip(writes, ok, strict=True) if good})
            missed = [w.surface for w, good in zip(writes, ok, strict=True) if not good]
            if not missed:
                break
            current.update(await self.store.read(provider, missed))
            metrics.CAS_CONFLICTS.labels(provider).inc()
            pending = missed
        confirmed: set[str] = set()  # incidents whose lag is observed: once each, not per surface
        for t in recorded:
            metrics.TRANSITIONS.labels(t.surface, t.kind.value).inc()
            incident = t.incident.id if t.incident else t.outage_id
            lead = t.official_lead
            if lead is not None and incident not in confirmed:
                confirmed.add(incident)
                metrics.OFFICIAL_LAG.observe(lead.total_seconds())
            log.info(
                "transition %s %s: %s -> %s (%s, outage %s)",
                t.surface, t.kind.value, t.prev_status.value, t.status.value, t.reason.value,
                t.outage_id,
                extra={"surface": t.surface, "provider": t.provider, "outage_id": t.outage_id},
            )  # fmt: skip
        for surface, st in current.items():
            metrics.SURFACE_STATUS.labels(surface).set(st.status.rank)
        if recorded and self.sink is not None:
            await self.sink.publish(recorded)
        return recorded, current


def _recall(state: SurfaceState) -> Recall:
    """What the store remembers of a surface that helps re-match a vanished component."""
    official = state.signals.get(Signal.OFFICIAL.value)
    incident = state.incident.id if state.outage_id and state.incident else None
    return Recall(official.component_name if official else None, incident)
