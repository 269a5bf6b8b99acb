"""Status-page hints (webhook deliveries) turned into polls, coalesced: at most one hinted poll of
a page in flight, and one more after it when hints came in meanwhile. IO (asyncio tasks); what a
poll does is the watcher's; the scheduled polls stay the safety net.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

log = logging.getLogger(__name__)


class Hints:
    """`hint(providers)` from the receiver; `poll(provider)` is the watcher's hinted poll.

    A burst of deliveries makes one poll now and at most one follow-up `follow_up` seconds
    after it ends (a change published while the first poll was reading must not be missed; the
    pause lets the next claim window open)."""

    def __init__(self, poll: Callable[[str], Awaitable[object]], *, follow_up: float = 1.0) -> None:
        self._poll = poll
        self._follow_up = follow_up
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self.polls = 0  # hinted polls started, for tests and the benchmark

    async def wait_idle(self) -> None:
        """Return once no hinted poll is in flight or waiting for its follow-up."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    def hint(self, providers: Iterable[str]) -> None:
        """Poll each provider's page at once, or once more after the poll in flight."""
        for provider in providers:
            if provider in self._running:
                self._again.add(provider)
            else:
                self._running[provider] = asyncio.create_task(
                    self._run(provider), name=f"hint:{provider}"
                )

    async def _run(self, provider: str) -> None:
        try:
            while True:
                self._again.discard(provider)
                self.polls += 1
                try:
                    await self._poll(provider)
                except Exception as e:  # the scheduled poll will try again: never crash here
                    log.warning("hinted poll of %s failed: %s: %s", provider, type(e).__name__, e)
                if provider not in self._again:
                    return
                await asyncio.sleep(self._follow_up)
        finally:
            self._running.pop(provider, None)

    async def aclose(self) -> None:
        """Cancel the hinted polls in flight (shutting down)."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
