"""assess + decide: from the real status-page payloads and probe results to exactly the
transitions a channel should hear about. Pure: no Redis, no network, time passed in."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from bot.catalog_file import load_catalog
from bot.core.assess import official_observations
from bot.core.model import (
    Incident,
    Observation,
    Reason,
    Signal,
    Status,
    SurfaceState,
    Transition,
    TransitionKind,
)
from bot.core.transitions import Policy, decide, only_polled
from bot.ops.demo import with_update
from bot.watch.statuspage import parse_summary
from tests.helpers import fixture_json

CATALOG = load_catalog()
CLAUDE = [s.id for s in CATALOG.surfaces_of("claude") if s.official]
T0 = datetime.fromisoformat("2026-09-22T00:50:00+00:00")


def page(payload: object, now: datetime) -> list[Observation]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    reading = parse_summary(body, provider="claude", observed_at=now)
    return official_observations(reading, CATALOG, observed_at=now)


class Surfaces:
    """Replays observations through `decide`, keeping every surface's state like Redis would."""

    def __init__(self, policy: Policy | None = None) -> None:
        self.states: dict[str, SurfaceState] = {}
        self.policy = policy or Policy()
        self.recorded: list[Transition] = []

    def feed(self, observations: Sequence[Observation], now: datetime) -> list[Transition]:
        out = []
        by: dict[str, list[Observation]] = {}
        for o in observations:
            by.setdefault(o.surface, []).append(o)
        for surface, obs in by.items():
            prev = self.states.get(surface, SurfaceState(surface))
            d = decide(prev, obs, provider="claude", now=now, policy=self.policy)
            self.states[surface] = d.state
            if d.transition:
                out.append(d.transition)
        self.recorded += out
        return out


def probe(surface: str, status: Status, now: datetime, error: str | None = None) -> Observation:
    return Observation(surface, Signal.PROBE, status, now, latency_ms=120.0, error=error)


# -- the recorded incident -------------------------------------------------------------------


def test_the_recorded_incident_gives_one_start_per_surface_then_one_recovery_each():
    s = Surfaces()
    assert s.feed(page(fixture_json("claude/summary_all_operational.json"), T0), T0) == []
    t1 = T0 + timedelta(minutes=11)
    started = s.feed(page(fixture_json("claude/summary_incident_investigating.json"), t1), t1)
    assert {t.surface for t in started} == {"claude.ai", "api", "code", "cowork", "mobile"}
    assert {t.kind for t in started} == {TransitionKind.START}
    assert {t.outage_id for t in started} == {"7g1qpkyz5gxh"}, "one incident, one grouped outage"
    assert all(t.status is Status.PARTIAL_OUTAGE and not t.suspected for t in started)
    assert all(t.started_at.isoformat().startswith("2026-09-22T00:57:26") for t in started), (
        "durations count from the official start, not from our first poll"
    )
    # The same page again says nothing new.
    t2 = t1 + timedelta(minutes=15)
    assert s.feed(page(fixture_json("claude/summary_incident_investigating.json"), t2), t2) == []
    t3 = t2 + timedelta(hours=5)
    recovered = s.feed(page(fixture_json("claude/summary_recovered.json"), t3), t3)
    assert {t.surface for t in recovered} == {"claude.ai", "api", "code", "cowork", "mobile"}
    assert {(t.kind, t.reason) for t in recovered} == {(TransitionKind.RECOVERY, Reason.RECOVERED)}
    assert {t.outage_id for t in recovered} == {"7g1qpkyz5gxh"}
    assert "console" not in {t.surface for t in s.recorded}, "the console stayed operational"


def test_a_new_official_update_is_an_update_and_a_resave_is_not():
    s = Surfaces()
    inc = fixture_json("claude/summary_incident_investigating.json")
    s.feed(page(inc, T0), T0)
    resaved = copy.deepcopy(inc)
    resaved["incidents"][0]["updated_at"] = "2026-09-22T01:30:00.000Z"  # bulk re-save (fact 5)
    assert s.feed(page(resaved, T0 + timedelta(minutes=5)), T0 + timedelta(minutes=5)) == []
    at = datetime.fromisoformat("2026-09-22T02:00:00+00:00")
    identified = with_update(
        inc, at, status="identified", body="Fix in progress.", update_id="upd2"
    )
    updates = s.feed(page(identified, T0 + timedelta(hours=1)), T0 + timedelta(hours=1))
    assert {t.reason for t in updates} == {Reason.OFFICIAL_UPDATE}
    assert all(t.incident and t.incident.update_body == "Fix in progress." for t in updates)


