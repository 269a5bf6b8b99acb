"""Running synthetic HTTP checks: one check (`run_probe`), or every check at once with the canary
guard (`run_probes`). IO, thin: what a result means is `bot.watch.probe`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime

import httpx
from pydantic import SecretStr

from bot.core.catalog import ProbeSpec
from bot.core.model import Observation
from bot.ops import metrics
from bot.watch.fetch import checked_redirect
from bot.watch.http import deadline_reason, transport_reason
from bot.watch.probe import ProbeResult, blind_observations, is_blind, probe_observation

log = logging.getLogger(__name__)

ANTHROPIC_VERSION = "2023-06-01"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
DEFAULT_MODEL = "claude-haiku-4-5"
MAX_CONCURRENCY = 16
MAX_BODY_READ = 64 * 1024  # bytes of a probe answer we read (latency includes them); rest dropped
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


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
                        problem = await checked_redirect(
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

    async def one(sid: str, spec: ProbeSpec) -> ProbeResult:
        async with gate:
            started = time.perf_counter()
            result = await run_probe(client, spec, api_key=api_key, model=model, deadline=deadline)
        outcome = "error" if not result.answered else "ok"
        if result.answered and result.status_code not in spec.expect:
            outcome = "bad_status"
        metrics.PROBE_SECONDS.labels(sid, outcome).observe(time.perf_counter() - started)
        return result

    async def canary(url: str) -> ProbeResult:
        async with gate:
            return await _request(client, "GET", url, deadline=deadline)

    pairs = [(sid, spec) for sid, specs in specs_by_surface.items() for spec in specs]
    results = await asyncio.gather(*(one(sid, spec) for sid, spec in pairs))
    surfaces = list(dict.fromkeys(sid for sid, _ in pairs))
    if results and not any(r.answered for r in results):
        checked = await asyncio.gather(*(canary(url) for url in canaries))
        if is_blind(results, checked):
            log.debug(  # the watcher logs when blindness starts and ends, once each
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
