"""The counting rules of ``sendkit.calendar``, each against worked dates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from sendkit import calendar
from sendkit.calendar import CalendarError

D = date


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # The example of STATUTORY_CLOCKS.md: late on a summer-time Sunday in UTC.
        (datetime(2025, 3, 30, 23, 30, tzinfo=UTC), D(2025, 3, 31)),
        (datetime(2025, 1, 6, 23, 30, tzinfo=UTC), D(2025, 1, 6)),
        (datetime(2025, 10, 25, 23, 0, tzinfo=UTC), D(2025, 10, 26)),
        (datetime(2025, 10, 26, 0, 59, tzinfo=UTC), D(2025, 10, 26)),
        (datetime(2025, 10, 26, 23, 0, tzinfo=UTC), D(2025, 10, 26)),
        (datetime(2025, 3, 30, 0, 59, tzinfo=UTC), D(2025, 3, 30)),
        (
            datetime(2025, 6, 1, 1, 0, tzinfo=timezone(timedelta(hours=2))),
            D(2025, 6, 1),
        ),
        (
            datetime(2025, 6, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))),
            D(2025, 5, 31),
        ),
        (datetime(2025, 6, 1, 0, 30, tzinfo=ZoneInfo("Europe/London")), D(2025, 6, 1)),
    ],
)
def test_london_date_of_a_timestamp(moment: datetime, expected: date) -> None:
    assert calendar.london_date(moment) == expected


def test_a_naive_timestamp_is_refused() -> None:
    with pytest.raises(CalendarError, match="no time zone"):
        calendar.london_date(datetime(2025, 3, 30, 23, 30))  # noqa: DTZ001
    with pytest.raises(CalendarError, match="no time zone"):
        calendar.parse_timestamp("2025-03-30T23:30:00")


def test_timestamps_and_dates_are_parsed_strictly() -> None:
    assert calendar.parse_timestamp("2025-03-30T23:30:00Z") == datetime(
        2025, 3, 30, 23, 30, tzinfo=UTC
    )
    assert calendar.parse_date("2025-01-06") == D(2025, 1, 6)
    with pytest.raises(CalendarError, match="not an ISO 8601 timestamp"):
        calendar.parse_timestamp("6 January 2025")
    with pytest.raises(CalendarError, match="not a date"):
        calendar.parse_date("2025-02-30")
    with pytest.raises(CalendarError, match="timestamp where a date"):
        calendar.parse_date(datetime(2025, 1, 6, tzinfo=UTC))


Counter = Callable[[date, int], date]


@pytest.mark.parametrize(
    ("function", "start", "amount", "expected"),
    [
        # "within N weeks of": Mon 6 Jan 2025 + 6 weeks is Mon 17 Feb 2025.
        (calendar.weeks_after, D(2025, 1, 6), 6, D(2025, 2, 17)),
        (calendar.weeks_after, D(2025, 1, 6), 16, D(2025, 4, 28)),
        (calendar.weeks_after, D(2025, 1, 6), 20, D(2025, 5, 26)),
        (calendar.weeks_after, D(2024, 2, 29), 6, D(2024, 4, 11)),
        (calendar.weeks_before, D(2026, 6, 3), 8, D(2026, 4, 8)),
        (calendar.days_after, D(2026, 3, 2), 15, D(2026, 3, 17)),
        (calendar.days_before, D(2026, 3, 4), 14, D(2026, 2, 18)),
        # "within N months after": 31 Jan 2025 + 1 month is 28 Feb 2025.
        (calendar.months_after, D(2025, 1, 31), 1, D(2025, 2, 28)),
        (calendar.months_after, D(2024, 1, 31), 1, D(2024, 2, 29)),
        (calendar.months_after, D(2025, 3, 31), 1, D(2025, 4, 30)),
        (calendar.months_after, D(2025, 12, 15), 1, D(2026, 1, 15)),
        (calendar.months_after, D(2024, 2, 29), 12, D(2025, 2, 28)),
        (calendar.months_before, D(2027, 1, 4), 5, D(2026, 8, 4)),
        (calendar.months_before, D(2026, 7, 31), 5, D(2026, 2, 28)),
        # "at least 15 days beginning with": served Mon 2 Mar 2026, last day 16 Mar.
        (calendar.last_of_days_beginning_with, D(2026, 3, 2), 15, D(2026, 3, 16)),
        (calendar.last_of_days_beginning_with, D(2026, 3, 2), 1, D(2026, 3, 2)),
        # "the period of 12 months starting with": 31 Jan 2025 ends Fri 30 Jan 2026,
        # and a 29 February start and a 1 March start both end on 28 February.
        (calendar.last_of_months_starting_with, D(2025, 1, 31), 12, D(2026, 1, 30)),
        (calendar.last_of_months_starting_with, D(2024, 2, 29), 12, D(2025, 2, 28)),
        (calendar.last_of_months_starting_with, D(2024, 3, 1), 12, D(2025, 2, 28)),
        (calendar.last_of_months_starting_with, D(2025, 1, 1), 12, D(2025, 12, 31)),
    ],
)
def test_counting_rules(
    function: Counter, start: date, amount: int, expected: date
) -> None:
    assert function(start, amount) == expected


def test_before_a_day_of_the_year_is_the_day_before_it() -> None:
    assert calendar.day_before(2026, 2, 15) == D(2026, 2, 14)
    assert calendar.day_before(2026, 3, 31) == D(2026, 3, 30)
    with pytest.raises(CalendarError):
        calendar.day_before(2026, 2, 30)


def test_periods_must_have_a_last_day() -> None:
    with pytest.raises(CalendarError):
        calendar.last_of_days_beginning_with(D(2026, 3, 2), 0)
    with pytest.raises(CalendarError):
        calendar.last_of_months_starting_with(D(2026, 3, 2), 0)
    with pytest.raises(CalendarError):
        calendar.last_of_working_days_beginning_with(D(2026, 3, 2), 0)
    with pytest.raises(CalendarError):
        calendar.working_days_after(D(2026, 3, 2), -1)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (D(2025, 5, 26), False),  # spring bank holiday
        (D(2025, 5, 23), True),
        (D(2026, 2, 14), False),  # a Saturday
        (D(2026, 2, 13), True),
        (D(2026, 12, 28), False),  # Boxing Day's substitute
        (D(2020, 5, 8), False),  # VE day, the moved early May bank holiday
        (D(2020, 5, 4), True),
        (D(2022, 9, 19), False),  # the state funeral
        (D(2023, 5, 8), False),  # the coronation
    ],
)
def test_working_days(day: date, working: bool) -> None:
    assert calendar.is_working_day(day) is working


@pytest.mark.parametrize(
    ("due", "act_by"),
    [
        (D(2025, 5, 26), D(2025, 5, 23)),  # final plan of a 6 Jan 2025 request
        (D(2026, 2, 14), D(2026, 2, 13)),  # Year 6 phase transfer for 2026
        (D(2026, 4, 6), D(2026, 4, 2)),  # Easter Monday, after Good Friday
        (D(2026, 12, 28), D(2026, 12, 24)),
        (D(2026, 3, 30), None),
    ],
)
def test_act_by_the_previous_working_day(due: date, act_by: date | None) -> None:
    assert calendar.act_by(due) == act_by


def test_working_day_arithmetic_over_easter_2026() -> None:
    # Thu 2 Apr, then Good Friday 3 Apr, the weekend and Easter Monday 6 Apr.
    assert calendar.next_working_day(D(2026, 4, 2)) == D(2026, 4, 7)
    assert calendar.previous_working_day(D(2026, 4, 7)) == D(2026, 4, 2)
    assert calendar.working_days_after(D(2026, 4, 2), 1) == D(2026, 4, 7)
    assert calendar.working_days_before(D(2026, 4, 7), 2) == D(2026, 4, 1)
    assert calendar.count_working_days(D(2026, 3, 30), D(2026, 4, 10)) == 8
    assert calendar.count_working_days(D(2026, 4, 10), D(2026, 3, 30)) == 0
    assert calendar.working_day_on_or_before(D(2026, 4, 6)) == D(2026, 4, 2)


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        # Mon 20 Apr 2026 is day 1; 4 May is a bank holiday; day 15 is Mon 11 May.
        (D(2026, 4, 20), 15, D(2026, 5, 11)),
        # A Saturday start: the Monday after is day 1.
        (D(2026, 4, 18), 15, D(2026, 5, 11)),
        (D(2026, 4, 20), 1, D(2026, 4, 20)),
        (D(2026, 4, 3), 1, D(2026, 4, 7)),
    ],
)
def test_working_days_beginning_with(start: date, days: int, expected: date) -> None:
    assert calendar.last_of_working_days_beginning_with(start, days) == expected
