"""What synthetic HTTP checks say: `ProbeResult`, `classify`, `probe_observation`, the canary
guard (`is_blind`, `blind_observations`) and when a surface is re-checked fast (`recheck_due`).
Pure; the checks themselves run in `bot.watch.probe_run`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.catalog import ProbeSpec
from bot.core.freshness import BLIND_ERROR
from bot.core.model import Observation, Signal, SignalState, Status
from bot.core.transitions import settling

BLIND = BLIND_ERROR  # the error of every probe while monitoring is blind


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One check. `status_code` None means no HTTP answer at all (then `error` says why).
    `authenticated`: it was the API-key check, where 401/403 means OUR key is bad."""

    url: str
    status_code: int | None
    latency_ms: float | None
    error: str | None = None
    authenticated: bool = False

    @property
    def answered(self) -> bool:
        """An HTTP status came back: the network path works, whatever the status."""
        return self.status_code is not None


def classify(spec: ProbeSpec, result: ProbeResult) -> tuple[Status, str]:
    """What one check says about its surface, and why.

    Rules, first match wins:
    1. No HTTP answer (refused, timeout, DNS, TLS) -> major outage, the transport reason.
    2. Authenticated check: 401/403 -> unknown "API key rejected" (our key, never their outage);
       other 4xx but 429 -> unknown (our request is wrong: retired model, bad body).
    3. 429 -> degraded "rate limited".
    4. 5xx (incl. 529 overloaded) or any code not expected -> major outage "HTTP n".
    5. Expected code slower than spec.degraded_ms -> degraded; else operational.
    """
    code = result.status_code
    if code is None:
        return Status.MAJOR_OUTAGE, result.error or "no answer"
    expected: Sequence[int] = (200,) if result.authenticated else spec.expect
    if result.authenticated and code in (401, 403):
        return Status.UNKNOWN, "API key rejected"
    if result.authenticated and 400 <= code < 500 and code != 429:
        return Status.UNKNOWN, f"check request rejected (HTTP {code})"
    if code == 429 and code not in expected:
        return Status.DEGRADED, "rate limited"
    if code not in expected:
        if code == 529:
            return Status.MAJOR_OUTAGE, "HTTP 529 (overloaded)"
        if code >= 500:
            return Status.MAJOR_OUTAGE, f"HTTP {code}"
        return Status.MAJOR_OUTAGE, f"unexpected HTTP {code}"
    latency = result.latency_ms
    if latency is not None and latency > spec.degraded_ms:
        return Status.DEGRADED, f"slow: {latency:.0f} ms (limit {spec.degraded_ms:.0f} ms)"
    shown = f" in {latency:.0f} ms" if latency is not None else ""
    return Status.OPERATIONAL, f"HTTP {code}{shown}"


def probe_observation(
    surface: str, results: Sequence[tuple[ProbeSpec, ProbeResult]], now: datetime
) -> Observation:
    """One PROBE observation for a surface: the worst status of its checks (unknown only when
    every check is unknown), the slowest latency, the reasons of the checks that were not
    operational."""
    if not results:
        return Observation(surface, Signal.PROBE, Status.UNKNOWN, now, error="no probes")
    classified = [(classify(spec, res), res) for spec, res in results]
    worst = max((status for (status, _), _ in classified), key=lambda s: s.rank)
    latencies = [r.latency_ms for _, r in classified if r.latency_ms is not None]
    reasons = [why for (status, why), _ in classified if status is not Status.OPERATIONAL]
    return Observation(
        surface=surface,
        signal=Signal.PROBE,
        status=worst,
        observed_at=now,
        latency_ms=max(latencies) if latencies else None,
        error="; ".join(dict.fromkeys(reasons)) or None,
    )


def is_blind(results: Sequence[ProbeResult], canaries: Sequence[ProbeResult]) -> bool:
    """True when our own network is the likely failure: every probe failed without any HTTP
    answer, and there are no canaries or every canary failed too. No probes: not blind."""
    if not results or any(r.answered for r in results):
        return False
    return not any(c.answered for c in canaries)


def blind_observations(surfaces: Sequence[str], now: datetime) -> list[Observation]:
    """UNKNOWN probe observations for every surface: our blindness is not their outage."""
    return [Observation(s, Signal.PROBE, Status.UNKNOWN, now, error=BLIND) for s in surfaces]


def recheck_due(state: SignalState | None, now: datetime, every: float) -> bool:
    """Re-probe this surface on the fast path now. Rules:

    1. Only while `settling`: a failing surface until it reaches the failure threshold or
       passes, a recovering one until it reaches the success threshold; then the base interval.
    2. Not within half of `every` after its last observation: a base round (or another
       replica's re-check) that just observed it is not doubled.
    """
    if state is None or not settling(state):
        return False
    return now - state.observed_at >= timedelta(seconds=every / 2)
