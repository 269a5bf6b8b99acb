"""Ongoing problems, so each is logged once when it starts, once more as a reminder, and once
when it ends — never once per poll. Pure: `now` is passed in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

REMIND_AFTER = timedelta(minutes=30)


class Phase(StrEnum):
    STARTED = "started"
    STILL = "still"  # the one reminder, REMIND_AFTER into the problem
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Change:
    """What to log about a problem now: its key, reason, and since when it has lasted."""

    phase: Phase
    key: str
    reason: str
    since: datetime

    def lasted(self, now: datetime) -> str:
        minutes = int((now - self.since).total_seconds() // 60)
        return f"{minutes} min" if minutes else "under a minute"


@dataclass
class Problems:
    """The open problems by key (e.g. a provider's page read). `see` decides, by rules:
    1) no problem now and none open: nothing; 2) one open ends: ENDED;
    3) a new problem, or an open one whose reason changed: STARTED (a new reason is news);
    4) the same one, REMIND_AFTER old and not yet reminded: STILL, once; 5) otherwise nothing."""

    remind_after: timedelta = REMIND_AFTER
    # key -> (reason, since, reminded): changes only through `see`
    _open: dict[str, tuple[str, datetime, bool]] = field(default_factory=dict)

    def see(self, key: str, reason: str | None, now: datetime) -> Change | None:
        prev = self._open.get(key)
        if reason is None:
            if prev is None:
                return None
            del self._open[key]
            return Change(Phase.ENDED, key, prev[0], prev[1])
        if prev is None or prev[0] != reason:
            self._open[key] = (reason, now, False)
            return Change(Phase.STARTED, key, reason, now)
        _, since, reminded = prev
        if not reminded and now - since >= self.remind_after:
            self._open[key] = (reason, since, True)
            return Change(Phase.STILL, key, reason, since)
        return None
