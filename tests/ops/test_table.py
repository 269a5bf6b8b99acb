"""The `aistatus status` table as a terminal shows it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.model import Status
from bot.ops.table import StatusRow, _width, render_table

NOW = datetime(2026, 9, 22, 1, 30, tzinfo=UTC)


def row(surface: str, status: Status, **kw) -> StatusRow:
    base = dict(
        surface=surface, name=surface, claude=True, status=status, source="official",
        suspected=False, since=None, incident=None, latency_ms=None, detail="",
    )  # fmt: skip
    return StatusRow(**{**base, **kw})


def test_columns_line_up_on_screen_whatever_the_emoji():
    rows = [
        row("api", Status.PARTIAL_OUTAGE, since=NOW - timedelta(minutes=33), incident="Errors"),
        row("console", Status.OPERATIONAL),
        row("gemini", Status.UNKNOWN, claude=False, source="-", detail="connection refused"),
        row("mobile", Status.MAINTENANCE, latency_ms=812.4),
    ]
    lines = render_table(rows, now=NOW).splitlines()
    starts = {_width(line[: line.index(" official") + 1]) for line in lines if " official" in line}
    assert len(starts) == 1, lines  # the SOURCE column starts at one screen column
    assert lines[0].startswith("SURFACE")
    assert [line.split()[0] for line in lines[1:]] == ["api", "console", "mobile", "gemini"]
    assert "33 min ago" in lines[1] and "Errors" in lines[1]
    assert "connection refused" in lines[4] and "812 ms" in lines[3]


def test_wide_characters_count_two_columns():
    assert _width("🟠 partial outage") == 2 + 1 + len("partial outage")
    assert _width("🛠️ under maintenance") == 2 + 1 + len("under maintenance")
