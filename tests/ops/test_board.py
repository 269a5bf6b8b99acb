"""The pure board, route and history documents: their rules one by one, on hand-made states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core.model import (
    Incident,
    Reason,
    Signal,
    SignalState,
    Status,
    SurfaceState,
    Transition,
    TransitionKind,
    encode,
)
from bot.ops.board import build_board, build_history
from bot.ops.route import route
from tests.helpers import catalog_for
from tests.ops.conftest import validate

NOW = datetime(2026, 9, 22, 1, 5, tzinfo=UTC)
CATALOG = catalog_for("http://127.0.0.1:9")


def state(
    surface: str,
    status: Status,
    *,
    signal: Signal = Signal.OFFICIAL,
    at: datetime = NOW,
    incident: Incident | None = None,
    suspected: bool = False,
) -> SurfaceState:
    sig = {signal.value: SignalState(status, 1, status, at, incident)}
    return SurfaceState(surface, status, signal, suspected, incident, since=at, signals=sig)


INCIDENT = Incident("inc1", "Elevated errors", "monitoring", "major", update_body="Fix out.")


@pytest.mark.parametrize(
    ("states", "use", "routes"),
    [
        pytest.param({"api": state("api", Status.OPERATIONAL)}, "api", ["api"], id="api-up"),
        pytest.param(
            {
                "api": state("api", Status.MAJOR_OUTAGE),
                "openai-api": state("openai-api", Status.OPERATIONAL),
                "vertex-claude": state("vertex-claude", Status.OPERATIONAL, signal=Signal.PROBE),
            },
            "vertex-claude",
            ["vertex-claude", "openai-api"],
            id="same-model-first",
        ),
        pytest.param(
            {
                "api": state("api", Status.MAJOR_OUTAGE),
                "bedrock-claude": SurfaceState("bedrock-claude"),
            },
            None,
            [],
            id="unknown-is-not-up",
        ),
    ],
)
def test_route_puts_the_surface_then_same_model_routes_first(states, use, routes):
    answer = route("api", states, CATALOG, now=NOW)
    validate(encode(answer), "route-v1.json")
    assert answer.use == use
    assert [r.surface for r in answer.routes] == routes


def test_route_says_when_it_could_not_check_and_refuses_unknown_surfaces():
    assert route("api", {}, CATALOG, now=NOW).reason == (
        "Couldn't check Claude API, and no alternative is known up."
    )
    with pytest.raises(KeyError):
        route("claude.ia", {}, CATALOG, now=NOW)


def test_freshness_is_the_deciding_signal_and_goes_stale_past_assess_limit():
    old = NOW - timedelta(minutes=6)
    board = build_board({"api": state("api", Status.OPERATIONAL, at=old)}, CATALOG, now=NOW)
    api = next(s for s in board.surfaces if s.id == "api")
    assert (api.freshness.signal, api.freshness.observed_at, api.freshness.stale) == (
        Signal.OFFICIAL,
        old,
        True,
    )
    never = next(s for s in board.surfaces if s.id == "code")
    assert never.freshness.signal is None and never.freshness.stale
    assert board.updated_at == old


def test_a_recovering_surface_still_shows_its_open_incident():
    states = {"api": state("api", Status.OPERATIONAL, incident=INCIDENT)}
    board = build_board(states, CATALOG, now=NOW)
    validate(encode(board), "board-v1.json")
    [inc] = board.incidents
    assert inc.surfaces == ("api",) and inc.update_text == "Fix out."
    over = Incident("i", "x", "resolved", "")
    resolved = {"api": state("api", Status.OPERATIONAL, incident=over)}
    assert build_board(resolved, CATALOG, now=NOW).incidents == ()


def test_history_counts_only_the_window_and_rejects_silly_days():
    start = NOW - timedelta(hours=2)
    ts = [
        Transition(
            "api@2", "api", "claude", TransitionKind.RECOVERY, Reason.RECOVERED,
            Status.OPERATIONAL, Status.MAJOR_OUTAGE, Signal.OFFICIAL, False, False, "o", None,
            start, NOW - timedelta(hours=1),
        ),
        Transition(
            "api@1", "api", "claude", TransitionKind.START, Reason.STARTED, Status.MAJOR_OUTAGE,
            Status.OPERATIONAL, Signal.OFFICIAL, False, False, "o", INCIDENT, start, start,
        ),
    ]  # fmt: skip
    watched = {"api": NOW - timedelta(days=3)}
    doc = build_history({"api": ts}, CATALOG, days=1, now=NOW, first_seen=watched)
    validate(encode(doc), "history-v1.json")
    [api] = doc.surfaces
    assert [c.kind for c in api.changes] == ["recovery", "start"]
    assert api.uptime_percent == pytest.approx(100 * 23 / 24, abs=1e-3)
    assert api.uptime_text == "95.8%"
    [outage] = doc.outages
    assert (outage.started_at, outage.ended_at, outage.surfaces) == (start, ts[0].at, ("api",))
    assert outage.text.endswith("— Claude API · 1 h")
    # Watched only since the outage began: the hour before it is no data, not "100 %".
    short = build_history({"api": ts}, CATALOG, days=1, now=NOW)
    validate(encode(short), "history-v1.json")
    assert short.surfaces[0].observed_since == start
    assert short.surfaces[0].uptime_text == "50.0%"
    for days in (0, 91):
        with pytest.raises(ValueError, match="days"):
            build_history({"api": ts}, CATALOG, days=days, now=NOW)