def test_the_page_indicator_milder_than_the_components_does_not_soften_the_verdict():
    obs = page(fixture_json("claude/summary_incident_investigating.json"), T0)
    by = {o.surface: o.status for o in obs}
    assert by["api"] is Status.PARTIAL_OUTAGE  # indicator says only "minor"
    assert by["console"] is Status.OPERATIONAL


def test_an_incident_open_while_components_say_operational_degrades_the_named_surfaces():
    p = fixture_json("claude/summary_incident_investigating.json")
    for c in p["components"]:
        c["status"] = "operational"
    by = {o.surface: o for o in page(p, T0)}
    assert by["api"].status is Status.DEGRADED
    assert by["api"].incident is not None and by["api"].incident.id == "7g1qpkyz5gxh"
    assert by["console"].status is Status.OPERATIONAL


def test_an_incident_naming_no_component_affects_only_surfaces_it_mentions():
    p = fixture_json("claude/summary_all_operational.json")
    inc = copy.deepcopy(fixture_json("claude/summary_incident_investigating.json")["incidents"][0])
    inc["components"] = []
    for u in inc["incident_updates"]:
        u["affected_components"] = None
    inc["name"] = "Elevated errors in Claude Code"
    p["incidents"] = [inc]
    by = {o.surface: o.status for o in page(p, T0)}
    assert by["code"] is Status.DEGRADED
    assert by["claude.ai"] is Status.OPERATIONAL
    assert by["console"] is Status.OPERATIONAL


def test_a_monitoring_incident_with_operational_components_is_operational_with_context():
    p = fixture_json("claude/summary_incident_investigating.json")
    for c in p["components"]:
        c["status"] = "operational"
    p["incidents"][0]["status"] = "monitoring"
    by = {o.surface: o for o in page(p, T0)}
    assert by["api"].status is Status.OPERATIONAL
    assert by["api"].incident is not None


def test_a_renamed_component_is_still_matched_by_id():
    p = fixture_json("claude/summary_incident_investigating.json")
    for c in p["components"]:
        c["name"] = "Something else entirely"
    by = {o.surface: o.status for o in page(p, T0)}
    assert by["api"] is Status.PARTIAL_OUTAGE


@pytest.mark.parametrize(
    "payload",
    [b"<html><body>502 Bad Gateway</body></html>", b'{"components": [', b"", b"null", b"[]"],
    ids=["html", "truncated", "empty", "null", "list"],
)
def test_an_unreadable_page_neither_opens_nor_closes_an_outage(payload):
    s = Surfaces()
    s.feed(page(fixture_json("claude/summary_incident_investigating.json"), T0), T0)
    before = {k: v.status for k, v in s.states.items()}
    for i in range(1, 4):
        now = T0 + timedelta(seconds=15 * i)
        assert s.feed(page(payload, now), now) == []
    assert {k: v.status for k, v in s.states.items()} == before
    quiet = Surfaces()
    assert quiet.feed(page(payload, T0), T0) == []
    assert all(o.status is Status.UNKNOWN and o.error for o in page(payload, T0))


def test_an_unknown_component_status_is_unknown_not_an_outage():
    p = fixture_json("claude/summary_all_operational.json")
    p["components"][0]["status"] = "on_fire"
    by = {o.surface: o for o in page(p, T0)}
    assert by["claude.ai"].status is Status.UNKNOWN
    assert "on_fire" in (by["claude.ai"].error or "")
    assert Surfaces().feed(list(by.values()), T0) == []


def test_an_official_page_unread_for_too_long_stops_counting_but_opens_nothing():
    s = Surfaces()
    s.feed(page(fixture_json("claude/summary_incident_investigating.json"), T0), T0)
    late = T0 + timedelta(hours=1)
    blind = [Observation("api", Signal.OFFICIAL, Status.UNKNOWN, late, error="HTTP 503")]
    assert s.feed(blind, late) == []
    assert s.states["api"].status is Status.PARTIAL_OUTAGE, "blindness is not a recovery"


