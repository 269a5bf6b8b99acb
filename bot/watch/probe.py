"""Synthetic HTTP checks and the canary guard. `classify`, `probe_observation`, `is_blind` and
`blind_observations` are pure; `run_probe` / `run_probes` are the thin httpx edge.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx  # the IO twin lives here, beside its pure classifier
from pydantic import SecretStr

from bot.core.catalog import ProbeSpec
from bot.core.model import Observation, Signal, Status
from bot.watch.redirects import redirect_problem
from bot.watch.statuspage import deadline_reason, transport_reason

log = logging.getLogger(__name__)

ANTHROPIC_VERSION = "2023-06-01"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
DEFAULT_MODEL = "claude-haiku-4-5"
MAX_CONCURRENCY = 16
MAX_BODY_READ = 64 * 1024  # bytes of a probe answer we read (latency includes them); rest dropped
BLIND = "monitoring blind"


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


# -- pure ----------------------------------------------------------------------------------------


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


# -- IO ------------------------------------------------------------------------------------------


def _secret(api_key: str | SecretStr | None) -> str | None:
    if isinstance(api_key, SecretStr):
        api_key = api_key.get_secret_value()
    return api_key or None


async def run_probe(
    client: httpx.AsyncClient,
    spec: ProbeSpec,
    *,
    api_key: str | SecretStr | None = None,
    model: str = DEFAULT_MODEL,
    deadline: float | None = None,
) -> ProbeResult:
    """Run one check; network failures become `ProbeResult.error`, never exceptions.

    With `spec.auth == "anthropic"` and a key, the zero-cost authenticated check runs instead:
    POST <origin of spec.url>/v1/messages/count_tokens. The key is sent only in `x-api-key` and
    never appears in a result, an error or a log line. `deadline` bounds the whole check.
    """
    key = _secret(api_key) if spec.auth == "anthropic" else None
    if key is None:
        return await _request(client, spec.method, spec.url, deadline=deadline)
    url = str(httpx.URL(spec.url).join(COUNT_TOKENS_PATH))
    return await _request(
        client,
        "POST",
        url,
        headers={
            "x-api-key": key,
            "anthropic-version": ANTHROPIC_VERSION,
            "content-type": "application/json",
        },
        json={"model": model, "messages": [{"role": "user", "content": "ping"}]},
        deadline=deadline,
        authenticated=True,
    )


MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


async def _request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    json: object = None,
    deadline: float | None = None,
    authenticated: bool = False,
) -> ProbeResult:
    started = time.perf_counter()

    def failed(reason: str) -> ProbeResult:
        return ProbeResult(url, None, None, reason, authenticated)  # no answer: no latency

    target, code = httpx.URL(url), None
    try:
        async with asyncio.timeout(deadline):
            for _hop in range(MAX_REDIRECTS + 1):  # followed here: each hop is checked
                async with client.stream(
                    method, target, headers=headers, json=json, follow_redirects=False
                ) as resp:
                    location = resp.headers.get("Location")
                    if resp.status_code in _REDIRECTS and location:
                        following = resp.url.join(location)
                        problem = redirect_problem(
                            str(resp.url), str(following), with_credentials=authenticated
                        )
                        if problem is not None:
                            return failed(problem)
                        if resp.status_code == 303 or (
                            resp.status_code in (301, 302) and method == "POST"
                        ):
                            method, json = "GET", None
                        target = following
                        continue
                    read = 0
                    async for chunk in resp.aiter_raw():
                        read += len(chunk)
                        if read >= MAX_BODY_READ:
                            break
                    code = resp.status_code
                    break
            else:
                return failed("too many redirects")
    except TimeoutError:
        return failed(deadline_reason(deadline))
    except httpx.HTTPError as e:
        return failed(transport_reason(e))
    except OSError as e:  # a socket error httpx did not wrap
        return failed(f"network error ({type(e).__name__})")
    latency = (time.perf_counter() - started) * 1000
    return ProbeResult(url, code, latency, None, authenticated)


async def run_probes(
    client: httpx.AsyncClient,
    specs_by_surface: Mapping[str, Sequence[ProbeSpec]],
    canaries: Sequence[str],
    *,
    api_key: str | SecretStr | None = None,
    now: datetime,
    model: str = DEFAULT_MODEL,
    concurrency: int = MAX_CONCURRENCY,
    deadline: float | None = None,
) -> list[Observation]:
    """One PROBE observation per surface that has checks, all run concurrently (at most
    `concurrency` at once). Canaries are fetched only when every check failed without an HTTP
    answer; if they fail too, every observation is UNKNOWN "monitoring blind"."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(spec: ProbeSpec) -> ProbeResult:
        async with gate:
            return await run_probe(client, spec, api_key=api_key, model=model, deadline=deadline)

    async def canary(url: str) -> ProbeResult:
        async with gate:
            return await _request(client, "GET", url, deadline=deadline)

    pairs = [(sid, spec) for sid, specs in specs_by_surface.items() for spec in specs]
    results = await asyncio.gather(*(one(spec) for _, spec in pairs))
    surfaces = list(dict.fromkeys(sid for sid, _ in pairs))
    if results and not any(r.answered for r in results):
        checked = await asyncio.gather(*(canary(url) for url in canaries))
        if is_blind(results, checked):
            log.warning(
                "monitoring blind: all %d probes and %d canaries failed (first: %s)",
                len(results),
                len(checked),
                results[0].error,
            )
            return blind_observations(surfaces, now)
    by_surface: dict[str, list[tuple[ProbeSpec, ProbeResult]]] = {s: [] for s in surfaces}
    for (sid, spec), result in zip(pairs, results, strict=True):
        by_surface[sid].append((spec, result))
    return [probe_observation(sid, checks, now) for sid, checks in by_surface.items()]
