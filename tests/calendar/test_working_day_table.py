"""The working-day table of ``sendkit.calendar`` answers as counting day by day does.

The oracle here is the definition itself, written out independently: a working day is a
weekday not in ``calendar.bank_holidays`` of its year, and "N working days after" is N
steps of one day at a time to the next such day. The table must agree on every day of
the data file's years (2015 to 2030) for a spread of offsets, and, for any offset, on
days near and beyond its edges, where the answer needs the ``holidays`` package.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sendkit import calendar

_ONE_DAY = timedelta(days=1)
_OFFSETS = (0, 1, 2, 3, 4, 5, 9, 10, 15, 20, 30, 65)


def _is_working(day: date) -> bool:
    return day.weekday() < 5 and day not in calendar.bank_holidays(day.year)


def _after(start: date, days: int) -> date:
    current = start
    for _ in range(days):
        current += _ONE_DAY
        while not _is_working(current):
            current += _ONE_DAY
    return current


def _before(anchor: date, days: int) -> date:
    current = anchor
    for _ in range(days):
        current -= _ONE_DAY
        while not _is_working(current):
            current -= _ONE_DAY
    return current


def _count(first: date, last: date) -> int:
    return sum(
        _is_working(first + timedelta(days=n)) for n in range((last - first).days + 1)
    )


def _every_day(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += _ONE_DAY


def test_the_table_covers_the_data_file_years() -> None:
    assert calendar.bank_holiday_file_years() == range(2015, 2031)


@pytest.mark.parametrize("year", calendar.bank_holiday_file_years())
def test_every_day_of_the_file_years_agrees_with_counting(year: int) -> None:
    for day in _every_day(date(year, 1, 1), date(year, 12, 31)):
        assert calendar.is_working_day(day) is _is_working(day), day
        assert calendar.next_working_day(day) == _after(day, 1), day
        assert calendar.previous_working_day(day) == _before(day, 1), day
        assert calendar.act_by(day) == (None if _is_working(day) else _before(day, 1))
        for days in _OFFSETS:
            assert calendar.working_days_after(day, days) == _after(day, days), (
                day,
                days,
            )
            assert calendar.working_days_before(day, days) == _before(day, days), (
                day,
                days,
            )
            last = day + timedelta(days=days)
            assert calendar.count_working_days(day, last) == _count(day, last), (
                day,
                days,
            )
            if days >= 1:
                first = day if _is_working(day) else _after(day, 1)
                assert calendar.last_of_working_days_beginning_with(
                    day, days
                ) == _after(first, days - 1), (day, days)


# Around the table's edges and beyond them, where part of the answer comes from the
# ``holidays`` package rather than the file.
EDGE_DAYS = st.dates(min_value=date(2013, 6, 1), max_value=date(2032, 6, 30))
ANY_DAYS = st.integers(min_value=0, max_value=400)


@given(EDGE_DAYS, ANY_DAYS)
def test_any_offset_agrees_with_counting(day: date, days: int) -> None:
    assert calendar.working_days_after(day, days) == _after(day, days)
    assert calendar.working_days_before(day, days) == _before(day, days)
    last = day + timedelta(days=days)
    assert calendar.count_working_days(day, last) == _count(day, last)
    assert calendar.count_working_days(last, day) == (
        _count(day, day) if not days else 0
    )


@given(st.dates(min_value=date(2030, 11, 1), max_value=date(2031, 2, 1)), ANY_DAYS)
def test_counting_forward_out_of_the_table(day: date, days: int) -> None:
    assert calendar.working_days_after(day, days) == _after(day, days)


@given(st.dates(min_value=date(2014, 12, 1), max_value=date(2015, 3, 1)), ANY_DAYS)
def test_counting_back_out_of_the_table(day: date, days: int) -> None:
    assert calendar.working_days_before(day, days) == _before(day, days)


def test_the_first_and_last_days_of_the_table() -> None:
    # 1 January 2015 is a bank holiday, 2 January 2015 a Friday; 31 December 2030 is a
    # Tuesday and 1 January 2031 a bank holiday.
    assert calendar.previous_working_day(date(2015, 1, 2)) == date(2014, 12, 31)
    assert calendar.next_working_day(date(2030, 12, 31)) == date(2031, 1, 2)
    assert calendar.working_days_before(date(2015, 1, 1), 1) == date(2014, 12, 31)
    assert calendar.count_working_days(date(2014, 12, 31), date(2015, 1, 2)) == 2