# -- probes: thresholds, flapping, suspicion ---------------------------------------------------


def test_probes_need_three_failures_to_open_and_two_successes_to_close():
    s = Surfaces()
    now = T0
    s.feed(page(fixture_json("claude/summary_all_operational.json"), now), now)
    kinds = []
    for status in [Status.MAJOR_OUTAGE] * 3 + [Status.OPERATIONAL] * 2:
        now += timedelta(seconds=60)
        kinds.append([(t.kind, t.reason) for t in s.feed([probe("api", status, now)], now)])
    assert kinds == [
        [],
        [],
        [(TransitionKind.START, Reason.STARTED)],
        [],
        [(TransitionKind.RECOVERY, Reason.WITHDRAWN)],
    ]
    start = s.recorded[0]
    assert start.suspected and start.source is Signal.PROBE


def test_a_surface_flapping_every_poll_for_50_polls_records_nothing():
    s = Surfaces()
    now = T0
    s.feed(page(fixture_json("claude/summary_all_operational.json"), now), now)
    for i in range(50):
        now += timedelta(seconds=60)
        status = Status.MAJOR_OUTAGE if i % 2 else Status.OPERATIONAL
        s.feed([probe("api", status, now)], now)
    assert s.recorded == []


def test_flapping_in_runs_of_three_records_at_most_one_start_and_one_recovery_per_run():
    s = Surfaces()
    now = T0
    pattern = ([Status.MAJOR_OUTAGE] * 3 + [Status.OPERATIONAL] * 2) * 10
    for status in pattern:
        now += timedelta(seconds=60)
        s.feed([probe("gemini", status, now)], now)
    kinds = [t.kind for t in s.recorded]
    assert kinds == [TransitionKind.START, TransitionKind.RECOVERY] * 10
    assert len(s.recorded) <= len(pattern)


def test_a_suspected_outage_confirmed_by_the_page_keeps_its_outage_id():
    s = Surfaces()
    now = T0
    s.feed(page(fixture_json("claude/summary_all_operational.json"), now), now)
    for _ in range(3):
        now += timedelta(seconds=60)
        s.feed([probe("api", Status.MAJOR_OUTAGE, now)], now)
    suspected = s.recorded[-1]
    assert suspected.suspected
    now += timedelta(seconds=15)
    confirmed = s.feed(page(fixture_json("claude/summary_incident_investigating.json"), now), now)
    api = next(t for t in confirmed if t.surface == "api")
    assert api.reason is Reason.CONFIRMED and not api.suspected and api.prev_suspected
    assert api.outage_id == suspected.outage_id, "the confirmation threads under the suspicion"
    now += timedelta(minutes=2)
    s.feed([probe("api", Status.OPERATIONAL, now)] * 2, now)
    assert s.states["api"].status is Status.PARTIAL_OUTAGE, "the page still says partial outage"
    done = s.feed(page(fixture_json("claude/summary_recovered.json"), now), now)
    api = next(t for t in done if t.surface == "api")
    assert api.reason is Reason.RECOVERED, "a confirmed outage recovers, it is not withdrawn"


def test_a_monitoring_blind_round_changes_nothing():
    s = Surfaces()
    now = T0
    s.feed([probe("gemini", Status.OPERATIONAL, now)], now)
    for _ in range(5):
        now += timedelta(seconds=60)
        assert s.feed([probe("gemini", Status.UNKNOWN, now, error="monitoring blind")], now) == []
    assert s.states["gemini"].status is Status.OPERATIONAL


def test_crowd_reports_never_override_an_official_maintenance():
    s = Surfaces()
    now = T0
    maint = Incident("m1", "Database upgrade", "in_progress", "maintenance", is_maintenance=True)
    official = Observation("console", Signal.OFFICIAL, Status.MAINTENANCE, now, incident=maint)
    started = s.feed([official], now)
    assert [(t.kind, t.reason) for t in started] == [
        (TransitionKind.START, Reason.MAINTENANCE_STARTED)
    ]
    now += timedelta(minutes=1)
    crowd = Observation("console", Signal.CROWD, Status.PARTIAL_OUTAGE, now)
    assert s.feed([crowd], now) == []
    assert s.states["console"].status is Status.MAINTENANCE
    now += timedelta(minutes=30)
    ended = s.feed([Observation("console", Signal.OFFICIAL, Status.OPERATIONAL, now)], now)
    assert [(t.kind, t.reason) for t in ended] == [
        (TransitionKind.RECOVERY, Reason.MAINTENANCE_ENDED)
    ]


