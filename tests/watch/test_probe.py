"""Probe classification, the canary guard and when the fast path re-checks: results in,
statuses and reasons out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core.catalog import ProbeSpec
from bot.core.model import Signal, SignalState, Status
from bot.watch.probe import (
    ProbeResult,
    blind_observations,
    classify,
    is_blind,
    probe_observation,
    recheck_due,
)

NOW = datetime(2026, 9, 22, 1, 1, tzinfo=UTC)
SPEC = ProbeSpec(url="https://claude.ai/login", expect=(200, 403), degraded_ms=3000)
API = ProbeSpec(
    url="https://api.anthropic.com/v1/models", expect=(200, 401), degraded_ms=3000, auth="anthropic"
)


def res(code: int | None, ms: float | None = 100.0, error: str | None = None, auth: bool = False):
    return ProbeResult("https://x", code, ms, error, auth)


# -- classify ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "result", "status", "reason"),
    [
        pytest.param(SPEC, res(200), Status.OPERATIONAL, "HTTP 200 in 100 ms", id="ok"),
        pytest.param(SPEC, res(403), Status.OPERATIONAL, "HTTP 403 in 100 ms", id="expected-403"),
        pytest.param(
            SPEC, res(200, 4500.0), Status.DEGRADED, "slow: 4500 ms (limit 3000 ms)", id="slow"
        ),
        pytest.param(
            SPEC,
            res(None, None, "connection refused"),
            Status.MAJOR_OUTAGE,
            "connection refused",
            id="refused",
        ),
        pytest.param(
            SPEC, res(None, None, "read timeout"), Status.MAJOR_OUTAGE, "read timeout", id="timeout"
        ),
        pytest.param(SPEC, res(503), Status.MAJOR_OUTAGE, "HTTP 503", id="5xx"),
        pytest.param(SPEC, res(529), Status.MAJOR_OUTAGE, "HTTP 529 (overloaded)", id="529"),
        pytest.param(SPEC, res(404), Status.MAJOR_OUTAGE, "unexpected HTTP 404", id="unexpected"),
        pytest.param(SPEC, res(429), Status.DEGRADED, "rate limited", id="429"),
        pytest.param(
            API,
            res(401),
            Status.OPERATIONAL,
            "HTTP 401 in 100 ms",
            id="anonymous-401-is-the-front-door",
        ),
        pytest.param(
            API, res(200, auth=True), Status.OPERATIONAL, "HTTP 200 in 100 ms", id="auth-ok"
        ),
        pytest.param(
            API, res(401, auth=True), Status.UNKNOWN, "API key rejected", id="auth-401-our-key"
        ),
        pytest.param(
            API, res(403, auth=True), Status.UNKNOWN, "API key rejected", id="auth-403-our-key"
        ),
        pytest.param(API, res(429, auth=True), Status.DEGRADED, "rate limited", id="auth-429"),
        pytest.param(
            API, res(529, auth=True), Status.MAJOR_OUTAGE, "HTTP 529 (overloaded)", id="auth-529"
        ),
        pytest.param(API, res(500, auth=True), Status.MAJOR_OUTAGE, "HTTP 500", id="auth-500"),
        pytest.param(
            API,
            res(400, auth=True),
            Status.UNKNOWN,
            "check request rejected (HTTP 400)",
            id="auth-400-our-request",
        ),
    ],
)
def test_classify(spec: ProbeSpec, result: ProbeResult, status: Status, reason: str):
    assert classify(spec, result) == (status, reason)


def test_a_surface_takes_its_worst_probe_and_slowest_latency():
    obs = probe_observation("claude.ai", [(SPEC, res(200, 120.0)), (SPEC, res(503, 80.0))], NOW)
    assert obs.signal is Signal.PROBE and obs.surface == "claude.ai"
    assert obs.status is Status.MAJOR_OUTAGE
    assert obs.latency_ms == 120.0
    assert obs.error == "HTTP 503"
    assert obs.observed_at == NOW


def test_a_rejected_key_does_not_hide_a_working_probe():
    obs = probe_observation("api", [(API, res(401, auth=True)), (SPEC, res(200))], NOW)
    assert obs.status is Status.OPERATIONAL


def test_an_operational_surface_has_no_error():
    assert probe_observation("api", [(SPEC, res(200))], NOW).error is None


# -- canary guard --------------------------------------------------------------------------------

REFUSED = res(None, None, "connection refused")


@pytest.mark.parametrize(
    ("results", "canaries", "blind"),
    [
        pytest.param([REFUSED, REFUSED], [REFUSED], True, id="all-down-canaries-down"),
        pytest.param([REFUSED, REFUSED], [], True, id="all-down-no-canaries"),
        pytest.param([REFUSED, REFUSED], [REFUSED, res(204)], False, id="a-canary-answers"),
        pytest.param([REFUSED, res(503)], [REFUSED], False, id="a-probe-answers-even-503"),
        pytest.param([], [REFUSED], False, id="no-probes"),
    ],
)
def test_is_blind(results, canaries, blind: bool):
    assert is_blind(results, canaries) is blind


def test_blind_observations_are_unknown_never_an_outage():
    obs = blind_observations(["api", "claude.ai"], NOW)
    assert [(o.surface, o.status, o.error) for o in obs] == [
        ("api", Status.UNKNOWN, "monitoring blind"),
        ("claude.ai", Status.UNKNOWN, "monitoring blind"),
    ]


def sig(raw: Status, effective: Status, ago: float = 5.0) -> SignalState:
    return SignalState(raw, 1, effective, NOW - timedelta(seconds=ago))


@pytest.mark.parametrize(
    ("state", "due"),
    [
        pytest.param(None, False, id="never-probed"),
        pytest.param(sig(Status.OPERATIONAL, Status.OPERATIONAL), False, id="healthy"),
        pytest.param(sig(Status.MAJOR_OUTAGE, Status.OPERATIONAL), True, id="failing"),
        pytest.param(sig(Status.MAJOR_OUTAGE, Status.UNKNOWN), True, id="failing-at-start-up"),
        pytest.param(sig(Status.DEGRADED, Status.OPERATIONAL), True, id="slowing"),
        pytest.param(sig(Status.OPERATIONAL, Status.MAJOR_OUTAGE), True, id="recovering"),
        pytest.param(sig(Status.PARTIAL_OUTAGE, Status.MAJOR_OUTAGE), False, id="still-out"),
        pytest.param(sig(Status.UNKNOWN, Status.OPERATIONAL), False, id="blind"),
        pytest.param(sig(Status.MAJOR_OUTAGE, Status.OPERATIONAL, 1.0), False, id="just-seen"),
    ],
)
def test_recheck_due(state: SignalState | None, due: bool):
    assert recheck_due(state, NOW, 5.0) is due
