"""Properties of the calendar that must hold for every date, checked with hypothesis.

The oracles are independent of the module: summer time is computed from its legal
definition (01:00 UTC on the last Sundays of March and October), and bank holidays
come from the ``holidays`` package directly.
"""

from __future__ import annotations

import calendar as stdlib_calendar
from datetime import UTC, date, datetime, timedelta, timezone

import holidays
from hypothesis import given
from hypothesis import strategies as st

from sendkit import calendar

DATES = st.dates(min_value=date(2015, 1, 1), max_value=date(2034, 12, 31))
AMOUNTS = st.integers(min_value=0, max_value=60)
POSITIVE = st.integers(min_value=1, max_value=60)
_PACKAGE = holidays.country_holidays("GB", subdiv="ENG", years=range(2014, 2037))


def _oracle_working(day: date) -> bool:
    return day.weekday() < 5 and day not in _PACKAGE


def _last_sunday(year: int, month: int) -> date:
    last = date(year, month, stdlib_calendar.monthrange(year, month)[1])
    return last - timedelta(days=(last.weekday() - 6) % 7)


def _summer_time(moment: datetime) -> bool:
    year = moment.year
    begins = datetime.combine(_last_sunday(year, 3), datetime.min.time(), UTC)
    ends = datetime.combine(_last_sunday(year, 10), datetime.min.time(), UTC)
    return begins + timedelta(hours=1) <= moment < ends + timedelta(hours=1)


@given(DATES, AMOUNTS)
def test_a_due_date_is_never_before_its_start(start: date, amount: int) -> None:
    assert calendar.weeks_after(start, amount) >= start
    assert calendar.days_after(start, amount) >= start
    assert calendar.months_after(start, amount) >= start
    assert calendar.working_days_after(start, amount) >= start
    if amount >= 1:
        assert calendar.last_of_days_beginning_with(start, amount) >= start
        assert calendar.last_of_months_starting_with(start, amount) >= start
        assert calendar.last_of_working_days_beginning_with(start, amount) >= start


@given(DATES, AMOUNTS)
def test_week_offsets_keep_the_weekday(start: date, weeks: int) -> None:
    assert calendar.weeks_after(start, weeks).weekday() == start.weekday()
    assert calendar.weeks_before(start, weeks).weekday() == start.weekday()
    assert (calendar.weeks_after(start, weeks) - start).days == 7 * weeks


@given(DATES, st.integers(min_value=0, max_value=40))
def test_month_arithmetic_clamps_and_never_skips_a_month(
    start: date, months: int
) -> None:
    result = calendar.months_after(start, months)
    index = start.year * 12 + start.month - 1 + months
    year, month_index = divmod(index, 12)
    assert (result.year, result.month) == (year, month_index + 1)
    length = stdlib_calendar.monthrange(result.year, result.month)[1]
    assert result.day == min(start.day, length)
    assert calendar.months_before(result, months) <= start
    if start.day <= 28:
        assert calendar.months_before(result, months) == start


@given(DATES)
def test_one_month_on_lands_in_the_next_calendar_month(start: date) -> None:
    result = calendar.months_after(start, 1)
    assert (result.year * 12 + result.month) - (start.year * 12 + start.month) == 1


@given(DATES, st.integers(min_value=1, max_value=24))
def test_a_period_of_months_ends_the_day_before_the_same_day(
    start: date, n: int
) -> None:
    last = calendar.last_of_months_starting_with(start, n)
    assert last == calendar.months_after(start - timedelta(days=1), n)
    assert last < calendar.months_after(start, n) or start.day > 28


@given(
    st.datetimes(
        min_value=datetime(2015, 1, 1),  # noqa: DTZ001
        max_value=datetime(2035, 12, 31),  # noqa: DTZ001
        timezones=st.just(UTC),
    )
)
def test_london_dates_follow_summer_time(moment: datetime) -> None:
    offset = timedelta(hours=1) if _summer_time(moment) else timedelta(0)
    assert calendar.london_date(moment) == (moment + offset).date()


@given(
    st.sampled_from(range(2015, 2036)),
    st.sampled_from((3, 10)),
    st.integers(min_value=-180, max_value=180),
    st.integers(min_value=-12, max_value=12),
)
def test_london_dates_around_each_clock_change(
    year: int, month: int, minutes: int, hours_offset: int
) -> None:
    change = datetime.combine(_last_sunday(year, month), datetime.min.time(), UTC)
    moment = change + timedelta(hours=1, minutes=minutes)
    offset = timedelta(hours=1) if _summer_time(moment) else timedelta(0)
    elsewhere = moment.astimezone(timezone(timedelta(hours=hours_offset)))
    assert calendar.london_date(elsewhere) == (moment + offset).date()
    # Just before midnight UTC the London date is the next day only in summer time.
    late = datetime.combine(change.date(), datetime.min.time(), UTC) - timedelta(
        minutes=30
    )
    expected = late.date() + timedelta(days=1 if _summer_time(late) else 0)
    assert calendar.london_date(late) == expected


@given(DATES, st.integers(min_value=0, max_value=400))
def test_working_day_counts_skip_exactly_weekends_and_bank_holidays(
    first: date, span: int
) -> None:
    last = first + timedelta(days=span)
    expected = sum(
        1 for n in range(span + 1) if _oracle_working(first + timedelta(days=n))
    )
    assert calendar.count_working_days(first, last) == expected


@given(DATES, POSITIVE)
def test_adding_working_days(start: date, days: int) -> None:
    result = calendar.working_days_after(start, days)
    assert _oracle_working(result)
    assert calendar.count_working_days(start + timedelta(days=1), result) == days
    back = calendar.working_days_before(result, days)
    assert back <= start
    assert calendar.count_working_days(back, result - timedelta(days=1)) == days


@given(DATES, POSITIVE)
def test_working_days_beginning_with(start: date, days: int) -> None:
    last = calendar.last_of_working_days_beginning_with(start, days)
    assert _oracle_working(last)
    assert calendar.count_working_days(start, last) == days


@given(DATES)
def test_the_previous_working_day_and_act_by(day: date) -> None:
    previous = calendar.previous_working_day(day)
    assert previous < day
    assert _oracle_working(previous)
    between = (previous + timedelta(days=n) for n in range(1, (day - previous).days))
    assert not any(_oracle_working(other) for other in between)
    act_by = calendar.act_by(day)
    if _oracle_working(day):
        assert act_by is None
    else:
        assert act_by == previous