def test_a_crowd_suspicion_is_withdrawn_when_the_reports_go_stale():
    s = Surfaces()
    now = T0
    s.feed([Observation("claude.ai", Signal.OFFICIAL, Status.OPERATIONAL, now)], now)
    s.feed([Observation("claude.ai", Signal.CROWD, Status.PARTIAL_OUTAGE, now)], now)
    assert s.recorded[-1].suspected and s.recorded[-1].source is Signal.CROWD
    later = now + timedelta(minutes=11)
    done = s.feed([Observation("claude.ai", Signal.OFFICIAL, Status.OPERATIONAL, later)], later)
    assert [(t.kind, t.reason) for t in done] == [(TransitionKind.RECOVERY, Reason.WITHDRAWN)]


def test_a_severity_change_is_an_update_and_the_version_always_moves():
    s = Surfaces()
    now = T0
    s.feed([Observation("api", Signal.OFFICIAL, Status.DEGRADED, now)], now)
    v = s.states["api"].version
    now += timedelta(seconds=15)
    worse = s.feed([Observation("api", Signal.OFFICIAL, Status.MAJOR_OUTAGE, now)], now)
    assert [(t.kind, t.reason, t.prev_status) for t in worse] == [
        (TransitionKind.UPDATE, Reason.WORSENED, Status.DEGRADED)
    ]
    assert s.states["api"].version == v + 1
    assert worse[0].id == f"api@{v + 1}"


def test_crowd_reports_on_a_surface_with_no_status_page_age_out_to_a_withdrawal():
    s = Surfaces()
    now = T0
    started = s.feed([Observation("gemini", Signal.CROWD, Status.PARTIAL_OUTAGE, now)], now)
    assert [(t.kind, t.suspected) for t in started] == [(TransitionKind.START, True)]
    soon = now + timedelta(minutes=9)
    assert decide(s.states["gemini"], [], provider="google", now=soon).transition is None
    later = now + timedelta(minutes=11)
    done = decide(s.states["gemini"], [], provider="google", now=later).transition
    assert done is not None and (done.kind, done.reason) == (
        TransitionKind.RECOVERY,
        Reason.WITHDRAWN,
    )


# -- write only what changed (only_polled) ---------------------------------------------------


def test_an_unchanged_page_changes_nothing_but_the_poll_time():
    """Polls of the same page: after the first sight, each new state is the previous one with
    only the official observation's time (and a streak past its threshold) moved, so the
    watcher need not store it again; a change on the page is a real change."""
    policy = Policy()
    payload = fixture_json("claude/summary_incident_investigating.json")
    s = Surfaces(policy)
    s.feed(page(payload, T0), T0)
    t1 = T0 + timedelta(seconds=15)
    before = dict(s.states)
    s.feed(page(payload, t1), t1)
    assert all(only_polled(before[k], s.states[k], policy) for k in CLAUDE)
    t2 = t1 + timedelta(seconds=15)
    before = dict(s.states)
    s.feed(page(fixture_json("claude/summary_all_operational.json"), t2), t2)
    assert not any(only_polled(before[k], s.states[k], policy) for k in ("claude.ai", "api"))


def test_a_page_that_stops_answering_is_always_written():
    policy = Policy()
    s = Surfaces(policy)
    s.feed(page(fixture_json("claude/summary_all_operational.json"), T0), T0)
    for i in range(1, 4):
        t = T0 + timedelta(seconds=15 * i)
        before = s.states["api"]
        s.feed([Observation("api", Signal.OFFICIAL, Status.UNKNOWN, t, error="timeout")], t)
        assert not only_polled(before, s.states["api"], policy), "the failing streak counts"


def test_a_probe_observation_is_never_just_a_poll_time():
    policy = Policy()
    s = Surfaces(policy)
    for i in range(6):
        t = T0 + timedelta(seconds=20 * i)
        before = s.states.get("api", SurfaceState("api"))
        s.feed([probe("api", Status.OPERATIONAL, t)], t)
        if i >= 3:  # past its threshold; still its own time to keep (only the page's is shared)
            assert not only_polled(before, s.states["api"], policy)
