"""What the delivery units' loops share: which errors mean Redis is away, a loop that outlives
them (backoff from `bot.backoff`, logged when the error changes), a pause that ends at stop, a
bookkeeping write that waits Redis out, and the calls that must finish even when cancelled. IO.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from redis.exceptions import BusyLoadingError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.backoff import Backoff, Streak

log = logging.getLogger("bot.delivery")

T = TypeVar("T")

# Redis being away (restart, failover, loading its AOF): wait and try again, never crash.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, ConnectionError)
# ... or answering with an error (a stream or group deleted under us, a script bug).
REDIS_ERRORS = (*REDIS_DOWN, ResponseError)

REDIS_BACKOFF = Backoff(0.05, 2.0)  # a loop's pause after a Redis error
BUG_BACKOFF = Backoff(0.05, 30.0)  # ... after an unexpected error (a bug: log it, keep going)
WRITE_BACKOFF = Backoff(0.05, 1.0)  # between tries of a bookkeeping write


def failure_pause(
    streak: Streak, what: str, error: Exception, *, shared: Streak | None = None
) -> float:
    """Count a failed step of a loop and return the pause before the next one. The failure is
    logged only when its error differs from the previous step's (a Redis outage is one line,
    not one per try); a missing consumer group is expected (the loop recreates it) and not
    logged at all. `shared`: the streak of loops that fail together (every lane while Redis is
    away), which decides the logging instead, so they log one line between them."""
    redis = isinstance(error, REDIS_ERRORS)
    text = f"{type(error).__name__}: {error}"
    changed = streak.failed(text)
    if shared is not None:
        changed = shared.failed(text)
    if changed and not is_no_group(error):
        if redis:
            log.warning("%s: redis unavailable or refusing (will retry): %s", what, error)
        else:
            log.error("%s: unexpected error (retrying with backoff)", what, exc_info=error)
    return (REDIS_BACKOFF if redis else BUG_BACKOFF).window(streak.failures)


def recovered(streak: Streak, what: str, *, shared: Streak | None = None) -> None:
    """A step worked: end the failure streak (and the shared one), logging its end once."""
    failures = streak.succeeded()
    if shared is not None:
        failures = shared.succeeded()
    if failures:
        log.info("%s: working again after %d failed tries", what, failures)


def is_no_group(error: Exception) -> bool:
    """Redis said the consumer group (or its stream) is gone: create it again."""
    return isinstance(error, ResponseError) and "NOGROUP" in str(error)


async def forever(
    stop: asyncio.Event,
    what: str,
    step: Callable[[], Awaitable[object]],
    *,
    reset: Callable[[Exception], None] = lambda _: None,
) -> None:
    """Run `step` until `stop` is set. A failed step never ends the loop: `reset(error)` runs
    (so the next step starts over cleanly), then the loop pauses (`failure_pause`)."""
    streak = Streak()
    while not stop.is_set():
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            reset(e)
            await pause(stop, failure_pause(streak, what, e))
        else:
            recovered(streak, what)


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less when `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()


async def persist(write: Callable[[], Awaitable[T]], *, within: float) -> T:
    """Run a bookkeeping write, trying again while Redis is away for up to `within` seconds:
    after a chat API accepted a message, giving up here would send it again. Silent: the loops
    log the outage. Raises: the Redis error, once `within` has passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    failures = 0
    while True:
        try:
            return await write()
        except REDIS_DOWN:
            if loop.time() >= deadline:
                raise
            failures += 1
            await asyncio.sleep(WRITE_BACKOFF.window(failures))


async def deadline(call: Awaitable[T], seconds: float) -> T:
    """`call` within `seconds`, or TimeoutError and the call abandoned: it runs as its own task,
    cancelled but not awaited on overrun, so a call that ignores or outlives its cancellation
    (a library swallowing it, a hung socket) cannot hold the caller. Raises: TimeoutError."""
    task = asyncio.ensure_future(call)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        task.add_done_callback(_quiet)  # abandoned: nobody reads its outcome
        raise TimeoutError
    return task.result()


def _quiet(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" noise


class InFlight:
    """Work that must finish even when whoever awaits it is cancelled: a chat call already made
    gets recorded, so it is never made again. `finish` waits for what is left at shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    async def finish(self, timeout: float) -> None:  # noqa: ASYNC109 (a bound, not a deadline API)
        """Wait up to `timeout` seconds for the work in flight, then abandon what is left
        (cancelled, not awaited): its outcome is unknown, so whoever takes its entry over checks
        the channel before sending again (bot.delivery.attempt)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in list(self._tasks):
            task.cancel()
            task.add_done_callback(_quiet)
