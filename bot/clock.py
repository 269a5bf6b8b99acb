"""The one wall clock, for the IO edges (composition root, chat adapters). Pure modules never
call it: they take `now` as an argument, so tests inject time instead of sleeping."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass
class ManualClock:
    """A clock moved by hand, passed where `utcnow` would be: the demo replays an incident on
    its own timeline with it, and tests and benchmarks inject it instead of sleeping."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now
