"""Golden payloads (Gatus slack_test.go style): the whole Slack and Discord message of every alert
kind against tests/chat/golden/<platform>/<scenario>.json. After an intended renderer change:
`AISTATUS_UPDATE_GOLDEN=1 scripts/test tests/chat/test_golden.py`, then read each changed file."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.alerting.alert import build_alerts
from bot.catalog_file import load_catalog
from bot.chat.discord.render import to_discord_message, to_discord_thread_update
from bot.chat.slack.render import to_slack_parent, to_slack_thread_reply
from bot.core.model import Alert, Incident, Reason, Signal, Status, SurfaceState, Transition
from tests.helpers import RECORDED_INCIDENT, STARTED, make_transition

# Slack: `to_slack_parent` / `to_slack_thread_reply` as chat.postMessage kwargs; Discord:
# `to_discord_message` / `to_discord_thread_update` as REST bodies. The alerts come from the real
# `build_alerts`, fed transitions of the recorded incident 7g1qpkyz5gxh.
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("AISTATUS_UPDATE_GOLDEN") == "1"  # read here only: rewrite the files
CATALOG = load_catalog()
INCIDENT = RECORDED_INCIDENT
FOUR = ("claude.ai", "api", "code", "cowork")
PROBED = "probe:claude.ai:1"  # the outage id of a probe-only suspicion
MAINTENANCE = Incident(
    id="m1cnsl0upgrd",
    name="Claude Console database upgrade",
    status="in_progress",
    impact="maintenance",
    url="https://stspg.io/m1cnsl0upgrd",
    update_id="m1u1",
    update_status="in_progress",
    update_body="Scheduled maintenance is in progress. We will provide updates as necessary.",
    update_at=STARTED,
    started_at=STARTED,
    is_maintenance=True,
)


def at(minutes: float) -> datetime:
    """`minutes` after the outage started (00:50 UTC)."""
    return STARTED + timedelta(minutes=minutes)


def out(
    surface: str,
    status: Status = Status.PARTIAL_OUTAGE,
    *,
    outage_id: str = INCIDENT.id,
    incident: Incident | None = INCIDENT,
    suspected: bool = False,
) -> SurfaceState:
    """A surface that is out (or in maintenance) since STARTED."""
    return SurfaceState(
        surface,
        status=status,
        source=Signal.PROBE if suspected else Signal.OFFICIAL,
        suspected=suspected,
        incident=incident,
        outage_id=outage_id,
        started_at=STARTED,
        since=STARTED,
    )


def live(*states: SurfaceState) -> dict[str, SurfaceState]:
    """Every surface of the catalog operational (so its backups are up), except `states`."""
    base = {
        sid: SurfaceState(sid, status=Status.OPERATIONAL, source=Signal.OFFICIAL, since=STARTED)
        for sid in CATALOG.surfaces
    }
    return {**base, **{s.surface: s for s in states}}


def alert_of(
    transitions: list[Transition], states: dict[str, SurfaceState], now: datetime
) -> Alert:
    [alert] = build_alerts(transitions, states, CATALOG, now=now)
    return alert


def updated(incident: Incident, status: str, body: str, minutes: float) -> Incident:
    """`incident` with a newer official update on top, `minutes` after the start."""
    fields = {name: getattr(incident, name) for name in Incident.__slots__}
    return Incident(
        **{
            **fields,
            "status": status,
            "update_id": f"{incident.id}-{status}",
            "update_status": status,
            "update_body": body,
            "update_at": at(minutes),
        }
    )


def start() -> Alert:
    return alert_of(
        [make_transition("api", at=at(11), started_at=STARTED)], live(out("api")), at(11)
    )


def update() -> Alert:
    news = updated(
        INCIDENT, "identified", "The issue has been identified and a fix is being implemented.", 100
    )
    t = make_transition(
        "api",
        version=2,
        reason=Reason.OFFICIAL_UPDATE,
        prev=Status.PARTIAL_OUTAGE,
        incident=news,
        at=at(100),
        started_at=STARTED,
    )
    return alert_of([t], live(out("api", incident=news)), at(100))


def severity_change() -> Alert:
    t = make_transition(
        "api",
        version=2,
        reason=Reason.WORSENED,
        status=Status.MAJOR_OUTAGE,
        prev=Status.PARTIAL_OUTAGE,
        at=at(30),
        started_at=STARTED,
    )
    return alert_of([t], live(out("api", Status.MAJOR_OUTAGE)), at(30))


def recovery() -> Alert:
    t = make_transition(
        "api",
        version=3,
        status=Status.OPERATIONAL,
        prev=Status.PARTIAL_OUTAGE,
        incident=updated(INCIDENT, "resolved", "This incident has been resolved.", 133),
        at=at(133),
        started_at=STARTED,
    )
    return alert_of([t], live(), at(133))


def suspected() -> Alert:
    t = make_transition(
        "claude.ai",
        status=Status.MAJOR_OUTAGE,
        source=Signal.PROBE,
        suspected=True,
        outage_id=PROBED,
        incident=None,
        at=at(3),
        started_at=STARTED,
    )
    state = out("claude.ai", Status.MAJOR_OUTAGE, outage_id=PROBED, incident=None, suspected=True)
    return alert_of([t], live(state), at(3))


def confirmed() -> Alert:
    t = make_transition(
        "claude.ai",
        version=2,
        reason=Reason.CONFIRMED,
        status=Status.MAJOR_OUTAGE,
        prev=Status.MAJOR_OUTAGE,
        prev_suspected=True,
        outage_id=PROBED,
        at=at(12),
        started_at=STARTED,
    )
    return alert_of([t], live(out("claude.ai", Status.MAJOR_OUTAGE, outage_id=PROBED)), at(12))


def withdrawn() -> Alert:
    t = make_transition(
        "claude.ai",
        version=2,
        reason=Reason.WITHDRAWN,
        status=Status.OPERATIONAL,
        prev=Status.MAJOR_OUTAGE,
        source=Signal.PROBE,
        prev_suspected=True,
        outage_id=PROBED,
        incident=None,
        at=at(9),
        started_at=STARTED,
    )
    return alert_of([t], live(), at(9))


def maintenance_start() -> Alert:
    t = make_transition(
        "console",
        reason=Reason.MAINTENANCE_STARTED,
        status=Status.MAINTENANCE,
        outage_id=MAINTENANCE.id,
        incident=MAINTENANCE,
    )
    state = out("console", Status.MAINTENANCE, outage_id=MAINTENANCE.id, incident=MAINTENANCE)
    return alert_of([t], live(state), STARTED)


def maintenance_end() -> Alert:
    done = updated(MAINTENANCE, "completed", "The scheduled maintenance has been completed.", 60)
    t = make_transition(
        "console",
        version=2,
        reason=Reason.MAINTENANCE_ENDED,
        status=Status.OPERATIONAL,
        prev=Status.MAINTENANCE,
        outage_id=MAINTENANCE.id,
        incident=done,
        at=at(60),
        started_at=STARTED,
    )
    return alert_of([t], live(), at(60))


def grouped() -> Alert:
    """The recorded incident as it hit four surfaces at once, claude.ai the worst."""
    status = {"claude.ai": Status.MAJOR_OUTAGE}
    batch = [
        make_transition(
            s, status=status.get(s, Status.PARTIAL_OUTAGE), at=at(11), started_at=STARTED
        )
        for s in FOUR
    ]
    states = live(*(out(s, status.get(s, Status.PARTIAL_OUTAGE)) for s in FOUR))
    return alert_of(batch, states, at(11))


SCENARIOS: dict[str, Callable[[], Alert]] = {
    "start": start,
    "update": update,
    "severity_change": severity_change,
    "recovery": recovery,
    "suspected": suspected,
    "confirmed": confirmed,
    "withdrawn": withdrawn,
    "maintenance_start": maintenance_start,
    "maintenance_end": maintenance_end,
    "grouped": grouped,
}
PAYLOADS: dict[str, Callable[[Alert], dict[str, Any]]] = {
    "slack": lambda a: {
        "parent": to_slack_parent(a).kwargs(),
        "thread_reply": to_slack_thread_reply(a).kwargs(),
    },
    "discord": lambda a: {
        "message": to_discord_message(a),
        "thread_update": to_discord_thread_update(a),
    },
}


@pytest.mark.parametrize("platform", list(PAYLOADS))
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_whole_payload_is_the_golden_one(platform: str, scenario: str) -> None:
    got = json.dumps(PAYLOADS[platform](SCENARIOS[scenario]()), indent=2, ensure_ascii=False)
    path = GOLDEN / platform / f"{scenario}.json"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got + "\n", encoding="utf-8")
    assert path.exists(), f"no {path}: create it with AISTATUS_UPDATE_GOLDEN=1 (see the docstring)"
    assert got + "\n" == path.read_text("utf-8"), f"{path} differs: regenerate and review it"


def test_every_golden_file_belongs_to_a_scenario() -> None:
    files = {p.relative_to(GOLDEN).as_posix() for p in GOLDEN.glob("*/*.json")}
    assert files == {f"{p}/{s}.json" for p in PAYLOADS for s in SCENARIOS}
