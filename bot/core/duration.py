"""Durations as people write and read them: `humanize` for messages, `parse_duration` for
`/aistatus mute`. Pure: no IO, no clock reads.
"""

from __future__ import annotations

import re
from datetime import timedelta

MIN_DURATION = timedelta(minutes=1)
MAX_DURATION = timedelta(days=30)

_UNITS: dict[str, int] = {}
for _names, _seconds in (
    (("s", "sec", "secs", "second", "seconds"), 1),
    (("m", "min", "mins", "minute", "minutes"), 60),
    (("h", "hr", "hrs", "hour", "hours"), 3600),
    (("d", "day", "days"), 86400),
    (("w", "wk", "wks", "week", "weeks"), 7 * 86400),
):
    for _name in _names:
        _UNITS[_name] = _seconds

# One "<number><unit>" part; parts may be separated by spaces ("1h 30m", "2 hours").
_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*", re.ASCII)
_SHOWN = 30  # characters of the user's text echoed back in an error


def humanize(delta: timedelta) -> str:
    """A compact duration: '45 s', '47 min', '2 h 13 min', '3 d 4 h' (no '0 min' noise).
    Negative durations read as '0 s'."""
    total = max(0, int(delta.total_seconds()))
    if total < 60:
        return f"{total} s"
    minutes, _ = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def parse_duration(text: str) -> timedelta:
    """Parse '30m', '2h', '1d', '1h30m', '45min', '2 hours', '1.5h'; 1 minute to 30 days.

    Raises: ValueError with a short message for the user.
    """
    cleaned = text.strip().casefold()
    shown = _show(text)
    if not cleaned:
        raise ValueError("Say how long: try 30m, 2h or 1d")
    pos = 0
    seconds = 0.0
    while pos < len(cleaned):
        m = _PART.match(cleaned, pos)
        if m is None or m.end() == pos or m.group(2) not in _UNITS:
            raise ValueError(f"'{shown}' is not a duration: try 30m, 2h or 1d")
        seconds += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    # Compare before building the timedelta: huge numbers would overflow it.
    if seconds < MIN_DURATION.total_seconds():
        raise ValueError(f"'{shown}' is too short: the minimum is 1 min")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"'{shown}' is too long: the maximum is 30 d")
    return timedelta(seconds=round(seconds))


def _show(text: str) -> str:
    """The user's text, on one line and short, for an error message."""
    flat = " ".join(text.split())
    return flat if len(flat) <= _SHOWN else flat[: _SHOWN - 1] + "…"


def lead_text(lead: timedelta) -> str:
    """'aistatus saw this 7 min before the status page': how far the official page lagged."""
    return f"aistatus saw this {humanize(lead)} before the status page"
