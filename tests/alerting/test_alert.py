"""Alerts from the real incident 7g1qpkyz5gxh ("Elevated errors for multiple models", which hit
claude.ai, the API, Claude Code and Cowork at once): grouping, kinds, wording, channel narrowing,
ids and the plain-text rendering."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.alerting.alert import alert_id, alert_text, build_alerts, for_channel
from bot.catalog_file import load_catalog
from bot.core.model import (
    Alert,
    AlertKind,
    Incident,
    Reason,
    Signal,
    Status,
    SurfaceState,
    Transition,
    TransitionKind,
    decode,
    encode,
)
from bot.core.suggest import NO_BACKUPS_TEXT
from tests.helpers import RECORDED_INCIDENT, STARTED, make_transition

CATALOG = load_catalog()
AFFECTED = {  # component id -> surface, as the fixture's incident names them
    "rwppv331jlwc": "claude.ai",
    "k8w3r06qmzrp": "api",
    "yyzkbfz2thpt": "code",
    "bpp5gb3hpjcl": "cowork",
}
FOUR = ("claude.ai", "api", "code", "cowork")
BACKUP_SURFACES = ("console", "bedrock-claude", "vertex-claude", "chatgpt", "openai-api", "gemini")
T0 = STARTED


INCIDENT = RECORDED_INCIDENT
KEY = INCIDENT.id


def state(
    surface: str,
    status: Status = Status.OPERATIONAL,
    *,
    outage_id: str | None = None,
    suspected: bool = False,
) -> SurfaceState:
    out = status is not Status.OPERATIONAL
    return SurfaceState(
        surface=surface,
        status=status,
        source=Signal.OFFICIAL,
        suspected=suspected,
        incident=INCIDENT if out and not suspected else None,
        outage_id=outage_id if out else None,
        started_at=T0 if out else None,
        since=T0,
    )


def states(**overrides: SurfaceState) -> dict[str, SurfaceState]:
    """Every catalog surface operational, then the overrides."""
    base = {sid: state(sid) for sid in CATALOG.surfaces}
    return {**base, **overrides}


def during() -> dict[str, SurfaceState]:
    """The live states while the incident covers all four surfaces."""
    out = {sid: state(sid, Status.PARTIAL_OUTAGE, outage_id=KEY) for sid in FOUR}
    return {**{sid: state(sid) for sid in CATALOG.surfaces}, **out}


def only(alerts: list[Alert]) -> Alert:
    assert len(alerts) == 1, alerts
    return alerts[0]


# -- grouping and kinds --------------------------------------------------------------------------


def test_one_incident_over_four_surfaces_makes_one_alert_listing_them_all() -> None:
    alert = only(
        build_alerts(
            [make_transition(s) for s in FOUR], during(), CATALOG, now=T0 + timedelta(minutes=4)
        )
    )
    assert alert.kind is AlertKind.START
    assert alert.key == "7g1qpkyz5gxh"
    assert alert.surfaces == FOUR
    assert alert.surface_names == ("claude.ai", "Claude API", "Claude Code", "Claude Cowork")
    assert alert.transition_ids == ("claude.ai@1", "api@1", "code@1", "cowork@1")
    assert alert.severity is Status.PARTIAL_OUTAGE
    assert alert.title == "claude.ai, Claude API, Claude Code, Claude Cowork: partial outage"
    assert alert.incident_title == "Elevated errors for multiple models"
    assert alert.update_text is not None and alert.update_text.startswith("We are investigating")
    assert alert.started_at == T0
    assert alert.duration_text == "for 4 min"
    assert not alert.suspected


def test_start_carries_backups_that_are_up_with_same_model_routes_first() -> None:
    alert = only(build_alerts([make_transition(s) for s in FOUR], during(), CATALOG, now=T0))
    names = [b.surface for b in alert.backups]
    assert names[:3] == ["console", "bedrock-claude", "vertex-claude"]
    assert not set(names) & set(FOUR)
    assert all(b.status is Status.OPERATIONAL for b in alert.backups)


def test_two_outages_in_one_batch_make_two_alerts() -> None:
    batch = [
        make_transition("api"),
        make_transition("chatgpt", outage_id="openai-1", incident=None, status=Status.MAJOR_OUTAGE),
    ]
    live = states(
        api=state("api", Status.PARTIAL_OUTAGE, outage_id=KEY),
        chatgpt=state("chatgpt", Status.MAJOR_OUTAGE, outage_id="openai-1"),
    )
    alerts = build_alerts(batch, live, CATALOG, now=T0)
    assert [(a.key, a.surfaces) for a in alerts] == [(KEY, ("api",)), ("openai-1", ("chatgpt",))]
    assert alerts[1].severity is Status.MAJOR_OUTAGE


def test_a_start_fanned_out_after_the_outage_ended_still_says_what_happened() -> None:
    """Fan-out can lag: the start of a short outage is announced as it was, not as it is now."""
    live = states(api=state("api", Status.OPERATIONAL))
    alert = only(build_alerts([make_transition("api")], live, CATALOG, now=T0))
    assert alert.kind is AlertKind.START
    assert alert.severity is Status.PARTIAL_OUTAGE


def test_a_surface_joining_an_ongoing_outage_is_an_update_naming_every_surface_out() -> None:
    live = during()
    alert = only(build_alerts([make_transition("cowork", version=2)], live, CATALOG, now=T0))
    assert alert.kind is AlertKind.UPDATE
    assert alert.changed == ("cowork",)
    assert alert.surfaces == FOUR
    assert (
        alert.title == "Update on claude.ai, Claude API, Claude Code, Claude Cowork: partial outage"
    )


def test_a_worsening_is_an_update_at_the_new_severity() -> None:
    live = {**during(), "api": state("api", Status.MAJOR_OUTAGE, outage_id=KEY)}
    worse = make_transition(
        "api",
        kind=TransitionKind.UPDATE,
        reason=Reason.WORSENED,
        status=Status.MAJOR_OUTAGE,
        prev=Status.PARTIAL_OUTAGE,
        version=2,
    )
    alert = only(build_alerts([worse], live, CATALOG, now=T0 + timedelta(minutes=30)))
    assert alert.kind is AlertKind.UPDATE
    assert alert.severity is Status.MAJOR_OUTAGE
    assert alert.title.endswith(": major outage")
    assert alert.duration_text == "for 30 min"


def _recovery(surface: str) -> Transition:
    return make_transition(
        surface,
        kind=TransitionKind.RECOVERY,
        reason=Reason.RECOVERED,
        status=Status.OPERATIONAL,
        prev=Status.PARTIAL_OUTAGE,
        at=T0 + timedelta(hours=2, minutes=13),
        started_at=T0,
        version=3,
    )


def test_partial_recovery_is_an_update_that_names_what_is_still_out() -> None:
    live = {**during(), "claude.ai": state("claude.ai")}
    later = T0 + timedelta(hours=1)
    alert = only(build_alerts([_recovery("claude.ai")], live, CATALOG, now=later))
    assert alert.kind is AlertKind.UPDATE
    assert alert.ends is AlertKind.RECOVERY
    assert alert.title == "Recovered: claude.ai; still out: Claude API, Claude Code, Claude Cowork"
    assert alert.severity is Status.PARTIAL_OUTAGE
    assert alert.duration_text == "for 1 h"
    assert alert.backups, "the surfaces still out still need backups"


def test_full_recovery_says_resolved_after_the_outage_duration() -> None:
    end = T0 + timedelta(hours=2, minutes=13)
    alert = only(build_alerts([_recovery(s) for s in FOUR], states(), CATALOG, now=end))
    assert alert.kind is AlertKind.RECOVERY
    assert alert.severity is Status.OPERATIONAL
    assert alert.duration_text == "resolved after 2 h 13 min"
    assert alert.title == (
        "Resolved: claude.ai, Claude API, Claude Code, Claude Cowork after 2 h 13 min"
    )
    assert alert.backups == ()


def test_suspected_then_confirmed_keeps_the_same_key() -> None:
    probe_id = "probe:claude.ai:1"
    suspected = make_transition(
        "claude.ai", suspected=True, source=Signal.PROBE, outage_id=probe_id, incident=None
    )
    live = states(
        **{"claude.ai": state("claude.ai", Status.MAJOR_OUTAGE, outage_id=probe_id, suspected=True)}
    )
    first = only(build_alerts([suspected], live, CATALOG, now=T0))
    assert first.kind is AlertKind.SUSPECTED
    assert first.suspected
    assert first.title == (
        "Suspected outage: claude.ai (our probes fail; not on the official status page yet)"
    )

    confirmed = make_transition(
        "claude.ai",
        kind=TransitionKind.UPDATE,
        reason=Reason.CONFIRMED,
        prev=Status.MAJOR_OUTAGE,
        prev_suspected=True,
        outage_id=probe_id,
        at=T0 + timedelta(minutes=12),
        started_at=T0,
        version=2,
    )
    live = states(**{"claude.ai": state("claude.ai", Status.PARTIAL_OUTAGE, outage_id=probe_id)})
    second = only(build_alerts([confirmed], live, CATALOG, now=T0 + timedelta(minutes=12)))
    assert second.kind is AlertKind.CONFIRMED
    assert second.key == first.key
    assert not second.suspected
    assert second.incident_title == "Elevated errors for multiple models"
    assert "official status page" in second.title
    assert confirmed.official_lead == timedelta(minutes=12)
    assert second.duration_text == ("for 12 min · aistatus saw this 12 min before the status page")
    assert "aistatus saw this 12 min before the status page" in alert_text(second)


def test_a_withdrawn_suspicion_says_all_clear() -> None:
    withdrawn = make_transition(
        "api",
        kind=TransitionKind.RECOVERY,
        reason=Reason.WITHDRAWN,
        status=Status.OPERATIONAL,
        prev=Status.MAJOR_OUTAGE,
        prev_suspected=True,
        source=Signal.PROBE,
        outage_id="probe:api:1",
        incident=None,
        at=T0 + timedelta(minutes=9),
        started_at=T0,
    )
    alert = only(build_alerts([withdrawn], states(), CATALOG, now=T0 + timedelta(minutes=9)))
    assert alert.kind is AlertKind.SUSPECTED_WITHDRAWN
    assert alert.suspected
    assert alert.title.startswith("All clear: Claude API")
    assert alert.duration_text == "cleared after 9 min"


def test_maintenance_start_and_end() -> None:
    maint = Incident(
        id="m1",
        name="Console upgrade",
        status="in_progress",
        impact="maintenance",
        is_maintenance=True,
    )
    start = make_transition(
        "console",
        reason=Reason.MAINTENANCE_STARTED,
        status=Status.MAINTENANCE,
        outage_id="m1",
        incident=maint,
    )
    live = states(console=state("console", Status.MAINTENANCE, outage_id="m1"))
    began = only(build_alerts([start], live, CATALOG, now=T0))
    assert began.kind is AlertKind.MAINTENANCE_START
    assert began.title == "Scheduled maintenance: Claude Console"
    assert began.severity is Status.MAINTENANCE

    end = make_transition(
        "console",
        kind=TransitionKind.RECOVERY,
        reason=Reason.MAINTENANCE_ENDED,
        status=Status.OPERATIONAL,
        prev=Status.MAINTENANCE,
        outage_id="m1",
        incident=maint,
        version=2,
    )
    ended = only(build_alerts([end], states(), CATALOG, now=T0 + timedelta(hours=1)))
    assert ended.kind is AlertKind.MAINTENANCE_END
    assert ended.duration_text == "ended after 1 h"


# -- update text ---------------------------------------------------------------------------------


def test_a_long_update_is_trimmed_on_a_word_boundary_with_an_ellipsis() -> None:
    body = ("We are investigating elevated errors on requests to Claude. " * 20).strip()
    long = Incident(**{**_fields(INCIDENT), "update_body": body})
    alert = only(build_alerts([make_transition("api", incident=long)], during(), CATALOG, now=T0))
    assert alert.update_text is not None
    assert len(alert.update_text) <= 601
    assert alert.update_text.endswith("…")
    assert body.startswith(alert.update_text[:-1])
    assert body[len(alert.update_text) - 1] == " ", "cut between words"


def test_the_update_text_is_the_parsed_body_as_it_is_links_and_comparisons_kept() -> None:
    body = "See <https://status.example/x>.\nThe error rate < 5% > baseline."
    changed = Incident(**{**_fields(INCIDENT), "update_body": body})
    alert = only(
        build_alerts([make_transition("api", incident=changed)], during(), CATALOG, now=T0)
    )
    assert alert.update_text == body


def _fields(incident: Incident) -> dict[str, Any]:
    return {name: getattr(incident, name) for name in Incident.__slots__}


# -- per channel ---------------------------------------------------------------------------------


def test_an_api_only_channel_gets_an_api_only_alert() -> None:
    alert = only(build_alerts([make_transition(s) for s in FOUR], during(), CATALOG, now=T0))
    mine = for_channel(alert, {"api"})
    assert mine is not None
    assert mine.surfaces == ("api",)
    assert mine.title == "Claude API: partial outage"
    assert mine.transition_ids == ("api@1",)
    assert mine.backups and all("api" in b.backs_up for b in mine.backups)
    assert "console" not in [b.surface for b in mine.backups], "Console backs up claude.ai"


def test_a_channel_subscribed_to_nothing_affected_gets_nothing() -> None:
    alert = only(build_alerts([make_transition(s) for s in FOUR], during(), CATALOG, now=T0))
    assert for_channel(alert, {"console", "chatgpt"}) is None
    assert for_channel(alert, set()) is None


def test_a_channel_taking_everything_gets_the_alert_unchanged() -> None:
    alert = only(build_alerts([make_transition(s) for s in FOUR], during(), CATALOG, now=T0))
    assert for_channel(alert, None) == alert
    assert for_channel(alert, {*FOUR, "console"}) == alert


def test_a_channel_watching_only_the_recovered_surface_hears_a_recovery() -> None:
    live = {**during(), "claude.ai": state("claude.ai")}
    end = T0 + timedelta(hours=2, minutes=13)
    alert = only(build_alerts([_recovery("claude.ai")], live, CATALOG, now=end))
    web = for_channel(alert, {"claude.ai"})
    assert web is not None
    assert web.kind is AlertKind.RECOVERY
    assert web.title == "Resolved: claude.ai after 2 h 13 min"
    assert web.backups == ()
    assert for_channel(alert, {"api"}) is None, "nothing changed for the API"


def test_a_channel_of_a_resolved_surface_hears_the_resolution_while_another_still_recovers() -> (
    None
):
    """The API's outage ended (RECOVERY) in the poll where claude.ai, whose outage had relapsed,
    is only recovering: the outage as a whole is "recovering", but an API-only channel must read
    the API's resolution — claude.ai settling later is not its news (found by the property test:
    the API channel never heard an end)."""
    end = T0 + timedelta(hours=2, minutes=13)
    settling = make_transition(
        "claude.ai", kind=TransitionKind.UPDATE, reason=Reason.RECOVERING,
        status=Status.OPERATIONAL, prev=Status.PARTIAL_OUTAGE, at=end, started_at=T0, version=5,
    )  # fmt: skip
    live = states(**{"claude.ai": state("claude.ai", outage_id=KEY)})
    alert = only(build_alerts([_recovery("api"), settling], live, CATALOG, now=end))
    assert alert.kind is AlertKind.RECOVERING
    api = for_channel(alert, {"api"})
    assert api is not None and api.kind is AlertKind.RECOVERY
    assert api.title == "Resolved: Claude API after 2 h 13 min"
    web = for_channel(alert, {"claude.ai"})
    assert web is not None and web.kind is AlertKind.RECOVERING


# -- ids and text --------------------------------------------------------------------------------


def test_alert_id_is_stable_and_distinct_per_kind() -> None:
    batch = [make_transition(s) for s in FOUR]
    a = only(build_alerts(batch, during(), CATALOG, now=T0))
    again = only(build_alerts(list(reversed(batch)), during(), CATALOG, now=T0 + timedelta(1)))
    assert alert_id(a) == alert_id(again)
    recovered = only(
        build_alerts([_recovery(s) for s in FOUR], states(), CATALOG, now=T0 + timedelta(hours=2))
    )
    assert alert_id(recovered) != alert_id(a)
    narrowed = for_channel(a, {"api"})
    assert narrowed is not None and alert_id(narrowed) != alert_id(a)


def test_alert_text_shows_the_update_time_quote_and_backups() -> None:
    alert = only(build_alerts([make_transition(s) for s in FOUR], during(), CATALOG, now=T0))
    text = alert_text(alert)
    lines = text.splitlines()
    assert lines[0] == f"🟠 {alert.title}"
    assert "Official update, 00:57 UTC:" in lines
    assert "> We are investigating elevated errors" in text
    assert "Backups up now:" in lines
    assert "• Claude Console — Console Workbench: chat with Claude in the browser — " in text


def test_alert_text_says_so_when_no_backup_is_up() -> None:
    live = during()
    live.update(
        {
            sid: state(sid, Status.MAJOR_OUTAGE, outage_id="other")
            for sid in CATALOG.surfaces
            if sid not in live or live[sid].status is Status.OPERATIONAL
        }
    )
    alert = only(build_alerts([make_transition(s) for s in FOUR], live, CATALOG, now=T0))
    assert alert.backups == () and alert.unchecked == ()
    assert NO_BACKUPS_TEXT in alert_text(alert).splitlines()


def test_alternatives_we_could_not_check_are_not_called_down() -> None:
    live = during()
    live.update(
        {sid: state(sid, Status.MAJOR_OUTAGE, outage_id="other") for sid in BACKUP_SURFACES}
    )
    live.update(
        {
            sid: state(sid, Status.UNKNOWN)
            for sid in CATALOG.surfaces
            if sid not in live or live[sid].status is Status.OPERATIONAL
        }
    )
    alert = only(build_alerts([make_transition(s) for s in FOUR], live, CATALOG, now=T0))
    assert alert.backups == ()
    text = alert_text(alert).splitlines()
    assert NO_BACKUPS_TEXT not in text
    assert any(
        line.startswith("No backup we could check is up right now (couldn't check: ")
        for line in text
    )


def test_recovery_text_has_no_backups_section() -> None:
    alert = only(
        build_alerts([_recovery(s) for s in FOUR], states(), CATALOG, now=T0 + timedelta(hours=2))
    )
    text = alert_text(alert)
    assert text.startswith("✅ Resolved:")
    assert "Backups" not in text and NO_BACKUPS_TEXT not in text


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [(0, "just started"), (1, "for 1 min"), (133, "for 2 h 13 min")],
    ids=["at-once", "one-minute", "hours"],
)
def test_duration_reads_naturally_while_ongoing(minutes: int, expected: str) -> None:
    alert = only(
        build_alerts(
            [make_transition("api")], during(), CATALOG, now=T0 + timedelta(minutes=minutes)
        )
    )
    assert alert.duration_text == expected


def test_an_alert_survives_the_redis_codec() -> None:
    alert = only(build_alerts([make_transition(s) for s in FOUR], during(), CATALOG, now=T0))
    assert decode(Alert, encode(alert)) == alert


def test_a_channel_of_one_surface_hears_its_start_even_when_the_outage_began_elsewhere() -> None:
    """api was already out (same incident) when claude.ai joined: an update for the outage,
    but for a channel that only watches claude.ai it is the start."""
    live = states(
        api=state("api", Status.PARTIAL_OUTAGE, outage_id=KEY),
        **{"claude.ai": state("claude.ai", Status.PARTIAL_OUTAGE, outage_id=KEY)},
    )
    alert = only(build_alerts([make_transition("claude.ai")], live, CATALOG, now=T0))
    assert alert.kind is AlertKind.UPDATE
    mine = for_channel(alert, {"claude.ai"})
    assert mine is not None and mine.kind is AlertKind.START and mine.surfaces == ("claude.ai",)
    both = for_channel(alert, {"claude.ai", "api"})
    assert both is not None and both.kind is AlertKind.UPDATE
