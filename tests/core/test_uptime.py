"""Uptime percentages, per-day figures and text bars from hand-built transition lists."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot.core.model import Status, Transition
from bot.core.uptime import bar, daily_bars, percent, status_at, uptime
from tests.helpers import make_transition

T0 = datetime(2026, 11, 18, 0, 0, tzinfo=UTC)


def outage(
    start: datetime, minutes: float, status: Status = Status.MAJOR_OUTAGE
) -> list[Transition]:
    """A start and a recovery, newest first as the store returns them."""
    return [
        make_transition(
            version=2, status=Status.OPERATIONAL, prev=status, at=start + timedelta(minutes=minutes)
        ),
        make_transition(version=1, status=status, prev=Status.OPERATIONAL, at=start),
    ]


def test_no_transitions_is_full_uptime():
    assert uptime([], start=T0, end=T0 + timedelta(days=1)) == 100.0


def test_a_window_that_starts_in_an_outage_is_down_from_its_start():
    assert uptime([], start=T0, end=T0 + timedelta(hours=1), initial=Status.MAJOR_OUTAGE) == 0.0


def test_one_hour_outage_in_a_day_is_95_83_percent():
    ts = outage(T0 + timedelta(hours=6), 60)
    assert uptime(ts, start=T0, end=T0 + timedelta(days=1)) == pytest.approx(100 * 23 / 24)


def test_order_of_transitions_does_not_matter():
    ts = outage(T0 + timedelta(hours=6), 60)
    day = {"start": T0, "end": T0 + timedelta(days=1)}
    assert uptime(ts, **day) == uptime(list(reversed(ts)), **day)


def test_an_outage_straddling_the_window_counts_only_inside():
    ts = outage(T0 - timedelta(minutes=30), 60)  # 23:30 .. 00:30
    assert uptime(ts, start=T0, end=T0 + timedelta(hours=1)) == pytest.approx(50.0)


def test_degraded_counts_as_down_but_maintenance_and_unknown_do_not():
    ts = [
        make_transition(
            version=4, status=Status.UNKNOWN, prev=Status.MAINTENANCE, at=T0 + timedelta(minutes=40)
        ),
        make_transition(
            version=3,
            status=Status.MAINTENANCE,
            prev=Status.DEGRADED,
            at=T0 + timedelta(minutes=30),
        ),
        make_transition(
            version=2,
            status=Status.DEGRADED,
            prev=Status.OPERATIONAL,
            at=T0 + timedelta(minutes=10),
        ),
    ]
    assert uptime(ts, start=T0, end=T0 + timedelta(minutes=100)) == pytest.approx(80.0)


def test_before_the_oldest_transition_the_status_is_its_previous_status():
    ts = [
        make_transition(
            version=1,
            status=Status.OPERATIONAL,
            prev=Status.PARTIAL_OUTAGE,
            at=T0 + timedelta(minutes=30),
        )
    ]
    assert status_at(ts, T0) is Status.PARTIAL_OUTAGE
    assert uptime(ts, start=T0, end=T0 + timedelta(hours=1)) == pytest.approx(50.0)


def test_an_empty_window_is_full_uptime():
    assert uptime(outage(T0, 10), start=T0, end=T0) == 100.0


def test_daily_bars_give_one_figure_per_utc_day_oldest_first():
    ts = outage(T0 + timedelta(days=1, hours=12), 24 * 60 * 0.176)  # 17.6% of a day
    end = T0 + timedelta(days=2, hours=12)  # Nov 20 12:00
    days = daily_bars(ts, days=3, end=end)
    assert [d for d, _ in days] == [date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)]
    assert days[0][1] == 100.0
    assert days[1][1] == pytest.approx(82.4)
    assert days[2][1] == 100.0


def test_the_last_day_counts_only_up_to_now():
    ts = [
        make_transition(
            version=1,
            status=Status.MAJOR_OUTAGE,
            prev=Status.OPERATIONAL,
            at=T0 + timedelta(hours=6),
        )
    ]
    ((_, pct),) = daily_bars(ts, days=1, end=T0 + timedelta(hours=12))
    assert pct == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("pct", "expected"),
    [
        pytest.param(100.0, "██████████", id="clean-day"),
        pytest.param(82.4, "████████░░", id="82.4"),
        pytest.param(85.0, "████████▒░", id="half-cell"),
        pytest.param(99.99, "█████████▒", id="any-outage-shows"),
        pytest.param(0.0, "░░░░░░░░░░", id="down-all-day"),
    ],
)
def test_bar_draws_ten_cells(pct, expected):
    assert bar(pct) == expected
    assert len(bar(pct)) == 10


@pytest.mark.parametrize(
    ("pct", "expected"),
    [(100.0, "100%"), (82.43, "82.4%"), (99.96, "99.9%"), (0.0, "0.0%")],
    ids=["clean", "one-decimal", "never-rounds-up-to-100", "zero"],
)
def test_percent_reads_cleanly(pct, expected):
    assert percent(pct) == expected
