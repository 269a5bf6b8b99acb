"""Every apscheduler call in one place (its 3.x and 4.x APIs differ). IO: schedules the watcher's
jobs — one per status page, the probe round and its fast re-checks — jittered, coalesced, never
overlapping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.watch.watcher import Watcher

log = logging.getLogger(__name__)

REASSESS_EVERY = 60.0  # seconds: suspicions age out (crowd reports, probe results) even unpolled


def _guarded(name: str, job: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[None]]:
    """A job that logs its failure in one line (with traceback at debug) and keeps its schedule:
    a Redis blip must not stop the watch. A run cancelled by the scheduler's shutdown (`aistatus
    run` stopping mid-poll) ends quietly: apscheduler would log the cancellation as a failure
    with a traceback. Nothing awaits a job's task but the executor, so nothing misses it."""

    async def run(*args: Any) -> None:
        try:
            await job(*args)
        except asyncio.CancelledError:
            log.info("job %s stopped while running (shutting down)", name)
        except Exception as e:
            log.error("job %s failed: %s: %s", name, type(e).__name__, e)
            log.debug("job %s traceback", name, exc_info=True)

    return run


class _CancelledAtStop(logging.Filter):
    """Drops apscheduler's "Error running job" record for a run cancelled before its first step
    (submitted just as the scheduler shut down): `_guarded` cannot catch a cancellation that
    lands before the job's coroutine starts, and it is a stop, not a failure."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, asyncio.CancelledError)


_CANCELLED_AT_STOP = _CancelledAtStop()


def _every(
    scheduler: AsyncIOScheduler,
    name: str,
    job: Callable[..., Awaitable[Any]],
    seconds: float,
    *,
    jitter: float,
    first: datetime | None,
    args: list[Any] | None = None,
) -> None:
    """Add `job` every `seconds` (+ up to `jitter`), coalesced, never overlapping itself; first
    run at `first`, or one interval from now when None (apscheduler reads an explicit None
    `next_run_time` as "paused", so it is passed only when set)."""
    when = {"next_run_time": first} if first is not None else {}
    scheduler.add_job(
        _guarded(name, job),
        IntervalTrigger(seconds=seconds, jitter=jitter),
        args=args,
        id=name,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=max(1, int(seconds)),
        **when,
    )


def build_scheduler(
    watcher: Watcher, *, probes: bool, start_now: datetime | None = None
) -> AsyncIOScheduler:
    """A scheduler with one job per watched status page and, when `probes`, the probe round and
    its fast re-checks."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    logging.getLogger("apscheduler.executors.default").addFilter(_CANCELLED_AT_STOP)  # once
    first = start_now or datetime.now(UTC)
    for provider in watcher.catalog.watched_providers():
        interval = watcher.interval_of(provider)
        _every(
            scheduler, f"page:{provider}", watcher.poll_page, interval,
            jitter=min(2.0, interval / 10), first=first, args=[provider],
        )  # fmt: skip
    if probes and watcher.catalog.probe_specs():
        every = watcher.probe_interval
        _every(
            scheduler, "probes", watcher.run_probe_round, every,
            jitter=min(5.0, every / 10), first=first,
        )  # fmt: skip
        # The fast path: a no-op unless a probed surface is settling (then a few seconds apart).
        fast = watcher.recheck_interval
        _every(
            scheduler, "recheck", watcher.recheck_probes, fast,
            jitter=min(0.5, fast / 10), first=None,
        )  # fmt: skip
    _every(
        scheduler, "reassess", watcher.reassess, REASSESS_EVERY,
        jitter=5.0, first=None,
    )  # fmt: skip
    return scheduler
