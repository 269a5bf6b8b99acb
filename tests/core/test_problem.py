"""The problem tracker's rules: one line at the start, one reminder, one at the end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.problem import Phase, Problems

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def phases(seen: list[tuple[int, str | None]]) -> list[tuple[int, Phase]]:
    problems = Problems()
    out = []
    for minute, reason in seen:
        change = problems.see("claude", reason, T0 + timedelta(minutes=minute))
        if change is not None:
            out.append((minute, change.phase))
    return out


def test_a_lasting_problem_is_a_start_one_reminder_and_an_end():
    seen = [(m, "HTTP 500") for m in range(0, 90)] + [(90, None), (91, None)]
    assert phases(seen) == [(0, Phase.STARTED), (30, Phase.STILL), (90, Phase.ENDED)]


def test_a_new_reason_is_a_new_start_and_no_problem_is_silence():
    seen = [(0, None), (1, "HTTP 500"), (2, "HTTP 500"), (3, "timed out"), (4, None)]
    assert phases(seen) == [(1, Phase.STARTED), (3, Phase.STARTED), (4, Phase.ENDED)]
